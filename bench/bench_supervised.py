"""Size and speed of the five supervised baselines at their default sizes (choir setting).

Run: `.venv/bin/python bench/bench_supervised.py [--seconds 30] [--repeats 3]
[--archs blstm,unet,cnn,transformer,crnn] [--train] [--json OUT.json]`.

Each architecture is built at its default sizes (`gensep.models.masknet.ARCH_SIZES`) for
the choir configs' STFT (16 kHz, 1024 / 256, 4 voices), saved untrained (speed does not
depend on the weights) and run through the registry like a trained model
(`separate(..., method=arch, model=PATH)`, 10 s chunks, 1 s overlap) on the bundled
chorale tiled to `--seconds` of 16 kHz mono. Reported per architecture:
- params: trainable scalars.
- first s: the first call (loads the model, compiles the chunk function once).
- steady s / x real time: the median of `--repeats` further calls; audio s per wall s.
- ratio: steady / the reference's steady time, the reference being the `irm` oracle
  (a NumPy/librosa mask method at the 16 kHz eval STFT, 2048 / 256) separating the same
  input in this run: > 1 means slower than the oracle's STFT round trip.
With `--train`: the median time of one training step (batch 16, 2 s excerpts, forward +
backward + Adam, jitted, after compilation), and steps/s — what an equal-CPU-time budget
divides by.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ARCHS = ("blstm", "unet", "cnn", "transformer", "crnn")


def timed(fn, repeats: int) -> tuple[float, float]:
    """(first call, median of `repeats` further calls), seconds."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def train_step_seconds(config, repeats: int, batch: int = 16, seconds: float = 2.0) -> float:
    import jax
    import numpy as np
    from flax import nnx

    from gensep.models.masknet import MaskNet, masknet_loss
    from gensep.training import (
        TrainConfig,
        make_mesh,
        shard_batch,
        train_step_for,
    )

    cfg = TrainConfig(steps=1000, batch_size=batch, learning_rate=1e-3)
    mesh = make_mesh(jax.devices()[:1])
    model = MaskNet(config, rngs=nnx.Rngs(0))
    _, state, step = train_step_for(model, masknet_loss, cfg, mesh)
    rng = np.random.default_rng(0)
    n = round(seconds * config.sample_rate)
    sources = rng.normal(0, 0.1, (batch, len(config.sources), 1, n)).astype(np.float32)
    data = shard_batch(mesh, {"mixture": sources.sum(axis=1), "sources": sources})
    holder = [state]

    def one():
        holder[0], metrics = step(holder[0], data)
        jax.block_until_ready(metrics["loss"])

    return timed(one, repeats)[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--archs", default=",".join(ARCHS))
    parser.add_argument("--train", action="store_true", help="also time one training step")
    parser.add_argument("--json", help="write the rows as JSON here")
    args = parser.parse_args(argv)

    import numpy as np
    from flax import nnx

    from gensep.config import to_dict
    from gensep.data.example import example
    from gensep.models.masknet import MaskNet, MaskNetConfig, param_count
    from gensep.models.store import save_model
    from gensep.separation import separate

    track = example()
    reps = int(np.ceil(args.seconds * track.rate / track.mixture.shape[-1]))
    n = int(args.seconds * track.rate)
    mixture = np.tile(track.mixture, reps)[:, :n]
    references = {k: np.tile(v, reps)[:, :n] for k, v in track.sources.items()}
    ref_first, ref = timed(
        lambda: separate(mixture, track.rate, "irm", references=references), args.repeats
    )
    print(
        f"{args.seconds:.0f} s of {track.rate} Hz mono, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()}); reference irm: {ref:.3f} s "
        f"({args.seconds / ref:.0f}x real time)"
    )
    head = (
        f"{'arch':<12}{'params':>10}{'first s':>9}{'steady s':>10}{'x real time':>13}{'ratio':>8}"
    )
    if args.train:
        head += f"{'step s':>9}{'steps/s':>9}"
    print(head)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs.split(","):
            config = MaskNetConfig(arch=arch, sources=tuple(track.sources))
            model = MaskNet(config, rngs=nnx.Rngs(0))
            params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
            path = save_model(Path(tmp) / arch, params, {"config": {"model": to_dict(config)}})
            first, steady = timed(
                lambda arch=arch, path=path: separate(mixture, track.rate, arch, model=path),
                args.repeats,
            )
            row = {
                "arch": arch,
                "params": param_count(model),
                "first_s": round(first, 3),
                "steady_s": round(steady, 3),
                "x_real_time": round(args.seconds / steady, 1),
                "ratio_vs_irm": round(steady / ref, 2),
            }
            line = (
                f"{arch:<12}{row['params']:>10,}{first:>9.2f}{steady:>10.3f}"
                f"{row['x_real_time']:>13.1f}{row['ratio_vs_irm']:>8.2f}"
            )
            if args.train:
                step = train_step_seconds(config, args.repeats)
                row.update(train_step_s=round(step, 3), steps_per_s=round(1 / step, 2))
                line += f"{step:>9.3f}{1 / step:>9.2f}"
            print(line, flush=True)
            rows.append(row)
    if args.json:
        out = {
            "seconds": args.seconds,
            "rate": track.rate,
            "reference": {"method": "irm", "first_s": ref_first, "steady_s": ref},
            "rows": rows,
        }
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
