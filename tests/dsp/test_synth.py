"""Synthesis against closed-form sinusoids, scipy filtering and spectral estimates."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from gensep.dsp import (
    filtered_noise,
    fir_filter_frames,
    glottal_rolloff,
    harmonic_synth,
    noise_impulse_response,
    source_filter_synth,
    upsample_linear,
)

SR, HOP = 16000, 256
synth = jax.jit(harmonic_synth, static_argnums=(2, 3))


def test_upsample_linear_hits_frames_and_interpolates():
    frames = jnp.asarray([[0.0, 4.0, 2.0]])
    up = np.asarray(upsample_linear(frames, 4))
    np.testing.assert_allclose(up, [[0, 1, 2, 3, 4, 3.5, 3, 2.5, 2, 2, 2, 2]])


@pytest.mark.parametrize(
    ("f0", "k"),
    [pytest.param(220.0, 1, id="fundamental"), pytest.param(123.45, 7, id="7th-harmonic")],
)
def test_constant_f0_is_closed_form_sinusoid(f0, k):
    n_frames = 50
    amps = np.zeros((n_frames, 10), np.float32)
    amps[:, k - 1] = 0.5
    out = np.asarray(synth(jnp.full(n_frames, f0), jnp.asarray(amps), SR, HOP))
    n = np.arange(n_frames * HOP)
    ref = 0.5 * np.sin(2 * np.pi * k * np.float64(np.float32(f0)) * n / SR)
    np.testing.assert_allclose(out, ref, atol=2e-5)


@pytest.mark.slow
def test_no_phase_drift_at_highest_harmonic_over_60s():
    f0 = np.float32(75.37)  # harmonic 106 at 7989 Hz, just below Nyquist
    k = 106
    n_frames = 60 * SR // HOP
    amps = jnp.zeros((n_frames, k)).at[:, k - 1].set(1.0)
    out = np.asarray(synth(jnp.full(n_frames, f0), amps, SR, HOP))
    n = np.arange(n_frames * HOP)
    ref = np.sin(2 * np.pi * k * np.float64(f0) * n / SR)
    last = slice(-SR, None)
    # A phase error of e cycles gives an error of up to 2 pi e: 5e-3 means < 1e-3 cycles.
    assert np.abs(out[last] - ref[last]).max() < 5e-3
    # The same test catches a naive float32 phase sum, which drifts by tenths of a cycle.
    naive_phase = np.cumsum(np.full(n.size, f0 / np.float32(SR), np.float32), dtype=np.float32)
    naive = np.sin(2 * np.pi * k * (naive_phase - naive_phase[0]))
    assert np.abs(naive[last] - ref[last]).max() > 0.5


def test_vibrato_matches_float64_phase_integral():
    n_frames = 200
    t = np.arange(n_frames) * HOP / SR
    f0 = (220 * 2 ** (0.5 / 12 * np.sin(2 * np.pi * 5.5 * t))).astype(np.float32)
    amps = jnp.zeros((n_frames, 3)).at[:, 2].set(1.0)
    out = np.asarray(synth(jnp.asarray(f0), amps, SR, HOP))
    n = np.arange(n_frames * HOP)
    f_audio = np.interp(n / HOP, np.arange(n_frames), f0.astype(np.float64))
    phase = np.concatenate([[0.0], np.cumsum(f_audio)[:-1]]) / SR
    np.testing.assert_allclose(out, np.sin(2 * np.pi * 3 * phase), atol=2e-4)


def test_harmonics_at_or_above_nyquist_are_silent():
    n_frames = 20
    f0 = 3000.0  # harmonics 3+ (9 kHz) are above the 8 kHz Nyquist
    out = np.asarray(synth(jnp.full(n_frames, f0), jnp.ones((n_frames, 5)), SR, HOP))
    n = np.arange(n_frames * HOP)
    ref = np.sin(2 * np.pi * f0 * n / SR) + np.sin(2 * np.pi * 2 * f0 * n / SR)
    np.testing.assert_allclose(out, ref, atol=1e-4)


def test_unvoiced_frames_are_silent():
    f0 = jnp.asarray([0.0] * 10 + [200.0] * 10 + [0.0] * 10)
    out = np.asarray(synth(f0, jnp.ones((30, 4)), SR, HOP))
    assert np.all(out[: 9 * HOP] == 0) and np.all(out[21 * HOP :] == 0)
    assert np.abs(out[11 * HOP : 19 * HOP]).max() > 1.0


def test_f0_gradient_matches_finite_difference():
    n_frames = 8
    amps = jnp.asarray(np.linspace(1.0, 0.2, 5), jnp.float32) * jnp.ones((n_frames, 1))
    f0 = jnp.asarray(np.linspace(200, 230, n_frames), jnp.float32)
    target = jnp.asarray(np.random.default_rng(0).standard_normal(n_frames * HOP), jnp.float32)

    def loss(f):
        return jnp.sum(harmonic_synth(f, amps, SR, HOP) * target)

    grad = np.asarray(jax.jit(jax.grad(loss))(f0))
    direction = np.random.default_rng(1).standard_normal(n_frames).astype(np.float32)
    step = 1e-2
    fd = (loss(f0 + step * direction) - loss(f0 - step * direction)) / (2 * step)
    assert np.all(np.isfinite(grad))
    assert float(grad @ direction) == pytest.approx(float(fd), rel=2e-2)


def test_fir_filter_frames_equals_convolution_for_fixed_filter(rng):
    n_frames, n_taps = 30, 78
    x = rng.standard_normal(n_frames * HOP).astype(np.float32)
    h = rng.standard_normal(n_taps).astype(np.float32)
    irs = jnp.broadcast_to(jnp.asarray(h), (n_frames, n_taps))
    ours = np.asarray(fir_filter_frames(jnp.asarray(x), irs, HOP))
    ref = scipy.signal.fftconvolve(x, h)[n_taps // 2 : n_taps // 2 + x.size]
    np.testing.assert_allclose(ours, ref, atol=1e-4)


def test_noise_impulse_response_realises_smooth_magnitudes():
    bands = 65
    target = 0.5 + 0.4 * np.cos(np.linspace(0, np.pi, bands))  # smooth low-pass tilt
    ir = np.asarray(noise_impulse_response(jnp.asarray(target[None], jnp.float32)))[0]
    assert ir.shape == (128,)
    np.testing.assert_allclose(ir, ir[::-1][np.r_[-1, 0:127]], atol=1e-6)  # symmetric: linear phase
    realised = np.abs(np.fft.rfft(ir))
    np.testing.assert_allclose(realised, target, atol=0.02)


def test_filtered_noise_power_spectrum(rng):
    bands, n_frames = 33, 400
    gain = np.where(np.arange(bands) < 16, 1.0, 0.1).astype(np.float32)  # 20 dB step
    mags = jnp.broadcast_to(jnp.asarray(gain), (n_frames, bands))
    out = np.asarray(filtered_noise(mags, HOP, jax.random.PRNGKey(0)))
    freqs, psd = scipy.signal.welch(out, fs=SR, nperseg=512)
    low = psd[(freqs > 500) & (freqs < 3000)].mean()
    high = psd[(freqs > 5000) & (freqs < 7500)].mean()
    # Uniform noise in [-1, 1) has variance 1/3; one-sided PSD = 2 * var / fs * |H|^2.
    assert low == pytest.approx(2 / 3 / SR, rel=0.15)
    assert 10 * np.log10(low / high) == pytest.approx(20.0, abs=1.5)


def test_source_filter_synth_matches_scipy_reference():
    # Constant controls, noise off: harmonics with 6 dB/octave roll-off through lfilter.
    n_frames, k = 60, 40
    poles = np.array([0.95 * np.exp(1j * 0.2), 0.9 * np.exp(1j * 0.9), 0.85 * np.exp(1j * 2)])
    a = np.real(np.poly(np.concatenate([poles, poles.conj()])))
    ext = np.append(a, 0.0)
    roots = np.concatenate([np.roots(ext + ext[::-1]), np.roots(ext - ext[::-1])])
    lsf = np.sort(np.angle(roots))
    lsf = lsf[(lsf > 1e-9) & (lsf < np.pi - 1e-9)]
    f0 = 180.0
    out = source_filter_synth(
        f0_hz=jnp.full(n_frames, f0),
        harmonic_gain=jnp.full(n_frames, 0.3),
        noise_magnitudes=jnp.zeros((n_frames, 17)),
        lsf=jnp.broadcast_to(jnp.asarray(lsf, jnp.float32), (n_frames, 6)),
        envelope_gain=jnp.full(n_frames, 0.5),
        sample_rate=SR,
        hop=HOP,
        key=jax.random.PRNGKey(0),
        n_harmonics=k,
    )
    n = np.arange(n_frames * HOP)
    rolloff = np.arange(1, k + 1, dtype=np.float64) ** (-6 / (20 * np.log10(2)))
    harmonics = [r * np.sin(2 * np.pi * i * f0 * n / SR) for i, r in enumerate(rolloff, 1)]
    excitation = 0.3 * np.sum([h for i, h in enumerate(harmonics, 1) if i * f0 < SR / 2], 0)
    ref = scipy.signal.lfilter([0.5], a, excitation)
    np.testing.assert_allclose(np.asarray(out), ref, atol=1e-4 * np.abs(ref).max())
    np.testing.assert_allclose(np.asarray(glottal_rolloff(k)), rolloff, rtol=1e-6)


def test_batched_voices_of_different_ranges_match_closed_form():
    # Harmonics are summed in blocks and blocks above Nyquist for every voice are skipped:
    # a high voice must not make the loop skip harmonics a low voice still needs.
    n_frames, k = 20, 40
    f0 = np.array([100.0, 2000.0], np.float32)
    out = np.asarray(
        synth(jnp.asarray(f0)[:, None] * jnp.ones(n_frames), jnp.ones((2, n_frames, k)), SR, HOP)
    )
    n = np.arange(n_frames * HOP)
    for voice, f in enumerate(f0.astype(np.float64)):
        ref = sum(np.sin(2 * np.pi * i * f * n / SR) for i in range(1, k + 1) if i * f < SR / 2)
        np.testing.assert_allclose(out[voice], ref, atol=1e-3)  # 40 unit sinusoids summed
