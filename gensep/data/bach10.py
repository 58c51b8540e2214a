"""Bach10 (Duan & Pardo): four-part Bach chorales, each part recorded separately by a real
player, with per-part F0 truth.

Layout, per piece folder `NN-Name/` under the root:
  `NN-Name.flac` mixture; `NN-Name-{violin,clarinet,saxphone,bassoon}.flac` stems (mono,
  44.1 kHz, 16-bit); `NN-Name-GTF0s.mat` F0 truth (variable `GTF0s`, shape (4, frames),
  MIDI numbers, 0 = unvoiced, frame k centred at 0.023 + 0.010 k s).

Source names here are "violin", "clarinet", "saxophone", "bassoon": the files spell the
saxophone "saxphone", our names do not.

The mixture is the digital sum of the stems to within 2 LSB of 16-bit (each file was
rounded on its own), except where that sum exceeds full scale and the mixture clips. Max
|mixture - sum of stems| measured: 0.0081 on piece 01 (1 clipped sample, at 1.94 s),
0.0098 on 02 (2 samples), 6.1e-5 on 03 and 05 (none), 0.163 on 04 (42 samples).

The F0 truth's voicing was set from the mixture's loudness, so all four rows share one
voiced mask; `voicing_from_stems=True` re-derives each part's voicing from its own stem.
Measured on pieces 01-05, the 40 dB floor unvoices at most 5 frames of a part (violin;
none of the others): in these chorales the parts rest together, and the stems' room-noise
floor sits only 25-35 dB below their loudest frames.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import scipy.io

from gensep.audio import load_audio
from gensep.data.track import F0Track, Track
from gensep.errors import DatasetError

BACH10_SOURCES = ("violin", "clarinet", "saxophone", "bassoon")
_FILE_NAMES = {"violin": "violin", "clarinet": "clarinet", "saxophone": "saxphone"}
F0_START_S = 0.023  # centre of the first F0 frame (s)
F0_HOP_S = 0.010  # F0 frame hop (s)
VOICING_WINDOW_S = 0.046  # stem-energy window centred on each F0 frame (s)
VOICING_FLOOR_DB = 40.0  # a frame this far below the stem's loudest frame is unvoiced


def load_bach10(
    root: str | Path,
    pieces: Sequence[int | str] | None = None,
    sample_rate: int | None = None,
    voicing_from_stems: bool = False,
    max_seconds: float | None = None,
) -> list[Track]:
    """Read Bach10 pieces.

    Args:
      root: The folder holding the `NN-Name/` piece folders.
      pieces: Piece numbers (1, 2, ...) or folder names ("01-AchGottundHerr"); None reads
        every piece folder under `root`.
      sample_rate: Resample the audio to this rate (Hz); None keeps 44.1 kHz. F0 times are
        in seconds and do not change.
      voicing_from_stems: Set an F0 frame unvoiced (0 Hz) where its stem's mean energy in a
        46 ms window centred on the frame is more than 40 dB below the stem's loudest such
        frame (in the whole piece, before any `max_seconds` crop). Off by default: the
        dataset's own voicing follows the mixture, so a part's rests count as voiced.
      max_seconds: Keep only the first `max_seconds` s of audio and the F0 frames centred
        before the cropped end (for quick tests); None keeps whole pieces.

    Returns:
      One `Track` per piece, named after its folder: mixture and sources float32 [1, samples],
      sources in the order of `BACH10_SOURCES`; `f0` maps each source to (times_s [frames],
      hz [frames]) with 0 Hz = unvoiced.

    Raises:
      DatasetError: no root, an unknown piece, a piece lacking a file, or an F0 file without
        a (4, frames) `GTF0s` variable.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such Bach10 root — pass the folder holding 01-.../")
    if max_seconds is not None and max_seconds <= 0:
        raise ValueError(f"max_seconds {max_seconds!r} must be positive")
    return [
        _read_piece(folder, sample_rate, voicing_from_stems, max_seconds)
        for folder in _piece_folders(root, pieces)
    ]


