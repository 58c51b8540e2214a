"""Soft (ratio) masks over several sources and their application to a mixture STFT."""

from __future__ import annotations

import functools
import operator

import jax.numpy as jnp
from jax import lax


def sum_over(x: jnp.ndarray, axis: int, keepdims: bool = False) -> jnp.ndarray:
    """Sum over a short, non-minor axis (the sources) as a chain of adds of its slices.

    Equal to `jnp.sum(x, axis)` up to float rounding of the summation order. XLA's CPU
    reduction over a non-minor axis is slow: measured 14 ms vs 1.9 ms for [2, 4, 501, 1025]
    float32 summed over axis 1 on 2 cores.
    """
    parts = [lax.index_in_dim(x, i, axis, keepdims) for i in range(x.shape[axis])]
    return functools.reduce(operator.add, parts)


def ratio_masks(source_mags: jnp.ndarray, power: float = 1.0, eps: float = 1e-12) -> jnp.ndarray:
    """Ratio masks |S_j|^p / sum_k |S_k|^p.

    Where every source is (nearly) silent, i.e. the summed power is <= eps, each source
    gets 1 / sources, so the masks sum to one at every time-frequency point.

    Args:
      source_mags: Non-negative source magnitudes. Shape [..., sources, frames, bins].
      power: Exponent p (1: magnitude ratio; 2: Wiener-like power ratio).
      eps: Silence threshold on the summed |S|^p.

    Returns:
      Masks in [0, 1], same shape as `source_mags`, summing to 1 over the sources axis.
    """
    if isinstance(power, (int, float)) and float(power).is_integer():
        power = int(power)  # x ** 2 as a product, not exp(2 log x)
    powered = jnp.maximum(source_mags, 0.0) ** power
    total = sum_over(powered, powered.ndim - 3, keepdims=True)
    silent = total <= eps
    n_sources = source_mags.shape[-3]
    safe_total = jnp.where(silent, 1.0, total)
    return jnp.where(silent, 1.0 / n_sources, powered / safe_total)


def apply_masks(mix_stft: jnp.ndarray, masks: jnp.ndarray) -> jnp.ndarray:
    """Masked mixture spectrograms, one per source.

    Args:
      mix_stft: Complex mixture STFT. Shape [..., frames, bins].
      masks: Real masks. Shape [..., sources, frames, bins].

    Returns:
      Complex source STFTs, shape [..., sources, frames, bins].
    """
    return masks * mix_stft[..., None, :, :]
