"""Speed and agreement of gensep's BSSEval v4 scorer against museval, measured in the same run.

Run: `.venv/bin/python bench/bench_scorer.py [--seconds 30] [--repeats 3] [--json OUT.json]`.

Two cases of `--seconds` of 4 music-like sources (fixed seed), scored on 1 s frames with
1 s hops: 44.1 kHz stereo and 16 kHz mono. Each reference is a harmonic tone (5 partials,
a fifth apart from source to source, slow tremolo) plus FIR band-passed noise and a white
floor 40 dB down; the stereo channels differ in gain and by a 3-sample delay. Each estimate
is its reference smeared by a 4-tap FIR, plus 20 % of the next source (crosstalk) and
white noise 26 dB down.

For each case: `museval.evaluate(..., mode="v4", padding=True)` once (it takes tens of
seconds), then `gensep.bsseval.bss_eval_v4` on the same arrays, a first call and
`--repeats` more. Printed per case:
- museval s: its single call. fast first s / fast steady s: our first call (fresh buffers:
  page faults) and the median of the repeats.
- speedup: museval s / fast steady s (and / fast first s); > 1 means ours is faster. A
  ratio of two measurements on this machine, never a threshold.
- max |diff| dB: the largest |ours - museval| over every frame, source and metric (SDR,
  SIR, SAR, ISR) where museval is finite; NaN masks: whether both mark the same frames NaN.
- cpu/wall of our steady calls (BLAS and the FFT batches use the cores) and the 1-minute
  load average before each case: other processes on the machine slow both sides.

`--fast-bss-eval` adds the PyPI package fast-bss-eval on the mono case, if installed (not a
gensep dependency): its `bss_eval_sources` on the 1 s frames (filters fitted per frame, the
BSS Eval v3 "sources" definition, no ISR), against museval v4.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import resource
import statistics
import sys
import time
from typing import Any

import museval
import numpy as np
import scipy
import scipy.signal

from gensep.bsseval import bss_eval_v4

CASES = {"44.1k-stereo": (44100, 2), "16k-mono": (16000, 1)}  # name: (rate, channels)
N_SOURCES = 4
METRICS = ("SDR", "SIR", "SAR", "ISR")


def make_sources(
    rate: int, channels: int, seconds: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(references, estimates), each [sources, samples, channels] float64; see the docstring."""
    rng = np.random.default_rng(seed)
    n = round(seconds * rate)
    t = np.arange(n) / rate
    refs = np.empty((N_SOURCES, n, channels))
    for j in range(N_SOURCES):
        f0 = 110.0 * 2 ** (j * 7 / 12)
        tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 6))
        band = scipy.signal.lfilter(
            scipy.signal.firwin(65, [0.05 + 0.1 * j, 0.15 + 0.1 * j]), 1.0, rng.standard_normal(n)
        )
        mono = tone * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t)) + 2 * band
        for c in range(channels):
            gain = rng.uniform(0.5, 1.0)
            refs[j, :, c] = gain * np.roll(mono, 3 * c) + 0.01 * rng.standard_normal(n)
    smeared = scipy.signal.lfilter([0.6, 0.3, -0.1, 0.05], 1.0, refs, axis=1)
    ests = smeared + 0.2 * np.roll(refs, 1, axis=0) + 0.05 * rng.standard_normal(refs.shape)
    return refs, ests


def run_museval(refs: np.ndarray, ests: np.ndarray, window: int) -> dict[str, np.ndarray]:
    sdr, isr, sir, sar = museval.evaluate(
        refs, ests, win=window, hop=window, mode="v4", padding=True
    )
    return {"SDR": sdr, "ISR": isr, "SIR": sir, "SAR": sar}


