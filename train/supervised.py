"""Train a supervised mask network (DESIGN §3.3) on remixed stems, then export it.

    python train/supervised.py --config configs/sup_blstm_choir.yaml --workdir runs/sup_blstm_choir
    python train/supervised.py --config configs/sup_blstm_choir.yaml --workdir runs/... --resume
    python train/supervised.py --export runs/sup_blstm_choir --to models/blstm_choir

    gensep separate song.wav --method blstm --model models/blstm_choir --out sep/

Batches come from `ExcerptSampler(mode="remix")` over the split's tracks at the model's
rate: every source excerpt from its own random track and position with a random gain,
the mixture their sum (random mixtures the dataset never rendered, from one split only).
`data.mono` downmixes stereo excerpts to one channel (the configs do); without it each
channel is one batch row in the loss. The loss is `gensep.models.masknet.masknet_loss`
(L1 on masked magnitudes). Seeded (the sampler and the initial weights by train.seed),
resumable (orbax checkpoints hold the sampler state), the config saved in the workdir.
Several hosts: one process per host with JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and
JAX_PROCESS_ID set; each draws its shard of every global batch.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

from gensep.config import load_config, save_config, to_dict
from gensep.models.masknet import MaskNetConfig
from gensep.training import TrainConfig


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Stems of a MUSDB-layout dataset, remixed at random (the sources: model.sources).

    max_tracks keeps the first that many tracks sorted by name, the same rule as UMSS's
    `load_mixtures`, so a data-efficiency point trains both on the same chorales.
    remix_gain_db is the (low, high) uniform gain per source excerpt; allow_silent_prob
    the chance a source excerpt may be silent (rests, an instrument out).
    """

    root: str
    split: str = "train"
    excerpt_seconds: float = 2.0
    silence_db: float = -60.0
    remix_gain_db: tuple[float, float] = (-6.0, 3.0)
    allow_silent_prob: float = 0.0
    mono: bool = True
    max_tracks: int | None = None


@dataclasses.dataclass(frozen=True)
class SupervisedRunConfig:
    data: DataConfig
    model: MaskNetConfig
    train: TrainConfig


def load_tracks(cfg: SupervisedRunConfig) -> list:
    """The split's tracks with the model's sources, at the model's rate."""
    from gensep.data.layout import list_tracks, read_track

    folders = list_tracks(cfg.data.root, cfg.data.split)[: cfg.data.max_tracks]
    return [read_track(f, cfg.model.sources, cfg.model.sample_rate) for f in folders]


def make_sampler(cfg: SupervisedRunConfig, tracks: list, num_shards: int = 1, shard_index: int = 0):
    from gensep.data.sampler import ExcerptSampler

    return ExcerptSampler(
        tracks,
        round(cfg.data.excerpt_seconds * cfg.model.sample_rate),
        cfg.train.batch_size,
        mode="remix",
        seed=cfg.train.seed,
        sources=cfg.model.sources,
        silence_db=cfg.data.silence_db,
        remix_gain_db=cfg.data.remix_gain_db,
        mono=cfg.data.mono,
        allow_silent_prob=cfg.data.allow_silent_prob,
        num_shards=num_shards,
        shard_index=shard_index,
    )


def train(config_path: str, workdir: str, resume: bool) -> None:
    import jax
    from flax import nnx

    from gensep.data.sampler import KeepKeys
    from gensep.models.masknet import MaskNet, masknet_loss, param_count
    from gensep.training import fit

    cfg = load_config(config_path, SupervisedRunConfig)
    tracks = load_tracks(cfg)
    minutes = sum(t.seconds for t in tracks) / 60
    print(f"{len(tracks)} tracks ({minutes:.1f} min) from {cfg.data.root}/{cfg.data.split}")
    sampler = make_sampler(cfg, tracks, jax.process_count(), jax.process_index())
    model = MaskNet(cfg.model, rngs=nnx.Rngs(cfg.train.seed))
    print(f"{cfg.model.arch}: {param_count(model):,} parameters")
    save_config(cfg, Path(workdir) / "config.yaml")
    fit(
        model,
        masknet_loss,
        KeepKeys(sampler, ("mixture", "sources")),
        cfg.train,
        workdir,
        config=to_dict(cfg),
        resume=resume,
    )


def main(argv: list[str] | None = None) -> int:
    from gensep.models.store import load_masknet
    from gensep.training import training_cli

    # the export must load as a mask network
    doc = __doc__.split("\n\n")[0]
    return training_cli(argv, doc, "configs/sup_<arch>_<data>.yaml", train, load_masknet)


if __name__ == "__main__":
    sys.exit(main())
