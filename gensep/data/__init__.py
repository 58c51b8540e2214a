"""Datasets: MUSDB18 / MUSDB-layout folders, Bach10, rendered choir and band sets, the
bundled example, and batch samplers. Everything returns `Track` views."""

from gensep.data.track import F0Track, Track

__all__ = ["F0Track", "Track"]
