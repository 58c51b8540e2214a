"""Trained models as two files: `<name>.npz` (parameters) and `<name>.json` (card).

A training run keeps orbax checkpoints (optimiser state and all); what ships, or what a
user passes as `--model`, is the parameters alone, flattened to "a/b/0/kernel" keys in one
compressed npz, with the card (model config, training config, code version, metrics)
beside it. `load_umss` and `load_masknet` rebuild the model from the card, so a file is
self-describing.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from gensep.atomic import atomic_output, write_json
from gensep.errors import CheckpointError

_SEP = "/"


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    """{"a": {"b": x}} -> {"a/b": x}; keys become strings."""
    out = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + _SEP))
        else:
            out[name] = np.asarray(value)
    return out


def unflatten(flat: dict[str, np.ndarray]) -> dict[str, Any]:
    """Inverse of `flatten`; all-digit keys become ints (nnx list indices)."""
    tree: dict[Any, Any] = {}
    for name, value in flat.items():
        node = tree
        *parents, leaf = [int(k) if k.isdigit() else k for k in name.split(_SEP)]
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    return tree


def save_model(path: str | Path, params: dict[str, Any], card: dict[str, Any]) -> Path:
    """Write `<path>.npz` and `<path>.json` atomically; returns the npz path."""
    path = Path(path).with_suffix("")
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **flatten(params))
    with atomic_output(path.with_suffix(".npz")) as tmp:
        tmp.write_bytes(buffer.getvalue())
    write_json(path.with_suffix(".json"), card)
    return path.with_suffix(".npz")


def load_params(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(params tree, card) of a saved model; CheckpointError naming the file otherwise."""
    path = Path(path).with_suffix("")
    npz, card_path = path.with_suffix(".npz"), path.with_suffix(".json")
    for file in (npz, card_path):
        if not file.is_file():
            raise CheckpointError(
                f"{file}: no such model file — a model is <name>.npz + <name>.json "
                "(train/umss.py, train/supervised.py or train/f0.py --export writes both)"
            )
    try:
        with np.load(npz) as data:
            params = unflatten({k: data[k] for k in data.files})
        card = json.loads(card_path.read_text())
    except (OSError, ValueError, EOFError) as err:
        raise CheckpointError(f"{path}: unreadable model ({err}); re-export or retrain") from err
    return params, card


def load_umss(path: str | Path):
    """The UMSS model saved at `path` (npz + json), parameters loaded."""
    from flax import nnx

    from gensep.config import from_dict
    from gensep.models.umss import UMSS, UMSSConfig

    params, card = load_params(path)
    try:
        config = from_dict(UMSSConfig, card["config"]["model"], "card.config.model")
    except KeyError as err:
        raise CheckpointError(f"{path}: the card has no config.model — not a UMSS model") from err
    model = UMSS(config, rngs=nnx.Rngs(0))
    return _filled(model, params, path), card


def load_masknet(path: str | Path):
    """The supervised mask network saved at `path` (npz + json), parameters loaded.

    Returns (model, card); the card's config.model is a `MaskNetConfig` (architecture,
    STFT, sources, sizes). CheckpointError for a missing/unreadable file, a card that is
    not a mask network's, or parameters that do not fit it.
    """
    from flax import nnx

    from gensep.config import from_dict
    from gensep.errors import ConfigError
    from gensep.models.masknet import MaskNet, MaskNetConfig

    params, card = load_params(path)
    try:
        config = from_dict(MaskNetConfig, card["config"]["model"], "card.config.model")
    except (KeyError, TypeError) as err:
        raise CheckpointError(f"{path}: the card has no config.model — not a mask network") from err
    except ConfigError as err:
        raise CheckpointError(
            f"{path}: not a supervised mask network ({err}) — train/supervised.py --export "
            "writes those"
        ) from err
    model = MaskNet(config, rngs=nnx.Rngs(0))
    expected = flatten(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    got = flatten(params)

    def shape(tree, key):
        return np.shape(tree[key]) if key in tree else "missing"

    wrong = sorted(k for k in expected.keys() | got.keys() if shape(got, k) != shape(expected, k))
    if wrong:
        k = wrong[0]
        raise CheckpointError(
            f"{path}: parameters do not fit the card's {config.arch} model ({len(wrong)} "
            f"mismatches; {k!r}: file {shape(got, k)}, model {shape(expected, k)}) — "
            "re-export the model"
        )
    return _filled(model, params, path), card


def _filled(model, params: dict[str, Any], path) -> Any:
    """`model` with `params` loaded; CheckpointError if they do not fit it."""
    from flax import nnx

    try:
        nnx.update(model, params)
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"{path}: parameters do not fit the card's model ({err}) — re-export the model"
        ) from err
    return model


def export_run(workdir: str | Path, to: str | Path) -> Path:
    """Export a training run's latest checkpoint to `to`.npz/.json (see module docstring)."""
    from gensep.checkpoint import load_for_inference

    if to is None:
        raise ValueError("--export needs --to PATH (e.g. gensep/models/weights/umss_choir)")
    params, card = load_for_inference(workdir)
    return save_model(to, params, {**card, "exported_from": str(workdir)})
