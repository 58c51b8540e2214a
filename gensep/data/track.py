"""The one view of a multi-source recording that every dataset reader returns."""

from __future__ import annotations

import dataclasses

import numpy as np

from gensep.errors import AudioError

F0Track = tuple[np.ndarray, np.ndarray]  # (times in s [n], f0 in Hz [n], 0 = unvoiced)


@dataclasses.dataclass
class Track:
    """A mixture with its sources (and, where known, per-source F0 truth).

    Attributes:
      name: Track name (folder name in MUSDB layout).
      rate: Sample rate (Hz) of the mixture and sources.
      mixture: float32 [channels, samples].
      sources: {source name: float32 [channels, samples]}, same shape as the mixture.
      f0: {source name: (times_s [n], hz [n])}, 0 Hz = unvoiced; None if unknown.
    """

    name: str
    rate: int
    mixture: np.ndarray
    sources: dict[str, np.ndarray]
    f0: dict[str, F0Track] | None = None

    def __post_init__(self) -> None:
        for source, audio in self.sources.items():
            if audio.shape != self.mixture.shape:
                raise AudioError(
                    f"track {self.name}: source {source!r} has shape {audio.shape}, "
                    f"the mixture {self.mixture.shape}"
                )

    @property
    def source_names(self) -> list[str]:
        return list(self.sources)

    @property
    def seconds(self) -> float:
        return self.mixture.shape[-1] / self.rate


def f0_on_frames(times: np.ndarray, hz: np.ndarray, frame_times: np.ndarray) -> np.ndarray:
    """NumPy twin of `gensep.dsp.f0_to_frames` (no JAX recompiling for each track length).

    Log-frequency interpolation between voiced neighbours, the nearer sample next to an
    unvoiced one, and 0 Hz more than half a step before the first or after the last sample.

    Args:
      times: Strictly increasing sample times (s). Shape [n].
      hz: F0 (Hz), 0 = unvoiced. Shape [n].
      frame_times: Target times (s). Shape [m].

    Returns:
      float64 F0 (Hz) at `frame_times`. Shape [m].
    """
    times, hz = np.asarray(times, np.float64), np.asarray(hz, np.float64)
    n = times.shape[0]
    if n == 1:
        return np.full(frame_times.shape, hz[0])
    right = np.clip(np.searchsorted(times, frame_times, side="right"), 1, n - 1)
    left = right - 1
    frac = np.clip((frame_times - times[left]) / (times[right] - times[left]), 0.0, 1.0)
    f_left, f_right = hz[left], hz[right]
    log_left = np.log2(np.where(f_left > 0, f_left, 1.0))
    log_right = np.log2(np.where(f_right > 0, f_right, 1.0))
    smooth = np.exp2(log_left + frac * (log_right - log_left))
    out = np.where((f_left > 0) & (f_right > 0), smooth, np.where(frac < 0.5, f_left, f_right))
    first, last = times[1] - times[0], times[-1] - times[-2]
    inside = (frame_times >= times[0] - first / 2) & (frame_times <= times[-1] + last / 2)
    return np.where(inside, out, 0.0)
