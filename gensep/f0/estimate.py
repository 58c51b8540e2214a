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
method that separated best through the harness (`configs/eval_{choir,bach10}.yaml`), today
"neural" with its default model (gensep/models/weights/f0_choir_rendered): UMSS SI-SDR
9.36 dB on the rendered choir test split (optimistic: trained on chorales from the same
renderer) against 6.31 with salience F0s and 6.08 with the label-free network, and on
real Bach10 4.35 against 3.68 and -0.34 (true F0s: 11.30 and 6.76).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gensep.data.track import F0Track
from gensep.errors import GensepError

F0_METHODS = ("score", "salience", "neural", "file")
DEFAULT_METHOD = "neural"  # measured best for separation (module docstring)
VOICES = ("soprano", "alto", "tenor", "bass")


def default_f0_method() -> str:
    """The F0 method of a blind separation when the user names none (`DEFAULT_METHOD`)."""
    return DEFAULT_METHOD


def estimate_f0(
    mixture: np.ndarray,
    sample_rate: int,
    method: str,
    names: Sequence[str] | None = None,
    score: str | Path | None = None,
    model: str | Path | None = None,
) -> dict[str, F0Track]:
    """{source name: (times s, Hz, 0 = unvoiced)} for each voice of `mixture`.

    Args:
      mixture: [channels, samples] or [samples]; channels are averaged.
      sample_rate: Its rate (Hz).
      method: "score", "salience" or "neural".
      names: The voices' names from highest to lowest: one track each (None: soprano, alto,
        tenor, bass; names that are all voice names are put in that order whatever order
        they come in, and the tracks are returned in the order given). With "score",
        None keeps the score's part names; given names rename the parts from the highest
        mean pitch down (as many names as parts).
      score: The score file (method "score").
      model: A neural F0 model path (method "neural"; None: `default_f0_model_path()`).

    Raises:
      GensepError: an unknown method, "score" without a score, "file" (not estimable), or
        names that do not match the score's part count.
      ScoreError: a score that cannot be read, or that does not match the recording.
    """
    mono = np.asarray(mixture, np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    given = list(VOICES if names is None else names)
    # Voice names say their order whatever order they come in (a dataset's may be
    # alphabetical): soprano, alto, tenor, bass from the top; other names as given.
    ordered = sorted(given, key=VOICES.index) if set(given) <= set(VOICES) else given
    if method == "score":
        if score is None:
            raise GensepError("F0 method 'score' needs a score file (--score FILE)")
        from gensep.f0.align import align_score
        from gensep.f0.score import from_score

        tracks, _ = align_score(from_score(score), mono, sample_rate)
        if names is None:
            return tracks
        tracks = _renamed(tracks, ordered, score)
    elif method in ("salience", "neural"):
        if method == "salience":
            from gensep.f0.salience import salience_f0

            found = salience_f0(mono, sample_rate, n_voices=len(ordered))
        else:
            from gensep.f0.neural import neural_f0

            found = neural_f0(mono, sample_rate, model=model, n_voices=len(ordered))
        tracks = dict(zip(ordered, found, strict=True))
    elif method == "file":
        raise GensepError("F0 method 'file' reads F0 files (--f0 ...): nothing to estimate")
    else:
        raise GensepError(f"unknown F0 method {method!r}; known: {', '.join(F0_METHODS)}")
    return {name: tracks[name] for name in given}


def _renamed(tracks: dict[str, F0Track], names: list[str], score: str | Path) -> dict[str, F0Track]:
    """The score's parts renamed `names[0], names[1], ...` from the highest mean pitch down."""
    if len(names) != len(tracks):
        raise GensepError(
            f"{score}: {len(tracks)} parts ({', '.join(tracks)}) but {len(names)} sources "
            f"asked for ({', '.join(names)})"
        )

    def mean_log_pitch(track: F0Track) -> float:
        hz = track[1][track[1] > 0]
        return float(np.mean(np.log2(hz))) if hz.size else -np.inf

    order = sorted(tracks, key=lambda part: -mean_log_pitch(tracks[part]))
    return {name: tracks[part] for name, part in zip(names, order, strict=True)}


__all__ = ["F0_METHODS", "VOICES", "default_f0_method", "estimate_f0"]
