"""Train UMSS on mixtures only (DESIGN §3.1), then export the model for `--method umss`.

    python train/umss.py --config configs/umss_choir.yaml --workdir runs/umss_choir
    python train/umss.py --config configs/umss_choir.yaml --workdir runs/umss_choir --resume
    python train/umss.py --export runs/umss_choir --to gensep/models/weights/umss_choir

The data path reads mixtures and F0 files only (`gensep.data.mixtures`): stems are never
opened. Several hosts: launch one process per host with JAX_COORDINATOR_ADDRESS,
JAX_NUM_PROCESSES and JAX_PROCESS_ID set; each draws its shard of every global batch.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from gensep.config import load_config, save_config, to_dict
from gensep.models.umss import UMSSConfig
from gensep.training import TrainConfig


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Mixtures + F0 of a MUSDB-layout dataset (the rendered choir set by default)."""

    root: str
    split: str = "train"
    sources: tuple[str, ...] = ("soprano", "alto", "tenor", "bass")
    excerpt_seconds: float = 4.0
    silence_db: float = -50.0
    max_tracks: int | None = None


@dataclasses.dataclass(frozen=True)
class UMSSRunConfig:
    data: DataConfig
    model: UMSSConfig
    train: TrainConfig
    init_from: str | None = None  # a run workdir: start from its latest weights (fine-tuning)


def batches(cfg: UMSSRunConfig, tracks, num_shards: int = 1, shard_index: int = 0):
    """The run's training batches: mixture excerpts + F0 (`MixtureF0Batches`)."""
    from gensep.data.mixtures import MixtureF0Batches

    return MixtureF0Batches(
        tracks,
        cfg.data.sources,
        cfg.model.hop,
        round(cfg.data.excerpt_seconds * cfg.model.sample_rate),
        cfg.train.batch_size,
        seed=cfg.train.seed,
        silence_db=cfg.data.silence_db,
        num_shards=num_shards,
        shard_index=shard_index,
    )


def train(config_path: str, workdir: str, resume: bool) -> None:
    import jax
    from flax import nnx

    from gensep.checkpoint import load_initial_weights
    from gensep.data.mixtures import load_mixtures
    from gensep.models.umss import UMSS, umss_loss
    from gensep.training import fit

    cfg = load_config(config_path, UMSSRunConfig)
    rate = cfg.model.sample_rate
    tracks = load_mixtures(
        cfg.data.root, cfg.data.split, cfg.data.sources, rate, cfg.data.max_tracks
    )
    minutes = sum(t.seconds for t in tracks) / 60
    print(f"{len(tracks)} mixtures ({minutes:.1f} min) from {cfg.data.root}/{cfg.data.split}")
    data = batches(cfg, tracks, jax.process_count(), jax.process_index())
    model = UMSS(cfg.model, rngs=nnx.Rngs(cfg.train.seed))
    if cfg.init_from and not resume:
        load_initial_weights(model, cfg.init_from, cfg.model)
    save_config(cfg, Path(workdir) / "config.yaml")
    fit(model, umss_loss, data, cfg.train, workdir, config=to_dict(cfg), resume=resume)


def main(argv: list[str] | None = None) -> int:
    from gensep.training import training_cli

    return training_cli(argv, __doc__.split("\n\n")[0], "configs/umss_*.yaml", train)


if __name__ == "__main__":
    sys.exit(main())
