"""Neural multi-F0 network (`F0Net`): per-voice F0 and voicing of a mixture of ordered voices.

Pipeline, at config.sample_rate (16 kHz), one frame every `hop` samples (10 ms):

  mono audio [B, N]
    -> harmonic log-frequency front end (`features`): STFT power (n_fft 2048) averaged by
       triangular filters centred on h x f_p for every pitch bin f_p (fmin_hz up, 36 per
       octave) and every h in `harmonics`; dB, relative to the input's maximum  [B, T, P, H]
    -> three small 2-D convolutions over (time, pitch), the last one octave-wide
       (dilated): local harmonic evidence per pitch bin                          [B, T, P, C]
    -> two heads whose logits add up, per voice (high to low):
       * salience: a 1x1 projection — sharp and shift-equivariant (where a pitch is), and
       * region: every bin of the frame squeezed to one vector, a BiGRU over time, a
         linear map to V x P logits — which of the sounding pitches belongs to which voice
         (that needs the whole frame and its context, not a local window)
    -> pitch logits [B, T, V, P] and voicing logits [B, T, V] (from the BiGRU).

Loss (`f0_loss`): cross-entropy against a Gaussian-blurred target (sigma in bins) on the
voiced frames of each voice + voicing binary cross-entropy. Decoding (`decode`): the
probability-weighted mean bin of +-2 bins around each voice's bin, the bins chosen jointly
so that the voices stay high to low and a semitone apart (`ordered_bins`), voiced where
the voicing probability exceeds 0.5. Trained on synthetic mixtures (`gensep.f0.synthetic`,
train/f0.py); inference on recordings of any length: `gensep.f0.neural.neural_f0`.
"""

from __future__ import annotations

import dataclasses
from functools import cache

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from gensep import dsp
from gensep.errors import ConfigError
from gensep.models.supervised.recurrent import BiRecurrent


