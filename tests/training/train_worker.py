"""A tiny regression run for the training tests, importable and runnable as a subprocess.

Model: a 2-layer MLP (16 -> 8 -> 1) learning a fixed linear function of 16-sample noise
excerpts drawn by ExcerptSampler, so data state resume is exercised too.

    python train_worker.py fit WORKDIR --steps 12 [--kill-at 8] [--out params.npz]
    python train_worker.py devices           # one step on 1 vs 2 devices, JSON on stdout
    python train_worker.py distributed WORKDIR --port P --process-id I --steps 6 --out F
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

import numpy as np


def make_tracks():
    from gensep.data.track import Track

    rng = np.random.default_rng(7)
    return [
        Track(f"t{i}", 8000, (0.3 * rng.standard_normal((1, 400))).astype(np.float32), {})
        for i in range(3)
    ]


def make_sampler(batch_size: int = 8, num_shards: int = 1, shard_index: int = 0):
    from gensep.data.sampler import ExcerptSampler

    return ExcerptSampler(
        make_tracks(),
        16,
        batch_size,
        "mixture",
        seed=3,
        num_shards=num_shards,
        shard_index=shard_index,
    )


def make_model(seed: int = 0):
    import jax
    from flax import nnx

    class MLP(nnx.Module):
        def __init__(self, rngs: nnx.Rngs) -> None:
            self.layers = nnx.List([nnx.Linear(16, 8, rngs=rngs), nnx.Linear(8, 1, rngs=rngs)])

        def __call__(self, x):  # [B, 16] -> [B, 1]
            return self.layers[1](jax.nn.tanh(self.layers[0](x)))

    return MLP(nnx.Rngs(seed))


def loss_fn(model, batch, rng):
    import jax
    import jax.numpy as jnp

    x = batch["mixture"][:, 0, :]  # [B, 16]
    target = x @ jnp.linspace(-1.0, 1.0, 16)  # [B]
    # A little keyed noise, so the RNG stream is part of what resume must reproduce.
    noise = 1e-3 * jax.random.normal(rng, target.shape)
    loss = jnp.mean((model(x)[:, 0] - target - noise) ** 2)
    return loss, {"mse": loss}


def tiny_config(**changes):
    from gensep.training import TrainConfig

    base = dict(
        steps=12,
        batch_size=8,
        learning_rate=1e-2,
        warmup_steps=2,
        log_every=2,
        checkpoint_every=4,
        keep_checkpoints=2,
        seed=5,
    )
    return TrainConfig(**{**base, **changes})


def flat_params(params) -> dict[str, np.ndarray]:
    import jax

    from gensep.training import host_value

    leaves = jax.tree_util.tree_leaves_with_path(params)
    return {jax.tree_util.keystr(p): host_value(v) for p, v in leaves}


class KillAt:
    """Forward a sampler, but SIGKILL this process when drawing batch number `at`."""

    def __init__(self, sampler, at: int | None) -> None:
        self.sampler, self.at, self.drawn = sampler, at, 0

    def __iter__(self):
        return self

    def __next__(self):
        self.drawn += 1
        if self.at is not None and self.drawn == self.at:
            os.kill(os.getpid(), signal.SIGKILL)
        return next(self.sampler)

    def state_dict(self):
        return self.sampler.state_dict()

    def load_state_dict(self, state):
        self.sampler.load_state_dict(state)


def run_fit(args) -> None:
    from gensep.training import fit

    data = KillAt(make_sampler(), args.kill_at)
    _, state = fit(make_model(), loss_fn, data, tiny_config(steps=args.steps), args.workdir)
    if args.out:
        np.savez(args.out, **flat_params(state.params))


def run_devices() -> None:
    import jax

    from gensep import training as tr

    assert jax.device_count() == 2, jax.devices()
    cfg = tiny_config()
    batch = make_sampler().next_batch()
    out = {}
    for n in (1, 2):
        mesh = tr.make_mesh(jax.devices()[:n])
        _, state, step = tr.train_step_for(make_model(), loss_fn, cfg, mesh)
        # Two steps: the first has learning rate 0 (warmup starts at 0).
        for _ in range(2):
            state, metrics = step(state, tr.shard_batch(mesh, batch))
        out[n] = (float(metrics["loss"]), flat_params(state.params))
    (loss1, p1), (loss2, p2) = out[1], out[2]
    diffs = {k: float(np.max(np.abs(p1[k] - p2[k]))) for k in p1}
    print(json.dumps({"loss1": loss1, "loss2": loss2, "param_max_abs_diff": max(diffs.values())}))


def run_distributed(args) -> None:
    import jax

    jax.distributed.initialize(
        coordinator_address=f"127.0.0.1:{args.port}", num_processes=2, process_id=args.process_id
    )
    from gensep.training import fit

    assert jax.process_count() == 2 and jax.device_count() == 2
    sampler = make_sampler(num_shards=2, shard_index=jax.process_index())
    _, state = fit(
        make_model(),
        loss_fn,
        sampler,
        tiny_config(steps=args.steps),
        args.workdir,
        progress=False,
    )
    np.savez(args.out, **flat_params(state.params))
    jax.distributed.shutdown()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["fit", "devices", "distributed"])
    parser.add_argument("workdir", nargs="?")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--out")
    parser.add_argument("--port", type=int)
    parser.add_argument("--process-id", type=int)
    args = parser.parse_args(argv)
    {"fit": run_fit, "devices": lambda a: run_devices(), "distributed": run_distributed}[args.mode](
        args
    )


if __name__ == "__main__":
    sys.exit(main())
