"""Train one source-only flow prior (DESIGN §3.2) and register it.

    python train/prior.py --config configs/prior_band.yaml --source vocals --data data/band \\
        --workdir runs/prior_band_vocals --registry runs/priors/band
    python train/prior.py ... --resume            # continue (and register at the end)
    python train/prior.py --export runs/prior_band_vocals --to runs/priors/band/vocals

    gensep separate song.wav --method flow --priors runs/priors/band \\
        --sources vocals,drums,bass,other

One flow: train with --registry DIR and the prior is registered as DIR/<source> (or
--name) when training ends: held-out bits/dim on the split's last tracks by name, the
card, an atomic folder write that touches no other prior. Without --registry the run only
trains; `--export WORKDIR --to DIR/NAME` registers it later (the same code).
`gensep priors add NAME --data PATH --config ... --priors DIR` runs the same training
(workdir DIR/.runs/NAME). Only `--source`'s stems are read (`ExcerptSampler(mode=
"source")`; no mixture is opened); see `gensep.flows.trainer` for the pipeline.
"""

from __future__ import annotations

import sys


def _arguments(parser) -> list[str]:
    parser.add_argument("--source", help="the stem to learn (overrides data.source)")
    parser.add_argument("--data", help="dataset root (overrides data.root)")
    parser.add_argument("--steps", type=int, help="training steps (overrides train.steps)")
    parser.add_argument("--registry", metavar="DIR", help="register the prior in DIR at the end")
    parser.add_argument("--name", help="the prior's name in the registry (default: --source)")
    parser.add_argument("--overwrite", action="store_true", help="replace a registered prior")
    return ["source", "data", "steps", "registry", "name", "overwrite"]


def train(config, workdir, resume, *, source, data, steps, registry, name, overwrite) -> None:
    from gensep.flows.trainer import load_run_config, train_prior

    cfg = load_run_config(config, source, data, steps)
    train_prior(cfg, workdir, resume, registry, name, overwrite)


def export(workdir, to, *, overwrite, **_) -> object:
    from gensep.flows.trainer import register_run

    return register_run(workdir, to, overwrite)


def main(argv: list[str] | None = None) -> int:
    from gensep.flows.priors import load_prior
    from gensep.training import training_cli

    def check(path):  # the registered prior must load
        load_prior(path.parent, path.name)

    doc = __doc__.split("\n\n")[0]
    return training_cli(argv, doc, "configs/prior_<data>.yaml", train, check, _arguments, export)


if __name__ == "__main__":
    sys.exit(main())
