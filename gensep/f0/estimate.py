"""One entry point for every way of getting the sources' F0 from a recording.

    estimate_f0(mixture, rate, "salience", names=("soprano", "alto", "tenor", "bass"))

Methods (`F0_METHODS`):
- "score": the parts of a MIDI/MusicXML score (`gensep.f0.score.from_score`) aligned to
  the recording (`gensep.f0.align.align_score`); names come from the score.
- "salience": learning-free harmonic-summation salience and a Viterbi assignment of its
  peaks to voices ordered high to low (`gensep.f0.salience.salience_f0`).
- "neural": the trained multi-F0 network (`gensep.f0.neural.neural_f0`).
- "file" is the caller's own F0 files (the command line reads them); not estimated here.

`default_f0_method()` is what a blind separation uses when the user names none: the
neural estimator when its model is installed, salience otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gensep.data.track import F0Track
from gensep.errors import GensepError

F0_METHODS = ("score", "salience", "neural", "file")
VOICES = ("soprano", "alto", "tenor", "bass")


def default_f0_method() -> str:
    """ "neural" when the shipped F0 model is installed, else "salience"."""
    from gensep.f0.neural import default_f0_model_path

    return "neural" if default_f0_model_path().with_suffix(".npz").is_file() else "salience"


def estimate_f0(
    mixture: np.ndarray,
    sample_rate: int,
    method: str,
    names: Sequence[str] = VOICES,
    score: str | Path | None = None,
    model: str | Path | None = None,
) -> dict[str, F0Track]:
    """{source name: (times s, Hz, 0 = unvoiced)} for each voice of `mixture`.

    Args:
      mixture: [channels, samples] or [samples]; channels are averaged.
      sample_rate: Its rate (Hz).
      method: "score", "salience" or "neural".
      names: The voices' names from highest to lowest (salience, neural: one track each).
      score: The score file (method "score").
      model: A neural F0 model path (method "neural"; None: the shipped one).

    Raises:
      GensepError: an unknown method, "score" without a score, "file" (not estimable).
      ScoreError: a score that cannot be read, or that does not match the recording.
    """
    mono = np.asarray(mixture, np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    if method == "score":
        if score is None:
            raise GensepError("F0 method 'score' needs a score file (--score FILE)")
        from gensep.f0.align import align_score
        from gensep.f0.score import from_score

        tracks, _ = align_score(from_score(score), mono, sample_rate)
        return tracks
    if method == "salience":
        from gensep.f0.salience import salience_f0

        found = salience_f0(mono, sample_rate, n_voices=len(names))
    elif method == "neural":
        from gensep.f0.neural import neural_f0

        found = neural_f0(mono, sample_rate, model=model, n_voices=len(names))
    elif method == "file":
        raise GensepError("F0 method 'file' reads F0 files (--f0 ...): nothing to estimate")
    else:
        raise GensepError(f"unknown F0 method {method!r}; known: {', '.join(F0_METHODS)}")
    return dict(zip(names, found, strict=True))


__all__ = ["F0_METHODS", "VOICES", "default_f0_method", "estimate_f0"]
