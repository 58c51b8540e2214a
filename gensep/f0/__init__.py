"""F0 of each source for F0-informed separation: from a score (`from_score`)."""

from gensep.f0.score import ScoreError, from_score

__all__ = ["ScoreError", "from_score"]
