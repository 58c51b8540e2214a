"""Ratio masks against a direct NumPy computation."""

import jax.numpy as jnp
import numpy as np
import pytest

from gensep.dsp import apply_masks, ratio_masks, sum_over


@pytest.mark.parametrize(
    "power", [pytest.param(1.0, id="magnitude"), pytest.param(2.0, id="power")]
)
def test_ratio_masks_match_numpy_and_sum_to_one(rng, power):
    mags = rng.uniform(0, 2, (2, 3, 5, 7)).astype(np.float32)
    mags[:, :, 0, :] = 0.0  # a silent frame in every source
    masks = np.asarray(ratio_masks(jnp.asarray(mags), power=power))
    ref = mags[:, :, 1:] ** power / np.sum(mags[:, :, 1:] ** power, axis=1, keepdims=True)
    np.testing.assert_allclose(masks[:, :, 1:], ref, rtol=1e-5)
    np.testing.assert_allclose(masks[:, :, 0], 1 / 3)  # silence: shared equally
    np.testing.assert_allclose(masks.sum(axis=1), 1.0, rtol=1e-6)


def test_apply_masks_recovers_sources_with_oracle_masks(rng):
    # When the sources have identical phase, magnitude ratio masks recover them exactly.
    phase = np.exp(1j * rng.uniform(0, 2 * np.pi, (4, 6)))
    mags = rng.uniform(0.1, 1, (3, 4, 6))
    sources = mags * phase
    mix = sources.sum(0)
    est = np.asarray(apply_masks(jnp.asarray(mix, jnp.complex64), ratio_masks(jnp.asarray(mags))))
    np.testing.assert_allclose(est, sources, atol=1e-5)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_sum_over_equals_numpy_sum(rng, axis):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(sum_over(jnp.asarray(x), axis)), x.sum(axis), rtol=1e-6)
    kept = np.asarray(sum_over(jnp.asarray(x), axis, keepdims=True))
    np.testing.assert_allclose(kept, x.sum(axis, keepdims=True), rtol=1e-6)
