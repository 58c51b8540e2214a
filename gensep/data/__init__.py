"""Datasets: MUSDB18 / MUSDB-layout folders, Bach10, rendered choir and band sets, the
bundled example, and batch samplers. Everything returns `Track` views."""

from gensep.data.bach10 import load_bach10
from gensep.data.layout import load_tracks, read_track
from gensep.data.musdb import load_musdb
from gensep.data.sampler import ExcerptSampler
from gensep.data.track import F0Track, Track

__all__ = [
    "ExcerptSampler",
    "F0Track",
    "Track",
    "load_bach10",
    "load_musdb",
    "load_tracks",
    "read_track",
]
