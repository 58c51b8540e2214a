"""The bundled example: a few seconds of one rendered chorale from the choir *test* split
(never a training tune), with its four stems and F0 truth, shipped as package data so
the main job and the tests run with nothing rendered beforehand.

Made by `scripts/make_example.py`; its provenance (chorale, tune, seed, soundfont) is in
`gensep/data/example/meta.json`.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from gensep.data.layout import read_track
from gensep.data.track import Track
from gensep.errors import DatasetError

EXAMPLE_SOURCES = ("soprano", "alto", "tenor", "bass")


def example_folder() -> Path:
    """Folder of the bundled example (mixture.wav, <voice>.wav, <voice>.f0.csv, meta.json)."""
    folder = Path(str(resources.files("gensep.data") / "example"))
    if not (folder / "mixture.wav").is_file():
        raise DatasetError(
            f"{folder}: the bundled example is missing — reinstall gensep or run "
            "scripts/make_example.py"
        )
    return folder


def example(sample_rate: int | None = None) -> Track:
    """The bundled four-voice chorale excerpt as a `Track` (16 kHz mono unless resampled)."""
    return read_track(example_folder(), sources=EXAMPLE_SOURCES, sample_rate=sample_rate)


def example_meta() -> dict:
    """Provenance of the bundled example (chorale, split, seed, renderer settings)."""
    return json.loads((example_folder() / "meta.json").read_text())
