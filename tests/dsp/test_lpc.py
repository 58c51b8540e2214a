"""LSF <-> LPC, all-pole response and filtering against scipy.signal and np.poly."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal

from gensep.dsp import (
    allpole_filter,
    allpole_response,
    lpc_to_lsf,
    lsf_activation,
    lsf_frequency_response,
    lsf_to_lpc,
)


def _random_stable_lpc(rng, order, max_radius=0.97):
    radius = rng.uniform(0.5, max_radius, order // 2)
    angle = np.sort(rng.uniform(0.05, 3.1, order // 2))
    poles = radius * np.exp(1j * angle)
    return np.real(np.poly(np.concatenate([poles, poles.conj()])))


def _reference_lsf_to_lpc(lsf):
    """A = (P + Q) / 2 with P, Q built by np.poly from their unit-circle roots."""
    odd, even = lsf[0::2], lsf[1::2]
    p_roots = np.concatenate([np.exp(1j * odd), np.exp(-1j * odd), [-1.0]])
    q_roots = np.concatenate([np.exp(1j * even), np.exp(-1j * even), [1.0]])
    p_poly, q_poly = np.real(np.poly(p_roots)), np.real(np.poly(q_roots))
    return 0.5 * (p_poly + q_poly)[:-1]


def _reference_lpc_to_lsf(a):
    """Angles in (0, pi) of the roots of P(z) and Q(z), by np.roots in float64."""
    ext = np.append(a, 0.0)
    angles = [np.angle(np.roots(ext + sign * ext[::-1])) for sign in (1.0, -1.0)]
    lsf = np.sort(np.concatenate(angles))
    return lsf[(lsf > 1e-9) & (lsf < np.pi - 1e-9)]


@pytest.mark.parametrize("order", [pytest.param(p, id=f"order{p}") for p in (2, 8, 20)])
def test_lsf_to_lpc_matches_np_poly(rng, order):
    lsf = _reference_lpc_to_lsf(_random_stable_lpc(rng, order))
    ours = np.asarray(lsf_to_lpc(jnp.asarray(lsf, jnp.float32)))
    ref = _reference_lsf_to_lpc(lsf)
    # float32 rounding of the coefficients themselves is ~6e-8 of their sum.
    np.testing.assert_allclose(ours, ref, atol=2e-6 * np.abs(ref).sum())
    assert ours[0] == 1.0
    # Ordered LSFs give a stable filter: every root of A strictly inside the unit circle.
    assert np.abs(np.roots(ref)).max() < 1.0


@pytest.mark.parametrize("order", [pytest.param(p, id=f"order{p}") for p in (4, 10, 20)])
def test_lpc_to_lsf_inverts(rng, order):
    a = np.stack([_random_stable_lpc(rng, order) for _ in range(3)])
    lsf = np.asarray(lpc_to_lsf(jnp.asarray(a, jnp.float32)))
    assert lsf.shape == (3, order)
    assert np.all(np.diff(lsf, axis=-1) > 0) and lsf.min() > 0 and lsf.max() < np.pi
    back = np.stack([_reference_lsf_to_lpc(row.astype(np.float64)) for row in lsf])
    np.testing.assert_allclose(back, a, atol=1e-3 * np.abs(a).max())


def test_lsf_activation_orders_and_spaces(rng):
    raw = jnp.asarray(rng.standard_normal((5, 7, 20)) * 5, jnp.float32)
    lsf = np.asarray(lsf_activation(raw, min_gap=0.01))
    gaps = np.diff(np.concatenate([np.zeros((5, 7, 1)), lsf, np.full((5, 7, 1), np.pi)], -1))
    assert gaps.min() >= 0.01 - 1e-6
    with pytest.raises(ValueError, match="too large"):
        lsf_activation(raw, min_gap=0.2)


@pytest.mark.parametrize("scale", [pytest.param(s, id=f"raw-scale{s}") for s in (0.5, 1.0)])
def test_lsf_frequency_response_matches_freqz(rng, scale):
    # Random activations give envelopes of up to ~200 dB dynamic range: still accurate.
    raw = jnp.asarray(rng.standard_normal((20, 20)) * scale, jnp.float32)
    lsf = np.asarray(lsf_activation(raw), np.float64)
    freqs = np.linspace(0, 8000, 513)
    ours = np.asarray(lsf_frequency_response(jnp.asarray(lsf, jnp.float32), freqs, 16000, 0.5))
    for row, response in zip(lsf, ours, strict=True):
        _, ref = scipy.signal.freqz([0.5], _reference_lsf_to_lpc(row), worN=freqs, fs=16000)
        np.testing.assert_allclose(20 * np.log10(np.abs(response) / np.abs(ref)), 0, atol=0.01)
        np.testing.assert_allclose(np.angle(response / ref), 0, atol=1e-3)


def test_allpole_response_matches_freqz(rng):
    a = _random_stable_lpc(rng, 20)
    freqs = np.linspace(0, 8000, 257)
    ours = np.asarray(allpole_response(jnp.asarray(a, jnp.float32), freqs, 16000, 0.5))
    _, ref = scipy.signal.freqz([0.5], a, worN=freqs, fs=16000)
    np.testing.assert_allclose(ours, np.abs(ref), rtol=5e-4)


FILTER_CASES = [
    pytest.param(256, None, id="50pct-overlap"),
    pytest.param(128, 512, id="75pct-overlap"),
]


@pytest.mark.parametrize(("hop", "frame_length"), FILTER_CASES)
def test_allpole_filter_matches_lfilter_for_fixed_filter(rng, hop, frame_length):
    # Stated tolerance (docstring): circular wrap of the response past n_fft - frame_length;
    # with poles of radius <= 0.97 it is far below float32 rounding of the FFTs (~1e-5).
    a = _random_stable_lpc(rng, 20, max_radius=0.97)
    n_frames = 40
    x = rng.standard_normal(n_frames * hop).astype(np.float32)
    lsf = jnp.broadcast_to(jnp.asarray(_reference_lpc_to_lsf(a), jnp.float32), (n_frames, 20))
    gain = jnp.full((n_frames,), 0.8)
    ours = np.asarray(allpole_filter(jnp.asarray(x), lsf, gain, hop, frame_length))
    ref = scipy.signal.lfilter([0.8], a, x)
    assert np.abs(ours - ref).max() < 1e-4 * np.abs(ref).max()


def test_allpole_filter_follows_changing_filter(rng):
    # Two halves with different filters: away from the switch each half equals lfilter.
    hop, n_frames = 256, 40
    a1, a2 = _random_stable_lpc(rng, 10, 0.9), _random_stable_lpc(rng, 10, 0.9)
    lsf1, lsf2 = _reference_lpc_to_lsf(a1), _reference_lpc_to_lsf(a2)
    lsf = np.concatenate([np.tile(lsf1, (20, 1)), np.tile(lsf2, (20, 1))]).astype(np.float32)
    x = rng.standard_normal(n_frames * hop).astype(np.float32)
    ours = np.asarray(allpole_filter(jnp.asarray(x), jnp.asarray(lsf), jnp.ones(40), hop))
    ref1 = scipy.signal.lfilter([1.0], a1, x)
    ref2 = scipy.signal.lfilter([1.0], a2, x)
    # Frames within one frame (2 hops) of the switch at sample 20 * hop mix both filters;
    # and the second filter's state needs ~100 samples to forget the first's input history.
    scale = np.abs(ref1).max()
    assert np.abs(ours[: 18 * hop] - ref1[: 18 * hop]).max() < 1e-4 * scale
    assert np.abs(ours[23 * hop :] - ref2[23 * hop :]).max() < 1e-3 * scale


def test_allpole_filter_checks_length():
    with pytest.raises(ValueError, match="expected 4"):
        allpole_filter(jnp.zeros(1000), jnp.ones((4, 2)), jnp.ones(4), 256)


def test_lsf_chain_gradients_finite(rng):
    raw = jnp.asarray(rng.standard_normal((3, 20)), jnp.float32)
    x = jnp.asarray(rng.standard_normal(3 * 128), jnp.float32)

    def loss(r):
        return jnp.sum(allpole_filter(x, lsf_activation(r), jnp.ones(3), 128) ** 2)

    grad = np.asarray(jax.jit(jax.grad(loss))(raw))
    assert np.all(np.isfinite(grad)) and np.abs(grad).max() > 0
