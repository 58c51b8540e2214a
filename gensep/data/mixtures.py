"""Mixture-only training data with per-source F0: what an unsupervised model (UMSS) sees.

`load_mixtures` reads the mixture and the F0 files of each track and nothing else: the
stems are never opened, so a model trained from these tracks cannot have seen them.
`MixtureF0Batches` wraps an `ExcerptSampler` in mixture mode and adds each excerpt's F0 on
the model's frame grid (frame k centred at sample k * hop of the excerpt, as
`gensep.dsp.stft` with center=True).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gensep.data.layout import list_tracks, read_f0_csv, read_track
from gensep.data.sampler import ExcerptSampler
from gensep.data.track import Track, f0_on_frames
from gensep.errors import DatasetError


def load_mixtures(
    root: str | Path,
    split: str,
    sources: Sequence[str],
    sample_rate: int | None = None,
    max_tracks: int | None = None,
) -> list[Track]:
    """The mixtures of `<root>/<split>` with the F0 of each named source, without stems.

    Args:
      root, split: A MUSDB-layout dataset with `<source>.f0.csv` beside the stems.
      sources: Source names whose F0 to read, in the model's source order.
      sample_rate: Resample the mixtures to this rate (Hz); F0 times are in seconds.
      max_tracks: Only the first this many tracks (sorted by name).

    Returns:
      Tracks with `sources == {}` and `f0 = {source: (times, hz)}`.

    Raises:
      DatasetError: a track without the F0 file of a source.
    """
    tracks = []
    for folder in list_tracks(root, split)[:max_tracks]:
        track = read_track(folder, sources=(), sample_rate=sample_rate)
        f0 = {}
        for source in sources:
            path = folder / f"{source}.f0.csv"
            if not path.is_file():
                raise DatasetError(
                    f"track {folder.name}: no {path.name} — unsupervised training needs the F0 "
                    "of every source (rendered sets write it; else estimate it first)"
                )
            f0[source] = read_f0_csv(path)
        tracks.append(Track(track.name, track.rate, track.mixture, {}, f0))
    return tracks


def excerpt_f0(
    track: Track, sources: Sequence[str], start: int, n_frames: int, hop: int
) -> np.ndarray:
    """F0 (Hz, 0 = unvoiced) of `sources` on the frames of an excerpt: float32 [S, n_frames]."""
    frame_times = (start + hop * np.arange(n_frames)) / track.rate
    return np.stack([f0_on_frames(*track.f0[source], frame_times) for source in sources]).astype(
        np.float32
    )


class MixtureF0Batches:
    """Batches {"mixture": float32 [b, N], "f0": float32 [b, S, 1 + N // hop]} of mono
    mixture excerpts with their sources' F0; resumable through `state_dict`.

    Args:
      tracks: From `load_mixtures` (no stems: checked).
      sources: Source order of the F0 rows.
      hop: The model's frame hop (samples).
      excerpt_samples, batch_size, seed, silence_db, num_shards, shard_index: as
        `ExcerptSampler` (mixture mode, mono).
    """

    def __init__(
        self,
        tracks: Sequence[Track],
        sources: Sequence[str],
        hop: int,
        excerpt_samples: int,
        batch_size: int,
        seed: int = 0,
        silence_db: float = -50.0,
        num_shards: int = 1,
        shard_index: int = 0,
    ) -> None:
        stems = [t.name for t in tracks if t.sources]
        if stems:
            raise DatasetError(
                f"tracks {stems[:3]} carry isolated stems: unsupervised training must see "
                "mixtures only — load them with gensep.data.mixtures.load_mixtures"
            )
        self.tracks, self.sources, self.hop = list(tracks), tuple(sources), hop
        self.n_frames = 1 + excerpt_samples // hop
        self.sampler = ExcerptSampler(
            self.tracks,
            excerpt_samples,
            batch_size,
            mode="mixture",
            seed=seed,
            silence_db=silence_db,
            mono=True,
            num_shards=num_shards,
            shard_index=shard_index,
        )

    def __iter__(self) -> MixtureF0Batches:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = self.sampler.next_batch()
        f0 = np.stack(
            [
                excerpt_f0(self.tracks[i], self.sources, int(s), self.n_frames, self.hop)
                for i, s in zip(batch["track_index"], batch["start"], strict=True)
            ]
        )
        return {"mixture": batch["mixture"][:, 0], "f0": f0}

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)
