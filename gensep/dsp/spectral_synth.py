"""Source-filter voices synthesised directly as STFT magnitudes (no oscillators, no FFTs).

`source_filter_synth` makes audio; training only ever looks at its STFT magnitude, so
here that magnitude is written down in closed form, frame by frame:

- A sinusoid of amplitude a and frequency f, seen through a periodic Hann window of N
  samples, has |X[k]| = a * (sum w) / 2 * |L(k - f N / sr)| with sum w = N / 2 and the
  normalised Hann lobe L(d) = sinc(d) / (1 - d^2) (large-N form; the exact finite-N
  kernel differs by < 3e-4 relative for N >= 256).
- Harmonic h (frequency h f0) has amplitude harmonic_gain * rolloff(h) * |H(h f0)|,
  H = envelope_gain / A the all-pole envelope; it is dropped at or above Nyquist, above
  `n_harmonics`, and where f0 == 0.
- Bin k sits at u = k / b0 harmonics (b0 = f0 N / sr bins per harmonic); only the
  `n_neighbours` harmonics around it (floor(u) - n/2 + 1 ... floor(u) + n/2) are
  evaluated, so the cost is O(frames * bins * n_neighbours), with no gather and no
  [frames, bins, harmonics] tensor. Two neighbours hold the whole Hann main lobe
  (|d| < 2 bins) of every harmonic when b0 >= 2; in general 2 * ceil(2 / b0) are needed
  (`neighbours_for`). Truncation drops only sidelobes (< -31 dB).
- |H(h f0)| = |H(f_k)| * exp(-d g + d^2 c / 2), g and c the first and second differences
  of log|H| on the bin grid: evaluating the envelope at the bin alone errs by 1-5 % (more
  at small n_fft, where a lobe spans more Hz). The gradient with respect to the envelope
  flows through |H(f_k)| only (the correction factor is held constant), so when f0 is
  data the whole lobe computation needs no backward pass.
- A gliding F0 (slope from the neighbouring frames, `hop` given) sweeps harmonic h by
  h * sweep bins within one window; its lobe is widened as for a linear chirp under a
  Gaussian window, L(d / c) / sqrt(c), c = sqrt(1 + 0.06 (h sweep)^2) (energy kept).
  Curved F0 inside one window (vibrato) is not modelled.
- Lobes of different harmonics are added in *power* (the square root of the sum of
  squares), as are the harmonic and noise parts: their relative phases change from frame
  to frame, and the expected power of a sum of randomly phased terms is the sum of their
  powers. Adding magnitudes instead over-estimates where lobes overlap: measured 36 %
  vs 59 % error for 82 Hz at n_fft 256, 9 % vs 14 % at 512.
- Noise: `filtered_noise` (uniform white noise, variance 1/3, through a linear-phase
  filter whose response is the band gains smoothed by [1/4, 1/2, 1/4] — the FIR's Hann
  window — and interpolated linearly) then the envelope. Its STFT is complex Gaussian, so
  its *expected* magnitude is sqrt(pi / 4 * 1/3 * sum w^2) |G(f)| |H(f)| with
  sum w^2 = 3 N / 8. A realisation fluctuates around this (Rayleigh, std/mean 0.52).

Measured error against |stft(source_filter_synth(...))| (noise off; spectral convergence
||S - S_hat||_F / ||S||_F over frames away from the ends; 16 kHz, hop 256, 101
harmonics, 6 dB/oct, a fixed order-20 envelope; tests/dsp/test_spectral_synth.py asserts
bounds a little above these):

  f0 (Hz)  n_fft:  256    512    1024   2048
  440      steady  1.3 %  0.1 %  0.03 % 0.01 %
  220      steady  1.7 %  0.2 %  0.07 % 0.06 %
  110      steady  23 %   2.0 %  0.3 %  0.06 %
  82       steady  36 %   9.0 %  0.7 %  0.1 %
  220      glide of 1 semitone/s: 2.1 %, 0.9 %, 3.3 %, 7.9 %; 3 semitones/s: up to 8 %
  220      vibrato +-50 cents at 5.5 Hz: 5 %, 12 %, 25 %, 44 % (not modelled)

Cost (bench/bench_umss.py, 2 CPU cores, batch 16 x 4 s x 4 voices, sizes 2048-256): a
training step is ~4x cheaper than through the time-domain synthesis, not more: XLA's
CPU code spends ~10-50 ns per [frames, bins] element and pass here, and a batch holds
31 M of them per step (16 x 4 x 251 frames x 1924 bins), each visited by several passes.

Where a window holds only one or two periods (bass at n_fft 256-512) the true magnitude
depends on the phase of the pulses in the window, which no magnitude model without phase
can give; the error there is mostly that randomness. Expected noise magnitude vs a
realisation, averaged over frames: median ratio 1.00-1.01.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cache, partial

import jax
import jax.numpy as jnp
import numpy as np

_NUDGE = 1e-3  # bins; removable singularities of the lobe formula are evaluated this far off
# Variance of sin^4 (the squared Hann window) over its length (0.0200) over that of the
# squared Hann lobe in bins (1/3): a linear chirp widens a lobe by sqrt(1 + ratio * sweep^2),
# sweep = bins moved in one window, exactly so for a Gaussian window (the marginals of a
# sheared Wigner distribution). Scaling it by 0.5 or 1.5 fitted the Hann case worse.
_CHIRP_VARIANCE_RATIO = 0.06002


def neighbours_for(min_f0_hz: float, n_fft: int, sample_rate: float) -> int:
    """Neighbouring harmonics per bin that hold every main lobe for F0s >= min_f0_hz (even)."""
    bins_per_harmonic = min_f0_hz * n_fft / sample_rate
    return 2 * max(1, math.ceil(2.0 / bins_per_harmonic))


def hann_lobe(delta: jnp.ndarray) -> jnp.ndarray:
    """Periodic-Hann window transform, normalised to 1 at 0: sinc(d) / (1 - d^2).

    Args:
      delta: Distance from the sinusoid's frequency (bins). Any shape.

    Returns:
      Signed lobe value (main lobe positive), same shape. Within 1e-3 bins of the removable
      singularities (0, +-1) it is evaluated 2e-3 bins off (error < 2e-3).
    """
    a = jnp.abs(delta)
    near = (a < _NUDGE) | (jnp.abs(a - 1.0) < _NUDGE)
    d = jnp.where(near, delta + 2 * _NUDGE, delta)
    return _sin_pi(d) / (jnp.pi * d * (1.0 - d * d))


def hann_lobe_squared(delta: jnp.ndarray) -> jnp.ndarray:
    """hann_lobe(delta) ** 2, cheaper: the sign of sin(pi d) is not needed."""
    a = jnp.abs(delta)
    near = (a < _NUDGE) | (jnp.abs(a - 1.0) < _NUDGE)
    d = jnp.where(near, delta + 2 * _NUDGE, delta)
    r = d - jnp.round(d)  # sin^2(pi d) = sin^2(pi r)
    r2 = r * r
    poly = -0.59926453 + r2 * 0.08214589
    poly = 3.14159265 + r2 * (-5.16771278 + r2 * (2.55016404 + r2 * poly))
    return (r * poly) ** 2 / (jnp.pi * d * (1.0 - d * d)) ** 2


def _sin_pi(x: jnp.ndarray) -> jnp.ndarray:
    """sin(pi x) by range reduction and an odd degree-9 polynomial (abs error < 1e-5).

    XLA's CPU `sin` costs ~15x an `exp` (it does not vectorise), and this is the inner
    loop of the synthesis."""
    n = jnp.round(x)
    r = x - n  # in [-1/2, 1/2]
    sign = 1.0 - 2.0 * (n - 2.0 * jnp.floor(0.5 * n))  # (-1)^n
    r2 = r * r
    poly = -0.59926453 + r2 * 0.08214589
    poly = 3.14159265 + r2 * (-5.16771278 + r2 * (2.55016404 + r2 * poly))
    return sign * r * poly


def _bin_freqs(n_fft: int, sample_rate: float) -> np.ndarray:
    return np.arange(n_fft // 2 + 1, dtype=np.float64) * sample_rate / n_fft


def _safe_sqrt(x: jnp.ndarray) -> jnp.ndarray:
    """sqrt with a zero (not infinite) gradient at 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def _a_parts(lsf: jnp.ndarray, w: np.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
    """Pr, Qr of the product form of A (see `lsf_frequency_response`) at angles w."""
    order = lsf.shape[-1]
    if order % 2:
        raise ValueError(f"LSF order must be even, got {order}")
    two_cos_w = jnp.asarray(2 * np.cos(w), jnp.float32)
    two_cos_lsf = 2 * jnp.cos(lsf)
    # One factor at a time (no [..., P, F] array, no jnp.prod, whose gradient is costly).
    p_real = jnp.asarray(2 * np.cos(w / 2), jnp.float32)
    q_real = jnp.asarray(2 * np.sin(w / 2), jnp.float32)
    for i in range(0, order, 2):
        p_real = p_real * (two_cos_w - two_cos_lsf[..., i, None])
        q_real = q_real * (two_cos_w - two_cos_lsf[..., i + 1, None])
    return p_real, q_real


@partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _log_inverse_a(lsf: jnp.ndarray, n_fft: int, sample_rate: float) -> jnp.ndarray:
    """-log|A(e^jw)| at the bins, from the real product form of `lsf_frequency_response`
    (|A|^2 = (Pr^2 + Qr^2) / 4, no cancellation in float32). [..., frames, F].

    Its gradient is written out (d/dw_i = -2 sin w_i * sum_F g r / (2 cos w - 2 cos w_i),
    r = Pr^2 / (Pr^2 + Qr^2) for roots of P, Qr^2 / (...) for roots of Q): it costs about
    one forward pass, where autodiff through the products costs several."""
    return _log_inverse_a_fwd(lsf, n_fft, sample_rate)[0]


def _log_inverse_a_fwd(lsf, n_fft, sample_rate):
    w = 2 * np.pi * _bin_freqs(n_fft, sample_rate) / sample_rate
    p_real, q_real = _a_parts(lsf, w)
    p2, q2 = p_real * p_real, q_real * q_real
    # |A| > 0 for increasing LSFs; the floor only guards the log.
    power = jnp.maximum(p2 + q2, 1e-30)
    return -0.5 * jnp.log(0.25 * power), (lsf, p2 / power)


def _log_inverse_a_bwd(n_fft, sample_rate, residuals, g):
    lsf, share_p = residuals
    w = 2 * np.pi * _bin_freqs(n_fft, sample_rate) / sample_rate
    two_cos_w = jnp.asarray(2 * np.cos(w), jnp.float32)
    two_cos_lsf = 2 * jnp.cos(lsf)
    shares = (g * share_p, g * (1.0 - share_p))
    totals = []
    for i in range(lsf.shape[-1]):
        factor = two_cos_w - two_cos_lsf[..., i, None]  # same rounding as the forward pass
        # A factor of exactly 0 makes its share 0 too (Pr or Qr vanishes): add nothing.
        ratio = shares[i % 2] / jnp.where(factor == 0, 1.0, factor)
        totals.append(jnp.sum(jnp.where(factor == 0, 0.0, ratio), axis=-1))
    return (-2.0 * jnp.sin(lsf) * jnp.stack(totals, axis=-1),)


_log_inverse_a.defvjp(_log_inverse_a_fwd, _log_inverse_a_bwd)


def envelope_magnitudes(
    lsf: jnp.ndarray, envelope_gain: jnp.ndarray, n_fft: int, sample_rate: float
) -> jnp.ndarray:
    """|gain / A(e^jw)| of the all-pole envelope at the STFT bin frequencies.

    Args:
      lsf: Increasing LSFs (radians) in (0, pi), P even. Shape [..., frames, P].
      envelope_gain: Linear gain. Shape [..., frames].
      n_fft: FFT size (bins k at k * sample_rate / n_fft Hz, k = 0..n_fft // 2).
      sample_rate: Audio rate (Hz).

    Returns:
      Linear magnitude, shape [..., frames, n_fft // 2 + 1].
    """
    log_env = _log_inverse_a(lsf, n_fft, sample_rate)
    return jnp.abs(envelope_gain)[..., None] * jnp.exp(log_env)


def _glide_rate(f0_hz: jnp.ndarray, hop: int | None, sample_rate: float) -> jnp.ndarray:
    """F0 slope (Hz/s) at each frame by central differences; 0 next to unvoiced frames."""
    if hop is None or f0_hz.shape[-1] < 2:
        return jnp.zeros_like(f0_hz)
    nxt = jnp.concatenate([f0_hz[..., 1:], f0_hz[..., -1:]], axis=-1)
    prv = jnp.concatenate([f0_hz[..., :1], f0_hz[..., :-1]], axis=-1)
    span = jnp.where((jnp.arange(f0_hz.shape[-1]) % (f0_hz.shape[-1] - 1)) == 0, 1.0, 2.0)
    rate = (nxt - prv) / (span * hop / sample_rate)
    return jnp.where((nxt > 0) & (prv > 0) & (f0_hz > 0), rate, 0.0)


def _harmonic_part(
    f0_hz: jnp.ndarray,
    log_env: jnp.ndarray,
    n_fft: int,
    sample_rate: float,
    n_harmonics: int,
    rolloff_db_per_octave: float,
    n_neighbours: int,
    hop: int | None,
) -> jnp.ndarray:
    """Power sum over the neighbouring harmonics of rolloff(h) |H(h f0)| N/4 |lobe|, with
    |H(h f0)| / |H(f_k)| from a 2nd-order Taylor expansion of log|H| on the bin grid and
    each lobe widened for the F0 glide. Excludes the envelope at the bin. [..., T, F]."""
    if n_neighbours < 2 or n_neighbours % 2:
        raise ValueError(f"n_neighbours must be even and >= 2, got {n_neighbours}")
    f0_hz = jnp.asarray(f0_hz, jnp.float32)
    voiced = f0_hz > 0
    f0_safe = jnp.where(voiced, f0_hz, 100.0)
    b0 = (f0_safe * (n_fft / sample_rate))[..., None]  # [..., T, 1] bins per harmonic
    # Harmonic 1 moves this many bins during one window (linear chirp).
    sweep = (_glide_rate(f0_hz, hop, sample_rate) * (n_fft / sample_rate) ** 2)[..., None]
    # The lobe-shape correction is treated as a constant of the envelope: the gradient with
    # respect to the envelope flows through its value at the bin only (which the caller
    # multiplies in). That keeps the backward pass of training, where f0 is data, to a few
    # elementwise products instead of the whole per-neighbour computation.
    log_env = jax.lax.stop_gradient(log_env)
    padded = jnp.concatenate([log_env[..., 1:2], log_env, log_env[..., -2:-1]], axis=-1)
    slope_env = 0.5 * (padded[..., 2:] - padded[..., :-2])  # d log|H| / d bin
    curve_env = padded[..., 2:] - 2 * log_env + padded[..., :-2]
    k = jnp.asarray(np.arange(n_fft // 2 + 1), jnp.float32)  # [F]
    base = jnp.floor(k / b0)  # [..., T, F] harmonic at or just below each bin
    rolloff = rolloff_db_per_octave / (20.0 * math.log10(2.0))  # rolloff(h) = h ** -rolloff
    total = jnp.zeros(base.shape, jnp.float32)
    for m in range(1 - n_neighbours // 2, n_neighbours // 2 + 1):
        h = base + m
        valid = (h >= 1) & (h <= n_harmonics) & (h * b0 < n_fft / 2)
        h = jnp.maximum(h, 1.0)
        delta = k - h * b0  # bins from harmonic h to bin k
        # Squared amplitude rolloff(h)^2 |H(h f0) / H(f_k)|^2, in the log domain.
        log_power = -2.0 * rolloff * jnp.log(h) + jnp.clip(
            delta * delta * curve_env - 2.0 * delta * slope_env, -16.0, 8.0
        )
        # The chirp widens the lobe by c = sqrt(widen2) and keeps its energy: L(d / c)^2 / c.
        inv_c = jax.lax.rsqrt(1.0 + _CHIRP_VARIANCE_RATIO * (h * sweep) ** 2)
        power = hann_lobe_squared(delta * inv_c) * jnp.exp(log_power) * inv_c
        total = total + jnp.where(valid, power, 0.0)
    return _safe_sqrt(total) * (n_fft / 4.0) * voiced[..., None]


def harmonic_magnitudes(
    f0_hz: jnp.ndarray,
    harmonic_gain: jnp.ndarray,
    lsf: jnp.ndarray,
    envelope_gain: jnp.ndarray,
    n_fft: int,
    sample_rate: float,
    n_harmonics: int = 101,
    rolloff_db_per_octave: float = 6.0,
    n_neighbours: int = 4,
    hop: int | None = None,
) -> jnp.ndarray:
    """|STFT| of the harmonic part of `source_filter_synth` (see module docstring).

    Args:
      f0_hz: F0 at each frame centre (Hz), 0 = unvoiced. Shape [..., frames].
      harmonic_gain: Linear gain of the harmonic excitation. Shape [..., frames].
      lsf: Envelope LSFs (radians, increasing in (0, pi)). Shape [..., frames, P].
      envelope_gain: Linear gain of the envelope. Shape [..., frames].
      n_fft: Window and FFT size (periodic Hann, as `stft`).
      sample_rate: Audio rate (Hz).
      n_harmonics: Number of harmonics K.
      rolloff_db_per_octave: Glottal slope (dB/octave, positive = falling).
      n_neighbours: Harmonics evaluated per bin (even; see `neighbours_for`).
      hop: Samples between frames, for the F0 glide within a window; None: no glide.

    Returns:
      Linear magnitude, shape [..., frames, n_fft // 2 + 1].
    """
    log_env = _log_inverse_a(lsf, n_fft, sample_rate)
    part = _harmonic_part(
        f0_hz, log_env, n_fft, sample_rate, n_harmonics, rolloff_db_per_octave, n_neighbours, hop
    )
    gain = jnp.abs(harmonic_gain * envelope_gain)[..., None]
    return gain * part * jnp.exp(log_env)


@cache
def _band_to_bins(n_bands: int, n_fft: int) -> np.ndarray:
    """[bands, bins] matrix: band gains smoothed by [1/4, 1/2, 1/4] (the FIR's Hann window;
    the response is even in frequency, so the edges reflect), then interpolated linearly
    onto the bins. A matmul, because the gradient of a gather is a slow scatter on CPU."""
    smooth = np.zeros((n_bands, n_bands))
    for b in range(n_bands):
        for offset, weight in ((-1, 0.25), (0, 0.5), (1, 0.25)):
            src = abs(b + offset)
            src = 2 * (n_bands - 1) - src if src > n_bands - 1 else src
            smooth[src, b] += weight
    pos = np.arange(n_fft // 2 + 1) / (n_fft // 2) * (n_bands - 1)
    lo = np.minimum(np.floor(pos).astype(int), n_bands - 2)
    frac = pos - lo
    interp = np.zeros((n_bands, n_fft // 2 + 1))
    interp[lo, np.arange(pos.size)] += 1.0 - frac
    interp[lo + 1, np.arange(pos.size)] += frac
    return (smooth @ interp).astype(np.float32)


def noise_shape(noise_gains: jnp.ndarray, n_fft: int) -> jnp.ndarray:
    """Magnitude response, at the bins, of the noise filter `filtered_noise` builds.

    Args:
      noise_gains: Gains of bands evenly spaced from 0 to Nyquist. Shape [..., frames, B].
      n_fft: FFT size of the bins.

    Returns:
      Linear gain, shape [..., frames, n_fft // 2 + 1].
    """
    n_bands = noise_gains.shape[-1]
    if n_bands < 3:
        raise ValueError(f"need at least 3 noise bands, got {n_bands}")
    return noise_gains @ jnp.asarray(_band_to_bins(n_bands, n_fft))


def noise_magnitudes(
    noise_gains: jnp.ndarray,
    lsf: jnp.ndarray,
    envelope_gain: jnp.ndarray,
    n_fft: int,
    sample_rate: float,
) -> jnp.ndarray:
    """Expected |STFT| of the noise part of `source_filter_synth` (see module docstring).

    Args:
      noise_gains: Noise filter gains on bands evenly spaced from 0 to Nyquist (the
        `noise_magnitudes` argument of `source_filter_synth`). Shape [..., frames, B].
      lsf: Envelope LSFs (radians, increasing in (0, pi)). Shape [..., frames, P].
      envelope_gain: Linear gain of the envelope. Shape [..., frames].
      n_fft: Window and FFT size (periodic Hann, as `stft`).
      sample_rate: Audio rate (Hz).

    Returns:
      Expected linear magnitude, shape [..., frames, n_fft // 2 + 1].
    """
    envelope = envelope_magnitudes(lsf, envelope_gain, n_fft, sample_rate)
    return _noise_scale(n_fft) * jnp.abs(noise_shape(noise_gains, n_fft)) * envelope


def _noise_scale(n_fft: int) -> float:
    # E|X| = sqrt(pi) / 2 * sqrt(E|X|^2), E|X|^2 = var(uniform[-1, 1)) * sum(hann^2).
    return math.sqrt(math.pi / 4.0 * (1.0 / 3.0) * (3.0 * n_fft / 8.0))


def source_filter_magnitudes(
    f0_hz: jnp.ndarray,
    harmonic_gain: jnp.ndarray,
    noise_gains: jnp.ndarray,
    lsf: jnp.ndarray,
    envelope_gain: jnp.ndarray,
    n_fft: int,
    sample_rate: float,
    n_harmonics: int = 101,
    rolloff_db_per_octave: float = 6.0,
    n_neighbours: int = 4,
    hop: int | None = None,
) -> jnp.ndarray:
    """STFT-domain counterpart of `source_filter_synth`: |STFT| of the voice, frame by frame
    (harmonic and expected noise magnitudes added, the envelope evaluated once).

    Frame t here is the STFT frame centred on sample t * hop (`stft(..., center=True)`),
    where `source_filter_synth` with the same controls and hop puts frame t's values.

    Args:
      f0_hz: F0 (Hz), 0 = unvoiced. Shape [..., frames].
      harmonic_gain: Linear gain of the harmonic excitation. Shape [..., frames].
      noise_gains: Noise filter gains on bands from 0 to Nyquist. Shape [..., frames, B].
      lsf: Envelope LSFs (radians, increasing in (0, pi)). Shape [..., frames, P].
      envelope_gain: Linear gain of the envelope. Shape [..., frames].
      n_fft: Window and FFT size (periodic Hann, as `stft`).
      sample_rate: Audio rate (Hz).
      n_harmonics: Number of harmonics K.
      rolloff_db_per_octave: Glottal slope (dB/octave, positive = falling).
      n_neighbours: Harmonics evaluated per bin (even; see `neighbours_for`).
      hop: Samples between frames, for the F0 glide within a window; None: no glide.

    Returns:
      Linear magnitude, shape [..., frames, n_fft // 2 + 1].
    """
    log_env = _log_inverse_a(lsf, n_fft, sample_rate)
    return _voice_magnitudes(
        f0_hz,
        harmonic_gain,
        noise_gains,
        log_env,
        envelope_gain,
        n_fft,
        sample_rate,
        n_harmonics,
        rolloff_db_per_octave,
        n_neighbours,
        hop,
    )


def _voice_magnitudes(
    f0_hz, harmonic_gain, noise_gains, log_env, envelope_gain, n_fft, sample_rate,
    n_harmonics, rolloff_db_per_octave, n_neighbours, hop,
):  # fmt: skip
    """`source_filter_magnitudes` given -log|A| on the bins of `n_fft`."""
    part = _harmonic_part(
        f0_hz, log_env, n_fft, sample_rate, n_harmonics, rolloff_db_per_octave, n_neighbours, hop
    )
    harmonic = jnp.abs(harmonic_gain)[..., None] * part
    noise = _noise_scale(n_fft) * noise_shape(noise_gains, n_fft)
    excitation = _safe_sqrt(harmonic * harmonic + noise * noise)
    return jnp.abs(envelope_gain)[..., None] * excitation * jnp.exp(log_env)


def _regrid(log_env: jnp.ndarray, from_n_fft: int, to_n_fft: int) -> jnp.ndarray:
    """Values on the bins of one FFT size to those of another (both powers of two): every
    r-th bin when coarser, linear interpolation (slices, no gather) when finer."""
    if to_n_fft <= from_n_fft:
        return log_env[..., :: from_n_fft // to_n_fft]
    r = to_n_fft // from_n_fft
    lo, hi = log_env[..., :-1], log_env[..., 1:]
    steps = [lo + (hi - lo) * (i / r) for i in range(r)]
    inner = jnp.stack(steps, axis=-1).reshape(*lo.shape[:-1], -1)  # [..., (F - 1) * r]
    return jnp.concatenate([inner, log_env[..., -1:]], axis=-1)


def multi_resolution_magnitudes(
    f0_hz: jnp.ndarray,
    harmonic_gain: jnp.ndarray,
    noise_gains: jnp.ndarray,
    lsf: jnp.ndarray,
    envelope_gain: jnp.ndarray,
    fft_sizes: Sequence[int],
    sample_rate: float,
    n_harmonics: int = 101,
    rolloff_db_per_octave: float = 6.0,
    min_f0_hz: float = 60.0,
    hop: int | None = None,
    envelope_n_fft: int = 1024,
) -> list[jnp.ndarray]:
    """`source_filter_magnitudes` at several FFT sizes (powers of two) sharing one envelope.

    The all-pole envelope, the costliest part (P products per bin, forward and backward),
    is evaluated once on the bins of `envelope_n_fft` and taken to every other size: every
    r-th value for smaller sizes, linear interpolation of log|H| for larger ones (a
    sub-bin error where the envelope has peaks sharper than its bin spacing).

    Args:
      f0_hz, harmonic_gain, noise_gains, lsf, envelope_gain: As `source_filter_magnitudes`.
      fft_sizes: STFT sizes (powers of two).
      sample_rate: Audio rate (Hz).
      n_harmonics: Number of harmonics K.
      rolloff_db_per_octave: Glottal slope (dB/octave, positive = falling).
      min_f0_hz: Lowest F0 whose main lobes are kept whole (sets `neighbours_for` per size).
      hop: Samples between frames, for the F0 glide within a window; None: no glide.
      envelope_n_fft: FFT size whose bins the envelope is evaluated on (a power of two).

    Returns:
      One linear magnitude per size, shape [..., frames, n_fft // 2 + 1].
    """
    for n in (*fft_sizes, envelope_n_fft):
        if n & (n - 1):
            raise ValueError(f"FFT sizes must be powers of two, got {n}")
    log_env = _log_inverse_a(lsf, envelope_n_fft, sample_rate)
    return [
        _voice_magnitudes(
            f0_hz,
            harmonic_gain,
            noise_gains,
            _regrid(log_env, envelope_n_fft, n_fft),
            envelope_gain,
            n_fft,
            sample_rate,
            n_harmonics,
            rolloff_db_per_octave,
            neighbours_for(min_f0_hz, n_fft, sample_rate),
            hop,
        )
        for n_fft in fft_sizes
    ]
