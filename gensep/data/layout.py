"""MUSDB layout on disk: `<root>/<split>/<track>/{mixture,<source>...}.wav`, with optional
F0 truth beside the stems as `<source>.f0.csv` (header `time_s,f0_hz`, 0 = unvoiced).

This module holds the writing side (used by the renderers) and the F0 file format.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gensep import atomic
from gensep.audio import save_audio
from gensep.data.track import F0Track, Track
from gensep.errors import AudioError

F0_HEADER = "time_s,f0_hz"


def write_f0_csv(path: str | Path, times: np.ndarray, hz: np.ndarray) -> Path:
    """Write an F0 track (times in s, Hz with 0 = unvoiced) as CSV, atomically."""
    times, hz = np.asarray(times, np.float64), np.asarray(hz, np.float64)
    if times.shape != hz.shape or times.ndim != 1:
        raise ValueError(f"times {times.shape} and hz {hz.shape} must be equal 1-D shapes")
    rows = "\n".join(f"{t:.4f},{f:.4f}" for t, f in zip(times, hz, strict=True))
    return atomic.write_text(path, f"{F0_HEADER}\n{rows}\n")


def read_f0_csv(path: str | Path) -> F0Track:
    """Read an F0 CSV written by `write_f0_csv` -> (times_s [n], hz [n])."""
    path = Path(path)
    try:
        with open(path) as handle:
            header = handle.readline().strip()
            data = np.loadtxt(handle, delimiter=",", ndmin=2)
    except (OSError, ValueError) as err:
        raise AudioError(f"{path}: unreadable F0 file ({err})") from err
    if header != F0_HEADER or data.shape[1:] != (2,) or data.shape[0] == 0:
        raise AudioError(f"{path}: expected a header '{F0_HEADER}' and two columns of numbers")
    if np.any(np.diff(data[:, 0]) <= 0) or not np.all(np.isfinite(data)) or data[:, 1].min() < 0:
        raise AudioError(f"{path}: times must increase and F0 values be finite and >= 0 Hz")
    return data[:, 0], data[:, 1]


def write_track(root: str | Path, split: str, track: Track, subtype: str = "PCM_16") -> Path:
    """Write a track in MUSDB layout (PCM_16 WAV by default: musdb reads WAV as 16-bit).

    Returns the track folder `<root>/<split>/<track.name>`.
    """
    folder = Path(root) / split / track.name
    for name, audio in track.sources.items():
        save_audio(folder / f"{name}.wav", audio, track.rate, subtype=subtype)
    for name, (times, hz) in (track.f0 or {}).items():
        write_f0_csv(folder / f"{name}.f0.csv", times, hz)
    # The mixture last: a folder with mixture.wav is complete.
    save_audio(folder / "mixture.wav", track.mixture, track.rate, subtype=subtype)
    return folder
