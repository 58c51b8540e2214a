"""Size and training speed of Glow priors (`gensep.flows`) at prior-sized patches.

Run: `.venv/bin/python bench/bench_flow.py [--patch 64,128] [--levels 3] [--steps 8]
[--hidden 64] [--batch 16] [--repeats 5] [--noise] [--json OUT.json]`.

Reported: trainable parameters and their float32 size (MB = 1e6 bytes, what a saved prior
costs before compression); the first jitted `flow_loss` training step (compile + run:
forward, backward, Adam) and the median of `--repeats` further steps, as steps/s. The
input is random data: speed does not depend on it. `--noise` trains noise-conditioned
(sigmas 0, 0.05, 0.2), the setting BASIS-style annealing needs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patch", default="64,128", help="frames,bins")
    parser.add_argument("--levels", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--noise", action="store_true")
    parser.add_argument("--json")
    args = parser.parse_args(argv)

    import jax
    import numpy as np
    from flax import nnx

    from gensep.flows import FlowConfig, Glow, flow_loss
    from gensep.models.masknet import param_count
    from gensep.training import TrainConfig, make_mesh, shard_batch, train_step_for

    frames, bins = (int(v) for v in args.patch.split(","))
    config = FlowConfig(
        patch_frames=frames,
        patch_bins=bins,
        levels=args.levels,
        steps=args.steps,
        hidden=args.hidden,
        noise_levels=(0.0, 0.05, 0.2) if args.noise else (),
    )
    model = Glow(config, rngs=nnx.Rngs(0))
    x = np.random.default_rng(0).normal(size=(args.batch, *config.patch_shape))
    x = x.astype(np.float32)
    model.initialize(jax.numpy.asarray(x), sigma=0.0 if config.conditioned else None)
    mesh = make_mesh(jax.devices()[:1])
    cfg = TrainConfig(steps=1000, batch_size=args.batch, learning_rate=1e-3)
    _, state, step = train_step_for(model, flow_loss, cfg, mesh)
    batch = shard_batch(mesh, {"x": x})

    def run():
        nonlocal state
        state, metrics = step(state, batch)
        jax.block_until_ready(metrics["loss"])

    start = time.perf_counter()
    run()
    first = time.perf_counter() - start
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    n = param_count(model)
    result = {
        "config": {**vars(config), "batch": args.batch},
        "params": n,
        "size_mb": round(4 * n / 1e6, 3),
        "first_step_s": round(first, 2),
        "step_s": round(statistics.median(times), 3),
        "steps_per_s": round(1 / statistics.median(times), 3),
        **machine(),
    }
    return emit(result, args.json)


def machine() -> dict:
    """The CPU, its core count and JAX's devices: where a benchmark ran."""
    import jax

    return {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "devices": [str(d) for d in jax.devices()],
    }


def emit(result: dict, path: str | None) -> dict:
    """Print `result` as JSON, and write it to `path` if given."""
    print(json.dumps(result, indent=1))
    if path:
        with open(path, "w") as f:
            json.dump(result, f, indent=1)
    return result


if __name__ == "__main__":
    main()
