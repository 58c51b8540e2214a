"""Do a registry's priors tell their stems apart? Held-out stem patches scored by every prior.

    python eval/priors.py --priors gensep/models/priors/band --data data/band
    python eval/priors.py --priors runs/priors/choir --data data/choir --json out.json

For each prior NAME: the held-out tracks of its card's training split (the rule of
`gensep.flows.trainer.split_tracks`, so no prior saw them), NAME's stems, the card's
seeded held-out excerpts (the ones its held-out bits/dim came from, no gain change), plus
Gaussian noise at each of the priors' noise levels; every prior scores every patch in
bits/dim at that level. Printed per level: the confusion matrix of the stem a patch came
from against the prior that finds it likeliest (argmin bits/dim), its accuracy, and the
mean bits/dim of each (stem, prior) pair. A likelihood separation can only work where the
rows' minima sit on the diagonal.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path


def confusion(registry: str, root: str | None = None) -> dict:
    """{"names", "levels": {sigma: {"confusion", "accuracy", "mean_bits_per_dim"}}}."""
    import numpy as np

    from gensep.config import from_dict
    from gensep.flows import trainer
    from gensep.flows.priors import load_priors

    priors = load_priors(registry)
    names = [p.name for p in priors]
    levels = sorted(priors[0].model.config.noise_levels or (0.0,))
    patches = {}
    for prior in priors:
        cfg = from_dict(trainer.PriorRunConfig, prior.card["config"], f"{prior.name} card")
        if root is not None:
            cfg = dataclasses.replace(cfg, data=dataclasses.replace(cfg.data, root=root))
        patches[prior.name] = trainer.heldout_patches(cfg, trainer.split_tracks(cfg.data)[1])
    out = {"registry": str(registry), "names": names, "levels": {}}
    for k, sigma in enumerate(levels):
        matrix = np.zeros((len(names), len(names)), int)
        means = np.zeros((len(names), len(names)))
        for i, stem in enumerate(names):
            bpd = np.stack(  # [excerpts, priors], the same noise for every prior
                [trainer.noisy_bits_per_dim(p.model, patches[stem], sigma, k) for p in priors],
                axis=1,
            )
            np.add.at(matrix[i], np.argmin(bpd, axis=1), 1)
            means[i] = bpd.mean(axis=0)
        out["levels"][str(sigma)] = {
            "confusion": matrix.tolist(),
            "accuracy": float(np.trace(matrix) / matrix.sum()),
            "mean_bits_per_dim": np.round(means, 4).tolist(),
        }
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--priors", required=True, help="a prior registry folder")
    parser.add_argument("--data", help="the dataset root, if not where the cards say")
    parser.add_argument("--json", help="also write the result here")
    args = parser.parse_args(argv)
    from gensep.atomic import write_json
    from gensep.errors import GensepError

    try:
        result = confusion(args.priors, args.data)
    except GensepError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    names = result["names"]
    width = max(len(n) for n in names) + 2
    for sigma, r in result["levels"].items():
        print(f"\nnoise {sigma}: accuracy {r['accuracy']:.3f} (rows: stem, columns: prior)")
        print(" " * width + "".join(f"{n:>{width}}" for n in names) + "   mean bits/dim")
        for name, row, mean in zip(names, r["confusion"], r["mean_bits_per_dim"], strict=True):
            cells = "".join(f"{c:>{width}}" for c in row)
            print(f"{name:<{width}}{cells}   " + " ".join(f"{m:7.3f}" for m in mean))
    if args.json:
        write_json(Path(args.json), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
