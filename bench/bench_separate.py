"""UMSS separation speed and peak memory: 4 voices at 16 kHz, 30 s and 10 min inputs.

Run: `.venv/bin/python bench/bench_separate.py [--model PATH] [--lengths 30 600]`.

Each length runs in its own fresh process (so peak RSS is that length's alone): the bundled
chorale (6 s, 4 voices with F0) is tiled to the length, separated once to compile, then
timed. Reported per length:
- compile+first s: the first call (loads the model, compiles the chunk function once).
- steady s / x real time: the second call, audio seconds per wall second.
- peak RSS MB: the process's maximum resident memory (ru_maxrss) after the UMSS calls
  and before the reference runs (which holds whole-signal STFTs), everything included.
- ref s / ratio: the reference measured in the same process on the same input: the
  `f0_harmonic` method (a NumPy/librosa mask method of the same STFT), steady / ref.
A flat peak RSS between 30 s and 10 min shows chunking keeps memory independent of the
length; the >= 100x real-time target is for the steady column on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time


def one_length(seconds: float, model: str | None) -> dict:
    import numpy as np

    from gensep.data.example import example
    from gensep.separation import separate

    track = example()
    reps = int(np.ceil(seconds * track.rate / track.mixture.shape[-1]))
    n = int(seconds * track.rate)
    mixture = np.tile(track.mixture, reps)[:, :n]
    period = track.mixture.shape[-1] / track.rate
    f0 = {}
    for name, (times, hz) in track.f0.items():
        all_t = np.concatenate([times + k * period for k in range(reps)])
        f0[name] = (all_t, np.tile(hz, reps))
    options = {"f0": f0} | ({"model": model} if model else {})
    start = time.perf_counter()
    separate(mixture, track.rate, "umss", **options)
    first = time.perf_counter() - start
    start = time.perf_counter()
    separate(mixture, track.rate, "umss", **options)
    steady = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the ref
    start = time.perf_counter()
    separate(mixture, track.rate, "f0_harmonic", f0=f0)
    ref = time.perf_counter() - start
    return {
        "seconds": seconds,
        "first_s": first,
        "steady_s": steady,
        "x_real_time": seconds / steady,
        "peak_rss_mb": peak_mb,
        "ref_s": ref,
        "ratio": steady / ref,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model path; default: the shipped one")
    parser.add_argument("--lengths", nargs="+", type=float, default=[30.0, 600.0])
    parser.add_argument("--child", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child is not None:
        print(json.dumps(one_length(args.child, args.model)))
        return
    print(
        f"python {platform.python_version()} | cpus {os.cpu_count()} | "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'length s':>9}{'compile+first s':>17}{'steady s':>10}{'x real time':>13}"
        f"{'peak RSS MB':>13}{'ref s':>8}{'steady/ref':>12}"
    )
    for seconds in args.lengths:
        cmd = [sys.executable, __file__, "--child", str(seconds)]
        cmd += ["--model", args.model] if args.model else []
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        print(
            f"{r['seconds']:>9.0f}{r['first_s']:>17.2f}{r['steady_s']:>10.2f}"
            f"{r['x_real_time']:>13.1f}{r['peak_rss_mb']:>13.0f}{r['ref_s']:>8.2f}"
            f"{r['ratio']:>12.2f}"
        )


if __name__ == "__main__":
    main()
