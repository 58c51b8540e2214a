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
