"""Flow-prior separation: quality against optimisation iterations, and its speed.

Run: `.venv/bin/python bench/bench_flow_separation.py --priors runs/priors/band
[--data data/band] [--split test] [--tracks 3] [--seconds 8] [--iterations 10,30,100]
[--solver denoise|adam] [--fit-iterations 30] [--json OUT.json]`.

For each of the first `--tracks` tracks of a MUSDB-layout set (the start of each, `--seconds`
long; the mixture is the sum of those stems), separate with `--method flow` over the
priors named like the stems (`--solver`, the separation's defaults otherwise), once per
iteration count (each a full annealed schedule of that length, not a snapshot of a longer
one), after one untimed call that compiles.
Reported per iteration count, mean over tracks and stems:
- SDR: BSSEval v4 (fast scorer, 1 s windows), the median over a track's windows;
- SI-SDR: the UMSS protocol (1 s frames, no mean removal), the median over frames;
- x real time: audio seconds per wall second of the separation call;
with `--fit-iterations`, the same for Adam on the mixture-fit objective (objective="fit");
and, measured in the same run on the same excerpts, the references: the mixture as every
estimate (the floor) and the oracle ratio mask (IRM, the ceiling of a magnitude mask).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def score(estimates: dict, references: dict, rate: int) -> tuple[float, float]:
    """(SDR, SI-SDR) averaged over sources: per source the median over 1 s windows."""
    import numpy as np

    from gensep.metrics import bss_eval, framewise_si_sdr

    names = list(references)
    refs = np.stack([references[n] for n in names])
    ests = np.stack([estimates[n] for n in names])
    sdr = bss_eval(refs, ests, rate)["SDR"]  # [sources, windows]
    si = [
        np.nanmedian(framewise_si_sdr(ests[j][None], refs[j][None], rate)[0])
        for j in range(len(names))
    ]
    return float(np.mean(np.nanmedian(sdr, axis=1))), float(np.mean(si))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--priors", required=True, help="a prior registry folder")
    parser.add_argument("--data", default="data/band")
    parser.add_argument("--split", default="test")
    parser.add_argument("--tracks", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--iterations", default="10,30,100")
    parser.add_argument("--solver", default="denoise", choices=["denoise", "adam"])
    parser.add_argument("--learning-rate", type=float, default=0.05, help="--solver adam")
    parser.add_argument(
        "--fit-iterations",
        default="",
        help="also the mixture-fit objective (free magnitudes + generalised KL) at these counts",
    )
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    import numpy as np
    from bench_flow import emit, machine

    from gensep.audio import load_audio
    from gensep.flows.priors import list_priors
    from gensep.separation import separate

    names = [p["name"] for p in list_priors(args.priors)]
    folders = sorted(p for p in (Path(args.data) / args.split).iterdir() if p.is_dir())
    excerpts = []
    for folder in folders[: args.tracks]:
        stems, rate = {}, None
        for name in names:
            audio, rate = load_audio(folder / f"{name}.wav")
            stems[name] = audio[:, : int(args.seconds * rate)]
        excerpts.append((folder.name, rate, stems))
    counts = [int(v) for v in args.iterations.split(",")]

    def run(method: str, oracle: bool = False, **options) -> dict:
        sdrs, sis, wall, audio_s = [], [], 0.0, 0.0
        for _, rate, stems in excerpts:
            mixture = sum(stems.values())
            extra = {"references": stems} if oracle else {}
            start = time.perf_counter()
            estimates = separate(mixture, rate, method, **options, **extra)
            wall += time.perf_counter() - start
            audio_s += mixture.shape[-1] / rate
            sdr, si = score(estimates, stems, rate)
            sdrs.append(sdr)
            sis.append(si)
        return {
            "sdr": round(float(np.mean(sdrs)), 2),
            "si_sdr": round(float(np.mean(sis)), 2),
            "x_real_time": round(audio_s / wall, 4),
        }

    flow = {"priors": args.priors, "sources": names, "solver": args.solver}
    if args.solver == "adam":
        flow["learning_rate"] = args.learning_rate
    _, rate, stems = excerpts[0]
    separate(sum(stems.values()), rate, "flow", iterations=2, **flow)  # compile, untimed
    rows = {}
    for n in counts:
        rows[n] = run("flow", iterations=n, **flow)
        print(f"flow {n:4d} iterations: {rows[n]}", flush=True)
    fit_rows = {}
    fit_counts = [int(v) for v in args.fit_iterations.split(",") if v]
    if fit_counts:  # its own compilation, untimed
        fit = {**flow, "solver": "adam", "objective": "fit", "learning_rate": args.learning_rate}
        separate(sum(stems.values()), rate, "flow", iterations=2, **fit)
    for n in fit_counts:
        fit_rows[n] = run("flow", iterations=n, **fit)
        print(f"flow (fit) {n:4d} iterations: {fit_rows[n]}", flush=True)
    result = {
        "priors": names,
        "tracks": [e[0] for e in excerpts],
        "seconds": args.seconds,
        "solver": args.solver,
        "flow": rows,
        "flow_fit": fit_rows,
        "mixture": run("mixture", oracle=True),
        "irm": run("irm", oracle=True),
        **machine(),
    }
    return emit(result, args.json)


if __name__ == "__main__":
    main()
