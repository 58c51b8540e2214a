"""Orbax checkpoints of a training state, the data sampler's state, and a JSON card.

Layout of a run's workdir::

  workdir/
    card.json                 config, code version, metrics, step, created time (atomic)
    checkpoints/<step>/
      state/                  orbax StandardSave of the state pytree (arrays only)
      data_state/             orbax JsonSave of the sampler's state dict
      manifest.json           size + sha256 of every file above, checked on restore

The manifest turns a deleted, truncated or corrupted file into a `CheckpointError` that
names the file, instead of an orbax/tensorstore stack trace or silently wrong numbers.
Random keys must be stored as raw key data (`jax.random.key_data`); typed key arrays are
refused with a clear error.

Every process of a multi-host run must call `save` / `restore` (orbax synchronises them);
only process 0 writes the card and the manifest.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import subprocess
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from gensep.atomic import write_json
from gensep.errors import CheckpointError

CARD = "card.json"
MANIFEST = "manifest.json"
_FIX = "delete that step folder to fall back to the previous checkpoint, or retrain"


def git_commit() -> str | None:
    """The source tree's git commit (with "-dirty" if modified), or None outside a checkout."""
    root = Path(__file__).resolve().parent.parent
    try:
        run = lambda *a: subprocess.run(  # noqa: E731
            ["git", *a], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        commit = run("rev-parse", "HEAD")
        return commit + ("-dirty" if run("status", "--porcelain", "--untracked-files=no") else "")
    except (OSError, subprocess.SubprocessError):
        return None


def make_card(config: dict[str, Any] | None, metrics: dict[str, Any] | None = None, **extra):
    """A card: what is needed to rebuild and trust a model (config, code version, metrics)."""
    from gensep import __version__

    return {
        "config": config or {},
        "code_version": {"gensep": __version__, "git_commit": git_commit()},
        "metrics": metrics or {},
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        **extra,
    }


def _check_no_typed_keys(tree: Any) -> None:
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            raise CheckpointError(
                f"state leaf {jax.tree_util.keystr(path)} is a typed random key: store "
                "jax.random.key_data(key) instead (and wrap_key_data it back when used)"
            )


def _file_digests(folder: Path) -> dict[str, list]:
    out = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST):
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        out[str(path.relative_to(folder))] = [path.stat().st_size, digest]
    return out


