"""MUSDB18 (STEMS, `.stem.mp4`) and MUSDB18-HQ (WAV folders) through the `musdb` package.

Splits, in our terms, and what they are in musdb's:

  split="test"   the 50 test tracks          musdb subsets="test"
  split="train"  86 training tracks          musdb subsets="train", split="train"
  split="valid"  14 validation tracks        musdb subsets="train", split="valid"
  split=None     all tracks of `subsets`     musdb subsets=subsets (None: train and test)

The validation tracks are musdb's own list (`validation_tracks` in its mus.yaml), the one
open-unmix and most papers use. `musdb` decodes STEMS with ffmpeg (and imports only when
ffmpeg is on PATH), so it is imported inside the functions here.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soxr

from gensep.data.track import Track
from gensep.errors import DatasetError

MUSDB_SOURCES = ("vocals", "drums", "bass", "other")
_SPLITS = {"test": ("test", None), "train": ("train", "train"), "valid": ("train", "valid")}


def iter_musdb(
    root: str | Path,
    split: str | None = "test",
    subsets: str | Sequence[str] | None = None,
    is_wav: bool = False,
    sources: Sequence[str] = MUSDB_SOURCES,
    sample_rate: int | None = None,
) -> Iterator[Track]:
    """Yield MUSDB18 tracks one at a time (a full track is ~4 min of 5 stereo stems: about
    0.4 GB in float32, so iterate rather than load the test set at once).

    The root, split and track list are checked now; audio is decoded as tracks are drawn.

    Args:
      root: The folder holding `train/` and `test/` (STEMS: `<split>/<Name>.stem.mp4`;
        HQ with `is_wav=True`: `<split>/<Name>/{mixture,vocals,drums,bass,other}.wav`).
      split: "test", "train" or "valid" (see the module docstring), or None to use `subsets`.
      subsets: musdb's own subset selection ("train", "test" or both), only with split=None;
        None there means both.
      is_wav: Read MUSDB18-HQ style WAV folders instead of `.stem.mp4` files.
      sources: Stems to read, in this order; any of "vocals", "drums", "bass", "other".
      sample_rate: Resample (soxr, very high quality) to this rate (Hz); None keeps 44.1 kHz.

    Yields:
      `Track`s named like the musdb tracks ("Artist - Title"): mixture and sources float32
      [channels, samples], f0 None.

    Raises:
      DatasetError: no root, a missing subset folder, no tracks, an unknown source, a track
        lacking a stem, or `musdb` failing to import because ffmpeg is missing.
      ValueError: an unknown split, or both `split` and `subsets` given.
    """
    unknown = [name for name in sources if name not in MUSDB_SOURCES]
    if unknown or len(set(sources)) != len(sources):
        raise DatasetError(
            f"sources {list(sources)}: each must be one of {list(MUSDB_SOURCES)}, no repeats"
        )
    if sample_rate is not None and (int(sample_rate) != sample_rate or sample_rate <= 0):
        raise ValueError(f"sample_rate {sample_rate!r} must be a positive integer")
    db = _open_db(Path(root), split, subsets, is_wav)
    return (_read(db, track, sources, sample_rate) for track in db.tracks)


def load_musdb(
    root: str | Path,
    split: str | None = "test",
    subsets: str | Sequence[str] | None = None,
    is_wav: bool = False,
    sources: Sequence[str] = MUSDB_SOURCES,
    sample_rate: int | None = None,
) -> list[Track]:
    """Read MUSDB18 tracks into memory; arguments and errors as for `iter_musdb`.

    Mind the memory: the 50 test tracks take about 20 GB as float32; prefer `iter_musdb`.
    """
    return list(iter_musdb(root, split, subsets, is_wav, sources, sample_rate))


def musdb_track_names(
    root: str | Path, split: str | None = "test", is_wav: bool = False
) -> list[str]:
    """The names of the tracks of a MUSDB18 split, without decoding any audio.

    Arguments and errors as for `iter_musdb`.
    """
    return [track.name for track in _open_db(Path(root), split, None, is_wav).tracks]


def read_musdb_track(
    root: str | Path,
    name: str,
    split: str | None = "test",
    is_wav: bool = False,
    sources: Sequence[str] = MUSDB_SOURCES,
    sample_rate: int | None = None,
) -> Track:
    """Decode the one MUSDB18 track called `name` (for workers that each take one track).

    Raises:
      DatasetError: as `iter_musdb`, or no track of that name in the split.
    """
    db = _open_db(Path(root), split, None, is_wav)
    for track in db.tracks:
        if track.name == name:
            return _read(db, track, sources, sample_rate)
    raise DatasetError(f"{root}: no MUSDB track named {name!r} in split {split!r}")


def _open_db(root: Path, split: str | None, subsets: Any, is_wav: bool) -> Any:
    """Check the root and the subset folders, then build `musdb.DB` and check it has tracks."""
    if split is not None:
        if split not in _SPLITS:
            raise ValueError(f"split {split!r}: use one of {[*_SPLITS, None]}")
        if subsets is not None:
            raise ValueError("pass either split (ours) or subsets (musdb's), not both")
        subsets, musdb_split = _SPLITS[split]
    else:
        musdb_split = None
    names = [subsets] if isinstance(subsets, str) else list(subsets or ("train", "test"))
    if not root.is_dir():
        raise DatasetError(
            f"{root}: no such dataset root — pass --musdb-root / the folder holding train/ "
            "and test/"
        )
    for name in names:
        if not (root / name).is_dir():
            present = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name[0] != ".")
            raise DatasetError(
                f"{root / name}: no {name}/ folder in the MUSDB root {root}; it has "
                f"{present or 'no folders'}"
            )
    musdb = _import_musdb()
    db = musdb.DB(root=str(root), is_wav=is_wav, subsets=names, split=musdb_split)
    if not db.tracks:
        kind, other = (
            ("track folders", "for .stem.mp4 files pass is_wav=False")
            if is_wav
            else (".stem.mp4 files", "for MUSDB18-HQ WAV folders pass is_wav=True")
        )
        where = ", ".join(str(root / name) for name in names)
        raise DatasetError(f"{where}: no {kind} for split {split!r} — {other}")
    return db


def _import_musdb() -> Any:
    try:
        import musdb
    except RuntimeError as err:  # stempeg raises on import when ffmpeg/ffprobe are missing
        raise DatasetError(
            f"cannot import musdb ({err}) — install Debian's ffmpeg "
            "(sudo apt-get install ffmpeg; scripts/setup.sh does)"
        ) from err
    return musdb


def _read(db: Any, track: Any, sources: Sequence[str], sample_rate: int | None) -> Track:
    """Decode one musdb track into a `Track` ([samples, channels] float64 -> float32
    [channels, samples])."""
    missing = [name for name in sources if name not in track.sources]
    if missing:
        raise DatasetError(
            f"MUSDB track {track.name}: no {', '.join(f'{m}.wav' for m in missing)} "
            f"in {Path(track.path).parent} — the HQ (WAV) layout needs all four stems"
        )
    if track.is_wav:
        audio = {"mixture": track.audio, **{name: track.sources[name].audio for name in sources}}
    else:
        streams = track.info.nb_audio_streams if track.info is not None else 0
        if streams < 5:
            raise DatasetError(
                f"{track.path}: {streams} audio streams, a MUSDB18 stem file has 5 "
                "(mixture, drums, bass, other, vocals)"
            )
        stems = track.stems  # [5, samples, channels], in musdb's stem_ids order
        ids = db.setup["stem_ids"]
        audio = {name: stems[ids[name]] for name in ("mixture", *sources)}
    rate = int(track.rate)
    out = {}
    for name, data in audio.items():
        if sample_rate is not None and sample_rate != rate:
            data = soxr.resample(data, rate, int(sample_rate), quality="VHQ")
        out[name] = np.ascontiguousarray(np.asarray(data).T, dtype=np.float32)
    mixture = out.pop("mixture")
    return Track(track.name, int(sample_rate or rate), mixture, out)
