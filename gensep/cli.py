"""The `gensep` console script: `gensep demo`, `gensep info`.

Library errors (`GensepError`) end the program with a one-line message and exit code 2,
never a traceback; `--debug` shows the traceback.
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

    sub.add_parser("info", help="print versions and the JAX devices")
    return parser


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
    commands = {"demo": _demo, "info": _info}
    try:
        commands[args.command](args)
    except GensepError as err:
        if args.debug:
            raise
        print(f"gensep: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
