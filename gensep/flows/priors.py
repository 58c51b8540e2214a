"""The prior registry: one folder per instrument, weights and a card.

  <DIR>/<name>/weights.npz   the Glow's parameters, flattened ("steps/0/1/conv/lower")
  <DIR>/<name>/card.json     instrument, spectro (rate, STFT, compression, patch), flow
                             (FlowConfig), training (data, steps, seed, config), held-out
                             bits/dim, code version

A prior is written into a hidden temporary folder beside its target and renamed into
place, so a reader sees a complete folder or none; registering one name never opens
another's folder (adding an instrument leaves the others byte-identical). Hidden folders
(".runs", temporaries) are not priors. Priors separated together must share their
`SpectroConfig` and noise levels (`check_compatible`).
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gensep.atomic import write_json
from gensep.errors import CheckpointError, GensepError

FORMAT = "gensep-prior/1"
WEIGHTS, CARD = "weights.npz", "card.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclasses.dataclass
class Prior:
    """A loaded prior: `model` (a Glow, parameters loaded), its front end and card."""

    name: str
    path: Path
    model: Any
    spectro: Any
    card: dict[str, Any]


def check_name(name: str) -> str:
    """A prior name usable as a folder and a source name, else GensepError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise GensepError(
            f"prior name {name!r}: use letters, digits, '_', '-' or '.', not starting with "
            "'.' or '-' (it names a folder and an output stem)"
        )
    return name


def shipped_registry(kind: str = "band") -> Path:
    """The registry shipped with the package: "band" (vocals, drums, bass, other; trained
    on the rendered band set by configs/prior_band.yaml) or "choir" (soprano, alto,
    tenor, bass; configs/prior_choir.yaml). GensepError if it is not installed."""
    from importlib import resources

    path = Path(str(resources.files("gensep.models"))) / "priors" / kind
    if not path.is_dir():
        raise GensepError(
            f"no shipped {kind!r} priors at {path}; pass a registry folder (--priors DIR) "
            "or train one with train/prior.py"
        )
    return path


def prior_dir(registry: str | Path, name: str) -> Path:
    return Path(registry) / check_name(name)


