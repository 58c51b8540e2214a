"""Shared training parts: config, optimiser, device mesh, train state and step, the loop.

Data parallel the way JAX does it now: one 1-D `Mesh` over every device of every process
(axis "batch"), the state replicated, the batch sharded on its first axis, and one
`jax.jit`-ed step. The loss is a mean over the global batch, so XLA inserts the gradient
all-reduce itself; the same code runs on 1 device, N devices and several hosts (after
`jax.distributed.initialize()`).

Usage for a model (e.g. UMSS)::

    model = MyModel(cfg.model, rngs=nnx.Rngs(cfg.train.seed))
    def loss_fn(model, batch, rng):          # batch: dict of global arrays
        loss = ...                           # mean over the batch
        return loss, {"spectral": loss}
    model, state = fit(model, loss_fn, sampler, cfg.train, workdir, config=to_dict(cfg))

Random keys live in the state as raw key data (uint32), so they checkpoint as arrays.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from gensep.checkpoint import Checkpoints, make_card
from gensep.errors import TrainingError

Batch = dict[str, Any]
LossFn = Callable[[nnx.Module, Batch, jax.Array], tuple[jax.Array, dict[str, jax.Array]]]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training-loop settings; a `train:` section of a model's YAML config.

    batch_size is global (all devices of all hosts); learning_rate is the peak after a linear
    warmup of warmup_steps; decay "cosine" decays to 0 at `steps`, "constant" stays.
    grad_clip_norm <= 0 disables clipping. log_every / checkpoint_every are in steps.
    """

    steps: int
    batch_size: int
    learning_rate: float
    seed: int = 0
    warmup_steps: int = 0
    decay: str = "cosine"
    weight_decay: float = 0.0
    grad_clip_norm: float = 1.0
    log_every: int = 50
    checkpoint_every: int = 1000
    keep_checkpoints: int = 3

    def __post_init__(self) -> None:
        if self.decay not in ("cosine", "constant"):
            raise ValueError(f"decay {self.decay!r}: use 'cosine' or 'constant'")
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} {getattr(self, name)!r} must be >= 1")


def make_schedule(cfg: TrainConfig) -> optax.Schedule:
    """Learning rate at each step: linear warmup from 0, then cosine (to 0) or constant."""
    warmup = max(cfg.warmup_steps, 0)
    if cfg.decay == "constant":
        if warmup == 0:
            return optax.constant_schedule(cfg.learning_rate)
        return optax.linear_schedule(0.0, cfg.learning_rate, warmup)
    return optax.warmup_cosine_decay_schedule(
        0.0, cfg.learning_rate, warmup, max(cfg.steps, warmup + 1), end_value=0.0
    )


def make_optimizer(cfg: TrainConfig) -> optax.GradientTransformation:
    """Global-norm clipping, then AdamW (weight_decay 0 = Adam) on `make_schedule(cfg)`."""
    adam = optax.adamw(make_schedule(cfg), weight_decay=cfg.weight_decay)
    if cfg.grad_clip_norm > 0:
        return optax.chain(optax.clip_by_global_norm(cfg.grad_clip_norm), adam)
    return adam


