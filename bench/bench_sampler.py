"""Can `ExcerptSampler` keep a jitted step busy? Its batch rate against one jitted STFT.

Run: `.venv/bin/python bench/bench_sampler.py [--tracks 20] [--seconds 30] [--batches 20]
[--json OUT.json]`.

Data: `--tracks` synthetic tracks of `--seconds` s with 4 sources (white noise with 25 %
of 2-s blocks silenced, so the silence test redraws sometimes; mixture = their sum), at
16 kHz mono and at 44.1 kHz stereo. Excerpts of 4 s, batch 16, every mode; remix draws
4 sources per item.

How to read the table (every number comes from this run, on this machine):
- init s: building the sampler (validation and a peak scan of every stream it uses).
- batch ms: median wall time of `--batches` calls of `next_batch()` after one warm-up.
- excerpts/s: batch items per second (remix: mixtures; it reads 4 source excerpts each).
- MB/s: bytes of the returned arrays per second.
- ref ms: median time of the reference on the same batch: one jitted
  `jnp.abs(gensep.dsp.stft(batch))` (n_fft 2048, hop 512 at 44.1 kHz; 512/256 at 16 kHz,
  the UMSS encoder's STFT), including the host-to-device copy. A training step does far
  more than one STFT (forward, backward, several loss resolutions), so it is a lower bound
  of a step's time.
- sampler/ref: batch ms / ref ms. Below 1 the sampler makes a batch faster than the
  reference runs, so it cannot starve a step that costs more than one STFT, even run
  serially in one thread. On CPU both compete for the same cores; with an accelerator
  the step runs off the host cores and the sampler only needs to beat the step.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from gensep import dsp
from gensep.data.sampler import ExcerptSampler
from gensep.data.track import Track

SETUPS = ((16000, 1, 512, 256), (44100, 2, 2048, 512))  # rate, channels, n_fft, hop
SOURCES = ("vocals", "bass", "drums", "other")
EXCERPT_S = 4.0
BATCH = 16


def synthetic_tracks(n: int, seconds: float, rate: int, channels: int) -> list[Track]:
    """`n` tracks of white-noise sources with a quarter of 2-s blocks silent."""
    rng = np.random.default_rng(0)
    samples = int(seconds * rate)
    block = 2 * rate
    tracks = []
    for i in range(n):
        stems = {}
        for name in SOURCES:
            audio = rng.standard_normal((channels, samples), np.float32) * np.float32(0.1)
            for b in np.flatnonzero(rng.random(-(-samples // block)) < 0.25):
                audio[:, b * block : (b + 1) * block] = 0.0
            stems[name] = audio
        mixture = np.sum(list(stems.values()), axis=0, dtype=np.float32)
        tracks.append(Track(f"track{i:02d}", rate, mixture, stems))
    return tracks


def median_ms(fn, repeats: int) -> float:
    """Median wall time (ms) of `repeats` calls after one warm-up call."""
    jax.block_until_ready(fn())
    walls = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        walls.append(time.perf_counter() - start)
    return 1e3 * statistics.median(walls)


def bench_setup(args: argparse.Namespace, rate: int, channels: int, n_fft: int, hop: int):
    tracks = synthetic_tracks(args.tracks, args.seconds, rate, channels)
    excerpt = int(EXCERPT_S * rate)
    reference = jax.jit(lambda x: jnp.abs(dsp.stft(x, n_fft, hop)))
    rows = []
    for mode in ("mixture", "source", "remix"):
        start = time.perf_counter()
        sampler = ExcerptSampler(
            tracks, excerpt, BATCH, mode, seed=0, source="vocals" if mode == "source" else None
        )
        init_s = time.perf_counter() - start
        batch_ms = median_ms(sampler.next_batch, args.batches)
        batch = sampler.next_batch()
        audio = batch["source" if mode == "source" else "mixture"]
        ref_ms = median_ms(lambda a=audio: reference(a), args.batches)
        megabytes = sum(a.nbytes for a in batch.values()) / 1e6
        rows.append(
            {
                "rate": rate,
                "channels": channels,
                "mode": mode,
                "init_s": init_s,
                "batch_ms": batch_ms,
                "excerpts_per_s": BATCH / (batch_ms / 1e3),
                "mb_per_s": megabytes / (batch_ms / 1e3),
                "ref_ms": ref_ms,
                "sampler_over_ref": batch_ms / ref_ms,
            }
        )
    return rows


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batches", type=int, default=20, help="timed batches per mode")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    print(
        f"python {platform.python_version()}, numpy {np.__version__}, jax {jax.__version__} "
        f"({jax.default_backend()}), {os.cpu_count()} cores; {args.tracks} tracks x "
        f"{args.seconds:g} s, excerpt {EXCERPT_S:g} s, batch {BATCH}"
    )
    header = (
        f"{'rate':>6} {'ch':>2} {'mode':>8} {'init s':>7} {'batch ms':>9} {'excerpts/s':>10} "
        f"{'MB/s':>7} {'ref ms':>7} {'sampler/ref':>11}"
    )
    print(header)
    rows = []
    for setup in SETUPS:
        for row in bench_setup(args, *setup):
            rows.append(row)
            print(
                f"{row['rate']:>6} {row['channels']:>2} {row['mode']:>8} {row['init_s']:>7.3f} "
                f"{row['batch_ms']:>9.2f} {row['excerpts_per_s']:>10.0f} "
                f"{row['mb_per_s']:>7.0f} {row['ref_ms']:>7.2f} {row['sampler_over_ref']:>11.2f}"
            )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
