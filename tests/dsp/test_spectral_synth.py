"""STFT-domain voice magnitudes against |stft| of the time-domain `source_filter_synth`."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gensep import dsp
from gensep.dsp.spectral_synth import hann_lobe, hann_lobe_squared, neighbours_for

SR, HOP, T = 16000, 256, 100
_LSF = np.asarray(dsp.lsf_activation(jnp.asarray(np.random.default_rng(0).normal(0, 0.5, 20))))
LSF = jnp.asarray(np.repeat(_LSF[None], T, 0), jnp.float32)  # a fixed order-20 envelope
SECONDS = np.arange(T) * HOP / SR


def _both(f0, n_fft, noise=0.0):
    """(|stft(time-domain voice)|, STFT-domain magnitudes), frames near the ends trimmed:
    there the window reaches the zero padding or the signal's end, which neither models."""
    f0 = jnp.asarray(f0, jnp.float32)
    harmonic_gain, envelope_gain = jnp.full(T, 0.3), jnp.full(T, 0.2)
    noise_gains = jnp.full((T, 40), noise)
    audio = dsp.source_filter_synth(
        f0, harmonic_gain, noise_gains, LSF, envelope_gain, SR, HOP, jax.random.PRNGKey(0)
    )
    measured = np.abs(np.asarray(dsp.stft(audio, n_fft, HOP)))[:T]
    n_neighbours = neighbours_for(float(np.min(f0[f0 > 0], initial=1e4)), n_fft, SR)
    model = dsp.source_filter_magnitudes(
        f0, harmonic_gain, noise_gains, LSF, envelope_gain, n_fft, SR, 101, 6.0, n_neighbours, HOP
    )
    edge = n_fft // HOP + 2
    return measured[edge:-edge], np.asarray(model)[edge:-edge]


def _spectral_convergence(measured, model):
    return float(np.linalg.norm(measured - model) / np.linalg.norm(measured))


# (f0 track, n_fft, bound): bounds ~1.3-2x the errors measured (module docstring table).
CASES = {
    "440Hz-512": (np.full(T, 440.0), 512, 0.005),
    "220Hz-512": (np.full(T, 220.0), 512, 0.005),
    "220Hz-1024": (np.full(T, 220.0), 1024, 0.002),
    "220Hz-2048": (np.full(T, 220.0), 2048, 0.002),
    "bass82Hz-2048": (np.full(T, 82.0), 2048, 0.003),
    "bass82Hz-1024": (np.full(T, 82.0), 1024, 0.012),
    "bass82Hz-512-lobes-overlap": (np.full(T, 82.0), 512, 0.12),
    "glide-1st/s-512": (220.0 * 2 ** (SECONDS / 12), 512, 0.015),
    "glide-1st/s-1024": (220.0 * 2 ** (SECONDS / 12), 1024, 0.045),
    "glide-1st/s-2048": (220.0 * 2 ** (SECONDS / 12), 2048, 0.10),
    "bass-glide-3st/s-2048": (82.0 * 2 ** (3 * SECONDS / 12), 2048, 0.08),
}


@pytest.mark.parametrize("name", list(CASES))
def test_matches_time_domain_synthesis(name):
    f0, n_fft, bound = CASES[name]
    measured, model = _both(f0, n_fft)
    assert _spectral_convergence(measured, model) < bound


def test_glide_widening_helps():
    f0 = jnp.asarray(220.0 * 2 ** (SECONDS / 12), jnp.float32)
    measured, _ = _both(f0, 2048)
    args = (f0, jnp.full(T, 0.3), LSF, jnp.full(T, 0.2), 2048, SR, 101, 6.0, 2)
    edge = 2048 // HOP + 2
    steady = np.asarray(dsp.harmonic_magnitudes(*args))[edge:-edge]
    gliding = np.asarray(dsp.harmonic_magnitudes(*args, hop=HOP))[edge:-edge]
    assert _spectral_convergence(measured, gliding) < 0.5 * _spectral_convergence(measured, steady)