def make_mesh(devices: Iterable[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh with axis "batch" over `devices` (default: all devices of all processes)."""
    return Mesh(np.asarray(list(devices or jax.devices())), ("batch",))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def shard_batch(mesh: Mesh, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """This process's rows [b_local, ...] of each array -> one global array [B, ...] sharded
    on axis 0 over the mesh, B = b_local x process count (rows ordered by process index)."""
    sharding = NamedSharding(mesh, P("batch"))
    n_dev, n_proc = mesh.devices.size, jax.process_count()
    out = {}
    for name, local in batch.items():
        local = np.asarray(local)
        global_rows = local.shape[0] * n_proc if local.ndim else 0
        if global_rows == 0 or global_rows % n_dev:
            raise ValueError(
                f"batch[{name!r}] {local.shape}: the global batch ({local.shape[:1]} rows x "
                f"{n_proc} processes) must be a positive multiple of the {n_dev} devices — "
                "change batch_size"
            )
        shape = (global_rows, *local.shape[1:])
        out[name] = jax.make_array_from_process_local_data(sharding, local, shape)
    return out


def host_value(x: jax.Array) -> np.ndarray:
    """A replicated array's value as numpy, also when other processes hold some devices."""
    return np.asarray(x if x.is_fully_addressable else x.addressable_data(0))


class TrainState(NamedTuple):
    """Everything that changes during training, replicated on every device.

    params: pure dict of the model's nnx.Param arrays. model_state: pure dict of its other
    variables (e.g. BatchNorm statistics). opt_state: optax state. step: int32 [], steps
    done. rng: uint32 raw key data of the training key (jax.random.key_data).
    """

    params: Any
    model_state: Any
    opt_state: Any
    step: jax.Array
    rng: jax.Array


def init_train_state(
    model: nnx.Module, optimizer: optax.GradientTransformation, seed: int, mesh: Mesh
) -> tuple[nnx.GraphDef, TrainState]:
    """Split `model` into its graph definition and a TrainState replicated over `mesh`."""
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    params, rest = nnx.to_pure_dict(params), nnx.to_pure_dict(rest)
    for path, leaf in jax.tree_util.tree_leaves_with_path(rest):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            raise TrainingError(
                f"model variable {jax.tree_util.keystr(path)} is a random key (nnx.Rngs kept "
                "in the model?): draw randomness from the `rng` argument of loss_fn instead"
            )
    key_data = jax.random.key_data(jax.random.key(seed))
    state = TrainState(params, rest, optimizer.init(params), jnp.zeros((), jnp.int32), key_data)
    return graphdef, jax.device_put(state, replicated(mesh))


def make_train_step(
    graphdef: nnx.GraphDef, loss_fn: LossFn, optimizer: optax.GradientTransformation
) -> Callable[[TrainState, Batch], tuple[TrainState, dict[str, jax.Array]]]:
    """A jitted `step(state, batch) -> (state, metrics)`; `state` is donated.

    `loss_fn(model, batch, rng) -> (loss, metrics)` must return the mean over the global
    batch; `rng` is a fresh key each step (the same on every device: with JAX's partitionable
    threefry, keyed draws of a sharded shape do not depend on the device count). metrics
    gains "loss" and "grad_norm" (before clipping).
    """

    def compute_loss(params, model_state, batch, rng):
        model = nnx.merge(graphdef, params, model_state)
        loss, metrics = loss_fn(model, batch, rng)
        new_model_state = nnx.to_pure_dict(nnx.state(model, nnx.Not(nnx.Param)))
        return loss, (metrics, new_model_state)

    def step(state: TrainState, batch: Batch):
        key, sub = jax.random.split(jax.random.wrap_key_data(state.rng))
        grad_fn = jax.value_and_grad(compute_loss, has_aux=True)
        (loss, (metrics, model_state)), grads = grad_fn(state.params, state.model_state, batch, sub)
        updates, opt_state = optimizer.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {**metrics, "loss": loss, "grad_norm": optax.tree.norm(grads)}
        new = TrainState(params, model_state, opt_state, state.step + 1, jax.random.key_data(key))
        return new, metrics

    return jax.jit(step, donate_argnums=0)


def train_step_for(
    model: nnx.Module, loss_fn: LossFn, cfg: TrainConfig, mesh: Mesh
) -> tuple[nnx.GraphDef, TrainState, Callable[[TrainState, Batch], tuple[TrainState, Any]]]:
    """`(graphdef, state, step)` for `model` under `cfg`'s optimizer: what `fit` runs, without
    its loop (benchmarks and tests drive the step themselves)."""
    optimizer = make_optimizer(cfg)
    graphdef, state = init_train_state(model, optimizer, cfg.seed, mesh)
    return graphdef, state, make_train_step(graphdef, loss_fn, optimizer)


def _stopped(step: int, metrics: dict[str, float], ckpt: Checkpoints) -> TrainingError:
    last = ckpt.latest_step()
    where = f"step {last} in {ckpt.step_dir(last)}" if last is not None else "none saved yet"
    return TrainingError(
        f"non-finite training at step {step} (loss {metrics['loss']}, grad_norm "
        f"{metrics['grad_norm']}); stopped without saving. Last good checkpoint: {where}. "
        "Lower learning_rate or grad_clip_norm, or look for bad values in the data"
    )


def fit(
    model: nnx.Module,
    loss_fn: LossFn,
    data: Iterable[dict[str, np.ndarray]],
    cfg: TrainConfig,
    workdir: str | Path,
    *,
    config: dict[str, Any] | None = None,
    resume: bool = True,
    mesh: Mesh | None = None,
    progress: bool = True,
) -> tuple[nnx.Module, TrainState]:
    """Train `model` for cfg.steps steps on batches from `data`; returns (model, state).

    Args:
      model: Flax NNX module (its initial parameters); not modified.
      loss_fn: (model, batch, rng) -> (scalar loss, {name: scalar}), mean over the batch.
      data: Iterator of this process's rows of each global batch, dict of numpy arrays
        [cfg.batch_size / process_count, ...]. If it has `state_dict()` and
        `load_state_dict()` (ExcerptSampler), its state is checkpointed and restored.
      cfg: Loop settings. workdir: where checkpoints/, card.json, metrics.jsonl go.
      config: The run's whole config (plain dict) for the card.
      resume: Continue from the latest checkpoint in workdir if there is one; if False, a
        workdir holding checkpoints is an error.
      mesh: Device mesh (default `make_mesh()`). progress: tqdm bar on process 0.

    Raises:
      TrainingError: a non-finite loss or gradient (names the step and the last good
        checkpoint, which is left untouched), data that ran out, or a clashing workdir.
    """
    from tqdm.auto import tqdm

    workdir = Path(workdir)
    mesh = mesh or make_mesh()
    lead = jax.process_index() == 0
    schedule = make_schedule(cfg)
    graphdef, state, step_fn = train_step_for(model, loss_fn, cfg, mesh)
    ckpt = Checkpoints(workdir, cfg.keep_checkpoints)
    log_path = workdir / "metrics.jsonl"
    start = 0
    if ckpt.latest_step() is not None:
        if not resume:
            ckpt.close()
            raise TrainingError(
                f"{ckpt.directory}: holds checkpoints up to step {ckpt.latest_step()}; pass "
                "resume=True to continue that run or use a fresh workdir"
            )
        try:
            state, data_state, start = ckpt.restore(state)
        except BaseException:
            ckpt.close()
            raise
        if hasattr(data, "load_state_dict"):
            data.load_state_dict(data_state)
    if lead:
        _trim_log(log_path, start)
    iterator = iter(data)
    bar = tqdm(total=cfg.steps, initial=start, disable=not (progress and lead), unit="step")
    pending: tuple[int, dict] | None = None
    window: list[dict[str, float]] = []
    t_window, wait_window = time.perf_counter(), 0.0

    last: dict[str, float] = {}

    def check(item: tuple[int, dict]) -> dict[str, float]:
        nonlocal last
        at, metrics = item
        host = {k: float(host_value(v)) for k, v in metrics.items()}
        if not (np.isfinite(host["loss"]) and np.isfinite(host["grad_norm"])):
            raise _stopped(at, host, ckpt)
        last = host
        return host

    try:
        for step in range(start + 1, cfg.steps + 1):
            t0 = time.perf_counter()
            try:
                local = next(iterator)
            except StopIteration:
                raise TrainingError(f"data ran out before step {step} of {cfg.steps}") from None
            batch = shard_batch(mesh, local)
            wait_window += time.perf_counter() - t0
            state, metrics = step_fn(state, batch)
            if pending is not None:  # one step late, so the device keeps running meanwhile
                window.append(check(pending))
            pending = (step, metrics)
            if step % cfg.checkpoint_every == 0 or step % cfg.log_every == 0 or step == cfg.steps:
                window.append(check(pending))
                pending = None
            if step % cfg.log_every == 0 or step == cfg.steps:
                elapsed = time.perf_counter() - t_window
                record = _record(step, window, elapsed, wait_window, float(schedule(step - 1)))
                if lead:
                    with open(log_path, "a") as log:
                        log.write(json.dumps(record) + "\n")
                    bar.set_postfix(loss=f"{record['loss']:.4g}", steps_s=record["steps_per_s"])
                window, t_window, wait_window = [], time.perf_counter(), 0.0
            if step % cfg.checkpoint_every == 0 or step == cfg.steps:
                data_state = data.state_dict() if hasattr(data, "state_dict") else {}
                card = make_card(config, last, workdir=str(workdir))
                t_save = time.perf_counter()
                ckpt.save(step, state, data_state, card)
                t_window += time.perf_counter() - t_save  # saving is not training speed
            bar.update(1)
    finally:
        bar.close()
        ckpt.close()
    return nnx.merge(graphdef, state.params, state.model_state), state


def _record(step, window, elapsed, wait, lr) -> dict[str, Any]:
    """One metrics.jsonl line: means over the steps since the last line."""
    means = {k: float(np.mean([m[k] for m in window])) for k in window[0]}
    return {
        "step": step,
        "loss": means.pop("loss"),
        "metrics": means,
        "learning_rate": lr,
        "steps_per_s": round(len(window) / max(elapsed, 1e-9), 3),
        "data_wait_fraction": round(wait / max(elapsed, 1e-9), 4),
        "time": time.time(),
    }


def _trim_log(path: Path, last_step: int) -> None:
    """Drop lines a killed run wrote after its last checkpoint, so steps never repeat."""
    if not path.is_file():
        return
    from gensep.atomic import write_text

    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= last_step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):  # a line cut short by a kill
            continue
    write_text(path, "".join(line + "\n" for line in kept))


def training_cli(
    argv: list[str] | None,
    description: str,
    config_help: str,
    train: Callable[..., None],
    check_export: Callable[[Path], Any] | None = None,
    extra_arguments: Callable[[Any], Sequence[str]] | None = None,
    export: Callable[..., Path] | None = None,
) -> int:
    """The command line shared by the train/*.py scripts.

    --config/--workdir [--resume] runs `train(config, workdir, resume)`, after joining the
    other hosts when JAX_COORDINATOR_ADDRESS is set and refusing to start over an existing
    run without --resume. --export WORKDIR --to PATH exports the run's latest weights (then
    `check_export(path)`, e.g. a load). Errors: one line, exit code 2.

    A script with options of its own passes `extra_arguments(parser) -> dests`: it adds
    them, and their values go to `train` (and to `export`) as keyword arguments. `export(
    workdir, to, **extra) -> path` replaces the default export (`models.store.export_run`).
    """
    import argparse
    import sys

    from gensep.errors import GensepError

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--config", help=config_help)
    parser.add_argument("--workdir", help="run folder: checkpoints, card.json, metrics.jsonl")
    parser.add_argument("--resume", action="store_true", help="continue the run in --workdir")
    parser.add_argument("--export", metavar="WORKDIR", help="export a run's latest checkpoint")
    parser.add_argument("--to", help="with --export: the model path to write (.npz + .json)")
    dests = list(extra_arguments(parser)) if extra_arguments is not None else []
    args = parser.parse_args(argv)
    extra = {name: getattr(args, name) for name in dests}
    try:
        if args.export:
            if export is not None:
                path = export(args.export, args.to, **extra)
            else:
                from gensep.models.store import export_run

                path = export_run(args.export, args.to)
            if check_export is not None:
                check_export(path)
            print(f"wrote {path}")
        elif args.config and args.workdir:
            if "JAX_COORDINATOR_ADDRESS" in os.environ:  # one process per host
                jax.distributed.initialize()
            if not args.resume and Path(args.workdir, "checkpoints").exists():
                raise GensepError(
                    f"{args.workdir} holds a run: pass --resume to continue it, or a new workdir"
                )
            train(args.config, args.workdir, args.resume, **extra)
        else:
            parser.error("pass --config and --workdir (or --export WORKDIR --to PATH)")
    except (GensepError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


__all__ = [
    "TrainConfig",
    "TrainState",
    "fit",
    "host_value",
    "init_train_state",
    "make_mesh",
    "make_optimizer",
    "make_schedule",
    "make_train_step",
    "shard_batch",
    "train_step_for",
    "training_cli",
]
