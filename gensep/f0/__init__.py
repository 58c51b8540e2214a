"""F0 of each source for F0-informed separation: from a score (`from_score`), aligned to
the recording (`align_score`), or estimated from the mixture (`salience_f0`, the neural
estimator); `estimate_f0` picks one by name."""

from gensep.f0.align import Alignment, ScoreMismatchError, align_score
from gensep.f0.estimate import F0_METHODS, default_f0_method, estimate_f0
from gensep.f0.salience import salience_f0
from gensep.f0.score import ScoreError, from_score

__all__ = [
    "F0_METHODS",
    "Alignment",
    "ScoreError",
    "ScoreMismatchError",
    "align_score",
    "default_f0_method",
    "estimate_f0",
    "from_score",
    "salience_f0",
]
