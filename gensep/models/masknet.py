"""Supervised mask networks (DESIGN §3.3): the front end, back end and loss they share.

One pipeline, five interchangeable bodies (`gensep.models.supervised.ARCHS`):

  mono audio [B, N] at config.sample_rate
    -> |STFT| (config.n_fft, config.hop; periodic Hann, centred frames)   [B, T, F]
    -> log1p, then a learned per-bin shift and scale (Open-Unmix's input_mean /
       input_scale, here starting at 0 and 1)                             [B, T, F]
    -> body (blstm | unet | cnn | transformer | crnn) -> logits           [B, S, T, F]
    -> softmax over the S sources: masks in (0, 1) that sum to 1 in every bin
    -> masks x complex mixture STFT -> inverse STFT: estimates that sum to the mixture.

log1p rather than log: bounded below at 0 for silent bins without an epsilon to tune,
logarithmic for the loud ones. Softmax rather than Open-Unmix's independent ReLU masks:
the estimates then add up to the mixture by construction, as every other mask method of
the harness does, so no energy is created or lost between sources. There is no
multichannel Wiener post-filter (Open-Unmix's optional EM stage): the masks are applied
as predicted.

Loss (`masknet_loss`): L1 between each masked mixture magnitude and the true source's
magnitude, mean over sources, bins, frames and batch rows — Open-Unmix's choice of
domain (it uses MSE); L1 is less dominated by the few loudest bins. Stereo batches
are folded so each channel is one batch row (the same model and masks per channel as at
inference); the training configs downmix to mono in the sampler instead.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from gensep import dsp
from gensep.errors import ConfigError
from gensep.models.supervised import ARCHS

# Default sizes per architecture, CPU-sized: 0.56-0.77 M parameters at a 1024-point STFT,
# but for the CNN (11 k), whose cost is compute at full resolution rather than parameters
# (bench/bench_supervised.py). Open-Unmix itself is 512 wide with 3 LSTM layers, ~9 M
# parameters per target.
ARCH_SIZES = {
    "blstm": dict(hidden=128, layers=2, channels=16, heads=4),
    "unet": dict(hidden=128, layers=4, channels=16, heads=4),
    "cnn": dict(hidden=128, layers=6, channels=16, heads=4),
    "transformer": dict(hidden=128, layers=3, channels=16, heads=4),
    "crnn": dict(hidden=128, layers=2, channels=16, heads=4),
}


@dataclasses.dataclass(frozen=True)
class MaskNetConfig:
    """Architecture, STFT and sizes of a supervised mask network (defaults: 16 kHz choir).

    sample_rate (Hz), n_fft and hop (samples) fix the model's STFT; `sources` names the
    outputs in order. Sizes (None: the architecture's default in ARCH_SIZES, filled in on
    construction, so a saved card holds the numbers), each read only by the
    architectures named:
      hidden: frame feature width (blstm, crnn, transformer; even for the bidirectional
        RNNs: hidden / 2 units per direction; a multiple of heads for the transformer).
      layers: recurrent layers (blstm, crnn), attention blocks (transformer), conv layers
        (cnn, >= 2), encoder/decoder levels (unet).
      channels: conv channels (cnn, crnn front; unet's first level, doubling per level).
      heads: attention heads (transformer).
    """

    arch: str = "blstm"
    sample_rate: int = 16000
    n_fft: int = 1024
    hop: int = 256
    sources: tuple[str, ...] = ("soprano", "alto", "tenor", "bass")
    hidden: int | None = None
    layers: int | None = None
    channels: int | None = None
    heads: int | None = None

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"model.arch {self.arch!r}: use one of {sorted(ARCHS)}")
        for name, value in ARCH_SIZES[self.arch].items():
            if getattr(self, name) is None:  # frozen: fill the defaults in once, here
                object.__setattr__(self, name, value)
        for name in ("sample_rate", "n_fft", "hop", "hidden", "layers", "channels", "heads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} {getattr(self, name)!r} must be >= 1")
        if self.n_fft % 2 or self.hop > self.n_fft // 2:
            raise ConfigError(
                f"model.n_fft {self.n_fft}, hop {self.hop}: need an even n_fft and "
                "hop <= n_fft / 2 (the inverse STFT needs overlapping frames)"
            )
        if len(self.sources) < 2 or len(set(self.sources)) != len(self.sources):
            raise ConfigError(f"model.sources {list(self.sources)}: need >= 2 distinct names")
        if self.arch in ("blstm", "crnn") and self.hidden % 2:
            raise ConfigError(f"model.hidden {self.hidden}: {self.arch} needs an even width")
        if self.arch == "transformer" and self.hidden % self.heads:
            raise ConfigError(f"model.hidden {self.hidden} is not a multiple of heads")
        if self.arch == "cnn" and self.layers < 2:
            raise ConfigError("model.layers: the cnn needs >= 2 (input and output conv)")

    @property
    def n_bins(self) -> int:
        return self.n_fft // 2 + 1


class MaskNet(nnx.Module):
    """Mixture magnitude -> masks for every source (see the module docstring)."""

    def __init__(self, config: MaskNetConfig, *, rngs: nnx.Rngs):
        self.config = config
        f = config.n_bins
        self.input_shift = nnx.Param(jnp.zeros((f,), jnp.float32))
        self.input_scale = nnx.Param(jnp.ones((f,), jnp.float32))
        self.body = ARCHS[config.arch](f, len(config.sources), config, rngs=rngs)

    def features(self, mix_mag: jnp.ndarray) -> jnp.ndarray:
        """[..., T, F] linear magnitudes -> (log1p(|X|) + shift_f) * scale_f, same shape."""
        return (jnp.log1p(mix_mag) + self.input_shift[...]) * self.input_scale[...]

    def __call__(self, mix_mag: jnp.ndarray) -> jnp.ndarray:
        """Masks for every source.

        Args:
          mix_mag: |STFT| of mono mixtures at the model's n_fft / hop. Shape [B, T, F].

        Returns:
          Masks in (0, 1), shape [B, S, T, F], summing to 1 over S.
        """
        return jax.nn.softmax(self.body(self.features(mix_mag)), axis=1)


def masks(model: MaskNet, audio: jnp.ndarray) -> jnp.ndarray:
    """Masks of mono audio [B, N] at the model's rate -> [B, S, 1 + N // hop, F]."""
    c = model.config
    return model(dsp.magnitude(dsp.stft(audio, c.n_fft, c.hop)))


def separate_with_model(model: MaskNet, audio: jnp.ndarray) -> jnp.ndarray:
    """Masked estimates of mono audio (pure function: jit it with the model split).

    Args:
      model: The mask network.
      audio: Mono mixtures at the model's rate. Shape [B, N].

    Returns:
      Estimates, shape [B, S, N]; they sum to `audio` up to STFT rounding.
    """
    c = model.config
    spec = dsp.stft(audio, c.n_fft, c.hop)  # [B, T, F]
    est = dsp.apply_masks(spec, model(dsp.magnitude(spec)))  # [B, S, T, F]
    return dsp.istft(est, c.n_fft, c.hop, length=audio.shape[-1])


def _rows(audio: jnp.ndarray, lead: int) -> jnp.ndarray:
    """[B, (S,) C, N] or [B, (S,) N] -> one row per (item, channel): [B * C, (S,) N]."""
    if audio.ndim == lead + 1:
        return audio
    audio = jnp.moveaxis(audio, -2, 1)  # [B, C, (S,) N]
    return audio.reshape(-1, *audio.shape[2:])


def masknet_loss(
    model: MaskNet, batch: dict[str, jnp.ndarray], rng: jax.Array | None = None
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """Mean L1 between masked mixture magnitudes and the true source magnitudes.

    loss = mean over rows, sources, frames and bins of | m_j |X| - |S_j| |, with X, S_j the
    STFTs (the model's n_fft / hop) of the mixture and source j and m_j the model's masks.

    Args:
      model: The mask network.
      batch: {"mixture": [B, C, N] (or [B, N]), "sources": [B, S, C, N] (or [B, S, N])}
        audio at the model's rate, sources in `model.config.sources` order — an
        `ExcerptSampler(mode="remix")` batch; its other keys are ignored. Channels become
        batch rows.
      rng: Unused (no dropout); kept for the training loop's signature.

    Returns:
      (scalar loss, {"l1_<source>": that source's term}).
    """
    del rng
    c = model.config
    mixture, sources = _rows(batch["mixture"], 1), _rows(batch["sources"], 2)  # [R, N], [R, S, N]
    if sources.shape[1] != len(c.sources):
        raise ValueError(
            f"batch has {sources.shape[1]} sources, the model {len(c.sources)} {list(c.sources)}"
        )
    mix_mag = dsp.magnitude(dsp.stft(mixture, c.n_fft, c.hop))  # [R, T, F]
    target = dsp.magnitude(dsp.stft(sources, c.n_fft, c.hop))  # [R, S, T, F]
    err = jnp.abs(model(mix_mag) * mix_mag[:, None] - target)
    per_source = jnp.mean(err, axis=(0, 2, 3))  # [S]
    metrics = {f"l1_{name}": per_source[j] for j, name in enumerate(c.sources)}
    return jnp.mean(per_source), metrics


def param_count(model: nnx.Module) -> int:
    """Number of trainable scalars."""
    return sum(int(p.size) for p in jax.tree.leaves(nnx.state(model, nnx.Param)))


__all__ = [
    "ARCH_SIZES",
    "MaskNet",
    "MaskNetConfig",
    "masknet_loss",
    "masks",
    "param_count",
    "separate_with_model",
]
