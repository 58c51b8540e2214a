"""Tables and box plots from a results folder written by eval/run.py.

    python eval/report.py results/choir

Writes into the folder: report.md (one table per metric and table, methods as rows,
sources as columns: median over frames, then median over tracks, SiSEC style; the mean
over tracks beside it in tables.csv), summary.csv (method,source,metric,median,mean),
tables.csv (every aggregate with its table and track count), and box plots
plots/<table>_<metric>.png (per source, methods side by side, one point per track).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

from gensep.atomic import atomic_output, write_text
from gensep.evaluation import METRICS, SI_SDR_VARIANT

# Columns in the order musicians read them; other sources follow in the order found.
SOURCE_ORDERS = (
    ("vocals", "drums", "bass", "other", "accompaniment"),  # MUSDB18 and the band set
    ("soprano", "alto", "tenor", "bass"),
    ("violin", "clarinet", "saxophone", "bassoon"),  # Bach10, high to low
    ("harmonic", "percussive"),
)
# BSSEval puts an estimate lying exactly in the span of the references (the mixture/n
# floor) at SAR = +inf; museval and the fast scorer both print rounding noise there, ~190 dB.
INFINITE_DB = 100.0
INSTGLOW = "InstGlow SDR"  # BSSEval SDR of mono downmixes per 60 s segment (Zhu et al. 2022)
KIND_ORDER = {
    "oracle": 0,
    "unsupervised": 1,
    "generative": 2,
    "supervised": 3,
    "learning-free": 4,
    "floor": 5,
}


def load_runs(folder: Path) -> list[dict]:
    """Every run JSON under folder/runs (a missing or empty folder raises)."""
    paths = sorted((folder / "runs").glob("*/*/*.json"))
    if not paths:
        raise FileNotFoundError(f"{folder}: no runs/<table>/<row>/<track>.json — run eval/run.py")
    return [json.loads(p.read_text()) for p in paths]


def aggregate(runs: list[dict]) -> dict:
    """{table: {"rows": [...], "sources": [...], "values": {(row, source, metric): [per-track
    medians]}, "status": {row: counts}, "xrt": {row: [x-real-time]}, "nan": {row: n},
    "kind": {row: kind}, "permutation": {row: ...}}}."""
    tables: dict[str, dict] = {}
    for run in runs:
        table = tables.setdefault(
            run["table"],
            {
                "rows": [],
                "sources": [],
                "values": defaultdict(list),
                "xrt": defaultdict(list),
                "status": defaultdict(lambda: defaultdict(int)),
                "nan": defaultdict(int),
                "kind": {},
                "permutation": {},
            },
        )
        row = run["row"]
        if row not in table["rows"]:
            table["rows"].append(row)
        table["kind"][row] = run.get("kind", "")
        table["permutation"][row] = run.get("permutation", "fixed")
        table["status"][row][run["status"]] += 1
        if run["status"] != "ok":
            continue
        table["xrt"][row].append(run["x_real_time"])
        scores = run["scores"]
        table["nan"][row] += sum(scores["nan"].values())
        for source in scores["sources"]:
            if source not in table["sources"]:
                table["sources"].append(source)
            for metric in METRICS:
                value = scores["median"][source][metric]
                table["values"][row, source, metric].append(np.nan if value is None else value)
            if "instglow_sdr" in scores:  # one SDR per 60 s mono segment, median over them
                value = scores["instglow_sdr"].get(source)
                table["values"][row, source, INSTGLOW].append(np.nan if value is None else value)
    for table in tables.values():
        table["rows"].sort(key=lambda r: (KIND_ORDER.get(table["kind"][r], 9), r))
        table["sources"] = _ordered(table["sources"])
    return dict(sorted(tables.items(), key=lambda item: (item[0] != "sources", item[0])))


def _metrics(table: dict) -> tuple[str, ...]:
    """BSSEval v4 and SI-SDR, and the InstGlow protocol's SDR where it was scored."""
    scored = any(key[2] == INSTGLOW for key in table["values"])
    return (*METRICS, INSTGLOW) if scored else METRICS


def _ordered(sources: list[str]) -> list[str]:
    """The order of the first known group sharing most names, then the rest as found."""
    group = max(SOURCE_ORDERS, key=lambda g: len(set(g) & set(sources)))
    known = [s for s in group if s in sources]
    return known + [s for s in sources if s not in known]


def _stat(values: list[float], how) -> float:
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(how(values)) if values.size else float("nan")


