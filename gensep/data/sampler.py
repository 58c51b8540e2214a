"""Fixed-length random excerpts of in-memory tracks, batched for training.

Three modes, each reading only what its training regime may see:

- ``"mixture"`` (unsupervised, UMSS): mixture excerpts only; isolated stems are never read.
  The batch carries ``track_index`` and ``start`` so a model can fetch the excerpt's F0
  itself: ``gensep.dsp.f0_to_frames(times, hz, start / rate + frame_times)`` with
  ``times, hz = tracks[track_index].f0[source]``.
- ``"source"`` (flow priors): excerpts of one source only.
- ``"remix"`` (supervised baselines): every source excerpt from its own random track and
  position, scaled by a random gain; the mixture is the sum of the scaled sources.

Sampling: a track is drawn with probability proportional to its number of excerpt
positions, then a uniform start; an excerpt whose RMS (after any mono downmix) is below
``silence_db`` dBFS is redrawn, track and start, so accepted excerpts are uniform over the
non-silent excerpt positions of the set. In remix mode each source is drawn so
independently.

Reproducibility and sharding: one numpy Generator, seeded once, draws ``batch_size`` item
seeds per batch; item ``i`` of the global batch is drawn by its own Generator from seed
``i`` (including its redraws). A shard (``num_shards`` hosts, ``shard_index`` this one)
draws the same seeds and builds only rows ``[shard_index * b, (shard_index + 1) * b)``,
``b = batch_size // num_shards``, so the shards' batches concatenated along axis 0 equal
the unsharded global batch. The state (seed stream + batch count) is the same on every
shard, so a run may resume on a different number of hosts with the same ``batch_size``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from gensep.data.track import Track
from gensep.errors import AudioError, DatasetError

MODES = ("mixture", "source", "remix")
_STATE_VERSION = 1


class _Pool:
    """The tracks one stream (the mixture or one source) is drawn from."""

    def __init__(self, name: str, arrays: list[np.ndarray], ids: list[int], n: int) -> None:
        self.name = name
        self.arrays = arrays  # float32 [channels, samples] each
        self.ids = np.asarray(ids, np.int32)  # index into the caller's track list
        positions = np.asarray([a.shape[-1] - n + 1 for a in arrays], np.float64)
        self.cdf = np.cumsum(positions) / positions.sum()


class ExcerptSampler:
    """Infinite, seeded, resumable batches of random excerpts; see the module docstring.

    Args:
      tracks: Tracks with one sample rate and channel count. Tracks shorter than an excerpt
        are left out (with a warning); a stream whose peak is below `silence_db` is left
        out of that stream's pool (e.g. the silent vocals of an instrumental).
      excerpt_samples: Excerpt length N (samples at the tracks' rate).
      batch_size: Global batch size B; each shard yields B // num_shards rows.
      mode: "mixture", "source" or "remix".
      seed: Seed of the whole batch sequence.
      sources: Remix mode: source names, in output order (default: the first track's).
      source: Source mode: the one source to excerpt.
      silence_db: Excerpts with RMS below this (dBFS) are redrawn; -inf disables.
      max_tries: Draws per excerpt before giving up with a DatasetError.
      remix_gain_db: Remix mode: (low, high) of the uniform per-source gain (dB).
      mono: Downmix to one channel (mean of channels) before the silence test.
      allow_silent_prob: Remix mode: probability that a source excerpt skips the silence
        test (real songs have rests); 0 = every source excerpt is non-silent.
      num_shards: Number of hosts sharing each global batch.
      shard_index: This host's shard, 0 <= shard_index < num_shards.

    Batches (dicts of C-contiguous numpy arrays, b = local batch, C = 1 if mono):
      mixture: {"mixture": float32 [b, C, N], "track_index": int32 [b], "start": int64 [b]}
      source: {"source": float32 [b, C, N], "track_index": int32 [b], "start": int64 [b]}
      remix: {"mixture": float32 [b, C, N], "sources": float32 [b, S, C, N],
        "track_index": int32 [b, S], "start": int64 [b, S], "gain_db": float32 [b, S]}
      `start` is in samples; the excerpt is `track.<stream>[:, start:start + N]`.
    """

    def __init__(
        self,
        tracks: Sequence[Track],
        excerpt_samples: int,
        batch_size: int,
        mode: str,
        seed: int,
        sources: Sequence[str] | None = None,
        source: str | None = None,
        silence_db: float = -60.0,
        max_tries: int = 50,
        remix_gain_db: tuple[float, float] = (-6.0, 3.0),
        mono: bool = False,
        allow_silent_prob: float = 0.0,
        num_shards: int = 1,
        shard_index: int = 0,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode {mode!r}: use one of {MODES}")
        if (source is not None) != (mode == "source"):
            raise ValueError(f"mode {mode!r}: source= is required in, and only in, 'source' mode")
        if sources is not None and mode != "remix":
            raise ValueError(f"mode {mode!r}: sources= is only used in 'remix' mode")
        for what, value in [("excerpt_samples", excerpt_samples), ("batch_size", batch_size)]:
            if value < 1:
                raise ValueError(f"{what} {value!r} must be a positive integer")
        if max_tries < 1:
            raise ValueError(f"max_tries {max_tries!r} must be >= 1")
        if not remix_gain_db[0] <= remix_gain_db[1]:
            raise ValueError(f"remix_gain_db {remix_gain_db!r}: need low <= high")
        if not 0.0 <= allow_silent_prob <= 1.0:
            raise ValueError(f"allow_silent_prob {allow_silent_prob!r} must be in [0, 1]")
        if num_shards < 1 or not 0 <= shard_index < num_shards or batch_size % num_shards:
            raise ValueError(
                f"num_shards {num_shards}, shard_index {shard_index}: need num_shards >= 1 "
                f"dividing batch_size {batch_size} and 0 <= shard_index < num_shards"
            )
        self.mode, self.seed, self.batch_size = mode, int(seed), int(batch_size)
        self.excerpt_samples, self.mono, self.max_tries = int(excerpt_samples), mono, max_tries
        self.silence_db, self.remix_gain_db = float(silence_db), remix_gain_db
        self.allow_silent_prob = float(allow_silent_prob)
        self.num_shards, self.shard_index = num_shards, shard_index
        self.local_batch_size = batch_size // num_shards
        self.rate, channels = _check_tracks(tracks)
        self.channels = 1 if mono else channels
        self.track_names = [t.name for t in tracks]
        self._mean_square_floor = 10.0 ** (self.silence_db / 10.0)
        n = self.excerpt_samples
        long = [i for i, t in enumerate(tracks) if t.mixture.shape[-1] >= n]
        if not long:
            longest = max(t.mixture.shape[-1] for t in tracks)
            raise DatasetError(
                f"excerpt of {n} samples ({n / self.rate:.2f} s) is longer than every track "
                f"(longest {longest} samples) — shorten excerpt_samples"
            )
        if len(long) < len(tracks):
            short = [t.name for t in tracks if t.mixture.shape[-1] < n]
            warnings.warn(
                f"{len(short)} tracks shorter than {n} samples left out: {short[:5]}", stacklevel=2
            )
        # Mixture mode reads track.mixture and nothing else: no stem is ever touched.
        if mode == "mixture":
            self.stream_names = ["mixture"]
            self._pools = [self._pool("mixture", [(i, tracks[i].mixture) for i in long])]
        else:
            names = [source] if mode == "source" else list(sources or tracks[long[0]].sources)
            if not names or len(set(names)) != len(names):
                raise ValueError(f"sources {names}: need at least one, all distinct")
            for i in long:
                missing = [s for s in names if s not in tracks[i].sources]
                if missing:
                    raise DatasetError(
                        f"track {tracks[i].name}: no source {missing} (it has "
                        f"{tracks[i].source_names}) — choose sources every track has"
                    )
            self.stream_names = names
            self._pools = [self._pool(s, [(i, tracks[i].sources[s]) for i in long]) for s in names]
        self._fingerprint = hashlib.sha1(
            repr([(t.name, t.mixture.shape) for t in tracks]).encode()
        ).hexdigest()[:16]
        self._rng = np.random.Generator(np.random.PCG64(self.seed))
        self.batches_drawn = 0

    def _pool(self, name: str, candidates: list[tuple[int, np.ndarray]]) -> _Pool:
        """Keep the streams that have a chance of a non-silent excerpt (RMS <= peak)."""
        kept = [(i, a) for i, a in candidates if _peak(a) ** 2 >= self._mean_square_floor]
        if not kept:
            silent = [self.track_names[i] for i, _ in candidates]
            raise DatasetError(
                f"{name!r}: all silent (peak below {self.silence_db} dBFS) in every track "
                f"long enough: {silent} — check the audio or lower silence_db"
            )
        ids, arrays = zip(*kept, strict=True)
        return _Pool(name, list(arrays), list(ids), self.excerpt_samples)

    def __iter__(self) -> ExcerptSampler:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        return self.next_batch()

    def next_batch(self) -> dict[str, np.ndarray]:
        """This shard's part of the next global batch (see the class docstring)."""
        seeds = self._rng.bit_generator.random_raw(self.batch_size)  # uint64 [B]
        self.batches_drawn += 1
        lo = self.shard_index * self.local_batch_size
        seeds = seeds[lo : lo + self.local_batch_size]
        b, s, c, n = len(seeds), len(self._pools), self.channels, self.excerpt_samples
        remix = self.mode == "remix"
        audio = np.empty((b, s, c, n), np.float32)
        mixture = np.empty((b, c, n), np.float32) if remix else audio[:, 0]
        index = np.empty((b, s), np.int32)
        start = np.empty((b, s), np.int64)
        gain_db = np.zeros((b, s), np.float32)
        for row, item_seed in enumerate(seeds):
            rng = np.random.Generator(np.random.PCG64(int(item_seed)))
            if remix:
                gain_db[row] = rng.uniform(*self.remix_gain_db, size=s)
            gains = np.float32(10.0) ** (gain_db[row] / np.float32(20.0))  # [S]
            for j, pool in enumerate(self._pools):
                check = not remix or rng.random() >= self.allow_silent_prob
                out = audio[row, j]
                index[row, j], start[row, j] = self._draw(rng, pool, out, gains[j], check)
            if remix:  # summed per item while its sources are still in cache
                np.copyto(mixture[row], audio[row, 0])
                for j in range(1, s):
                    mixture[row] += audio[row, j]
        if not remix:
            key = "mixture" if self.mode == "mixture" else "source"
            return {key: mixture, "track_index": index[:, 0], "start": start[:, 0]}
        batch = {"mixture": mixture, "sources": audio, "track_index": index, "start": start}
        return {**batch, "gain_db": gain_db}

    def _draw(
        self, rng: np.random.Generator, pool: _Pool, out: np.ndarray, gain: float, check: bool
    ) -> tuple[int, int]:
        """Fill `out` [C, N] with gain x an excerpt, non-silent before the gain if `check`.

        Returns (track index, start sample)."""
        n = self.excerpt_samples
        floor = self._mean_square_floor * gain * gain
        tried: set[str] = set()
        for _ in range(self.max_tries):
            k = min(int(np.searchsorted(pool.cdf, rng.random(), side="right")), len(pool.ids) - 1)
            array = pool.arrays[k]
            begin = int(rng.integers(0, array.shape[-1] - n + 1))
            excerpt = array[:, begin : begin + n]
            if self.mono and excerpt.shape[0] > 1:
                np.sum(excerpt, axis=0, out=out[0])
                out *= np.float32(gain / excerpt.shape[0])
            elif gain == 1.0:
                np.copyto(out, excerpt)
            else:
                np.multiply(excerpt, np.float32(gain), out=out)
            flat = out.reshape(-1)
            if not check or float(np.dot(flat, flat)) / flat.size >= floor:
                return int(pool.ids[k]), begin
            tried.add(self.track_names[pool.ids[k]])
        raise DatasetError(
            f"{pool.name!r}: {self.max_tries} excerpts in a row were silent (RMS below "
            f"{self.silence_db} dBFS over {n / self.rate:.2f} s), from tracks {sorted(tried)} "
            "— is that audio (nearly) silent? Lower silence_db, raise max_tries or drop them"
        )

    def state_dict(self) -> dict[str, Any]:
        """JSON-serialisable state: the seed stream's bit_generator state and batch count."""
        return {
            "version": _STATE_VERSION,
            "bit_generator": self._rng.bit_generator.state,
            "batches_drawn": self.batches_drawn,
            "config": self._config(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from `state`: the next batches equal those the saved sampler would draw.

        The sampler must have been built with the same tracks, mode, seed, batch size and
        excerpt length; num_shards / shard_index may differ.
        """
        if state.get("version") != _STATE_VERSION:
            raise ValueError(f"sampler state version {state.get('version')!r}: expected 1")
        if state["config"] != self._config():
            raise ValueError(
                f"sampler state was saved with {state['config']}, this sampler has "
                f"{self._config()} — build the sampler as the saved run did"
            )
        self._rng.bit_generator.state = state["bit_generator"]
        self.batches_drawn = int(state["batches_drawn"])

    def _config(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "seed": self.seed,
            "batch_size": self.batch_size,
            "excerpt_samples": self.excerpt_samples,
            "streams": self.stream_names,
            "tracks": self._fingerprint,
        }


class KeepKeys:
    """A sampler's batches with only `keys` (dropping what the loss does not read: track
    indices, starts, gains); state_dict / load_state_dict pass through for resuming."""

    def __init__(self, sampler: Any, keys: Sequence[str]):
        self.sampler = sampler
        self.keys = tuple(keys)

    def __iter__(self) -> KeepKeys:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = next(self.sampler)
        return {key: batch[key] for key in self.keys}

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)


def _check_tracks(tracks: Sequence[Track]) -> tuple[int, int]:
    """(rate, channels) shared by all tracks, else an AudioError naming the odd one."""
    if not tracks:
        raise DatasetError("no tracks to sample from — is the dataset empty?")
    first = tracks[0]
    for track in tracks:
        if track.mixture.ndim != 2 or track.mixture.dtype != np.float32:
            raise AudioError(
                f"track {track.name}: mixture is {track.mixture.dtype} {track.mixture.shape}, "
                "expected float32 [channels, samples]"
            )
        if track.rate != first.rate or track.mixture.shape[0] != first.mixture.shape[0]:
            raise AudioError(
                f"track {track.name}: {track.rate} Hz x {track.mixture.shape[0]} channels, but "
                f"track {first.name} has {first.rate} Hz x {first.mixture.shape[0]} — resample "
                "or remix the tracks to one rate and channel count first"
            )
    return first.rate, first.mixture.shape[0]


def _peak(audio: np.ndarray) -> float:
    """max |audio| without allocating a copy of it."""
    return max(float(audio.max()), -float(audio.min())) if audio.size else 0.0


__all__ = ["MODES", "ExcerptSampler", "KeepKeys"]