def verify(step_dir: str | Path) -> None:
    """Raise CheckpointError if a file listed in the step's manifest is missing or changed."""
    step_dir = Path(step_dir)
    manifest_path = step_dir / MANIFEST
    if not step_dir.is_dir():
        raise CheckpointError(f"{step_dir}: no such checkpoint folder")
    if not manifest_path.is_file():
        # A kill between orbax's commit and the manifest write: orbax says the step is
        # complete, so try it; any damage will still come back as a CheckpointError.
        warnings.warn(f"{manifest_path}: missing, files not verified", stacklevel=3)
        return
    try:
        manifest = json.loads(manifest_path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{manifest_path}: unreadable ({err}); {_FIX}") from err
    for name, (size, digest) in manifest.items():
        path = step_dir / name
        if not path.is_file():
            raise CheckpointError(f"{path}: file missing from checkpoint; {_FIX}")
        if path.stat().st_size != size:
            raise CheckpointError(
                f"{path}: {path.stat().st_size} bytes, expected {size} (truncated?); {_FIX}"
            )
        if hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            raise CheckpointError(f"{path}: contents changed since saving (corrupted); {_FIX}")


class Checkpoints:
    """Numbered checkpoints under `workdir/checkpoints`, the newest `keep` kept.

    Saving is synchronous: when `save` returns, the step is on disk (an interrupted save
    leaves only an orbax temporary folder, which is ignored and cleaned up).
    """

    def __init__(self, workdir: str | Path, keep: int = 3) -> None:
        self.workdir = Path(workdir).resolve()
        self.directory = self.workdir / "checkpoints"
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=True, enable_async_checkpointing=False
        )
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "data_state")
        )

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def all_steps(self) -> list[int]:
        return list(self._manager.all_steps())

    def step_dir(self, step: int) -> Path:
        return self.directory / str(step)

    def save(
        self,
        step: int,
        state: Any,
        data_state: dict[str, Any] | None = None,
        card: dict[str, Any] | None = None,
    ) -> Path:
        """Save `state` (a pytree of arrays) and `data_state` (JSON) as checkpoint `step`;
        process 0 then writes the manifest and `card` (with "step" set) to card.json."""
        _check_no_typed_keys(state)
        args = ocp.args.Composite(
            state=ocp.args.StandardSave(state), data_state=ocp.args.JsonSave(data_state or {})
        )
        self._manager.save(step, args=args, force=True)
        self._manager.wait_until_finished()
        if jax.process_index() == 0:
            write_json(self.step_dir(step) / MANIFEST, _file_digests(self.step_dir(step)))
            if card is not None:
                write_json(self.workdir / CARD, {**card, "step": int(step)})
        return self.step_dir(step)

    def restore(
        self, abstract_state: Any, step: int | None = None
    ) -> tuple[Any, dict[str, Any], int]:
        """Restore checkpoint `step` (default: the latest) into the structure, shapes, dtypes
        and shardings of `abstract_state` (arrays or jax.ShapeDtypeStruct leaves).

        Returns (state, data_state, step). Raises CheckpointError when there is no
        checkpoint or one of its files is missing or corrupted."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise CheckpointError(f"{self.directory}: no checkpoint to restore")
        verify(self.step_dir(step))
        abstract = jax.tree.map(_abstract, abstract_state)
        args = ocp.args.Composite(
            state=ocp.args.StandardRestore(abstract), data_state=ocp.args.JsonRestore()
        )
        try:
            restored = self._manager.restore(step, args=args)
        except Exception as err:  # orbax/tensorstore raise many types; name the folder
            raise CheckpointError(
                f"{self.step_dir(step)}: cannot restore ({type(err).__name__}: "
                f"{str(err)[:300]}) — was it saved by a different model or config? {_FIX}"
            ) from err
        return restored["state"], dict(restored["data_state"] or {}), int(step)

    def close(self) -> None:
        self._manager.close()

    def __enter__(self) -> Checkpoints:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _abstract(x: Any) -> Any:
    if isinstance(x, jax.ShapeDtypeStruct):
        return x
    return jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=getattr(x, "sharding", None))


def save(workdir, step: int, state, data_state=None, card=None, keep: int = 3) -> Path:
    """One-off save (see `Checkpoints.save`); a training loop should keep one Checkpoints."""
    with Checkpoints(workdir, keep) as ckpt:
        return ckpt.save(step, state, data_state, card)


def restore(workdir, abstract_state, step: int | None = None):
    """One-off restore -> (state, data_state, step) (see `Checkpoints.restore`)."""
    with Checkpoints(workdir) as ckpt:
        return ckpt.restore(abstract_state, step)


def load_for_inference(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Parameters and card of a trained model, without its optimiser.

    Args:
      path: A run's workdir (its latest checkpoint is used) or one step folder in it.

    Returns:
      (params, card): params as a pure dict of numpy arrays, nnx list indices as ints, ready
      for `nnx.merge(graphdef, params)` or `nnx.update(model, params)`; card from card.json.
    """
    path = Path(path).resolve()
    if (path / "checkpoints").is_dir():
        with Checkpoints(path) as ckpt:
            step = ckpt.latest_step()
        if step is None:
            raise CheckpointError(f"{path}: no checkpoint in {path / 'checkpoints'}")
        path = path / "checkpoints" / str(step)
    verify(path)
    card_path = path.parent.parent / CARD
    if not card_path.is_file():
        raise CheckpointError(f"{card_path}: card missing — the model cannot be rebuilt")
    card = json.loads(card_path.read_text())
    try:
        tree = ocp.StandardCheckpointer().restore(path / "state")
    except Exception as err:
        raise CheckpointError(
            f"{path}: cannot restore ({type(err).__name__}: {str(err)[:300]}); {_FIX}"
        ) from err
    if not isinstance(tree, dict) or "params" not in tree:
        raise CheckpointError(f"{path}: no 'params' in the checkpointed state")
    return _int_keys(jax.tree.map(np.asarray, tree["params"])), card


def _int_keys(tree: Any) -> Any:
    """Orbax stores dict keys as strings; nnx pure dicts index list items by int."""
    if not isinstance(tree, dict):
        return tree
    return {(int(k) if str(k).isdigit() else k): _int_keys(v) for k, v in tree.items()}


def load_initial_weights(model: Any, init_from: str | Path, model_config: Any) -> None:
    """Load the latest weights of the run in `init_from` into `model` (a fine-tuning stage).

    The optimiser, step and sampler start afresh; the run's model config must equal
    `model_config` (a dataclass), else CheckpointError.
    """
    from flax import nnx

    from gensep.config import to_dict

    params, card = load_for_inference(init_from)
    before = (card.get("config") or {}).get("model")
    if before != json.loads(json.dumps(to_dict(model_config))):
        raise CheckpointError(
            f"init_from {init_from}: its model config differs from this config's model "
            "section; fine-tuning needs the same architecture"
        )
    nnx.update(model, params)


__all__ = [
    "Checkpoints",
    "load_for_inference",
    "load_initial_weights",
    "make_card",
    "restore",
    "save",
    "verify",
]
