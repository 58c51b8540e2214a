"""The `gensep` console script: `gensep demo`, `gensep separate`, `gensep render choir|band`,
`gensep priors list|add`, `gensep info`.

Library errors (`GensepError`), invalid arguments (`ValueError`) and file problems
(`OSError`) end the program with a one-line message and exit code 2, never a
traceback; `--debug` shows the traceback.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Sequence
from importlib import metadata

from gensep.errors import GensepError

DEPENDENCIES = ("jax", "flax", "optax", "orbax-checkpoint", "numpy", "scipy", "librosa")
DEPENDENCIES += ("soundfile", "soxr", "musdb", "museval", "mir_eval")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gensep", description="Unsupervised and generative music source separation."
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser(
        "demo",
        help="synthesise a four-voice example, separate it with the oracle mask, score it",
    )
    demo.add_argument("--config", default="configs/demo.yaml", help="YAML config")
    demo.add_argument("--out", default="out/demo", help="output folder")

    render = sub.add_parser("render", help="render a dataset with stems (and F0 truth)")
    kinds = render.add_subparsers(dest="kind", required=True)
    choir = kinds.add_parser("choir", help="Bach chorales, one stem per voice (S, A, T, B)")
    choir.add_argument("--programs", choices=("voice", "woodwind"), default="voice")
    choir.add_argument("--sample-rate", type=int, default=16000)
    choir.add_argument("--max-seconds", type=float, default=None, help="cut each chorale")
    choir.add_argument("--workers", type=int, default=1, help="chorales rendered in parallel")
    band = kinds.add_parser("band", help="procedural songs with vocals/drums/bass/other")
    band.add_argument("--sample-rate", type=int, default=44100)
    band.add_argument("--min-seconds", type=float, default=10.0)
    band.add_argument("--max-seconds", type=float, default=30.0)
    for kind in (choir, band):
        kind.add_argument("--out", required=True, help="dataset root (MUSDB layout)")
        kind.add_argument("--n-train", type=int, required=True)
        kind.add_argument("--n-test", type=int, required=True)
        kind.add_argument("--seed", type=int, default=0)
        kind.add_argument("--overwrite", action="store_true", help="re-render complete tracks")

    sub.add_parser("info", help="print versions and the JAX devices")
    sep = sub.add_parser("separate", help="separate an audio file into stem files")
    sep.add_argument("file", help="audio file (wav/flac/ogg/mp3), mono or stereo")
    sep.add_argument("--method", default="umss", help="a registered method (default umss)")
    sep.add_argument(
        "--f0",
        nargs="+",
        default=(),
        metavar="F0_CSV",
        help="one F0 file per source: <name>.f0.csv or name=path.csv",
    )
    sep.add_argument(
        "--score",
        metavar="SCORE",
        help="instead of --f0: a MIDI/MusicXML score of the piece (aligned to the recording), "
        "one source per part",
    )
    sep.add_argument(
        "--f0-method",
        choices=("score", "salience", "neural", "file"),
        help="where the F0s come from (default: file with --f0, score with --score, else "
        "neural, which separated best)",
    )
    sep.add_argument(
        "--f0-model",
        metavar="PATH",
        help="--f0-method neural: the F0 network (<name>.npz + .json); default: the shipped "
        "f0_choir_rendered (gensep/models/weights/f0_choir is the label-free one)",
    )
    sep.add_argument("--model", help="a trained model (<name>.npz + .json); default: shipped")
    sep.add_argument(
        "--priors",
        metavar="DIR",
        help="--method flow: the prior registry folder (default: the shipped band priors)",
    )
    sep.add_argument(
        "--sources", metavar="A,B,...", help="--method flow: the priors to use (default: all)"
    )
    sep.add_argument("--out", default="separated", help="output folder")

    priors = sub.add_parser("priors", help="the flow-prior registry: list, add an instrument")
    actions = priors.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="the registered priors")
    add = actions.add_parser("add", help="train one prior on one stem and register it")
    add.add_argument("name", help="the prior's name (and, by default, the stem it learns)")
    add.add_argument("--data", required=True, help="dataset root (MUSDB layout)")
    add.add_argument("--config", required=True, help="configs/prior_<data>.yaml")
    add.add_argument("--source", help="the stem file to learn, <source>.wav (default: NAME)")
    add.add_argument("--steps", type=int, help="training steps (default: the config's)")
    add.add_argument(
        "--workdir", help="run folder (checkpoints; default DIR/.runs/NAME, not a prior)"
    )
    add.add_argument("--resume", action="store_true", help="continue the run in the workdir")
    add.add_argument("--overwrite", action="store_true", help="replace a prior of that name")
    for action in (listing, add):
        action.add_argument("--priors", default="priors", metavar="DIR", help="registry folder")
    return parser


def _priors(args: argparse.Namespace) -> None:
    from gensep.flows import priors

    if args.action == "list":
        rows = priors.list_priors(args.priors)
        print(f"{'name':<16} {'rate':>6} {'bits/dim':>9} {'steps':>7} {'size':>9}  data")
        for row in rows:
            card = row["card"]
            data = card.get("training", {}).get("data", {})
            bpd = card.get("heldout", {}).get("bits_per_dim")
            print(
                f"{row['name']:<16} {card['spectro']['sample_rate']:>6} "
                f"{'n/a' if bpd is None else f'{bpd:.3f}':>9} "
                f"{card.get('training', {}).get('steps', '?'):>7} "
                f"{row['bytes'] / 1e6:>7.2f}MB  "
                f"{data.get('root', '?')}/{data.get('split', '?')} {data.get('source', '?')}.wav "
                f"({len(data.get('tracks', []))} tracks, {data.get('minutes', 0):.1f} min)"
            )
        if not rows:
            print(f"(no priors in {args.priors})")
        return
    from pathlib import Path

    from gensep.flows.trainer import load_run_config, train_prior

    name = priors.check_name(args.name)
    target = priors.prior_dir(args.priors, name)
    if target.exists() and not args.overwrite:
        raise GensepError(f"{target}: prior {name!r} exists; pass --overwrite to retrain it")
    workdir = Path(args.workdir or Path(args.priors) / ".runs" / name)
    if (workdir / "checkpoints").exists() and not args.resume:
        raise GensepError(
            f"{workdir} holds a run: pass --resume to continue it, or another --workdir"
        )
    cfg = load_run_config(args.config, args.source or name, args.data, args.steps)
    train_prior(cfg, workdir, args.resume, args.priors, name, args.overwrite)


def _separate(args: argparse.Namespace) -> None:
    from gensep.separation.files import separate_file

    separate_file(
        args.file,
        args.out,
        args.method,
        args.f0,
        args.model,
        score=args.score,
        f0_method=args.f0_method,
        f0_model=args.f0_model,
        priors=args.priors,
        sources=args.sources,
    )


def _render(args: argparse.Namespace) -> None:
    common = dict(out=args.out, n_train=args.n_train, n_test=args.n_test, seed=args.seed)
    if args.kind == "choir":
        from gensep.data.choir import render_choir

        meta = render_choir(
            **common,
            sample_rate=args.sample_rate,
            programs=args.programs,
            max_seconds=args.max_seconds,
            workers=args.workers,
            overwrite=args.overwrite,
        )
    else:
        from gensep.data.band import render_band

        meta = render_band(
            **common,
            sample_rate=args.sample_rate,
            min_seconds=args.min_seconds,
            max_seconds=args.max_seconds,
            overwrite=args.overwrite,
        )
    error = meta.get("max_abs_error", meta.get("max_abs_error_sum_of_stems", "n/a"))
    print(
        f"wrote {args.out} ({args.n_train} train, {args.n_test} test tracks); "
        f"max |sum(stems) - mixture| = {error}"
    )


def _demo(args: argparse.Namespace) -> None:
    from gensep.config import load_config
    from gensep.demo import DemoConfig, run_demo

    run_demo(load_config(args.config, DemoConfig), args.out)


def _info(args: argparse.Namespace) -> None:
    import jax

    import gensep

    print(f"gensep {gensep.__version__} on Python {platform.python_version()}")
    for name in DEPENDENCIES:
        try:
            print(f"  {name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            print(f"  {name} (not installed)")
    print(f"JAX backend {jax.default_backend()}, devices: {jax.devices()}")


def main(argv: Sequence[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    commands = {
        "demo": _demo,
        "info": _info,
        "render": _render,
        "separate": _separate,
        "priors": _priors,
    }
    try:
        commands[args.command](args)
    except (GensepError, ValueError, OSError) as err:  # user-facing: bad input or file
        if args.debug:
            raise
        print(f"gensep: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