@pytest.mark.parametrize("n_fft", [512, 2048])
def test_noise_is_expected_magnitude(n_fft):
    measured, model = _both(np.zeros(T), n_fft, noise=0.05)
    ratio = measured.mean(0) / model.mean(0)
    assert abs(np.median(ratio) - 1.0) < 0.02
    # Frames overlap (only ~T * hop / n_fft independent ones), so average 16 bins too; the
    # DC and Nyquist bins are real-valued, not Rayleigh, and are left out.
    groups = (n_fft // 2) // 16
    measured_bands = measured[:, 1 : 1 + 16 * groups].reshape(len(measured), groups, 16)
    model_bands = model[:, 1 : 1 + 16 * groups].reshape(len(model), groups, 16)
    band_ratio = measured_bands.mean((0, 2)) / model_bands.mean((0, 2))
    assert np.all(np.abs(band_ratio - 1.0) < 0.15)


def test_parts_add_in_power_and_unvoiced_is_noise_only():
    f0 = jnp.full(T, 150.0).at[:10].set(0.0)
    noise_gains = jnp.full((T, 40), 0.02)
    gains = (jnp.full(T, 0.3), LSF, jnp.full(T, 0.2))
    harmonic = dsp.harmonic_magnitudes(f0, *gains, 1024, SR)
    noise = dsp.noise_magnitudes(noise_gains, LSF, gains[2], 1024, SR)
    total = dsp.source_filter_magnitudes(f0, gains[0], noise_gains, *gains[1:], 1024, SR)
    np.testing.assert_allclose(total, jnp.sqrt(harmonic**2 + noise**2), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(total[:10], noise[:10], rtol=1e-6)
    assert np.all(np.asarray(harmonic[:10]) == 0)


def test_envelope_matches_lsf_frequency_response():
    bins = np.arange(513) * SR / 1024
    ref = np.abs(np.asarray(dsp.lsf_frequency_response(LSF[:3], bins, SR, 0.5)))
    ours = np.asarray(dsp.envelope_magnitudes(LSF[:3], jnp.full(3, 0.5), 1024, SR))
    np.testing.assert_allclose(ours, ref, rtol=1e-4)


def test_hann_lobe_matches_window_transform():
    n = 512
    window = np.hanning(n + 1)[:n]
    delta = np.linspace(-3.5, 3.5, 141)  # includes 0, +-1, +-2, +-3 exactly
    exact = np.abs(window @ np.exp(-2j * np.pi * np.outer(np.arange(n), delta) / n)) / window.sum()
    np.testing.assert_allclose(np.abs(np.asarray(hann_lobe(jnp.asarray(delta)))), exact, atol=2e-3)
    # the squared form used by the synthesis: against the same transform, squared
    squared = np.asarray(hann_lobe_squared(jnp.asarray(delta)))
    np.testing.assert_allclose(np.sqrt(squared), exact, atol=2e-3)


def test_jit_equals_eager_and_gradients_finite_for_every_control():
    rng = np.random.default_rng(3)
    controls = {
        "f0_hz": jnp.asarray(np.r_[np.zeros(3), np.linspace(90, 300, T - 3)], jnp.float32),
        "harmonic_gain": jnp.asarray(rng.uniform(0.1, 1, T), jnp.float32),
        "noise_gains": jnp.asarray(rng.uniform(0, 0.1, (T, 40)), jnp.float32),
        "lsf": LSF,
        "envelope_gain": jnp.asarray(rng.uniform(0.1, 1, T), jnp.float32),
    }

    def loss(c):
        mags = dsp.source_filter_magnitudes(**c, n_fft=512, sample_rate=SR, n_neighbours=4, hop=HOP)
        return jnp.mean(jnp.log(mags + 1e-5))

    eager = loss(controls)
    np.testing.assert_allclose(jax.jit(loss)(controls), eager, rtol=1e-5)
    grads = jax.jit(jax.grad(loss))(controls)
    for name, grad in grads.items():
        assert np.all(np.isfinite(grad)), name
        assert np.abs(grad).max() > 0, name
    assert np.all(np.asarray(grads["f0_hz"][:3]) == 0)  # unvoiced frames


def test_neighbours_for():
    assert neighbours_for(200.0, 2048, SR) == 2
    assert neighbours_for(65.0, 256, SR) == 4
    assert neighbours_for(40.0, 256, SR) == 8
