"""Speed of the rendered-choir pipeline (`gensep.data.choir.render_choir`): wall time per minute
of audio.

Run: `.venv/bin/python bench/bench_render.py [--tracks 3] [--programs voice]
[--sample-rate 16000] [--workers 1] [--json OUT.json]`.

Stages, each timed on its own (every number comes from this run, on this machine):
1. corpus: scanning music21's Bach corpus and computing the split (cached per process).
2. tuning: measuring the soundfont tuning (`choir_f0.key_tuning`) for every program of the
   set and both soundfonts: once per process and (soundfont, program), shared by all tracks.
3. render: `render_choir` of `--tracks` whole train chorales into a fresh folder, with
   stages 1-2 already cached: parsing the score, 8 FluidSynth runs per track (4 voices x
   odd/even notes), mixing, F0 truth, writing the WAV/CSV files, reading them back.
Reported: s per minute of mixture audio, the same per stem (the track time over 4 stems),
and x-RT (audio seconds per wall second). No asserts.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

from gensep.data import choir_score as cs
from gensep.data.choir import render_choir
from gensep.data.choir_f0 import key_tuning
from gensep.data.choir_split import corpus_index, split_chorales
from gensep.data.midi import TEST_SOUNDFONT, TRAIN_SOUNDFONT, find_soundfont


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tracks", type=int, default=3)
    parser.add_argument("--programs", default="voice", choices=sorted(cs.PROGRAMS))
    parser.add_argument("--sample-rate", type=int, default=16000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--json", help="also write the numbers to this file")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    split_chorales(corpus_index()[0], seed=0)
    corpus_s = time.perf_counter() - start

    programs = sorted({p for choice in cs.PROGRAMS[args.programs].values() for p in choice})
    start = time.perf_counter()
    for font in (TRAIN_SOUNDFONT, TEST_SOUNDFONT):
        for program in programs:
            key_tuning(str(find_soundfont(font)), program, args.sample_rate)
    tuning_s = time.perf_counter() - start

    with tempfile.TemporaryDirectory(prefix="gensep-bench-") as out:
        start = time.perf_counter()
        meta = render_choir(
            out, args.tracks, 0, seed=0, sample_rate=args.sample_rate, programs=args.programs,
            progress=False, workers=args.workers,
        )  # fmt: skip
        render_s = time.perf_counter() - start
    audio_s = sum(entry["seconds"] for entry in meta["split"]["train"])
    per_minute = render_s / (audio_s / 60)
    result = {
        "tracks": args.tracks,
        "programs": args.programs,
        "sample_rate": args.sample_rate,
        "workers": args.workers,
        "corpus_s": round(corpus_s, 2),
        "tuning_s": round(tuning_s, 2),
        "tuning_s_per_program": round(tuning_s / (2 * len(programs)), 2),
        "render_s": round(render_s, 2),
        "audio_s": round(audio_s, 1),
        "s_per_minute_of_mixture": round(per_minute, 2),
        "s_per_minute_per_stem": round(per_minute / len(cs.VOICES), 2),
        "x_realtime": round(audio_s / render_s, 1),
    }
    print(f"choir render, {args.tracks} whole chorales, {args.programs}, {args.sample_rate} Hz")
    print(f"  corpus scan + split       {corpus_s:7.2f} s (once per process)")
    print(f"  soundfont tuning          {tuning_s:7.2f} s ({2 * len(programs)} programs x fonts)")
    print(f"  render {audio_s:6.1f} s of audio  {render_s:7.2f} s wall ({args.workers} worker(s))")
    print(f"  per minute of mixture     {per_minute:7.2f} s   ({audio_s / render_s:.1f} x RT)")
    print(f"  per minute, per stem      {per_minute / len(cs.VOICES):7.2f} s")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=2)
    return result


if __name__ == "__main__":
    main()
