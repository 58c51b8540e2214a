"""STFT, inverse STFT, magnitudes and the multi-resolution spectral loss (pure JAX).

`stft` matches `librosa.stft(x, n_fft=..., hop_length=..., center=True)` (Hann,
zero padding) up to a transpose: ours is time-major, [..., frames, bins].
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import jax.numpy as jnp
import numpy as np
import scipy.signal

from gensep.dsp.framing import frame, overlap_add, window_sum

DEFAULT_FFT_SIZES = (2048, 1024, 512, 256, 128, 64)


@cache
def _window(name: str, n_fft: int) -> np.ndarray:
    # Periodic ("fftbins") windows, as librosa uses: they overlap-add to a constant.
    return scipy.signal.get_window(name, n_fft, fftbins=True).astype(np.float32)


def stft(
    x: jnp.ndarray, n_fft: int, hop: int, window: str = "hann", center: bool = True
) -> jnp.ndarray:
    """Short-time Fourier transform.

    Args:
      x: Signal. Shape [..., samples], float32.
      n_fft: FFT size and window length (samples).
      hop: Hop size (samples).
      window: Any window name `scipy.signal.get_window` knows (periodic form).
      center: Pad n_fft // 2 zeros on both sides so frame t is centred on sample t * hop.

    Returns:
      Complex spectrogram, shape [..., frames, n_fft // 2 + 1], with
      frames = 1 + samples // hop when `center` (as librosa).
    """
    x = jnp.asarray(x)
    if center:
        pad = [(0, 0)] * (x.ndim - 1) + [(n_fft // 2, n_fft // 2)]
        x = jnp.pad(x, pad)
    frames = frame(x, n_fft, hop) * _window(window, n_fft)  # [..., T, n_fft]
    return jnp.fft.rfft(frames, axis=-1)


def istft(
    spec: jnp.ndarray,
    n_fft: int,
    hop: int,
    length: int | None = None,
    window: str = "hann",
    center: bool = True,
) -> jnp.ndarray:
    """Inverse of `stft` by weighted overlap-add (least-squares inverse, as librosa.istft).

    Args:
      spec: Complex spectrogram. Shape [..., frames, n_fft // 2 + 1].
      n_fft: FFT size used by `stft`.
      hop: Hop size used by `stft` (samples).
      length: Output length in samples (zero-padded or trimmed); default: as librosa,
        (frames - 1) * hop when `center`.
      window: Window name used by `stft`.
      center: Whether `stft` padded the signal.

    Returns:
      Signal, shape [..., length], float32. `istft(stft(x), ..., length=len(x))` equals x
      to float32 rounding.
    """
    n_frames = spec.shape[-2]
    win = _window(window, n_fft)
    frames = jnp.fft.irfft(spec, n=n_fft, axis=-1) * win  # [..., T, n_fft]
    y = overlap_add(frames, hop)
    envelope = window_sum(win.astype(np.float64) ** 2, n_frames, hop)
    # Where no window reaches (edges with center=False) leave the samples as they are.
    tiny = np.finfo(np.float32).tiny
    inverse = np.where(envelope > tiny, 1.0 / np.maximum(envelope, tiny), 1.0)
    y = y * inverse.astype(np.float32)
    start = n_fft // 2 if center else 0
    if length is None:
        end = y.shape[-1] - (n_fft // 2 if center else 0)
        return y[..., start:end]
    y = y[..., start : start + length]
    missing = length - y.shape[-1]
    if missing > 0:
        y = jnp.pad(y, [(0, 0)] * (y.ndim - 1) + [(0, missing)])
    return y


def magnitude(spec: jnp.ndarray, floor: float = 1e-10) -> jnp.ndarray:
    """|spec| with a finite gradient at 0 (the magnitude is clamped below at `floor`).

    Args:
      spec: Complex array, any shape.
      floor: Smallest magnitude returned (linear amplitude).

    Returns:
      Real array of the same shape.
    """
    power = jnp.real(spec) ** 2 + jnp.imag(spec) ** 2
    return jnp.sqrt(jnp.maximum(power, floor * floor))


def log_magnitude(spec: jnp.ndarray, eps: float = 1e-5) -> jnp.ndarray:
    """Natural log of (|spec| + eps). Shape as `spec`."""
    return jnp.log(magnitude(spec) + eps)


def multi_resolution_stft_loss(
    pred: jnp.ndarray,
    target: jnp.ndarray,
    fft_sizes: Sequence[int] = DEFAULT_FFT_SIZES,
    lin_weight: float = 1.0,
    log_weight: float = 1.0,
    overlap: float = 0.75,
    eps: float = 1e-5,
) -> jnp.ndarray:
    """Spectral reconstruction loss summed over several STFT resolutions (as in DDSP/UMSS).

    For each FFT size n (Hann window, hop n * (1 - overlap)), adds
    `lin_weight * mean|M_pred - M_target| + log_weight * mean|log(M_pred + eps) - log(M_target
    + eps)|`, M being STFT magnitudes.

    Args:
      pred: Predicted signal. Shape [..., samples].
      target: Target signal. Shape [..., samples] (same as pred).
      fft_sizes: FFT sizes (samples).
      lin_weight: Weight of the linear-magnitude L1 term.
      log_weight: Weight of the log-magnitude L1 term.
      overlap: Frame overlap fraction.
      eps: Added to magnitudes before the log (linear amplitude).

    Returns:
      Scalar loss (mean over the batch and over time-frequency bins, summed over sizes).
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {pred.shape} and target {target.shape} differ in shape")
    total = jnp.zeros((), jnp.float32)
    for n_fft in fft_sizes:
        hop = max(1, int(n_fft * (1.0 - overlap)))
        mag_pred = magnitude(stft(pred, n_fft, hop))
        mag_target = magnitude(stft(target, n_fft, hop))
        if lin_weight:
            total = total + lin_weight * jnp.mean(jnp.abs(mag_pred - mag_target))
        if log_weight:
            log_diff = jnp.log(mag_pred + eps) - jnp.log(mag_target + eps)
            total = total + log_weight * jnp.mean(jnp.abs(log_diff))
    return total
