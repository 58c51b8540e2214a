"""Training loop and checkpoints on a tiny MLP (see train_worker.py): smoke, 1 vs 2 devices,
2 processes vs 1, SIGKILL + resume, NaN stop, damaged checkpoints."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
import train_worker as tw

from gensep.checkpoint import Checkpoints, load_for_inference
from gensep.config import from_dict
from gensep.errors import CheckpointError, TrainingError
from gensep.training import TrainConfig, fit, init_train_state, make_mesh, make_optimizer

WORKER = Path(__file__).with_name("train_worker.py")
ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **extra}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _worker(*args: str, env=None, check: bool = True, timeout: float = 120):
    return subprocess.run(
        [sys.executable, str(WORKER), *args],
        env=env or _env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=check,
    )


def _reference(workdir: Path, steps: int) -> dict[str, np.ndarray]:
    """The uninterrupted single-process run, in this process (one CPU device)."""
    cfg = tw.tiny_config(steps=steps)
    _, state = fit(tw.make_model(), tw.loss_fn, tw.make_sampler(), cfg, workdir, progress=False)
    return tw.flat_params(state.params)


def test_config_loads_from_a_yaml_section():
    cfg = from_dict(TrainConfig, {"steps": 10, "batch_size": 4, "learning_rate": 1})
    assert cfg.learning_rate == 1.0 and cfg.decay == "cosine"


def test_one_step_smoke(tmp_path):
    cfg = tw.tiny_config(steps=1)
    model, state = fit(
        tw.make_model(), tw.loss_fn, tw.make_sampler(), cfg, tmp_path, config={"train": {}}
    )
    assert int(state.step) == 1
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1]
    assert np.isfinite(records[0]["loss"]) and 0 <= records[0]["data_wait_fraction"] <= 1
    card = json.loads((tmp_path / "card.json").read_text())
    assert card["step"] == 1 and card["config"] == {"train": {}}
    assert card["code_version"]["gensep"] and "loss" in card["metrics"]
    params, card2 = load_for_inference(tmp_path)
    assert card2 == card
    np.testing.assert_array_equal(params["layers"][0]["kernel"], model.layers[0].kernel[...])


@pytest.mark.slow
@pytest.mark.multidevice
def test_two_devices_match_one_device():
    env = _env(XLA_FLAGS="--xla_force_host_platform_device_count=2")
    out = json.loads(_worker("devices", env=env).stdout.strip().splitlines()[-1])
    # Same global batch: only the order of the cross-device sum differs (float32).
    # Measured: identical loss, max |param diff| 7.5e-9.
    assert out["loss1"] == pytest.approx(out["loss2"], rel=1e-6)
    assert out["param_max_abs_diff"] < 1e-6


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
@pytest.mark.multidevice
def test_two_processes_train_like_one(tmp_path):
    port, steps = str(_free_port()), "6"
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                str(WORKER),
                "distributed",
                str(tmp_path / "dist"),
                "--port",
                port,
                "--process-id",
                str(i),
                "--steps",
                steps,
                "--out",
                str(tmp_path / f"p{i}.npz"),
            ],
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    try:
        logs = [p.communicate(timeout=120)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], logs
    reference = _reference(tmp_path / "single", int(steps))
    p0, p1 = (dict(np.load(tmp_path / f"p{i}.npz")) for i in range(2))
    for name, want in reference.items():
        np.testing.assert_array_equal(p0[name], p1[name])  # lockstep: bitwise equal
        # Measured max |diff| vs one process: ~1e-8 (cross-process sum order, float32).
        np.testing.assert_allclose(p0[name], want, rtol=0, atol=1e-6, err_msg=name)
    lines = (tmp_path / "dist" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [2, 4, 6]  # process 0 only


@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(tmp_path):
    steps, work = 12, tmp_path / "killed"
    # Killed while drawing batch 7: checkpoint 4 is on disk, steps 5-6 are lost.
    killed = _worker("fit", str(work), "--steps", str(steps), "--kill-at", "7", check=False)
    assert killed.returncode == -9, killed.stderr[-2000:]
    assert Checkpoints(work).latest_step() == 4
    _worker("fit", str(work), "--steps", str(steps), "--out", str(tmp_path / "resumed.npz"))
    resumed = dict(np.load(tmp_path / "resumed.npz"))
    reference = _reference(tmp_path / "straight", steps)
    for name, want in reference.items():
        np.testing.assert_array_equal(resumed[name], want, err_msg=name)  # bitwise
    lines = (work / "metrics.jsonl").read_text().splitlines()
    logged = [json.loads(line)["step"] for line in lines]
    assert logged == list(range(2, steps + 1, 2))


class _NanAt(tw.KillAt):
    """The sampler's batches (and state), with NaN in batch number `at`."""

    def __next__(self):
        self.drawn += 1
        batch = next(self.sampler)
        if self.drawn == self.at:
            batch["mixture"][0, 0, 3] = np.nan
        return batch


