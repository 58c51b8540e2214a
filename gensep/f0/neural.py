"""Neural multi-F0 estimation of recordings with a trained `F0Net` (gensep.models.f0net).

    tracks = neural_f0(audio, rate)            # the default model; [(times_s, hz)] high to low

The recording is resampled to the model's rate and cut into fixed windows (10 s kept plus
1 s of context either side, dropped), so the network is compiled once whatever the length.
Two models are shipped (gensep/models/weights/<name>.npz + .json), both trained by
train/f0.py: `default_f0_model_path()`, f0_choir_rendered, trained on synthetic mixtures and
then on rendered train chorales with their F0 files (the best blind F0 for separation, on
the rendered choir test split and on real Bach10), and `label_free_f0_model_path()`,
f0_choir, trained on synthetic mixtures only.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jax
import numpy as np
from flax import nnx

from gensep.data.track import F0Track
from gensep.errors import CheckpointError, ConfigError, GensepError
from gensep.models.f0net import F0Net, F0NetConfig, decode, features

CHUNK_FRAMES = 1000  # frames kept from each inference window (10 s at 10 ms)
CONTEXT_FRAMES = 100  # frames of context either side of a window, dropped (1 s)


WEIGHTS = Path(__file__).resolve().parents[1] / "models" / "weights"


def default_f0_model_path() -> Path:
    """The default model, `gensep/models/weights/f0_choir_rendered` (+ .npz / .json)."""
    return WEIGHTS / "f0_choir_rendered"


def label_free_f0_model_path() -> Path:
    """The model trained on synthetic mixtures only, `gensep/models/weights/f0_choir`."""
    return WEIGHTS / "f0_choir"


def load_f0_model(path: str | Path | None = None) -> tuple[F0Net, dict]:
    """(model, card) of the F0 network saved at `path` (default: `default_f0_model_path()`).

    Raises:
      CheckpointError: no model there (for the default path: how to train and export
        one), an unreadable file, a card that is not an F0 network's, or parameters that
        do not fit it.
    """
    from gensep.config import from_dict
    from gensep.models.store import flatten, load_params

    path = Path(path or default_f0_model_path())
    path = path.with_suffix("") if path.suffix in (".npz", ".json") else path
    shipped = path.resolve() == default_f0_model_path().resolve()
    if shipped and not path.with_suffix(".npz").is_file():
        raise CheckpointError(
            f"no neural F0 model installed ({path}.npz missing): train one with "
            "train/f0.py and the configs/f0_choir*.yaml chain (see configs/"
            "f0_choir_rendered.yaml), export it there with `python train/f0.py --export RUN "
            f"--to {path}`, or use the 'salience' F0 method"
        )
    params, card = load_params(path)
    try:
        config = from_dict(F0NetConfig, card["config"]["model"], "card.config.model")
    except (KeyError, TypeError, ConfigError) as err:
        raise CheckpointError(
            f"{path}: not a neural F0 model ({err}) — train/f0.py --export writes those"
        ) from err
    model = F0Net(config, rngs=nnx.Rngs(0))
    expected = {k: v.shape for k, v in flatten(nnx.to_pure_dict(nnx.state(model))).items()}
    got = {k: v.shape for k, v in flatten(params).items()}
    if expected != got:
        wrong = sorted(k for k in expected.keys() | got.keys() if expected.get(k) != got.get(k))
        raise CheckpointError(
            f"{path}: parameters do not fit the card's model ({wrong[0]!r}: file "
            f"{got.get(wrong[0])}, model {expected.get(wrong[0])}) — re-export the model"
        )
    nnx.update(model, params)
    return model, card


@cache
def _window_fn(graphdef: nnx.GraphDef, ordered: bool):
    """The jit-compiled window -> F0 function of one architecture (compiled once per window
    shape, whatever the weights)."""

    @jax.jit
    def run(state, audio):
        net = nnx.merge(graphdef, state)
        logits, voicing = net(features(net.config, audio))
        return decode(net.config, logits, voicing, ordered)[0]

    return run


def _predictor(model: F0Net, ordered: bool = True):
    """audio window [1, samples] -> F0 [frames, V] (Hz) with the model's current weights."""
    graphdef, state = nnx.split(model)
    run = _window_fn(graphdef, ordered)
    return lambda audio: np.asarray(run(state, audio))


@cache
def _installed(path: str, mtime: float, ordered: bool):
    """(config, predictor) of a model file, kept so its jit compilation is reused."""
    del mtime  # part of the cache key: a re-exported file is loaded again
    model, _ = load_f0_model(path)
    return model.config, _predictor(model, ordered)


def neural_f0(
    audio: np.ndarray,
    sample_rate: int,
    model: str | Path | F0Net | None = None,
    n_voices: int | None = None,
    ordered: bool = True,
) -> list[F0Track]:
    """Per-voice F0 of a mixture, voices high to low.

    Args:
      audio: Mono audio [samples] (or [channels, samples], averaged).
      sample_rate: Its rate (Hz); resampled to the model's with soxr.
      model: A model path (<name>.npz + .json), an `F0Net`, or None for the default model.
      n_voices: The number of voices asked for; must equal the model's (None: the model's).
      ordered: Decode the voices jointly, high to low and a semitone apart (else each
        voice's own most probable pitch); see `gensep.models.f0net.decode`.

    Returns:
      One (times_s [T], hz [T]) per voice, 0 Hz = unvoiced, frames every `hop` samples
      of the model's rate from t = 0.

    Raises:
      CheckpointError: no model installed / unreadable. GensepError: n_voices differs
      from the model's voice count.
    """
    import soxr

    if isinstance(model, F0Net):
        config, predict = model.config, _predictor(model, ordered)
        where = "the given model"
    else:
        path = Path(model or default_f0_model_path()).with_suffix("")
        npz = path.with_suffix(".npz")
        if not npz.is_file():
            load_f0_model(path)  # raises the CheckpointError that says what to do
        config, predict = _installed(str(path.resolve()), npz.stat().st_mtime, ordered)
        where = str(path)
    if n_voices is not None and n_voices != config.n_voices:
        raise GensepError(
            f"{where} estimates {config.n_voices} voices, {n_voices} were asked for: name "
            f"{config.n_voices} voices, or use the 'salience' F0 method"
        )
    mono = np.asarray(audio, np.float32)
    mono = mono.mean(axis=0) if mono.ndim == 2 else mono
    if sample_rate != config.sample_rate:
        mono = soxr.resample(mono, sample_rate, config.sample_rate, quality="HQ")
    hop, n_frames = config.hop, 1 + len(mono) // config.hop
    n_windows = -(-n_frames // CHUNK_FRAMES)
    window = (CHUNK_FRAMES + 2 * CONTEXT_FRAMES) * hop
    padded = np.zeros(CONTEXT_FRAMES * hop + n_windows * CHUNK_FRAMES * hop + window, np.float32)
    padded[CONTEXT_FRAMES * hop : CONTEXT_FRAMES * hop + len(mono)] = mono
    keep = slice(CONTEXT_FRAMES, CONTEXT_FRAMES + CHUNK_FRAMES)
    hz = np.concatenate(
        [
            predict(padded[None, i * CHUNK_FRAMES * hop : i * CHUNK_FRAMES * hop + window])[keep]
            for i in range(n_windows)
        ]
    )[:n_frames]  # [T, V]
    times = np.arange(n_frames) * hop / config.sample_rate
    return [(times, hz[:, v].astype(np.float64)) for v in range(config.n_voices)]


__all__ = ["default_f0_model_path", "label_free_f0_model_path", "load_f0_model", "neural_f0"]
