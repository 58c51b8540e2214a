"""REPET-SIM (Rafii & Pardo, ISMIR 2012): the repeating background from similar frames.

The accompaniment of most songs repeats, the voice less so. For every frame of the
magnitude spectrogram V, REPET-SIM finds the frames most similar to it (cosine similarity),
and the element-wise median of those frames models the repeating background W there: a
voice present in only a few of the similar frames is voted out by the median. With
W <- min(W, V), the accompaniment's soft mask is W / V and the vocals' 1 - W / V, so the two
estimates sum to the mixture. The masks are computed on the mid signal and applied to every
channel. Below `cutoff_hz` everything goes to the accompaniment (the REPET code's
high-pass on the foreground: little voice energy lives there, bass and kick do).

Parameters follow the REPET-SIM defaults (also nussl's): up to 100 similar frames, at least
1 s apart, similarity threshold 0 (cosine similarity of magnitudes is never negative), and
an STFT window of the next power of two above 40 ms (1024 at 16 kHz, 2048 at 44.1 kHz)
with half-window hop. One deviation: the paper picks similarity peaks at least 1 s apart
from each other; `librosa.segment.recurrence_matrix` instead excludes the frames within
1 s of the frame itself and keeps its k nearest neighbours beyond that. Both keep the
neighbouring frames, which share the voice's current note, out of the median.
"""

from __future__ import annotations

import math

import librosa
import numpy as np

from gensep.errors import GensepError
from gensep.separation.common import apply_masks, mid, stft

STEMS = ("vocals", "accompaniment")


def separate(
    mixture: np.ndarray,
    sample_rate: int,
    *,
    max_repeats: int = 100,
    min_distance_s: float = 1.0,
    cutoff_hz: float = 100.0,
    n_fft: int | None = None,
    hop: int | None = None,
) -> dict[str, np.ndarray]:
    """Split the mixture into a non-repeating foreground (vocals) and repeating background.

    Args:
      mixture: float32 [channels, samples].
      sample_rate: Hz; sets the STFT (module docstring).
      max_repeats: k, the most similar frames (s) whose median models each frame.
      min_distance_s: Frames closer than this (s) to the frame are never its neighbours.
        Clipped on short inputs so that some neighbours remain.
      cutoff_hz: Bins below this (Hz) go to the accompaniment; 0 turns it off.
      n_fft, hop: STFT size and hop (samples) instead of the 40 ms default; hop defaults to
        n_fft // 2 as in the paper.

    Returns:
      {"vocals", "accompaniment"}: float32 [channels, samples] each, summing to the mixture
      up to STFT reconstruction error. An input of fewer than 5 frames has no repetition to
      find: all of it is accompaniment.
    """
    if isinstance(max_repeats, bool) or not isinstance(max_repeats, int) or max_repeats < 1:
        raise GensepError(f"repet: max_repeats={max_repeats!r} must be an integer >= 1")
    if not min_distance_s >= 0 or not cutoff_hz >= 0:
        raise GensepError(
            f"repet: min_distance_s={min_distance_s!r} and cutoff_hz={cutoff_hz!r} must be >= 0"
        )
    n_fft = n_fft or 2 ** math.ceil(math.log2(0.04 * sample_rate))
    hop = hop or n_fft // 2
    mag = np.abs(stft(mid(mixture), n_fft, hop))  # [frames, bins]
    width = max(1, round(min_distance_s * sample_rate / hop))
    background = np.minimum(_repeating_model(mag, max_repeats, width), mag)
    # Where V is 0 the mixture has nothing to split; give it to the background (mask 1).
    accompaniment = np.where(mag > 0, background / np.where(mag > 0, mag, 1.0), 1.0)
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    accompaniment[:, freqs < cutoff_hz] = 1.0
    masks = np.stack([1.0 - accompaniment, accompaniment])  # [2, frames, bins]
    return apply_masks(mixture, masks, STEMS, n_fft, hop)


def _repeating_model(mag: np.ndarray, k: int, width: int) -> np.ndarray:
    """Median of each frame's k most similar frames at least `width` frames away, and itself.

    The frame itself takes part as in REPET-SIM, where it tops its own similarity row; among
    100 neighbours that one vote barely counts.

    Args:
      mag: Magnitude spectrogram, [frames, bins].
      k: Neighbours per frame.
      width: Minimum distance (frames) between a frame and its neighbours.

    Returns:
      The repeating model, [frames, bins]; a frame without neighbours models itself.
    """
    frames = mag.shape[0]
    # recurrence_matrix needs width < (frames - 1) // 2; a short input gets a shorter width.
    width = min(width, (frames - 1) // 2 - 1)
    if width < 1 or not np.any(mag):
        return mag
    rec = librosa.segment.recurrence_matrix(
        mag.T, k=k, width=width, metric="cosine", sparse=True, self=True
    )
    return librosa.decompose.nn_filter(mag.T, rec=rec, aggregate=np.median).T
