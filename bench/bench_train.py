"""Training throughput of the real loop: steps/s of `gensep.training.fit` on the real data
pipeline, and the fraction of step time spent waiting on data.

Run: `.venv/bin/python bench/bench_train.py [--config configs/umss_choir.yaml]
[--root data/choir] [--steps 60] [--json OUT.json]`.

`fit` runs `--steps` steps of the config's model and batch (no checkpoint until the end)
on mixtures + F0 read by `gensep.data.mixtures` from `--root` (default: the config's
data root; if it is not there, the bundled example chorale in a temporary MUSDB layout —
the sampler's cost does not depend on how many tracks it draws from). Its metrics.jsonl
gives steps/s and data_wait_fraction per logged window; the first window (compilation) is
left out.

reference: the same jitted train step (`make_train_step`) called on one batch that is
already on the device, no data pipeline, no logging, timed over the same number of steps.
loop overhead = reference steps/s / fit steps/s, both measured in this run (1.0 = the loop
costs nothing beyond the step).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))


def main(argv: list[str] | None = None) -> int:
    tmp = Path(tempfile.mkdtemp(prefix="bench_train_"))
    try:
        return run(argv, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(argv: list[str] | None, tmp: Path) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", default="configs/umss_choir.yaml")
    parser.add_argument("--root", help="dataset root (default: the config's)")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import jax
    from flax import nnx
    from umss import UMSSRunConfig, batches

    from gensep.config import load_config
    from gensep.data.example import example
    from gensep.data.layout import write_track
    from gensep.data.mixtures import load_mixtures
    from gensep.models.umss import UMSS, umss_loss
    from gensep.training import (
        fit,
        make_mesh,
        shard_batch,
        train_step_for,
    )

    cfg = load_config(args.config, UMSSRunConfig)
    steps, every = args.steps, args.log_every
    train_cfg = dataclasses.replace(
        cfg.train, steps=steps, log_every=every, checkpoint_every=steps, warmup_steps=0
    )
    root = Path(args.root or cfg.data.root)
    split = cfg.data.split
    if not (root / split).is_dir():
        print(f"{root}/{split} not found: using the bundled example chorale")
        root, split = tmp / "data", "train"
        write_track(root, split, example())
    rate = cfg.model.sample_rate
    tracks = load_mixtures(root, split, cfg.data.sources, rate, cfg.data.max_tracks)

    model = UMSS(cfg.model, rngs=nnx.Rngs(0))
    fit(model, umss_loss, batches(cfg, tracks), train_cfg, tmp / "run", progress=False)
    rows = [json.loads(line) for line in (tmp / "run" / "metrics.jsonl").read_text().splitlines()]
    timed = rows[1:]  # the first window includes compilation
    fit_rate = sum(every for _ in timed) / sum(every / r["steps_per_s"] for r in timed)
    wait = float(np.mean([r["data_wait_fraction"] for r in timed]))

    mesh = make_mesh()
    _, state, step = train_step_for(UMSS(cfg.model, rngs=nnx.Rngs(0)), umss_loss, train_cfg, mesh)
    batch = shard_batch(mesh, next(iter(batches(cfg, tracks))))
    state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    n = len(timed) * every
    start = time.perf_counter()
    for _ in range(n):
        state, metrics = step(state, batch)
    jax.block_until_ready(metrics)
    ref_rate = n / (time.perf_counter() - start)

    excerpts = cfg.train.batch_size * fit_rate
    audio_s = excerpts * cfg.data.excerpt_seconds
    result = {
        "config": args.config,
        "tracks": len(tracks),
        "batch": f"{cfg.train.batch_size} x {cfg.data.excerpt_seconds} s",
        "steps_timed": n,
        "fit_steps_per_s": round(fit_rate, 3),
        "reference_steps_per_s": round(ref_rate, 3),
        "loop_overhead": round(ref_rate / fit_rate, 3),
        "data_wait_fraction": round(wait, 4),
        "audio_seconds_per_s": round(audio_s, 1),
        "devices": [str(d) for d in jax.devices()],
        "machine": platform.processor() or platform.machine(),
    }
    print(f"config {args.config}: {len(tracks)} mixtures, batch {result['batch']}")
    print(f"{'':24}{'steps/s':>10}")
    print(f"{'fit (data + loop)':24}{fit_rate:>10.3f}")
    print(f"{'reference (step only)':24}{ref_rate:>10.3f}")
    print(f"loop overhead {ref_rate / fit_rate:.3f}x; data wait {100 * wait:.2f} % of step time")
    print(f"{audio_s:.0f} s of mixture audio trained on per second")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
