"""Speed of every F0 path of a blind choir separation, on 2 CPU cores.

Run: `.venv/bin/python bench/bench_f0.py [--seconds 30] [--repeats 3] [--json OUT.json]`.

Input: the bundled chorale (16 kHz mono, 4 voices, F0 truth) tiled to `--seconds`.
Timed, each as the first call (imports, compilation) and the median of `--repeats`
further calls, reported as x real time (audio s per wall s) and as a ratio to the
reference:
- salience: `salience_f0`, four voices.
- score: `align_score` of the truth's own F0 tracks (a score that matches) to the audio.
- neural: `neural_f0` with the default model (skipped when none is installed).
- umss: the UMSS separation given the true F0s (the separation F0 feeds).
- umss + refine 30: the same with 30 F0-refinement steps per chunk.
Reference: `librosa.pyin` on the same mixture for ONE voice (a standard monophonic
tracker, 65-1050 Hz): ratio = time / pyin's time, < 1 means faster than tracking a single
voice with pYIN.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from bench_supervised import timed  # the same first-call / median timing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)

    import librosa

    from gensep.data.example import example
    from gensep.f0 import align_score, salience_f0
    from gensep.separation import separate

    track = example()
    reps = int(np.ceil(args.seconds * track.rate / track.mixture.shape[-1]))
    n = round(args.seconds * track.rate)
    mono = np.tile(track.mixture[0], reps)[:n]
    seconds_ex = track.mixture.shape[-1] / track.rate
    f0 = {}
    for name, (times, hz) in track.f0.items():
        keep = times < seconds_ex
        t = np.concatenate([times[keep] + k * seconds_ex for k in range(reps)])
        inside = t < args.seconds  # the score of exactly the input
        f0[name] = (t[inside], np.tile(hz[keep], reps)[inside])

    cases = {
        "pyin, one voice (reference)": lambda: librosa.pyin(
            mono, fmin=65.0, fmax=1050.0, sr=track.rate, frame_length=1024
        ),
        "salience, 4 voices": lambda: salience_f0(mono, track.rate, 4),
        "score alignment": lambda: align_score(f0, mono, track.rate),
        "umss separation (true F0)": lambda: separate(mono[None], track.rate, "umss", f0=f0),
        "umss + refine 30": lambda: separate(
            mono[None], track.rate, "umss", f0=f0, refine_steps=30
        ),
    }
    try:
        from gensep.f0.neural import neural_f0

        neural_f0(mono[: track.rate], track.rate)  # raises when no model is installed
        cases["neural, 4 voices"] = lambda: neural_f0(mono, track.rate)
    except Exception as err:  # no model, or the module is absent
        print(f"neural: skipped ({type(err).__name__}: {err})", file=sys.stderr)

    rows = []
    reference = None
    print(f"{args.seconds:.0f} s of 16 kHz mono; {args.repeats} repeats")
    print(f"{'path':30s} {'first s':>8s} {'steady s':>9s} {'x real time':>12s} {'ratio':>7s}")
    for name, fn in cases.items():
        first, steady = timed(fn, args.repeats)
        reference = reference or steady
        row = {
            "path": name,
            "first_s": first,
            "steady_s": steady,
            "x_real_time": args.seconds / steady,
            "ratio_to_pyin": steady / reference,
        }
        rows.append(row)
        print(
            f"{name:30s} {first:8.2f} {steady:9.3f} {row['x_real_time']:12.1f} "
            f"{row['ratio_to_pyin']:7.2f}"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(rows, handle, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
