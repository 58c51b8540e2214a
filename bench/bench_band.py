"""Speed of the rendered band set: wall time per minute of audio.

Run: `.venv/bin/python bench/bench_band.py [--songs 3] [--seconds 20] [--seed 0]`.

Renders `--songs` train songs (TRAIN_SOUNDFONT) and as many test songs (TEST_SOUNDFONT) of
`--seconds` each into a temporary folder with `gensep.data.band.render_band`, one split at
a time, and prints per split: audio seconds, wall seconds, wall seconds per minute of audio
and x-real-time (audio seconds / wall seconds). The wall time covers everything a user waits
for: composition, one FluidSynth process per stem (soundfont loading included, four at a
time), mixing, F0 truth, writing the WAV/CSV files, reading them back for the sum check and
hashing both soundfonts for meta.json. Nothing is asserted; the numbers depend on the
machine, its core count and its disk cache (the first run also reads the soundfonts from
disk: run twice to see the warm number).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

from gensep.data.band import render_band


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--songs", type=int, default=3, help="songs per split")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each song (s)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    print(f"{args.songs} songs x {args.seconds:g} s per split, {os.cpu_count()} CPUs")
    print(f"{'split':<6} {'audio s':>8} {'wall s':>8} {'s/min':>7} {'x-RT':>6}")
    for split in ("train", "test"):
        counts = (args.songs, 0) if split == "train" else (0, args.songs)
        with tempfile.TemporaryDirectory(prefix="gensep-bench-band-") as out:
            start = time.perf_counter()
            meta = render_band(
                out, *counts, seed=args.seed, min_seconds=args.seconds,
                max_seconds=args.seconds, progress=False,
            )  # fmt: skip
            wall = time.perf_counter() - start
        audio = sum(track["seconds"] for track in meta["tracks"].values())
        print(f"{split:<6} {audio:8.1f} {wall:8.2f} {60 * wall / audio:7.2f} {audio / wall:6.1f}")


if __name__ == "__main__":
    main()
