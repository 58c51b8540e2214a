"""Training one source prior and registering it: what `train/prior.py` and `gensep priors
add` run.

  stems of ONE source (`<root>/<split>/<track>/<source>.wav`; no mixture is read)
    -> ExcerptSampler(mode="source"): random non-silent excerpts (RMS >= silence_db),
       downmixed to mono, at the prior's rate, spectro.excerpt_samples long
    -> a random gain per excerpt (gain_db: sources sit at many levels in mixtures)
    -> patches [B, patch_frames, patch_bins, 1] (`gensep.flows.spectro`)
    -> gensep.training.fit with `flow_loss` (noise at the config's levels, drawn per
       patch; mesh, orbax checkpoints, resume and the NaN guard come with fit)
    -> held-out bits/dim, the card, `register_prior(<registry>/<name>)`.

Held out: the last `heldout_fraction` of the split's tracks by name (at least one when the
fraction is > 0 and there are two tracks or more) are never trained on; the card's bits/dim
are the mean over `heldout_excerpts` seeded excerpts of those tracks (no gain change), at
each noise level. The flow is initialised (data-dependent ActNorm) on a batch from a
sampler of its own seed, so the training stream is the same with or without it.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gensep.config import load_config, save_config, to_dict
from gensep.errors import DatasetError, GensepError
from gensep.flows.glow import FlowConfig
from gensep.flows.spectro import SpectroConfig, training_patches
from gensep.training import TrainConfig

HELDOUT_SEED = 20220  # held-out excerpts: the same for every prior and run


@dataclasses.dataclass(frozen=True)
class PriorDataConfig:
    """The stems a prior learns from (see the module docstring).

    root, split: a MUSDB-layout dataset. source: the stem (`--source` overrides it; it is
    also the prior's default name). heldout_fraction, heldout_excerpts: the held-out rule.
    silence_db: excerpts quieter than this (RMS, dBFS) are redrawn. gain_db: (low, high)
    of the uniform random gain per training excerpt. max_tracks: first N training tracks.
    """

    root: str
    split: str = "train"
    source: str | None = None
    heldout_fraction: float = 0.1
    heldout_excerpts: int = 64
    silence_db: float = -50.0
    gain_db: tuple[float, float] = (-6.0, 6.0)
    max_tracks: int | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ValueError(f"data.heldout_fraction {self.heldout_fraction} must be in [0, 1)")
        if self.heldout_excerpts < 1 or self.gain_db[0] > self.gain_db[1]:
            raise ValueError("data: need heldout_excerpts >= 1 and gain_db low <= high")


@dataclasses.dataclass(frozen=True)
class FlowSizes:
    """The `flow:` section: a FlowConfig without the patch (that is spectro's)."""

    levels: int = 3
    steps: int = 8
    hidden: int = 64
    noise_levels: tuple[float, ...] = (0.1, 0.3, 1.0)
    condition_on_noise: bool = True


@dataclasses.dataclass(frozen=True)
class PriorRunConfig:
    data: PriorDataConfig
    spectro: SpectroConfig
    flow: FlowSizes
    train: TrainConfig


def flow_config(cfg: PriorRunConfig) -> FlowConfig:
    s = cfg.spectro
    return FlowConfig(s.patch_frames, s.patch_bins, 1, **dataclasses.asdict(cfg.flow))


def load_run_config(
    path: str | Path,
    source: str | None = None,
    root: str | None = None,
    steps: int | None = None,
) -> PriorRunConfig:
    """A prior config with the command line's --source, --data and --steps applied."""
    cfg = load_config(path, PriorRunConfig)
    data = dataclasses.replace(
        cfg.data, source=source or cfg.data.source, root=root or cfg.data.root
    )
    if data.source is None:
        raise GensepError(f"{path}: no data.source; pass --source NAME (the stem to learn)")
    train = cfg.train
    if steps is not None:
        every = min(train.checkpoint_every, steps)
        train = dataclasses.replace(train, steps=steps, checkpoint_every=every)
    flow_config(cfg)  # patch and levels must fit before any data is read
    return dataclasses.replace(cfg, data=data, train=train)


def split_tracks(data: PriorDataConfig) -> tuple[list[Path], list[Path]]:
    """(training track folders, held-out track folders) of the split, by the held-out rule."""
    from gensep.data.layout import list_tracks

    folders = list_tracks(data.root, data.split)
    held = math.ceil(data.heldout_fraction * len(folders)) if len(folders) > 1 else 0
    train, heldout = folders[: len(folders) - held], folders[len(folders) - held :]
    return train[: data.max_tracks], heldout


def read_source(folders: Sequence[Path], source: str, rate: int) -> list:
    """Tracks holding one stem each, at `rate`. The sampler wants a mixture-shaped array:
    the Track's mixture is the stem itself (same array; no mixture file is read)."""
    from gensep.audio import load_audio
    from gensep.data.track import Track

    tracks = []
    for folder in folders:
        path = Path(folder) / f"{source}.wav"
        if not path.is_file():
            have = sorted(p.stem for p in Path(folder).glob("*.wav") if p.stem != "mixture")
            raise DatasetError(f"{path}: no stem {source!r} in track {folder.name} (it has {have})")
        audio, _ = load_audio(path, rate)
        tracks.append(Track(Path(folder).name, rate, audio, {source: audio}))
    return tracks


class PatchBatches:
    """A source-mode sampler's batches as {"x": patches [b, T_p, F_p, 1]}, each excerpt
    scaled by a random gain drawn from (seed, batch number): resumable with the sampler's
    state, and the same rows on any number of shards."""

    def __init__(self, sampler, spectro: SpectroConfig, gain_db: tuple[float, float], seed: int):
        self.sampler, self.spectro = sampler, spectro
        self.gain_db, self.seed = gain_db, seed

    def __iter__(self) -> PatchBatches:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = next(self.sampler)
        s = self.sampler
        rng = np.random.default_rng([self.seed, s.batches_drawn])
        gain_db = rng.uniform(*self.gain_db, size=s.batch_size)
        lo = s.shard_index * s.local_batch_size
        gains = 10.0 ** (gain_db[lo : lo + s.local_batch_size] / 20.0)
        audio = batch["source"][:, 0] * gains[:, None].astype(np.float32)  # [b, N]
        return {"x": training_patches(audio, self.spectro)}

    def state_dict(self) -> dict[str, Any]:
        return self.sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sampler.load_state_dict(state)


def make_sampler(cfg: PriorRunConfig, tracks, batch_size: int, seed: int, shards=(1, 0)):
    from gensep.data.sampler import ExcerptSampler

    return ExcerptSampler(
        tracks,
        cfg.spectro.excerpt_samples,
        batch_size,
        mode="source",
        seed=seed,
        source=cfg.data.source,
        silence_db=cfg.data.silence_db,
        mono=True,
        num_shards=shards[0],
        shard_index=shards[1],
    )


def _noisy(x: np.ndarray, levels: tuple[float, ...], seed: int):
    """(x + sigma * noise, sigma [B]) with sigma drawn per row from `levels` (0 if none)."""
    rng = np.random.default_rng(seed)
    sigma = rng.choice(np.asarray(levels or (0.0,), np.float32), size=len(x))
    noise = rng.standard_normal(x.shape).astype(np.float32)
    return x + sigma[:, None, None, None] * noise, sigma.astype(np.float32)


def train_prior(
    cfg: PriorRunConfig,
    workdir: str | Path,
    resume: bool = False,
    registry: str | Path | None = None,
    name: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path | None:
    """Train the prior of `cfg.data.source`; with `registry`, register it as `name`
    (default: the source) and return its folder."""
    import jax
    import jax.numpy as jnp
    from flax import nnx

    from gensep.flows.glow import Glow, flow_loss
    from gensep.flows.priors import check_name, prior_dir
    from gensep.training import fit

    name = check_name(name or cfg.data.source)
    if registry is not None and prior_dir(registry, name).exists() and not overwrite:
        raise GensepError(f"{prior_dir(registry, name)}: prior {name!r} exists; pass --overwrite")
    train_folders, heldout_folders = split_tracks(cfg.data)
    if not train_folders:
        raise DatasetError(f"{cfg.data.root}/{cfg.data.split}: no training tracks left")
    tracks = read_source(train_folders, cfg.data.source, cfg.spectro.sample_rate)
    minutes = sum(t.seconds for t in tracks) / 60
    print(
        f"prior {name!r}: {cfg.data.source} stems of {len(tracks)} tracks ({minutes:.1f} min) "
        f"from {cfg.data.root}/{cfg.data.split}, {len(heldout_folders)} held out"
    )
    shards = (jax.process_count(), jax.process_index())
    batch = cfg.train.batch_size
    sampler = make_sampler(cfg, tracks, batch, cfg.train.seed, shards)
    data = PatchBatches(sampler, cfg.spectro, cfg.data.gain_db, cfg.train.seed)
    model = Glow(flow_config(cfg), rngs=nnx.Rngs(cfg.train.seed))
    init = PatchBatches(
        make_sampler(cfg, tracks, batch, cfg.train.seed + 1), cfg.spectro, (0, 0), 0
    )
    x, sigma = _noisy(next(init)["x"], model.config.noise_levels, cfg.train.seed)
    model.initialize(jnp.asarray(x), jnp.asarray(sigma) if model.config.conditioned else None)
    save_config(cfg, Path(workdir) / "config.yaml")
    model, state = fit(
        model,
        flow_loss,
        data,
        cfg.train,
        workdir,
        config=to_dict(cfg),
        resume=resume,
        progress=progress,
    )
    if registry is None:
        return None
    return register(model, cfg, registry, name, tracks, heldout_folders, int(state.step), overwrite)


def heldout_patches(cfg: PriorRunConfig, folders: Sequence[Path]) -> np.ndarray:
    """The seeded held-out excerpts of `cfg.data.source` in `folders` as patches [B, T, F, 1]
    (`heldout_excerpts` of them, no gain change): what a card's bits/dim are measured on."""
    tracks = read_source(folders, cfg.data.source, cfg.spectro.sample_rate)
    sampler = make_sampler(cfg, tracks, cfg.data.heldout_excerpts, HELDOUT_SEED)
    return training_patches(next(sampler)["source"][:, 0], cfg.spectro)


def noisy_bits_per_dim(model, x: np.ndarray, level: float, seed: int, batch: int = 16):
    """Bits/dim [B] of x + level * N(0, 1) (noise seeded by `seed`), in batches."""
    import jax.numpy as jnp

    noisy = x + level * np.random.default_rng(seed).standard_normal(x.shape).astype(np.float32)
    sigma = level if model.config.conditioned else None
    return np.concatenate(
        [
            np.asarray(model.bits_per_dim(jnp.asarray(noisy[k : k + batch]), sigma))
            for k in range(0, len(x), batch)
        ]
    )


def heldout_bits_per_dim(model, cfg: PriorRunConfig, folders: Sequence[Path]) -> dict[str, Any]:
    """Mean bits/dim of seeded held-out excerpts at each noise level (see the module doc)."""
    if not folders:
        return {"bits_per_dim": None, "rule": "no held-out tracks (fewer than two tracks)"}
    x = heldout_patches(cfg, folders)
    levels = model.config.noise_levels or (0.0,)
    by_level = {
        str(level): float(np.mean(noisy_bits_per_dim(model, x, level, i)))
        for i, level in enumerate(sorted(levels))
    }
    return {
        "bits_per_dim": by_level[str(min(levels))],  # at the lowest (cleanest) level
        "by_noise_level": by_level,
        "excerpts": len(x),
        "tracks": [Path(f).name for f in folders],
        "rule": f"last {cfg.data.heldout_fraction:.0%} of {cfg.data.split} tracks by name, "
        f"{len(x)} excerpts (seed {HELDOUT_SEED})",
    }


def register(model, cfg, registry, name, tracks, heldout_folders, steps, overwrite) -> Path:
    """Held-out bits/dim, the card, and `register_prior` (see gensep.flows.priors)."""
    from flax import nnx

    from gensep.checkpoint import make_card
    from gensep.flows.priors import register_prior

    heldout = heldout_bits_per_dim(model, cfg, heldout_folders)
    data = {
        "root": str(cfg.data.root),
        "split": cfg.data.split,
        "source": cfg.data.source,
        "tracks": [t.name for t in tracks],
        "minutes": round(sum(t.seconds for t in tracks) / 60, 3),
    }
    card = make_card(
        to_dict(cfg),
        {"heldout_bits_per_dim": heldout["bits_per_dim"]},
        spectro=dataclasses.asdict(cfg.spectro),
        flow=to_dict(model.config),
        training={"data": data, "steps": steps, "seed": cfg.train.seed},
        heldout=heldout,
    )
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    path = register_prior(registry, name, params, card, overwrite)
    print(f"registered {path} (held-out bits/dim {heldout['bits_per_dim']})")
    return path


def register_run(workdir: str | Path, to: str | Path, overwrite: bool = False) -> Path:
    """Register a finished run (`train/prior.py --export WORKDIR --to DIR/NAME`)."""
    from flax import nnx

    from gensep.checkpoint import load_for_inference
    from gensep.flows.glow import Glow

    if to is None:
        raise ValueError("--export needs --to DIR/NAME (the registry folder and prior name)")
    cfg = load_config(Path(workdir) / "config.yaml", PriorRunConfig)
    params, card = load_for_inference(workdir)
    model = Glow(flow_config(cfg), rngs=nnx.Rngs(0))
    nnx.update(model, params)
    train_folders, heldout_folders = split_tracks(cfg.data)
    tracks = read_source(train_folders, cfg.data.source, cfg.spectro.sample_rate)
    step = int(card.get("step", 0))
    to = Path(to)
    return register(model, cfg, to.parent, to.name, tracks, heldout_folders, step, overwrite)


__all__ = [
    "FlowSizes",
    "PatchBatches",
    "PriorDataConfig",
    "PriorRunConfig",
    "flow_config",
    "heldout_bits_per_dim",
    "heldout_patches",
    "load_run_config",
    "noisy_bits_per_dim",
    "register",
    "register_run",
    "split_tracks",
    "train_prior",
]