@dataclasses.dataclass(frozen=True)
class F0NetConfig:
    """Front end, sizes and loss of an F0 network.

    sample_rate (Hz), n_fft, hop (samples): the STFT. Pitch bins: n_bins, log-spaced from
    fmin_hz, bins_per_octave (a multiple of 6). harmonics: multiples of each bin's pitch
    stacked as input channels. n_voices: output voices, high to low. channels: conv width;
    squeeze: channels per bin fed to the region head; hidden: BiGRU width (even).
    target_sigma_bins: std of the Gaussian pitch target; voicing_weight: weight of the
    voicing cross-entropy.
    """

    sample_rate: int = 16000
    n_fft: int = 2048
    hop: int = 160
    fmin_hz: float = 60.0
    bins_per_octave: int = 36
    n_bins: int = 152
    harmonics: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0, 4.0, 5.0)
    n_voices: int = 4
    channels: int = 16
    squeeze: int = 6
    hidden: int = 192
    target_sigma_bins: float = 1.0
    voicing_weight: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "harmonics", tuple(float(h) for h in self.harmonics))
        for name in ("sample_rate", "n_fft", "hop", "n_bins", "n_voices", "channels", "hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"model.{name} {getattr(self, name)!r} must be >= 1")
        if self.bins_per_octave % 6 or self.hidden % 2:
            raise ConfigError("model.bins_per_octave must be a multiple of 6, model.hidden even")
        if self.fmax_hz * max(self.harmonics) >= self.sample_rate / 2:
            raise ConfigError(
                f"model: the top bin ({self.fmax_hz:.0f} Hz) x harmonic {max(self.harmonics)} "
                f"is above Nyquist ({self.sample_rate / 2:.0f} Hz) — fewer bins or harmonics"
            )

    @property
    def fmax_hz(self) -> float:
        return self.bin_hz(self.n_bins - 1)

    def bin_hz(self, position):
        """Frequency (Hz) of a (fractional) pitch-bin position."""
        return self.fmin_hz * 2.0 ** (np.asarray(position) / self.bins_per_octave)


@cache
def _filterbank(config: F0NetConfig) -> np.ndarray:
    """[F, H * P]: column (h, p) averages STFT bins in a triangle around harmonics[h] x f_p,
    as wide as a pitch bin, or one STFT bin where that is narrower (low frequencies)."""
    stft_hz = np.arange(config.n_fft // 2 + 1) * config.sample_rate / config.n_fft
    step = config.sample_rate / config.n_fft
    centres = np.multiply.outer(config.harmonics, config.bin_hz(np.arange(config.n_bins)))
    width = np.maximum(centres * (2 ** (1 / config.bins_per_octave) - 1), step)  # [H, P]
    tri = np.maximum(0.0, 1.0 - np.abs(stft_hz[:, None, None] - centres) / width)  # [F, H, P]
    tri /= tri.sum(axis=0, keepdims=True)
    used = int(np.max(np.nonzero(tri.sum(axis=(1, 2)))[0])) + 1
    return tri[:used].reshape(used, -1).astype(np.float32)


def features(config: F0NetConfig, audio: jnp.ndarray) -> jnp.ndarray:
    """Harmonic log-frequency features of mono audio [B, N] -> [B, 1 + N // hop, P, H].

    dB relative to the loudest value within +-1 s of each frame, floored at -80 dB, mapped
    to [-2, 2]: the same for any input gain, and the same in a 2 s training excerpt as in a
    12 s inference window (a whole-input maximum would not be).
    """
    fb = _filterbank(config)
    spec = dsp.stft(audio, config.n_fft, config.hop)[..., : fb.shape[0]]
    power = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
    banded = jnp.einsum("btf,fk->btk", power, fb)  # [B, T, H * P]
    db = 10 * jnp.log10(banded + 1e-12)
    span = 2 * round(config.sample_rate / config.hop) + 1
    loudest = jax.lax.reduce_window(
        jnp.max(db, axis=2), -jnp.inf, jax.lax.max, (1, span), (1, 1), "SAME"
    )  # [B, T]
    db = jnp.maximum(db - loudest[..., None], -80.0)
    x = (db + 40.0) / 20.0
    return jnp.swapaxes(x.reshape(*x.shape[:2], len(config.harmonics), config.n_bins), 2, 3)


class F0Net(nnx.Module):
    """Features [B, T, P, H] -> (pitch logits [B, T, V, P], voicing logits [B, T, V])."""

    def __init__(self, config: F0NetConfig, *, rngs: nnx.Rngs):
        self.config = config
        c, h, v, p = config.channels, len(config.harmonics), config.n_voices, config.n_bins
        self.conv1 = nnx.Conv(h, c, (3, 5), rngs=rngs)
        self.conv2 = nnx.Conv(c, c, (3, 5), rngs=rngs)
        octave_step = config.bins_per_octave // 6  # 7 taps this far apart span an octave
        self.conv3 = nnx.Conv(c, c, (1, 7), kernel_dilation=(1, octave_step), rngs=rngs)
        self.salience = nnx.Linear(c, v, rngs=rngs)
        self.squeeze = nnx.Linear(c, config.squeeze, rngs=rngs)
        self.fc_in = nnx.Linear(p * config.squeeze, config.hidden, rngs=rngs)
        self.norm_in = nnx.LayerNorm(config.hidden, rngs=rngs)
        self.rnn = BiRecurrent(config.hidden, config.hidden // 2, "gru", rngs=rngs)
        self.region = nnx.Linear(config.hidden, v * p, rngs=rngs)
        self.voicing = nnx.Linear(config.hidden, v, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        b, t, p, _ = x.shape
        y = nnx.relu(self.conv1(x))  # [B, T, P, C]
        y = nnx.relu(self.conv2(y)) + y
        y = nnx.relu(self.conv3(y)) + y
        local = jnp.swapaxes(self.salience(y), 2, 3)  # [B, T, V, P]
        g = self.squeeze(y).reshape(b, t, -1)  # [B, T, P * S]
        g = jnp.tanh(self.norm_in(self.fc_in(g)))  # [B, T, D]
        g = g + self.rnn(g)
        region = self.region(g).reshape(b, t, self.config.n_voices, p)  # [B, T, V, P]
        return local + region, self.voicing(g)


def bin_position(config: F0NetConfig, hz: jnp.ndarray) -> jnp.ndarray:
    """Fractional pitch-bin position of F0 values (Hz > 0), clipped to the bin range."""
    pos = config.bins_per_octave * jnp.log2(jnp.maximum(hz, 1e-3) / config.fmin_hz)
    return jnp.clip(pos, 0.0, config.n_bins - 1)


def f0_loss(
    model: F0Net, batch: dict[str, jnp.ndarray], rng: jax.Array | None = None
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """Pitch cross-entropy on voiced frames + voicing_weight x voicing cross-entropy.

    Args:
      model: The F0 network.
      batch: {"audio": mono mixtures [B, N] at the model's rate, "f0": truth [B, V, T] Hz
        (0 = unvoiced) on frames t * hop, T <= 1 + N // hop, voices high to low}.
      rng: Unused (no dropout); the training loop's signature.

    Returns:
      (loss, {"pitch_ce", "voicing_bce", "pitch_acc" (argmax within 50 cents, voiced
      frames), "voicing_acc"}).
    """
    del rng
    c = model.config
    f0 = jnp.swapaxes(batch["f0"], 1, 2)  # [B, T, V]
    logits, voicing = model(features(c, batch["audio"]))
    logits, voicing = logits[:, : f0.shape[1]], voicing[:, : f0.shape[1]]
    voiced = f0 > 0
    pos = bin_position(c, f0)
    dist = jnp.arange(c.n_bins) - pos[..., None]  # [B, T, V, P]
    target = jax.nn.softmax(-0.5 * (dist / c.target_sigma_bins) ** 2, axis=-1)
    ce = -jnp.sum(target * jax.nn.log_softmax(logits, axis=-1), axis=-1)
    n_voiced = jnp.maximum(jnp.sum(voiced), 1)
    pitch_ce = jnp.sum(ce * voiced) / n_voiced
    voicing_bce = jnp.mean(optax.sigmoid_binary_cross_entropy(voicing, voiced))
    cents = jnp.abs(jnp.argmax(logits, axis=-1) - pos) * 1200 / c.bins_per_octave
    metrics = {
        "pitch_ce": pitch_ce,
        "voicing_bce": voicing_bce,
        "pitch_acc": jnp.sum((cents <= 50) * voiced) / n_voiced,
        "voicing_acc": jnp.mean((voicing > 0) == voiced),
    }
    return pitch_ce + c.voicing_weight * voicing_bce, metrics


def decode(
    config: F0NetConfig, logits: jnp.ndarray, voicing: jnp.ndarray, ordered: bool = True
) -> jnp.ndarray:
    """F0 (Hz, 0 = unvoiced) [..., V] from pitch logits [..., V, P] and voicing logits [..., V]:
    the probability-weighted mean position of the 5 bins around each voice's bin.

    The bins: with `ordered`, the most probable joint choice with the voices high to low
    and at least a semitone apart (`ordered_bins`); else each voice's own argmax. The
    network's typical error is two voices on one pitch (a voice it cannot find copies a
    neighbour), while crossings and unisons are rare in part-writing: on the 10 held-out
    train chorales ordered decoding raised the mean raw pitch accuracy from 0.78 to 0.84.
    """
    probs = jax.nn.softmax(logits, axis=-1)
    voiced = voicing > 0  # sigmoid(voicing) > 0.5
    if ordered:
        # an unvoiced voice has no pitch to keep in order: a flat distribution
        flat = jnp.full_like(probs, 1.0 / config.n_bins)
        semitone = config.bins_per_octave // 12
        centre = ordered_bins(jnp.where(voiced[..., None], probs, flat), semitone)
    else:
        centre = jnp.argmax(probs, axis=-1)
    near = jnp.clip(centre[..., None] + jnp.arange(-2, 3), 0, config.n_bins - 1)
    weights = jnp.take_along_axis(probs, near, axis=-1)
    pos = jnp.sum(weights * near, axis=-1) / jnp.maximum(jnp.sum(weights, axis=-1), 1e-12)
    hz = config.fmin_hz * 2.0 ** (pos / config.bins_per_octave)
    return jnp.where(voiced, hz, 0.0)


def ordered_bins(probs: jnp.ndarray, separation: int) -> jnp.ndarray:
    """Bins [..., V] maximising sum_v log probs[..., v, b_v] subject to
    b_1 - b_2 >= separation, b_2 - b_3 >= separation, ... (voices high to low): dynamic
    programming down the voices with suffix maxima, then backtracking.

    Args:
      probs: Per-voice pitch distributions. Shape [..., V, P].
      separation: The least difference (bins) between neighbouring voices, >= 1.
    """
    logp = jnp.log(jnp.maximum(probs, 1e-30))
    n_voices, n_bins = logp.shape[-2:]
    pad = jnp.full((*logp.shape[:-2], separation), -jnp.inf)
    best = [logp[..., 0, :]]  # best[v][b]: best score of voices 0..v with voice v at bin b
    for v in range(1, n_voices):
        above = jax.lax.cummax(best[-1], axis=best[-1].ndim - 1, reverse=True)  # b' >= b
        reach = jnp.concatenate([above[..., separation:], pad], axis=-1)  # b' >= b + sep
        best.append(logp[..., v, :] + reach)
    bins = jnp.arange(n_bins)
    picks = [jnp.argmax(best[-1], axis=-1)]
    for v in range(n_voices - 2, -1, -1):
        allowed = bins >= picks[0][..., None] + separation
        picks.insert(0, jnp.argmax(jnp.where(allowed, best[v], -jnp.inf), axis=-1))
    return jnp.stack(picks, axis=-1)


__all__ = [
    "F0Net",
    "F0NetConfig",
    "bin_position",
    "decode",
    "f0_loss",
    "features",
    "ordered_bins",
]
