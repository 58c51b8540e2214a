"""Linear prediction: line spectral frequencies <-> LPC, all-pole response and filtering.

Conventions: an all-pole filter is `gain / A(z)` with
`A(z) = a[0] + a[1] z^-1 + ... + a[P] z^-P`, `a[0] = 1`, order P even. Its LSFs are
the angles in (0, pi) of the unit-circle roots of `P(z) = A(z) + z^-(P+1) A(1/z)` and
`Q(z) = A(z) - z^-(P+1) A(1/z)`; for a stable A they interlace, the smallest belonging
to P(z), and any strictly increasing LSF vector in (0, pi) gives a stable A.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from gensep.dsp.framing import frame, overlap_add, window_sum

DEFAULT_MIN_LSF_GAP = 0.01  # radians (25 Hz at 16 kHz)


def _lsf_spectrum(lsf: jnp.ndarray, w: np.ndarray) -> jnp.ndarray:
    """A(e^{jw}) from LSFs in product form (see `lsf_frequency_response`). [..., F]."""
    order = lsf.shape[-1]
    if order % 2:
        raise ValueError(f"LSF order must be even, got {order}")
    w = np.asarray(w, np.float64)
    factors = jnp.asarray(2 * np.cos(w), jnp.float32) - 2 * jnp.cos(lsf)[..., None]  # [..., P, F]
    p_real = jnp.asarray(2 * np.cos(w / 2), jnp.float32) * jnp.prod(factors[..., 0::2, :], -2)
    q_real = jnp.asarray(2 * np.sin(w / 2), jnp.float32) * jnp.prod(factors[..., 1::2, :], -2)
    rotation = jnp.asarray(np.exp(-0.5j * w * (order + 1)), jnp.complex64)
    return 0.5 * rotation * jax.lax.complex(p_real, q_real)


def lsf_to_lpc(lsf: jnp.ndarray) -> jnp.ndarray:
    """LPC coefficients from line spectral frequencies.

    Computed as the inverse FFT of A(e^{jw}) evaluated in product form, far better
    conditioned in float32 than multiplying out the polynomials P(z) and Q(z). LPC
    coefficients of sharp envelopes are ill-conditioned whatever the method (rounding the
    exact coefficients to float32 can move a resonance peak by a dB), so filtering uses
    `lsf_frequency_response` directly; this is for analysis and export.

    Args:
      lsf: Increasing LSFs (radians) in (0, pi). Shape [..., P], P even.

    Returns:
      a: Shape [..., P + 1], a[..., 0] = 1.
    """
    order = lsf.shape[-1]
    n = 2 * int(2 ** np.ceil(np.log2(order + 1)))
    w = 2 * np.pi * np.arange(n // 2 + 1) / n
    a = jnp.fft.irfft(_lsf_spectrum(lsf, w), n=n, axis=-1)[..., : order + 1]
    return a.at[..., 0].set(1.0)


def _unit_circle_angles(poly: jnp.ndarray) -> jnp.ndarray:
    """Angles in [0, pi] of the roots of a monic real polynomial whose roots are conjugate
    pairs on the unit circle. poly [..., n + 1] (in z^-1) -> [..., n // 2], increasing."""
    n = poly.shape[-1] - 1
    companion = jnp.zeros((*poly.shape[:-1], n, n), poly.dtype)
    companion = companion.at[..., 0, :].set(-poly[..., 1:])
    companion = companion.at[..., jnp.arange(1, n), jnp.arange(n - 1)].set(1.0)
    roots = jnp.linalg.eigvals(companion)
    angles = jnp.sort(jnp.abs(jnp.angle(roots)), axis=-1)
    return angles[..., ::2]  # each angle appears twice (w and -w)


def lpc_to_lsf(a: jnp.ndarray) -> jnp.ndarray:
    """Line spectral frequencies of a stable all-pole filter (inverse of `lsf_to_lpc`).

    Roots come from companion-matrix eigenvalues, which XLA computes on the CPU only;
    meant for initialisation and analysis rather than inside training steps.

    Args:
      a: LPC coefficients with a[..., 0] = 1 and all roots inside the unit circle.
        Shape [..., P + 1], P even.

    Returns:
      LSFs (radians), increasing in (0, pi). Shape [..., P].
    """
    order = a.shape[-1] - 1
    if order % 2:
        raise ValueError(f"LPC order must be even, got {order}")
    pad = [(0, 0)] * (a.ndim - 1)
    ext = jnp.pad(a, [*pad, (0, 1)])
    rev = ext[..., ::-1]
    p_poly = ext + rev  # has the root z = -1
    q_poly = ext - rev  # has the root z = +1
    # Deflate the trivial roots: divide by (1 + z^-1) and (1 - z^-1).
    signs = (-1.0) ** np.arange(order + 1)
    p_red = jnp.cumsum(p_poly[..., : order + 1] * signs, axis=-1) * signs
    q_red = jnp.cumsum(q_poly[..., : order + 1], axis=-1)
    lsf = jnp.concatenate([_unit_circle_angles(p_red), _unit_circle_angles(q_red)], axis=-1)
    return jnp.sort(lsf, axis=-1)


def lsf_activation(raw: jnp.ndarray, min_gap: float = DEFAULT_MIN_LSF_GAP) -> jnp.ndarray:
    """Map unconstrained network outputs to increasing LSFs in (0, pi) (softmax-cumsum).

    The P + 1 gaps (0 -> w1, ..., wP -> pi) are `min_gap` plus a softmax share of the rest,
    so neighbouring LSFs are at least `min_gap` apart: this bounds how close the poles get
    to the unit circle, hence the filter's resonance length.

    Args:
      raw: Shape [..., P].
      min_gap: Minimum spacing (radians); (P + 1) * min_gap must be < pi.

    Returns:
      LSFs (radians). Shape [..., P].
    """
    order = raw.shape[-1]
    if (order + 1) * min_gap >= np.pi:
        raise ValueError(f"min_gap {min_gap} too large for order {order}")
    logits = jnp.concatenate([raw, jnp.zeros((*raw.shape[:-1], 1), raw.dtype)], axis=-1)
    gaps = min_gap + (np.pi - (order + 1) * min_gap) * jax.nn.softmax(logits, axis=-1)
    return jnp.cumsum(gaps, axis=-1)[..., :order]


def allpole_response(
    a: jnp.ndarray, freqs_hz: jnp.ndarray, sample_rate: float, gain: jnp.ndarray | float = 1.0
) -> jnp.ndarray:
    """Magnitude response |gain / A(e^{jw})| of an all-pole filter.

    Args:
      a: LPC coefficients. Shape [..., P + 1].
      freqs_hz: Frequencies (Hz). Shape [F].
      sample_rate: Rate (Hz) that maps frequencies to w = 2 pi f / sample_rate.
      gain: Linear gain. Shape [...] or scalar.

    Returns:
      Linear magnitude, shape [..., F].
    """
    w = 2 * jnp.pi * jnp.asarray(freqs_hz, jnp.float32) / sample_rate
    k = jnp.arange(a.shape[-1], dtype=jnp.float32)
    phase = w[:, None] * k[None, :]  # [F, P+1]
    re = jnp.einsum("...k,fk->...f", a, jnp.cos(phase))
    im = jnp.einsum("...k,fk->...f", a, jnp.sin(phase))
    return jnp.abs(jnp.asarray(gain))[..., None] / jnp.sqrt(re * re + im * im)


def lsf_frequency_response(
    lsf: jnp.ndarray, freqs_hz: jnp.ndarray, sample_rate: float, gain: jnp.ndarray | float = 1.0
) -> jnp.ndarray:
    """Complex response gain / A(e^{jw}) of the all-pole filter given by its LSFs.

    Evaluated in product form, A(e^{jw}) = e^{-jw(P+1)/2} (Pr(w) + j Qr(w)) / 2 with
    Pr = 2 cos(w/2) prod_odd(2 cos w - 2 cos w_i) and Qr = 2 sin(w/2) prod_even(...):
    every factor is accurate and |A|^2 = (Pr^2 + Qr^2) / 4 has no cancellation, so this
    stays accurate in float32 for envelopes of 200 dB dynamic range.

    Args:
      lsf: Increasing LSFs (radians) in (0, pi), interleaved P(z), Q(z) roots starting with
        P(z). Shape [..., P], P even.
      freqs_hz: Frequencies (Hz), a host (NumPy) array: static under jit. Shape [F].
      sample_rate: Rate (Hz) that maps frequencies to w = 2 pi f / sample_rate.
      gain: Linear gain. Shape [...] or scalar.

    Returns:
      Complex response, shape [..., F].
    """
    w = 2 * np.pi * np.asarray(freqs_hz, np.float64) / sample_rate
    gain = jnp.asarray(gain, jnp.float32)[..., None]
    return gain / _lsf_spectrum(lsf, w)


def allpole_filter(
    audio: jnp.ndarray,
    lsf: jnp.ndarray,
    gain: jnp.ndarray,
    hop: int,
    frame_length: int | None = None,
    n_fft: int | None = None,
) -> jnp.ndarray:
    """Frame-wise all-pole filtering in the frequency domain (Hann frames, overlap-add).

    Frame t (centred on sample t * hop, `frame_length` long, periodic Hann window) is
    filtered by gain[t] / A_t(z) via an FFT of size `n_fft` (A_t given by its LSFs, evaluated
    with `lsf_frequency_response`) and overlap-added; the windows
    are normalised to sum to one. For a filter that does not change over time this equals
    `scipy.signal.lfilter([gain], a, audio)` except that the part of each frame's response
    later than `n_fft - frame_length` samples wraps around (the FFT is circular): the error
    is bounded by the energy of the impulse response past that point, e.g. < 1e-5
    relative for poles of radius <= 0.97 with the defaults (512-sample frames, n_fft 1024).

    Args:
      audio: Shape [..., frames * hop].
      lsf: LSFs per frame (radians, increasing in (0, pi)). Shape [..., frames, P].
      gain: Linear gain per frame. Shape [..., frames].
      hop: Samples between frames.
      frame_length: Analysis frame (samples); default 2 * hop (50 % overlap).
      n_fft: FFT size; default 2 * frame_length.

    Returns:
      Filtered audio, shape [..., frames * hop].
    """
    frame_length = frame_length or 2 * hop
    n_fft = n_fft or 2 * frame_length
    n_frames = lsf.shape[-2]
    if audio.shape[-1] != n_frames * hop:
        raise ValueError(f"audio has {audio.shape[-1]} samples, expected {n_frames} * {hop}")
    half = frame_length // 2
    # One extra frame (the last one's controls repeated) covers the final hop.
    lsf = jnp.concatenate([lsf, lsf[..., -1:, :]], axis=-2)
    gain = jnp.concatenate([gain, gain[..., -1:]], axis=-1)
    pad = [(0, 0)] * (audio.ndim - 1)
    padded = jnp.pad(audio, [*pad, (half, frame_length - half)])
    window = np.hanning(frame_length + 1)[:frame_length].astype(np.float64)
    # Dividing the input by the summed windows makes the frames add back to it exactly,
    # whatever the overlap (the sum is constant 1 for 50 % overlap).
    envelope = window_sum(window, n_frames + 1, hop)
    norm = np.where(envelope > 1e-3, 1.0 / np.maximum(envelope, 1e-3), 0.0).astype(np.float32)
    frames = frame(padded * norm, frame_length, hop)[..., : n_frames + 1, :]
    frames = frames * window.astype(np.float32)  # [..., T+1, L]
    bins = np.arange(n_fft // 2 + 1) / n_fft  # cycles per sample
    response = lsf_frequency_response(lsf, bins, 1.0, gain)  # [..., T+1, bins]
    spec = jnp.fft.rfft(frames, n=n_fft, axis=-1) * response
    out = overlap_add(jnp.fft.irfft(spec, n=n_fft, axis=-1), hop)
    return out[..., half : half + n_frames * hop]