def bach10_piece_names(root: str | Path) -> list[str]:
    """The piece folder names under a Bach10 root ("01-AchGottundHerr", ...), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"{root}: no such Bach10 root — pass the folder holding 01-.../")
    return [folder.name for folder in _piece_folders(root, None)]


def midi_to_hz(midi: np.ndarray) -> np.ndarray:
    """MIDI note numbers (float, 0 = unvoiced) -> Hz (0 stays 0), A4 = 69 = 440 Hz."""
    midi = np.asarray(midi, np.float64)
    return np.where(midi > 0, 440.0 * 2.0 ** ((midi - 69.0) / 12.0), 0.0)


def _piece_folders(root: Path, pieces: Sequence[int | str] | None) -> list[Path]:
    folders = sorted(
        p for p in root.iterdir() if p.is_dir() and p.name[:2].isdigit() and p.name[2:3] == "-"
    )
    if not folders:
        raise DatasetError(f"{root}: no Bach10 piece folders (NN-Name/) — is this the root?")
    if pieces is None:
        return folders
    chosen = []
    for piece in pieces:
        key = f"{piece:02d}-" if isinstance(piece, int) else str(piece)
        match = [f for f in folders if f.name == key or f.name.startswith(key)]
        if len(match) != 1:
            raise DatasetError(
                f"{root}: no Bach10 piece {piece!r}; there are {[f.name for f in folders]}"
            )
        chosen.append(match[0])
    return chosen


def _read_piece(
    folder: Path, sample_rate: int | None, voicing_from_stems: bool, max_seconds: float | None
) -> Track:
    name = folder.name
    paths = {"mixture": folder / f"{name}.flac"}
    for source in BACH10_SOURCES:
        paths[source] = folder / f"{name}-{_FILE_NAMES.get(source, source)}.flac"
    mat_path = folder / f"{name}-GTF0s.mat"
    missing = [p.name for p in (*paths.values(), mat_path) if not p.is_file()]
    if missing:
        raise DatasetError(f"Bach10 piece {name}: missing {', '.join(missing)} in {folder}")
    audio, rate = {}, None
    for key, path in paths.items():
        audio[key], rate = load_audio(path, sample_rate)
    midi = _read_gtf0s(mat_path)
    times = F0_START_S + F0_HOP_S * np.arange(midi.shape[1])
    f0: dict[str, F0Track] = {}
    for row, source in enumerate(BACH10_SOURCES):
        hz = midi_to_hz(midi[row])
        if voicing_from_stems:
            hz = np.where(_stem_voiced(audio[source], rate, times), hz, 0.0)
        f0[source] = (times, hz)
    if max_seconds is not None:
        n = min(audio["mixture"].shape[-1], round(max_seconds * rate))
        audio = {key: np.ascontiguousarray(x[:, :n]) for key, x in audio.items()}
        keep = times < n / rate
        f0 = {source: (t[keep], hz[keep]) for source, (t, hz) in f0.items()}
    mixture = audio.pop("mixture")
    return Track(name, rate, mixture, audio, f0)


def _read_gtf0s(path: Path) -> np.ndarray:
    """The `GTF0s` matrix: MIDI numbers [4, frames], rows in `BACH10_SOURCES` order."""
    try:
        midi = scipy.io.loadmat(str(path))["GTF0s"]
    except (OSError, ValueError, KeyError) as err:
        raise DatasetError(f"{path}: not a MATLAB file with a GTF0s variable ({err})") from err
    if midi.ndim != 2 or midi.shape[0] != len(BACH10_SOURCES) or not np.isfinite(midi).all():
        raise DatasetError(f"{path}: GTF0s has shape {midi.shape}, expected finite (4, frames)")
    return midi.astype(np.float64)


def _stem_voiced(audio: np.ndarray, rate: int, times: np.ndarray) -> np.ndarray:
    """True where the stem's mean energy in a `VOICING_WINDOW_S` window centred on each
    time (s) [frames] is within `VOICING_FLOOR_DB` of its loudest frame. Audio [channels,
    samples]; windows are clipped at the signal's ends."""
    power = np.mean(np.asarray(audio, np.float64) ** 2, axis=0)  # [samples]
    cumulative = np.concatenate([[0.0], np.cumsum(power)])
    half = round(VOICING_WINDOW_S * rate / 2)
    centre = np.round(times * rate).astype(np.int64)
    start = np.clip(centre - half, 0, power.size)
    stop = np.clip(centre + half, 0, power.size)
    energy = (cumulative[stop] - cumulative[start]) / np.maximum(stop - start, 1)
    peak = energy.max()
    if peak <= 0:
        return np.zeros(times.shape, bool)
    return energy >= peak * 10.0 ** (-VOICING_FLOOR_DB / 10.0)