def markdown(tables: dict, folder: Path) -> str:
    lines = [
        f"# Results: {folder.name}",
        "",
        "BSSEval v4 (1 s windows, hop 1 s) and SI-SDR in dB: median over the frames of a "
        "track (only frames where every reference is above the silence threshold), then "
        f"median over tracks. SI-SDR is the {SI_SDR_VARIANT}. Rows marked * matched "
        "estimates to references by the best permutation. InstGlow SDR (where scored): "
        "the SDR of mono downmixes per 60 s segment (InstGlow protocol), median over a "
        "track's segments, then median over tracks.",
        "",
    ]
    for name, table in tables.items():
        sources = table["sources"]
        lines += [f"## Table: {name}", ""]
        if not sources:
            lines += ["No track was scored in this table (see the runs below).", ""]
        for metric in _metrics(table) if sources else ():
            lines += [
                f"### {metric}",
                "",
                "| method | " + " | ".join(sources) + " | mean |",
                "|---|" + "---:|" * (len(sources) + 1),
            ]
            for row in table["rows"]:
                cells = [_stat(table["values"][row, s, metric], np.median) for s in sources]
                mark = "*" if table["permutation"][row] == "best" else ""
                mean = _stat(cells, np.mean)
                lines.append(
                    f"| {row}{mark} | " + " | ".join(_fmt(c) for c in cells) + f" | {_fmt(mean)} |"
                )
            lines.append("")
        lines += [
            "### Runs",
            "",
            "| method | kind | ok | failed | skipped | NaN frames | x real time (median) |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in table["rows"]:
            status = table["status"][row]
            lines.append(
                f"| {row} | {table['kind'][row]} | {status['ok']} | {status['failed']} | "
                f"{status['skipped']} | {table['nan'][row]} | "
                f"{_stat(table['xrt'][row], np.median):.1f} |"
            )
        lines.append("")
    return "\n".join(lines)


def _fmt(value: float, digits: int = 2) -> str:
    if not np.isfinite(value):
        return "—"
    return "∞" if value > INFINITE_DB else f"{value:.{digits}f}"


def csv_rows(tables: dict) -> tuple[list[list], list[list]]:
    """(summary rows method,source,metric,median,mean; full rows with table and n)."""
    summary, full = [], []
    for name, table in tables.items():
        for row in table["rows"]:
            method = row if name == "sources" else f"{row} [{name}]"
            for source in table["sources"]:
                for metric in _metrics(table):
                    values = table["values"][row, source, metric]
                    median, mean = _stat(values, np.median), _stat(values, np.mean)
                    summary.append([method, source, metric, median, mean])
                    full.append([name, row, source, metric, median, mean, len(values)])
    return summary, full


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    writer.writerows([[f"{v:.4f}" if isinstance(v, float) else v for v in r] for r in rows])
    write_text(path, buffer.getvalue())


def box_plots(tables: dict, folder: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for name, table in tables.items():
        if not table["sources"]:
            continue  # nothing scored (every run skipped or failed)
        for metric in ("SDR", "SI-SDR"):
            sources, rows = table["sources"], table["rows"]
            fig, axes = plt.subplots(
                1, len(sources), figsize=(3.2 * len(sources), 4), sharey=True, squeeze=False
            )
            for ax, source in zip(axes[0], sources, strict=True):
                data = [
                    [v for v in table["values"][r, source, metric] if np.isfinite(v)] for r in rows
                ]
                ax.boxplot(data, showfliers=True)
                ax.set_xticks(range(1, len(rows) + 1), rows, rotation=60, ha="right")
                ax.set_title(source)
                ax.grid(axis="y", alpha=0.3)
            axes[0][0].set_ylabel(f"{metric} (dB), track medians")
            fig.suptitle(f"{folder.name}: {name}")
            fig.tight_layout()
            path = folder / "plots" / f"{name}_{metric}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_output(path) as tmp:
                fig.savefig(tmp, format="png", dpi=110)
            plt.close(fig)
            paths.append(path)
    return paths


def report(folder: str | Path) -> dict:
    folder = Path(folder)
    tables = aggregate(load_runs(folder))
    write_text(folder / "report.md", markdown(tables, folder))
    summary, full = csv_rows(tables)
    _write_csv(folder / "summary.csv", ["method", "source", "metric", "median", "mean"], summary)
    _write_csv(
        folder / "tables.csv",
        ["table", "method", "source", "metric", "median", "mean", "tracks"],
        full,
    )
    box_plots(tables, folder)
    return dict(sorted(tables.items(), key=lambda item: (item[0] != "sources", item[0])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", help="a folder written by eval/run.py")
    args = parser.parse_args(argv)
    try:
        report(args.results)
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print((Path(args.results) / "report.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
