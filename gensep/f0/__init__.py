"""F0 of each source for F0-informed separation: from a score (`from_score`), aligned to
the recording (`align_score`)."""

from gensep.f0.align import Alignment, ScoreMismatchError, align_score
from gensep.f0.score import ScoreError, from_score

__all__ = ["Alignment", "ScoreError", "ScoreMismatchError", "align_score", "from_score"]