def compare(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> dict[str, Any]:
    """Max |ours - theirs| (dB) over the metrics where theirs is finite; NaN masks equal?"""
    diffs, same_nan = [], True
    for name in METRICS:
        finite = np.isfinite(theirs[name])
        diffs.append(float(np.max(np.abs(ours[name][finite] - theirs[name][finite]))))
        same_nan &= bool(np.array_equal(np.isnan(ours[name]), np.isnan(theirs[name])))
    return {
        "max_abs_diff_db": max(diffs),
        "per_metric_db": dict(zip(METRICS, diffs, strict=True)),
        "same_nan_mask": same_nan,
    }


def timed(fn: Any) -> tuple[float, Any]:
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def bench_case(name: str, seconds: float, repeats: int, seed: int) -> dict[str, Any]:
    rate, channels = CASES[name]
    refs, ests = make_sources(rate, channels, seconds, seed)
    load = os.getloadavg()[0]
    museval_s, theirs = timed(lambda: run_museval(refs, ests, rate))
    first_s, ours = timed(lambda: bss_eval_v4(refs, ests, rate, rate))
    cpu0, walls = resource.getrusage(resource.RUSAGE_SELF), []
    for _ in range(repeats):
        wall, ours = timed(lambda: bss_eval_v4(refs, ests, rate, rate))
        walls.append(wall)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = cpu1.ru_utime - cpu0.ru_utime + cpu1.ru_stime - cpu0.ru_stime
    steady = statistics.median(walls)
    return {
        "case": name, "rate": rate, "channels": channels, "sources": N_SOURCES,
        "seconds": seconds, "frames": int(ours["SDR"].shape[1]), "load_1min": load,
        "museval_s": museval_s, "fast_first_s": first_s, "fast_steady_s": steady,
        "fast_all_steady_s": walls, "cpu_per_wall": cpu / sum(walls),
        "speedup_steady": museval_s / steady, "speedup_first": museval_s / first_s,
        **compare(ours, theirs), "_museval": theirs, "_refs": refs, "_ests": ests,
    }  # fmt: skip


def bench_fast_bss_eval(result: dict[str, Any]) -> dict[str, Any] | None:
    """fast-bss-eval's bss_eval_sources per 1 s frame (mono only) against museval v4."""
    try:
        import fast_bss_eval
    except ImportError:
        print("fast-bss-eval is not installed (pip install fast-bss-eval to include it)")
        return None
    rate, frames = result["rate"], result["frames"]
    shape = (N_SOURCES, frames, rate)  # [sources, frames, samples] -> [frames, sources, samples]
    refs = result["_refs"][:, : frames * rate, 0].reshape(shape).swapaxes(0, 1)
    ests = result["_ests"][:, : frames * rate, 0].reshape(shape).swapaxes(0, 1)
    # compute_permutation=False fails under NumPy 2 in fast-bss-eval 0.1.4 (a solve with a
    # vector right-hand side); with permutations the identity wins on these signals.
    seconds, (sdr, sir, sar, perm) = timed(
        lambda: fast_bss_eval.bss_eval_sources(refs, ests, compute_permutation=True)
    )
    theirs = result["_museval"]
    diffs = {
        name: float(np.max(np.abs(value.T - theirs[name])))
        for name, value in (("SDR", sdr), ("SIR", sir), ("SAR", sar))
    }
    identity = bool(np.all(perm == np.arange(N_SOURCES)))
    return {"seconds": seconds, "max_abs_diff_vs_museval_v4_db": diffs, "identity_perm": identity}


def environment() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "museval": importlib.metadata.version("museval"),
    }


HEADER = (
    f"{'case':<14}{'frames':>7}{'load':>6}{'museval s':>10}{'fast first s':>13}"
    f"{'fast steady s':>14}{'cpu/wall':>9}{'speedup':>9}{'(first)':>9}{'max|diff| dB':>13}"
    f"{'NaN masks':>10}"
)


def format_row(r: dict[str, Any]) -> str:
    return (
        f"{r['case']:<14}{r['frames']:>7}{r['load_1min']:>6.1f}{r['museval_s']:>10.2f}"
        f"{r['fast_first_s']:>13.3f}{r['fast_steady_s']:>14.3f}{r['cpu_per_wall']:>9.2f}"
        f"{r['speedup_steady']:>8.1f}x{r['speedup_first']:>8.1f}x{r['max_abs_diff_db']:>13.1e}"
        f"{'equal' if r['same_nan_mask'] else 'DIFFER':>10}"
    )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length (s)")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls after the first")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fast-bss-eval", action="store_true", help="also time fast-bss-eval")
    parser.add_argument("--json", metavar="OUT.json", help="also write every number here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    env = environment()
    print(" | ".join(f"{k} {v}" for k, v in env.items()))
    print(f"{N_SOURCES} sources x {args.seconds:g} s, 1 s frames. speedup = museval s / fast s")
    print("(> 1: ours faster); max|diff| over all frames, sources and the 4 metrics.\n")
    print(HEADER)
    print("-" * len(HEADER))
    results = []
    for name in CASES:
        result = bench_case(name, args.seconds, args.repeats, args.seed)
        print(format_row(result))
        sys.stdout.flush()
        results.append(result)
    if args.fast_bss_eval:
        fbe = bench_fast_bss_eval(results[-1])
        if fbe is not None:
            diffs = ", ".join(
                f"{k} {v:.2f}" for k, v in fbe["max_abs_diff_vs_museval_v4_db"].items()
            )
            print(
                f"\nfast-bss-eval bss_eval_sources, 16k-mono frames: {fbe['seconds']:.2f} s; "
                f"max |diff| vs museval v4 (dB): {diffs}; identity permutation "
                f"{fbe['identity_perm']}"
            )
        results[-1]["fast_bss_eval"] = fbe
    if args.json:
        public = [{k: v for k, v in r.items() if not k.startswith("_")} for r in results]
        with open(args.json, "w") as f:
            json.dump({"environment": env, "args": vars(args), "results": public}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
