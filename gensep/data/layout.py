"""MUSDB layout on disk: `<root>/<split>/<track>/{mixture,<source>...}.wav`, with optional
F0 truth beside the stems as `<source>.f0.csv` (header `time_s,f0_hz`, 0 = unvoiced).

This module holds the writing side (used by the renderers), the F0 file format, and the
reading side (`read_track`, `list_tracks`, `load_tracks`). Reading is strict: a missing
root, split, mixture or requested stem raises `DatasetError` naming the file and the fix,
never a silently partial dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from gensep import atomic
from gensep.audio import load_audio, save_audio
from gensep.data.track import F0Track, Track
from gensep.errors import AudioError, DatasetError

F0_HEADER = "time_s,f0_hz"
MIXTURE = "mixture"


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


def write_musdb_setup(root: str | Path, sources: Sequence[str], sample_rate: int) -> Path:
    """Write `<root>/musdb.yaml`, the setup file that lets the musdb package read a dataset
    whose stems are not MUSDB18's four: `musdb.DB(root, is_wav=True, setup_file="musdb.yaml")`
    then gives every source, each as a target, and their sum as `linear_mixture`."""
    import yaml

    setup = {
        "sample_rate": float(sample_rate),
        "sources": {name: f"{name}.wav" for name in sources},
        "mixture": f"{MIXTURE}.wav",
        "stem_ids": {MIXTURE: 0, **{name: i + 1 for i, name in enumerate(sources)}},
        "targets": {
            **{name: {name: 1} for name in sources},
            "linear_mixture": {name: 1 for name in sources},
        },
        "validation_tracks": [],
    }
    return atomic.write_text(Path(root) / "musdb.yaml", yaml.safe_dump(setup, sort_keys=False))


def read_track(
    folder: str | Path, sources: Sequence[str] | None = None, sample_rate: int | None = None
) -> Track:
    """Read one track folder in MUSDB layout.

    Args:
      folder: `<root>/<split>/<track>` holding `mixture.wav` and one `<source>.wav` per source,
        optionally with `<source>.f0.csv` F0 truth beside them.
      sources: Source names to read, in this order; None reads every `*.wav` but the mixture
        (sorted by name); `()` reads the mixture alone.
      sample_rate: Resample everything to this rate (Hz); None keeps the files' rate, which
        must then be the same for all files.

    Returns:
      A `Track` named after the folder: mixture and sources float32 [channels, samples] of one
      shape; `f0` maps each selected source with an F0 file to (times_s [n], hz [n]), and is
      None when no selected source has one.

    Raises:
      DatasetError: no such folder, no mixture.wav, a requested stem missing, no stems at all
        (with `sources=None`), or files whose rates/shapes differ from the mixture's.
      AudioError: an unreadable audio or F0 file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such track folder")
    mixture_path = folder / f"{MIXTURE}.wav"
    if not mixture_path.is_file():
        raise DatasetError(
            f"track {folder.name}: no {mixture_path.name} in {folder} — an interrupted render? "
            "re-render the track or delete the folder"
        )
    if sources is None:
        names = [p.stem for p in _stem_files(folder)]
        if not names:
            raise DatasetError(
                f"track {folder.name}: no source stems (<source>.wav) beside mixture.wav in "
                f"{folder} — pass sources=() to read the mixture alone"
            )
    else:
        names = list(sources)
        if len(set(names)) != len(names) or MIXTURE in names:
            raise DatasetError(f"sources {names}: names must be distinct and not {MIXTURE!r}")
        missing = [f"{name}.wav" for name in names if not (folder / f"{name}.wav").is_file()]
        if missing:
            present = [p.stem for p in _stem_files(folder)]
            raise DatasetError(
                f"track {folder.name}: missing {', '.join(missing)} in {folder} "
                f"(it has stems {present})"
            )
    mixture, rate = load_audio(mixture_path, sample_rate)
    audio = {}
    for name in names:
        path = folder / f"{name}.wav"
        audio[name], source_rate = load_audio(path, sample_rate)
        if source_rate != rate or audio[name].shape != mixture.shape:
            raise DatasetError(
                f"track {folder.name}: {path.name} is {audio[name].shape} at {source_rate} Hz, "
                f"the mixture {mixture.shape} at {rate} Hz — stems must match the mixture"
            )
    f0 = {
        name: read_f0_csv(folder / f"{name}.f0.csv")
        for name in names
        if (folder / f"{name}.f0.csv").is_file()
    }
    return Track(folder.name, rate, mixture, audio, f0 or None)