def test_nan_before_any_checkpoint(tmp_path):
    cfg = tw.tiny_config(steps=12, checkpoint_every=4)
    with pytest.raises(TrainingError, match=r"at step 3 .*none saved yet"):
        fit(tw.make_model(), tw.loss_fn, _NanAt(tw.make_sampler(), 3), cfg, tmp_path)
    assert Checkpoints(tmp_path).latest_step() is None


# Checkpoints every 4 steps; NaN after (5, 7), or at (8), a checkpoint step.
@pytest.mark.parametrize(("nan_step", "last_good"), [(5, 4), (7, 4), (8, 4)])
def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path, nan_step, last_good):
    cfg = tw.tiny_config(steps=12, checkpoint_every=4)
    data = _NanAt(tw.make_sampler(), nan_step)
    with pytest.raises(TrainingError, match=rf"at step {nan_step} .*step {last_good}"):
        fit(tw.make_model(), tw.loss_fn, data, cfg, tmp_path, progress=False)
    with Checkpoints(tmp_path) as ckpt:
        assert ckpt.latest_step() == last_good
        _, abstract = init_train_state(tw.make_model(), make_optimizer(cfg), 0, make_mesh())
        state, data_state, step = ckpt.restore(abstract)
    assert step == last_good and data_state["batches_drawn"] == last_good
    assert all(np.isfinite(x).all() for x in jax.tree.leaves(state.params))


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("saved")
    fit(tw.make_model(), tw.loss_fn, tw.make_sampler(), tw.tiny_config(steps=2), workdir)
    return workdir


def _damaged(saved_run, tmp_path, damage):
    import shutil

    work = tmp_path / "copy"
    shutil.copytree(saved_run, work)
    files = sorted((work / "checkpoints" / "2" / "state").rglob("*"))
    target = max((f for f in files if f.is_file()), key=lambda f: f.stat().st_size)
    damage(target)
    return work, target


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda f: f.unlink(), "file missing"),
        (lambda f: f.write_bytes(f.read_bytes()[: f.stat().st_size // 2]), "truncated"),
        (lambda f: f.write_bytes(bytes(f.stat().st_size)), "corrupted"),
    ],
    ids=["deleted", "truncated", "overwritten"],
)
def test_damaged_checkpoint_raises_checkpoint_error(saved_run, tmp_path, damage, message):
    work, target = _damaged(saved_run, tmp_path, damage)
    with pytest.raises(CheckpointError, match=message) as err:
        fit(tw.make_model(), tw.loss_fn, tw.make_sampler(), tw.tiny_config(steps=4), work)
    assert str(target) in str(err.value) and "delete that step folder" in str(err.value)
    with pytest.raises(CheckpointError, match=message):
        load_for_inference(work)


def test_mismatched_model_raises_checkpoint_error(saved_run, tmp_path):
    from flax import nnx

    other = nnx.Linear(16, 1, rngs=nnx.Rngs(0))
    _, abstract = init_train_state(other, make_optimizer(tw.tiny_config()), 0, make_mesh())
    with Checkpoints(saved_run) as ckpt, pytest.raises(CheckpointError, match="cannot restore"):
        ckpt.restore(abstract)


def test_existing_checkpoints_without_resume_is_an_error(saved_run):
    with pytest.raises(TrainingError, match="resume=True"):
        fit(
            tw.make_model(),
            tw.loss_fn,
            tw.make_sampler(),
            tw.tiny_config(),
            saved_run,
            resume=False,
        )


def test_batch_not_divisible_by_devices_is_a_clear_error():
    from gensep.training import shard_batch

    with pytest.raises(ValueError, match="multiple of the 1 devices"):
        shard_batch(make_mesh(), {"x": np.zeros((0, 3), np.float32)})
