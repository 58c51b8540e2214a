"""Data-efficiency curve: separation quality against minutes of training audio.

    python eval/efficiency.py results/choir_efficiency --data data/choir \
        --methods umss,blstm --sizes 1,5,25,100

Reads a harness results folder (after `eval/report.py`) whose rows are labelled
`<method>_n<N>`: the method trained on the first N tracks (by name) of the dataset's train
split. The x axis is those N tracks' total audio minutes, read from `--data`. Writes
`efficiency.csv` (method, tracks, minutes, mean SDR and SI-SDR over sources of the
track medians) and `efficiency.png` into the results folder, and prints the table.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

from gensep.data.layout import MIXTURE, list_tracks


def train_minutes(root: str | Path, sizes: list[int], split: str = "train") -> dict[int, float]:
    """{N: minutes of mixture audio in the first N tracks of `split` (sorted by name)}."""
    seconds = [
        sf.info(str(folder / f"{MIXTURE}.wav")).duration for folder in list_tracks(root, split)
    ]
    return {n: float(np.sum(seconds[:n])) / 60 for n in sizes}


def read_means(results: Path) -> dict[tuple[str, str], float]:
    """{(row label, metric): mean over sources of the track-median values} from tables.csv."""
    values: dict[tuple[str, str], list[float]] = {}
    with open(results / "tables.csv") as handle:
        for row in csv.DictReader(handle):
            if row["table"] == "sources":
                values.setdefault((row["method"], row["metric"]), []).append(float(row["median"]))
    return {key: float(np.mean(v)) for key, v in values.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="harness results folder (eval/report.py run on it)")
    parser.add_argument("--data", required=True, help="the dataset root the rows trained on")
    parser.add_argument("--methods", required=True, help="comma-separated method prefixes")
    parser.add_argument("--sizes", required=True, help="comma-separated track counts N")
    args = parser.parse_args(argv)
    results = Path(args.results)
    if not (results / "tables.csv").is_file():
        print(f"error: {results}/tables.csv missing: run eval/report.py first", file=sys.stderr)
        return 2
    sizes = [int(n) for n in args.sizes.split(",")]
    minutes = train_minutes(args.data, sizes)
    means = read_means(results)
    rows = []
    for method in args.methods.split(","):
        for n in sizes:
            label = f"{method}_n{n}"
            if (label, "SI-SDR") not in means:
                print(f"warning: no row {label} in {results}", file=sys.stderr)
                continue
            rows.append((method, n, minutes[n], means[(label, "SDR")], means[(label, "SI-SDR")]))
    header = ("method", "tracks", "minutes", "SDR", "SI-SDR")
    with open(results / "efficiency.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows([(m, n, f"{t:.2f}", f"{a:.2f}", f"{b:.2f}") for m, n, t, a, b in rows])
    print("| " + " | ".join(header) + " |\n|---|---:|---:|---:|---:|")
    for m, n, t, a, b in rows:
        print(f"| {m} | {n} | {t:.1f} | {a:.2f} | {b:.2f} |")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for method in args.methods.split(","):
        points = [(t, b) for m, _, t, _, b in rows if m == method]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=method)
    ax.set_xscale("log")
    ax.set_xlabel("training audio (minutes of mixtures)")
    ax.set_ylabel("SI-SDR (dB, mean over sources)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(results / "efficiency.png", dpi=120)
    print(f"wrote {results / 'efficiency.csv'} and {results / 'efficiency.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
