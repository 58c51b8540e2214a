"""Every public dsp function: jit equals eager, and gradients of a scalar loss are finite."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gensep import dsp

SR, HOP, T = 16000, 64, 12
_rng = np.random.default_rng(7)


def _arr(*shape, low=-1.0, high=1.0):
    return jnp.asarray(_rng.uniform(low, high, shape), jnp.float32)


LSF = jnp.asarray(np.linspace(0.2, 2.9, 8)[None].repeat(T, 0), jnp.float32)
F0 = jnp.asarray(np.linspace(150, 300, T), jnp.float32)
KEY = jax.random.PRNGKey(0)
STABLE_A = jnp.asarray(np.real(np.poly([0.8j, -0.8j, 0.5, 0.3])), jnp.float32)

# name -> (function of the differentiated argument, that argument)
CASES = {
    "frame": (lambda x: dsp.frame(x, 32, 16), _arr(2, 200)),
    "overlap_add": (lambda x: dsp.overlap_add(x, 16), _arr(2, 10, 32)),
    "stft": (lambda x: dsp.stft(x, 128, 32), _arr(2, 1000)),
    "istft": (
        lambda x: dsp.istft(dsp.stft(x, 128, 32), 128, 32, length=1000),
        _arr(2, 1000),
    ),
    "magnitude": (lambda x: dsp.magnitude(dsp.stft(x, 64, 16)), _arr(300)),
    "log_magnitude": (lambda x: dsp.log_magnitude(dsp.stft(x, 64, 16)), _arr(300)),
    "multi_resolution_stft_loss": (
        lambda x: dsp.multi_resolution_stft_loss(x, jnp.ones_like(x), fft_sizes=(256, 64)),
        _arr(2, 1024),
    ),
    "upsample_linear": (lambda f: dsp.upsample_linear(f, HOP), F0),
    "harmonic_phases": (
        lambda f: jnp.sin(2 * jnp.pi * dsp.harmonic_phases(f, 5, SR, HOP)),
        F0,
    ),
    "harmonic_synth": (lambda f: dsp.harmonic_synth(f, jnp.ones((T, 6)), SR, HOP), F0),
    "harmonic_synth_amplitudes": (lambda a: dsp.harmonic_synth(F0, a, SR, HOP), _arr(T, 6)),
    "noise_impulse_response": (dsp.noise_impulse_response, _arr(T, 9, low=0)),
    "fir_filter_frames": (
        lambda h: dsp.fir_filter_frames(jnp.ones(T * HOP), h, HOP),
        _arr(T, 16),
    ),
    "filtered_noise": (lambda m: dsp.filtered_noise(m, HOP, KEY), _arr(T, 9, low=0)),
    "lsf_to_lpc": (dsp.lsf_to_lpc, LSF),
    "lpc_to_lsf": (dsp.lpc_to_lsf, STABLE_A),
    "lsf_activation": (dsp.lsf_activation, _arr(T, 8)),
    "allpole_response": (
        lambda a: dsp.allpole_response(a, jnp.linspace(0, 8000, 33), SR, 0.5),
        STABLE_A,
    ),
    "lsf_frequency_response": (
        lambda w: dsp.lsf_frequency_response(w, np.linspace(0, 8000, 33), SR),
        LSF,
    ),
    "allpole_filter": (lambda w: dsp.allpole_filter(jnp.ones(T * HOP), w, jnp.ones(T), HOP), LSF),
    "source_filter_synth_lsf": (
        lambda w: dsp.source_filter_synth(
            F0, jnp.ones(T), jnp.ones((T, 9)) * 0.1, w, jnp.ones(T), SR, HOP, KEY, n_harmonics=8
        ),
        LSF,
    ),
    "source_filter_synth_f0": (
        lambda f: dsp.source_filter_synth(
            f, jnp.ones(T), jnp.ones((T, 9)) * 0.1, LSF, jnp.ones(T), SR, HOP, KEY, n_harmonics=8
        ),
        F0,
    ),
    "envelope_magnitudes": (lambda w: dsp.envelope_magnitudes(w, jnp.ones(T), 64, SR), LSF),
    "harmonic_magnitudes": (
        lambda f: dsp.harmonic_magnitudes(f, jnp.ones(T), LSF, jnp.ones(T), 128, SR, 8, hop=HOP),
        F0,
    ),
    "noise_magnitudes": (
        lambda m: dsp.noise_magnitudes(m, LSF, jnp.ones(T), 64, SR),
        _arr(T, 9, low=0),
    ),
    "source_filter_magnitudes_lsf": (
        lambda w: dsp.source_filter_magnitudes(
            F0, jnp.ones(T), jnp.ones((T, 9)) * 0.1, w, jnp.ones(T), 128, SR, 8, hop=HOP
        ),
        LSF,
    ),
    "source_filter_magnitudes_f0": (
        lambda f: dsp.source_filter_magnitudes(
            f, jnp.ones(T), jnp.ones((T, 9)) * 0.1, LSF, jnp.ones(T), 128, SR, 8, hop=HOP
        ),
        F0,
    ),
    "multi_resolution_magnitudes": (
        lambda w: jnp.concatenate(
            dsp.multi_resolution_magnitudes(
                F0,
                jnp.ones(T),
                jnp.ones((T, 9)) * 0.1,
                w,
                jnp.ones(T),
                (128, 64),
                SR,
                8,
                hop=HOP,
                envelope_n_fft=64,
            ),
            axis=-1,
        ),
        LSF,
    ),
    "ratio_masks": (dsp.ratio_masks, _arr(3, 5, 7, low=0)),
    "sum_over": (lambda x: dsp.sum_over(x, 1), _arr(2, 3, 5, 7)),
    "apply_masks": (
        lambda m: dsp.apply_masks(jnp.ones((5, 7), jnp.complex64), m),
        _arr(3, 5, 7, low=0),
    ),
    "f0_to_frames": (
        lambda hz: dsp.f0_to_frames(jnp.arange(T) * 0.01, hz, jnp.linspace(0, 0.1, 7)),
        F0,
    ),
}


def test_every_public_function_is_covered():
    covered = set(CASES)
    for suffix in ("_amplitudes", "_lsf", "_f0"):
        covered |= {name.removesuffix(suffix) for name in CASES}
    host_constants = {"glottal_rolloff"}  # a NumPy table of the roll-off, no traced input
    assert set(dsp.__all__) - covered - host_constants == set()


@pytest.mark.parametrize("name", list(CASES))
def test_jit_equals_eager_and_gradient_is_finite(name):
    fn, arg = CASES[name]
    eager = np.asarray(fn(arg))
    jitted = np.asarray(jax.jit(fn)(arg))
    scale = max(1.0, float(np.abs(eager).max()))
    np.testing.assert_allclose(jitted, eager, atol=1e-5 * scale, rtol=1e-5)

    def loss(x):
        out = fn(x)
        return jnp.sum(jnp.abs(out) ** 2) if jnp.iscomplexobj(out) else jnp.sum(out**2)

    grad = np.asarray(jax.jit(jax.grad(loss))(arg))
    assert grad.shape == arg.shape
    assert np.all(np.isfinite(grad)), f"{name}: non-finite gradient"
    assert np.abs(grad).max() > 0, f"{name}: gradient is identically zero"
