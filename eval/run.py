"""Run separation methods over a dataset and score them: one JSON per (method, track).

    python eval/run.py --config configs/eval_choir.yaml --out results/choir
    python eval/run.py --dataset data/band --methods irm,mixture,hpss --out results/band
    python eval/run.py --config configs/eval_musdb.yaml --root /path/to/musdb18 --out results/musdb

Command-line options override the config. Re-running the same command skips finished
(method, track) pairs; `python eval/report.py results/NAME` makes the tables and plots.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # harness.py beside this file

from gensep import evaluation as ev
from gensep.config import load_config, save_config
from gensep.errors import GensepError

KINDS = ("musdb", "bach10")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--config", help="configs/eval_*.yaml (options below override it)")
    parser.add_argument(
        "--dataset", help="a MUSDB-layout folder (e.g. a rendered set), 'musdb' or 'bach10'"
    )
    parser.add_argument("--root", help="the MUSDB18 or Bach10 root (with --dataset musdb|bach10)")
    parser.add_argument("--musdb-root", dest="root", help="same as --root")
    parser.add_argument("--split", help="dataset split (default test)")
    parser.add_argument(
        "--methods", help="comma-separated rows: labels from the config or registered names"
    )
    parser.add_argument("--out", required=True, help="results folder, e.g. results/choir")
    parser.add_argument("--scorer", choices=("fast", "museval"))
    parser.add_argument("--jobs", type=int, help="tracks in parallel (processes)")
    parser.add_argument("--max-tracks", type=int)
    parser.add_argument("--max-seconds", type=float, help="score only each track's start")
    parser.add_argument("--save-estimates", action="store_true", default=None)
    parser.add_argument(
        "--instglow",
        action="store_true",
        default=None,
        help="also score one SDR per 60 s mono segment (InstGlow protocol)",
    )
    return parser


def resolve_config(args: argparse.Namespace) -> ev.EvalConfig:
    """The config file (if any) with the command-line overrides applied."""
    if args.config:
        config = load_config(args.config, ev.EvalConfig)
    elif args.dataset and args.methods:
        config = ev.EvalConfig(dataset=ev.DatasetConfig(), methods=[])
    else:
        raise GensepError("pass --config, or both --dataset and --methods")
    dataset = config.dataset
    if args.dataset:
        if args.dataset in KINDS:
            dataset = dataclasses.replace(dataset, kind=args.dataset)
        else:
            dataset = dataclasses.replace(dataset, kind="layout", root=args.dataset)
    overrides = {
        "root": args.root,
        "split": args.split,
        "max_tracks": args.max_tracks,
        "max_seconds": args.max_seconds,
    }
    dataset = dataclasses.replace(dataset, **{k: v for k, v in overrides.items() if v is not None})
    methods = config.methods
    if args.methods:
        by_row = {m.row: m for m in config.methods}
        methods = [by_row.get(row, ev.MethodConfig(name=row)) for row in args.methods.split(",")]
    top = {
        "scorer": args.scorer,
        "jobs": args.jobs,
        "save_estimates": args.save_estimates,
        "instglow": args.instglow,
    }
    return dataclasses.replace(
        config, dataset=dataset, methods=methods, **{k: v for k, v in top.items() if v is not None}
    )


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    import harness
    from tqdm import tqdm

    try:
        config = resolve_config(args)
        out = Path(args.out)
        save_config(config, out / "config.yaml")
        records = harness.run(
            config, out, progress=lambda it, total: tqdm(it, total=total, unit="track")
        )
    except (GensepError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    failed = [r for r in records if r["status"] == "failed"]
    skipped = [r for r in records if r["status"] == "skipped"]
    print(
        f"{len(records)} (method, track) runs now: {len(failed)} failed, "
        f"{len(skipped)} skipped; results in {out}"
    )
    for record in failed:
        print(f"  failed {record['table']}/{record['row']}/{record['track']}: {record['error']}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
