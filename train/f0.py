"""Train the neural multi-F0 estimator on synthetic mixtures (no human labels), then export it.

    python train/f0.py --config configs/f0_choir.yaml --workdir runs/f0_choir
    python train/f0.py --config configs/f0_choir.yaml --workdir runs/f0_choir --resume
    python train/f0.py --export runs/f0_choir --to gensep/models/weights/f0_choir

Batches come from `gensep.f0.synthetic.SyntheticMixtures`: four random voices drawn by the
differentiable synthesiser, with the F0 they were drawn with as the target. With a
`rendered:` section, a fraction of each batch's rows are excerpts of rendered train
mixtures with their F0 files (then results on the rendered test set are optimistic: the
same renderer made both). A `validation:` section scores the last chorales of a split,
never trained on, after training (validation.json in the workdir). `init_from: RUN`
starts from another run's weights (fine-tuning). Seeded (data and initial weights by
train.seed) and resumable through `gensep.training.fit`.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from gensep.config import load_config, save_config, to_dict
from gensep.f0.synthetic import SyntheticConfig
from gensep.models.f0net import F0NetConfig
from gensep.training import TrainConfig

VOICES = ("soprano", "alto", "tenor", "bass")


@dataclasses.dataclass(frozen=True)
class RenderedConfig:
    """Rendered mixtures with F0 files (`<track>/<voice>.f0.csv`) mixed into every batch.

    weight: the fraction of each batch's rows taken from them. The validation chorales
    (same root and split) are left out.
    """

    root: str
    split: str = "train"
    weight: float = 0.25
    voices: tuple[str, ...] = VOICES


@dataclasses.dataclass(frozen=True)
class ValidationConfig:
    """The last `tracks` chorales of root/split (by name), first `seconds` of each."""

    root: str
    split: str = "train"
    tracks: int = 10
    seconds: float | None = 30.0
    voices: tuple[str, ...] = VOICES


@dataclasses.dataclass(frozen=True)
class F0RunConfig:
    model: F0NetConfig
    synthetic: SyntheticConfig
    train: TrainConfig
    rendered: RenderedConfig | None = None
    validation: ValidationConfig | None = None
    init_from: str | None = None  # a run workdir: start from its latest weights (fine-tuning)

    def __post_init__(self) -> None:
        from gensep.errors import ConfigError

        m, s = self.model, self.synthetic
        if (m.sample_rate, m.hop, m.n_voices) != (s.sample_rate, s.hop, s.n_voices):
            raise ConfigError(
                f"synthetic (rate {s.sample_rate}, hop {s.hop}, {s.n_voices} voices) must match "
                f"the model (rate {m.sample_rate}, hop {m.hop}, {m.n_voices} voices)"
            )
        if self.rendered is not None and len(self.rendered.voices) != m.n_voices:
            raise ConfigError(f"rendered.voices: need {m.n_voices} names, high to low")


class RenderedExcerpts:
    """Random excerpts {"audio": [n, N], "f0": [n, V, T]} of rendered mixtures; draw j
    depends only on (seed, j)."""

    def __init__(self, tracks: list, voices, frames: int, hop: int, seed: int):
        from gensep.data.track import f0_on_frames

        self.frames, self.hop, self.seed, self.draws = frames, hop, seed, 0
        self.audio = [t.mixture.mean(axis=0) for t in tracks]
        self.f0 = []
        for track, audio in zip(tracks, self.audio, strict=True):
            grid = np.arange(len(audio) // hop) * hop / track.rate
            self.f0.append(np.stack([f0_on_frames(*track.f0[v], grid) for v in voices]))

    def draw(self, n: int) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, 7, self.draws])
        self.draws += 1
        audio, f0 = [], []
        for i in rng.integers(len(self.audio), size=n):
            start = int(rng.integers(self.f0[i].shape[1] - self.frames + 1))
            audio.append(self.audio[i][start * self.hop : (start + self.frames) * self.hop])
            f0.append(self.f0[i][:, start : start + self.frames])
        return {"audio": np.stack(audio), "f0": np.stack(f0).astype(np.float32)}


class MixedBatches:
    """Synthetic rows plus `n_rendered` rendered rows per batch; resumable."""

    def __init__(self, synthetic, rendered: RenderedExcerpts | None, n_rendered: int):
        self.synthetic, self.rendered, self.n_rendered = synthetic, rendered, n_rendered

    def __iter__(self) -> MixedBatches:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        batch = next(self.synthetic)
        if self.rendered is None or self.n_rendered == 0:
            return batch
        extra = self.rendered.draw(self.n_rendered)
        return {k: np.concatenate([batch[k], extra[k]]) for k in batch}

    def state_dict(self) -> dict:
        draws = self.rendered.draws if self.rendered is not None else 0
        return {"synthetic": self.synthetic.state_dict(), "rendered_draws": draws}

    def load_state_dict(self, state: dict) -> None:
        self.synthetic.load_state_dict(state["synthetic"])
        if self.rendered is not None:
            self.rendered.draws = int(state["rendered_draws"])


def make_batches(cfg: F0RunConfig, shard_index: int = 0) -> MixedBatches:
    from gensep.data.mixtures import load_mixtures
    from gensep.f0.synthetic import SyntheticMixtures

    n_rendered, rendered = 0, None
    if cfg.rendered is not None and cfg.rendered.weight > 0:
        r = cfg.rendered
        tracks = load_mixtures(r.root, r.split, r.voices, cfg.model.sample_rate)
        held = set(validation_names(cfg))
        tracks = [t for t in tracks if t.name not in held]
        n_rendered = round(r.weight * cfg.train.batch_size)
        rendered = RenderedExcerpts(
            tracks, r.voices, cfg.synthetic.n_frames, cfg.model.hop, cfg.train.seed + shard_index
        )
        print(f"{len(tracks)} rendered mixtures from {r.root}/{r.split}: {n_rendered} rows/batch")
    synthetic = SyntheticMixtures(
        cfg.synthetic, cfg.train.batch_size - n_rendered, cfg.train.seed, shard_index
    )
    return MixedBatches(synthetic, rendered, n_rendered)


def validation_names(cfg: F0RunConfig) -> list[str]:
    from gensep.data.layout import list_tracks

    v = cfg.validation
    if v is None:
        return []
    return [p.name for p in list_tracks(v.root, v.split)[-v.tracks :]]


def score_f0(truth: tuple, estimate: tuple) -> dict[str, float]:
    """mir_eval.melody raw pitch / chroma accuracy (50 cents), voicing recall / false alarm."""
    import mir_eval

    ref_v, ref_c, est_v, est_c = mir_eval.melody.to_cent_voicing(*truth, *estimate)
    recall, false_alarm = mir_eval.melody.voicing_measures(ref_v, est_v)
    return {
        "raw_pitch_accuracy": float(mir_eval.melody.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c)),
        "raw_chroma_accuracy": float(
            mir_eval.melody.raw_chroma_accuracy(ref_v, ref_c, est_v, est_c)
        ),
        "voicing_recall": float(recall),
        "voicing_false_alarm": float(false_alarm),
    }


def validate(model, cfg: F0RunConfig) -> dict:
    """Mean scores per voice over the validation chorales."""
    from gensep.data.mixtures import load_mixtures
    from gensep.f0.neural import neural_f0

    v = cfg.validation
    names = set(validation_names(cfg))
    tracks = [t for t in load_mixtures(v.root, v.split, v.voices) if t.name in names]
    scores = {voice: [] for voice in v.voices}
    for track in tracks:
        audio = track.mixture.mean(axis=0)
        if v.seconds is not None:
            audio = audio[: round(v.seconds * track.rate)]
        estimates = neural_f0(audio, track.rate, model)
        for voice, est in zip(v.voices, estimates, strict=True):
            times, hz = track.f0[voice]
            inside = times < len(audio) / track.rate
            scores[voice].append(score_f0((times[inside], hz[inside]), est))
    return {
        voice: {k: float(np.mean([s[k] for s in rows])) for k in rows[0]}
        for voice, rows in scores.items()
    }


def train(config_path: str, workdir: str, resume: bool) -> None:
    import jax
    from flax import nnx

    from gensep.atomic import write_json
    from gensep.checkpoint import load_initial_weights
    from gensep.models.f0net import F0Net, f0_loss
    from gensep.models.masknet import param_count
    from gensep.training import fit

    cfg = load_config(config_path, F0RunConfig)
    data = make_batches(cfg, jax.process_index())
    model = F0Net(cfg.model, rngs=nnx.Rngs(cfg.train.seed))
    print(f"F0 network: {param_count(model):,} parameters")
    if cfg.init_from and not resume:
        load_initial_weights(model, cfg.init_from, cfg.model)
    save_config(cfg, Path(workdir) / "config.yaml")
    model, _ = fit(model, f0_loss, data, cfg.train, workdir, config=to_dict(cfg), resume=resume)
    if cfg.validation is not None and jax.process_index() == 0:
        scores = validate(model, cfg)
        write_json(Path(workdir) / "validation.json", scores)
        print(json.dumps(scores, indent=1))


def main(argv: list[str] | None = None) -> int:
    from gensep.f0.neural import load_f0_model
    from gensep.training import training_cli

    # the export must load as an F0 network
    doc = __doc__.split("\n\n")[0]
    return training_cli(argv, doc, "configs/f0_*.yaml", train, load_f0_model)


if __name__ == "__main__":
    sys.exit(main())