def list_tracks(root: str | Path, split: str) -> list[Path]:
    """The track folders of `<root>/<split>`, sorted by name.

    Hidden folders and folders without any audio are skipped; a folder with stems but no
    mixture.wav (an interrupted write) raises rather than being dropped silently.

    Raises:
      DatasetError: no root, no such split (the message lists the splits there are), a
        track folder without mixture.wav, or no tracks at all.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(
            f"{root}: no such dataset root — pass --musdb-root / the folder holding train/ "
            "and test/"
        )
    split_dir = root / split
    if not split_dir.is_dir():
        splits = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[0] != ".")
        raise DatasetError(
            f"{split_dir}: no split {split!r} in {root}; it has {splits or 'no folders'}"
        )
    tracks = []
    for folder in sorted(p for p in split_dir.iterdir() if p.is_dir() and p.name[0] != "."):
        if (folder / f"{MIXTURE}.wav").is_file():
            tracks.append(folder)
        elif _stem_files(folder):
            raise DatasetError(
                f"track {folder.name}: stems but no {MIXTURE}.wav in {folder} — an interrupted "
                "render? re-render the track or delete the folder"
            )
    if not tracks:
        raise DatasetError(
            f"{split_dir}: no tracks (folders holding {MIXTURE}.wav) — is this the right root? "
            "MUSDB18 STEMS (.stem.mp4) files are read by gensep.data.load_musdb"
        )
    return tracks


def load_tracks(
    root: str | Path,
    split: str,
    sources: Sequence[str] | None = None,
    sample_rate: int | None = None,
) -> list[Track]:
    """Read every track of `<root>/<split>` (see `read_track` for the arguments).

    With `sources=None` every track must hold the same set of stems; otherwise the message
    names the track that differs (pass `sources` to select a common subset).
    """
    tracks = [read_track(folder, sources, sample_rate) for folder in list_tracks(root, split)]
    if sources is None:
        first = tracks[0]
        for track in tracks[1:]:
            if set(track.sources) != set(first.sources):
                raise DatasetError(
                    f"{Path(root) / split}: track {track.name} has stems "
                    f"{sorted(track.sources)}, track {first.name} {sorted(first.sources)} — "
                    "pass sources=[...] to read a common subset"
                )
    return tracks


def _stem_files(folder: Path) -> list[Path]:
    """The source WAV files of a track folder (not the mixture, not hidden temporaries)."""
    return sorted(
        p
        for p in folder.glob("*.wav")
        if p.is_file() and p.stem != MIXTURE and not p.name.startswith(".")
    )


def sum_error(folder: str | Path, sources: Sequence[str]) -> float:
    """max |sum of the stem files - mixture.wav| of a written PCM_16 track (read back as
    16-bit integers, so 0.0 means exactly equal on disk), in full-scale units."""
    folder = Path(folder)
    mixture = sf.read(str(folder / "mixture.wav"), dtype="int16", always_2d=True)[0]
    stems = [sf.read(str(folder / f"{s}.wav"), dtype="int16", always_2d=True)[0] for s in sources]
    if any(stem.shape != mixture.shape for stem in stems):
        raise DatasetError(f"{folder}: stems and mixture differ in shape; re-render the track")
    total = np.sum([stem.astype(np.int64) for stem in stems], axis=0)
    return float(np.abs(total - mixture.astype(np.int64)).max()) / 32768
