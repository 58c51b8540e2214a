"""stft/istft against librosa; the multi-resolution loss against a NumPy re-computation."""

import warnings

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import pytest

from gensep.dsp import istft, magnitude, multi_resolution_stft_loss, stft

CASES = [
    pytest.param(16000, 2048, 256, id="16k-2048-256"),
    pytest.param(4410, 4096, 1024, id="short-4096-1024"),
    pytest.param(5000, 400, 160, id="hop-not-dividing"),
    pytest.param(300, 512, 128, id="shorter-than-window"),
]


@pytest.mark.parametrize(("n", "n_fft", "hop"), CASES)
def test_stft_matches_librosa(rng, n, n_fft, hop):
    x = rng.standard_normal((2, n)).astype(np.float32)
    ours = np.asarray(stft(x, n_fft, hop))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # n_fft > len(x) is the intended case
        ref = librosa.stft(x, n_fft=n_fft, hop_length=hop, center=True).swapaxes(-1, -2)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=2e-6 * np.abs(ref).max(), rtol=0)


@pytest.mark.parametrize(("n", "n_fft", "hop"), CASES)
def test_istft_inverts_and_matches_librosa(rng, n, n_fft, hop):
    x = rng.standard_normal((3, n)).astype(np.float32)
    spec = stft(x, n_fft, hop)
    y = np.asarray(istft(spec, n_fft, hop, length=n))
    np.testing.assert_allclose(y, x, atol=5e-6)
    ref = librosa.istft(np.asarray(spec).swapaxes(-1, -2), n_fft=n_fft, hop_length=hop)
    ours = np.asarray(istft(spec, n_fft, hop))
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, atol=5e-6)


def test_stft_jit_equals_eager_and_batches(rng):
    x = rng.standard_normal((2, 3, 4000)).astype(np.float32)
    eager = stft(x, 512, 128)
    jitted = jax.jit(stft, static_argnums=(1, 2))(x, 512, 128)
    np.testing.assert_allclose(np.asarray(jitted), np.asarray(eager), atol=1e-5)
    single = stft(x[1, 2], 512, 128)
    np.testing.assert_allclose(np.asarray(eager[1, 2]), np.asarray(single), atol=1e-5)


def test_magnitude_gradient_finite_at_zero():
    grad = jax.grad(lambda x: jnp.sum(magnitude(stft(x, 64, 16))))(jnp.zeros(256))
    assert np.all(np.isfinite(np.asarray(grad)))


def _numpy_mrstft(pred, target, sizes, eps=1e-5):
    total = 0.0
    for n_fft in sizes:
        hop = n_fft // 4
        mp = np.abs(librosa.stft(pred, n_fft=n_fft, hop_length=hop))
        mt = np.abs(librosa.stft(target, n_fft=n_fft, hop_length=hop))
        total += np.mean(np.abs(mp - mt)) + np.mean(np.abs(np.log(mp + eps) - np.log(mt + eps)))
    return total


def test_multi_resolution_loss_matches_numpy(rng):
    target = rng.standard_normal((2, 8000)).astype(np.float32)
    pred = (target + 0.3 * rng.standard_normal((2, 8000))).astype(np.float32)
    sizes = (1024, 256, 64)
    loss = jax.jit(lambda p, t: multi_resolution_stft_loss(p, t, fft_sizes=sizes))
    ref = _numpy_mrstft(pred, target, sizes)
    assert float(loss(pred, target)) == pytest.approx(ref, rel=1e-4)
    assert float(loss(target, target)) == 0.0
    grad = jax.jit(jax.grad(loss))(jnp.asarray(pred), jnp.asarray(target))
    assert np.all(np.isfinite(np.asarray(grad))) and np.abs(np.asarray(grad)).max() > 0


def test_loss_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="differ in shape"):
        multi_resolution_stft_loss(jnp.zeros(1000), jnp.zeros(999))