def register_prior(
    registry: str | Path,
    name: str,
    params: dict[str, Any],
    card: dict[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write `<registry>/<name>/{weights.npz, card.json}` as one atomic folder rename.

    Args:
      params: The Glow's parameters, a pure dict (`nnx.to_pure_dict(nnx.state(m, nnx.Param))`).
      card: Must hold "spectro" and "flow" (dicts); "format" and "instrument" are set here.
      overwrite: Replace an existing prior of that name (else GensepError).

    Returns the prior's folder.
    """
    from gensep.models.store import flatten

    target = prior_dir(registry, name)
    if target.exists() and not overwrite:
        raise GensepError(
            f"{target}: prior {name!r} exists; pass --overwrite to replace it, or another name"
        )
    for key in ("spectro", "flow"):
        if not isinstance(card.get(key), dict):
            raise ValueError(f"card[{key!r}] must be a dict (the prior cannot be rebuilt)")
    _check_patch(card, target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}.tmp-"))
    try:
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **flatten(params))
        (tmp / WEIGHTS).write_bytes(buffer.getvalue())
        write_json(tmp / CARD, {"format": FORMAT, "instrument": name, **card})
        tmp.chmod(0o755)
        old = None
        if target.exists():  # overwrite: move the old one aside, swap, then delete it
            old = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{name}.old-"))
            target.rename(old / name)
        tmp.rename(target)
        if old is not None:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _check_patch(card: dict[str, Any], where: Path) -> None:
    """The flow must model the front end's patches: same frames and bins, one channel."""
    s, f = card["spectro"], card["flow"]
    want = (s.get("patch_frames"), s.get("patch_bins"), 1)
    got = (f.get("patch_frames"), f.get("patch_bins"), f.get("channels", 1))
    if want != got:
        raise CheckpointError(
            f"{where}: the flow's patch {got} (frames, bins, channels) is not the front end's "
            f"{want}; build the FlowConfig from the spectro settings"
        )


def read_card(folder: str | Path) -> dict[str, Any]:
    """A prior folder's card; CheckpointError naming the folder if it is not a prior."""
    folder = Path(folder)
    path = folder / CARD
    if not path.is_file() or not (folder / WEIGHTS).is_file():
        raise CheckpointError(
            f"{folder}: not a prior (needs {WEIGHTS} and {CARD}; `gensep priors add` or "
            "train/prior.py --registry writes them)"
        )
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable card ({err}); re-register the prior") from err
    if card.get("format") != FORMAT:
        raise CheckpointError(f"{path}: format {card.get('format')!r}, expected {FORMAT!r}")
    return card


def list_priors(registry: str | Path) -> list[dict[str, Any]]:
    """Every prior in `registry`, sorted by name: {"name", "path", "bytes", "card"}.

    Raises GensepError if `registry` is not a folder."""
    registry = Path(registry)
    if not registry.is_dir():
        raise GensepError(
            f"{registry}: no prior registry there (a folder of <name>/{{{WEIGHTS}, {CARD}}}; "
            "`gensep priors add NAME --data ... --config ... --priors DIR` creates it)"
        )
    out = []
    for folder in sorted(p for p in registry.iterdir() if p.is_dir() and p.name[0] != "."):
        if not (folder / CARD).is_file():
            continue  # not a prior (e.g. a user's notes folder); registering writes both
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        out.append({"name": folder.name, "path": folder, "bytes": size, "card": read_card(folder)})
    return out


def load_prior(registry: str | Path, name: str) -> Prior:
    """The prior `<registry>/<name>`, its Glow rebuilt from the card and parameters loaded."""
    from flax import nnx

    from gensep.config import from_dict
    from gensep.errors import ConfigError
    from gensep.flows.glow import FlowConfig, Glow
    from gensep.flows.spectro import SpectroConfig
    from gensep.models.store import flatten, unflatten

    folder = prior_dir(registry, name)
    if not folder.is_dir():
        known = [p["name"] for p in list_priors(registry)]
        raise GensepError(f"no prior {name!r} in {registry}; registered: {known or 'none'}")
    card = read_card(folder)
    try:
        spectro = from_dict(SpectroConfig, card["spectro"], "card.spectro")
        config = from_dict(FlowConfig, card["flow"], "card.flow")
    except (KeyError, ConfigError) as err:
        raise CheckpointError(f"{folder / CARD}: bad spectro/flow settings ({err})") from err
    _check_patch(card, folder)
    try:
        with np.load(folder / WEIGHTS) as data:
            got = {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError) as err:
        raise CheckpointError(f"{folder / WEIGHTS}: unreadable ({err}); re-register") from err
    model = Glow(config, rngs=nnx.Rngs(0))
    expected = flatten(nnx.to_pure_dict(nnx.state(model, nnx.Param)))
    wrong = sorted(
        k
        for k in expected.keys() | got.keys()
        if k not in got or k not in expected or got[k].shape != expected[k].shape
    )
    if wrong:
        raise CheckpointError(
            f"{folder / WEIGHTS}: parameters do not fit the card's flow ({len(wrong)} "
            f"mismatches, e.g. {wrong[0]!r}) — re-register the prior"
        )
    nnx.update(model, unflatten(got))
    return Prior(name, folder, model, spectro, card)


def compatibility(card: dict[str, Any]) -> dict[str, Any]:
    """What priors separated together must share, flat: every spectro setting (rate, STFT,
    compression, crop, patch) and the noise levels the separation anneals through."""
    flow = card["flow"]
    levels = list(flow.get("noise_levels", []))
    return {
        **{f"spectro.{k}": v for k, v in card["spectro"].items()},
        "flow.noise_levels": levels,
        "flow.conditioned": bool(levels) and bool(flow.get("condition_on_noise", True)),
    }


def check_compatible(priors: Sequence[Prior]) -> None:
    """GensepError naming the first prior whose settings differ from the first's."""
    want = compatibility(priors[0].card)
    for prior in priors[1:]:
        got = compatibility(prior.card)
        diff = [
            f"{k} ({want.get(k)} vs {got.get(k)})" for k in want | got if want.get(k) != got.get(k)
        ]
        if diff:
            raise GensepError(
                f"priors {priors[0].name!r} and {prior.name!r} differ in {', '.join(diff)}: "
                "priors separated together must share rate, STFT, compression, patch and "
                "noise levels — retrain one with the other's config"
            )


def load_priors(registry: str | Path, names: Sequence[str] | None = None) -> list[Prior]:
    """The priors `names` (default: all registered, by name), checked compatible."""
    if names is None:
        names = [p["name"] for p in list_priors(registry)]
        if not names:
            raise GensepError(f"{registry}: no priors registered; `gensep priors add` one")
    names = list(names)
    if not names or len(set(names)) != len(names):
        raise GensepError(f"sources {names}: need at least one prior name, all distinct")
    priors = [load_prior(registry, name) for name in names]
    check_compatible(priors)
    return priors


__all__ = [
    "CARD",
    "FORMAT",
    "WEIGHTS",
    "Prior",
    "check_compatible",
    "check_name",
    "list_priors",
    "load_prior",
    "load_priors",
    "read_card",
    "register_prior",
    "shipped_registry",
]
