"""Differentiable synthesis: harmonic oscillator bank, filtered noise, source-filter voice.

Controls are frame-wise: frame t sets the value at sample t * hop, and values in
between are linearly interpolated; a signal of `frames` frames has
`frames * hop` samples.
"""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from gensep.dsp.framing import overlap_add
from gensep.dsp.lpc import allpole_filter

_TWO_POW_32 = 4294967296.0


def upsample_linear(frames: jnp.ndarray, hop: int) -> jnp.ndarray:
    """Frame-rate controls to audio rate by linear interpolation (last frame held).

    Args:
      frames: Frame-wise values. Shape [..., frames].
      hop: Samples per frame.

    Returns:
      Values at audio rate, shape [..., frames * hop]; sample t * hop equals frames[..., t].
    """
    nxt = jnp.concatenate([frames[..., 1:], frames[..., -1:]], axis=-1)
    ramp = jnp.arange(hop, dtype=frames.dtype) / hop
    out = frames[..., None] + (nxt - frames)[..., None] * ramp  # [..., T, hop]
    return out.reshape(*frames.shape[:-1], -1)


def _split_hi(x: jnp.ndarray) -> jnp.ndarray:
    """Keep the top 12 significant bits of float32 x (mask the low 12 mantissa bits), so
    that products of two such halves are exact in float32."""
    bits = jax.lax.bitcast_convert_type(x, jnp.uint32) & jnp.uint32(0xFFFFF000)
    return jax.lax.bitcast_convert_type(bits, jnp.float32)


def _split_const(c: float) -> list[float]:
    """Split a float64 constant into three float32 parts of <= 12 significant bits each."""
    parts = []
    rest = c
    for _ in range(3):
        bits = np.array(rest, np.float32).view(np.uint32) & np.uint32(0xFFFFF000)
        hi = float(bits.view(np.float32))
        parts.append(hi)
        rest -= hi
    return parts


def _frac_fixed(x: jnp.ndarray, c: float) -> jnp.ndarray:
    """Fractional part of x * c as a uint32 fixed-point number (units of 2**-32), computed
    from exact float32 partial products: error < 2**-29 instead of float32's ~1e-7 * x * c."""
    x_hi = _split_hi(x)
    x_lo = x - x_hi
    acc = jnp.zeros(x.shape, jnp.uint32)
    for part in _split_const(c):
        for half in (x_hi, x_lo):
            p = half * jnp.float32(part)  # exact: both factors have <= 12 significant bits
            frac = p - jnp.floor(p)
            acc = acc + jnp.round(frac * _TWO_POW_32).astype(jnp.uint32)  # wraps mod 1 cycle
    return acc


def _phase_consts(sample_rate: float, hop: int) -> tuple[float, float, np.ndarray, np.ndarray]:
    # With f(n) linear from f_t to f_{t+1} over a frame, the phase (cycles) advanced after j
    # samples is f_t * j / sr + (f_{t+1} - f_t) * j (j - 1) / (2 hop sr); after a whole frame
    # it is f_t * c_now + f_{t+1} * c_next.
    j = np.arange(hop, dtype=np.float64)
    c_now = (hop + 1) / (2.0 * sample_rate)
    c_next = (hop - 1) / (2.0 * sample_rate)
    lin = j / sample_rate
    quad = j * (j - 1) / (2.0 * hop * sample_rate)
    return c_now, c_next, lin, quad


def _float_phase(f0_hz: jnp.ndarray, sample_rate: float, hop: int) -> jnp.ndarray:
    """Fundamental phase in cycles, plain float32 (grows without bound). [..., T, hop]."""
    c_now, c_next, lin, quad = _phase_consts(sample_rate, hop)
    nxt = jnp.concatenate([f0_hz[..., 1:], f0_hz[..., -1:]], axis=-1)
    inc = f0_hz * c_now + nxt * c_next
    start = jnp.cumsum(inc, axis=-1) - inc
    within = f0_hz[..., None] * lin + (nxt - f0_hz)[..., None] * quad
    return start[..., None] + within


@partial(jax.custom_jvp, nondiff_argnums=(2, 3))
def _phases_of(f0_hz: jnp.ndarray, harmonics: jnp.ndarray, sample_rate: float, hop: int):
    """Phases (cycles, in [0, 1)) of the given harmonic numbers. [..., T, hop, len(harmonics)]."""
    c_now, c_next, lin, quad = _phase_consts(sample_rate, hop)
    f0_hz = f0_hz.astype(jnp.float32)
    nxt = jnp.concatenate([f0_hz[..., 1:], f0_hz[..., -1:]], axis=-1)
    inc = _frac_fixed(f0_hz, c_now) + _frac_fixed(nxt, c_next)  # [..., T] uint32
    start = jnp.cumsum(inc, axis=-1, dtype=jnp.uint32) - inc  # exclusive, wraps
    k = harmonics.astype(jnp.uint32)
    start_k = (start[..., None] * k).astype(jnp.float32) / _TWO_POW_32  # [..., T, K]
    within = f0_hz[..., None] * lin + (nxt - f0_hz)[..., None] * quad  # [..., T, hop]
    within_k = within[..., None] * harmonics.astype(jnp.float32)  # [..., T, hop, K]
    phase = start_k[..., None, :] + (within_k - jnp.floor(within_k))
    return phase - jnp.floor(phase)


@_phases_of.defjvp
def _phases_of_jvp(sample_rate, hop, primals, tangents):
    (f0_hz, harmonics), (f0_dot, _) = primals, tangents
    out = _phases_of(f0_hz, harmonics, sample_rate, hop)
    d_phase = _float_phase(f0_dot.astype(jnp.float32), sample_rate, hop)  # linear in f0
    return out, d_phase[..., None] * harmonics.astype(jnp.float32)


def harmonic_phases(
    f0_hz: jnp.ndarray, n_harmonics: int, sample_rate: float, hop: int
) -> jnp.ndarray:
    """Phase of every harmonic at every sample, in cycles wrapped to [0, 1).

    Frame-start phases are accumulated in 32-bit fixed point (wrapping modulo one cycle),
    so the error does not grow with signal length: a naive float32 cumulative sum of the
    phase drifts by ~0.4 cycles at harmonic 100 after 60 s. Within a frame the phase is
    computed in closed form (error ~1e-7 * harmonic * hop * f0 / sr cycles, not
    accumulated). The derivative with respect to f0 is that of the exact phase.

    Args:
      f0_hz: Frame-wise fundamental frequency (Hz), >= 0. Shape [..., frames].
      n_harmonics: Number of harmonics K (harmonic k has frequency k * f0, k = 1..K).
      sample_rate: Audio rate (Hz).
      hop: Samples per frame.

    Returns:
      Phases (cycles), shape [..., frames, hop, K].
    """
    harmonics = jnp.arange(1, n_harmonics + 1, dtype=jnp.uint32)
    return _phases_of(f0_hz, harmonics, sample_rate, hop)


def harmonic_synth(
    f0_hz: jnp.ndarray,
    amplitudes: jnp.ndarray,
    sample_rate: float,
    hop: int,
    harmonics_per_step: int = 8,
) -> jnp.ndarray:
    """Phase-continuous additive synthesis of K harmonics of a time-varying F0.

    Frequency and amplitudes are interpolated linearly between frames; harmonics at or
    above Nyquist are silenced sample by sample; frames with f0 == 0 (unvoiced) have zero
    amplitude. The phase starts at 0: with constant controls, harmonic k is exactly
    `amplitudes[..., k-1] * sin(2 pi k f0 n / sample_rate)` (see `harmonic_phases`).

    The harmonics are summed `harmonics_per_step` at a time in a loop, so memory grows with
    that block, not with K, and a block lying wholly above Nyquist is skipped.

    Args:
      f0_hz: Frame-wise fundamental frequency (Hz), 0 = unvoiced. Shape [..., frames].
      amplitudes: Linear amplitude of each harmonic. Shape [..., frames, K].
      sample_rate: Audio rate (Hz).
      hop: Samples per frame.
      harmonics_per_step: Harmonics computed together (memory/speed trade-off).

    Returns:
      Audio, shape [..., frames * hop], float32.
    """
    n_harmonics = amplitudes.shape[-1]
    step = min(harmonics_per_step, n_harmonics)
    n_steps = -(-n_harmonics // step)
    f0_hz = jnp.maximum(f0_hz.astype(jnp.float32), 0.0)
    amplitudes = amplitudes.astype(jnp.float32) * (f0_hz > 0)[..., None]
    pad = [(0, 0)] * (amplitudes.ndim - 1) + [(0, n_steps * step - n_harmonics)]
    amplitudes = jnp.pad(amplitudes, pad)
    blocks = jnp.moveaxis(amplitudes.reshape(*amplitudes.shape[:-1], n_steps, step), -2, 0)
    nxt_f0 = jnp.concatenate([f0_hz[..., 1:], f0_hz[..., -1:]], axis=-1)
    ramp = jnp.arange(hop, dtype=jnp.float32)[:, None] / hop  # [hop, 1]
    f_audio = f0_hz[..., None, None] + (nxt_f0 - f0_hz)[..., None, None] * ramp  # [..., T, hop, 1]
    # A block is skipped when even the lowest voiced F0 puts its first harmonic at or above
    # Nyquist (samples gliding into an unvoiced frame have fading amplitude and are dropped).
    min_f0 = jnp.min(jnp.where(f0_hz > 0, f0_hz, jnp.inf))

    def add_block(audio, inputs):
        index, amps = inputs  # amps [..., T, step]
        harmonics = index * step + jnp.arange(1, step + 1, dtype=jnp.uint32)

        def compute(audio):
            phase = _phases_of(f0_hz, harmonics, sample_rate, hop)  # [..., T, hop, step]
            nxt_amp = jnp.concatenate([amps[..., 1:, :], amps[..., -1:, :]], axis=-2)
            amp = amps[..., None, :] + (nxt_amp - amps)[..., None, :] * ramp
            below = f_audio * harmonics.astype(jnp.float32) < sample_rate / 2
            return audio + jnp.sum(jnp.where(below, amp, 0.0) * jnp.sin(2 * jnp.pi * phase), -1)

        first = (index * step + 1).astype(jnp.float32)
        audio = jax.lax.cond(min_f0 * first < sample_rate / 2, compute, lambda a: a, audio)
        return audio, None

    audio = jnp.zeros((*f0_hz.shape, hop), jnp.float32)
    steps = jnp.arange(n_steps, dtype=jnp.uint32)
    audio, _ = jax.lax.scan(add_block, audio, (steps, blocks))
    return audio.reshape(*f0_hz.shape[:-1], -1)


def noise_impulse_response(magnitudes: jnp.ndarray) -> jnp.ndarray:
    """Linear-phase FIR per frame from a magnitude response on linearly spaced bands.

    Args:
      magnitudes: Linear gain of `bands` frequencies evenly spaced from 0 Hz to Nyquist.
        Shape [..., frames, bands].

    Returns:
      Impulse responses, shape [..., frames, 2 * (bands - 1)], centred (delay
      bands - 1 samples) and Hann-windowed.
    """
    n_taps = 2 * (magnitudes.shape[-1] - 1)
    ir = jnp.fft.irfft(magnitudes.astype(jnp.complex64), n=n_taps, axis=-1)
    ir = jnp.roll(ir, n_taps // 2, axis=-1)
    return ir * jnp.asarray(np.hanning(n_taps + 1)[:n_taps], jnp.float32)


def fir_filter_frames(audio: jnp.ndarray, irs: jnp.ndarray, hop: int) -> jnp.ndarray:
    """Time-varying FIR filtering: block t of `hop` samples is convolved with irs[..., t, :]
    and the results are overlap-added; the output is advanced by n_taps // 2 samples so a
    centred (linear-phase) response adds no delay.

    Args:
      audio: Shape [..., frames * hop].
      irs: Impulse responses. Shape [..., frames, n_taps].
      hop: Samples per frame.

    Returns:
      Filtered audio, shape [..., frames * hop].
    """
    n_frames, n_taps = irs.shape[-2:]
    n_conv = int(2 ** np.ceil(np.log2(hop + n_taps - 1)))
    blocks = audio.reshape(*audio.shape[:-1], n_frames, hop)  # [..., T, hop]
    spec = jnp.fft.rfft(blocks, n=n_conv, axis=-1) * jnp.fft.rfft(irs, n=n_conv, axis=-1)
    out = overlap_add(jnp.fft.irfft(spec, n=n_conv, axis=-1), hop)
    start = n_taps // 2
    return out[..., start : start + n_frames * hop]


def filtered_noise(magnitudes: jnp.ndarray, hop: int, key: jax.Array) -> jnp.ndarray:
    """White noise, uniform in [-1, 1), shaped by a time-varying linear-phase filter.

    Args:
      magnitudes: Filter gain on `bands` frequencies evenly spaced from 0 to Nyquist.
        Shape [..., frames, bands].
      hop: Samples per frame.
      key: `jax.random` key.

    Returns:
      Audio, shape [..., frames * hop].
    """
    n_frames = magnitudes.shape[-2]
    noise = jax.random.uniform(
        key, (*magnitudes.shape[:-2], n_frames * hop), jnp.float32, -1.0, 1.0
    )
    return fir_filter_frames(noise, noise_impulse_response(magnitudes), hop)


def glottal_rolloff(n_harmonics: int, db_per_octave: float = 6.0) -> jnp.ndarray:
    """Amplitude of harmonic k relative to the first, falling `db_per_octave`. Shape [K]."""
    k = np.arange(1, n_harmonics + 1, dtype=np.float64)
    return jnp.asarray(10.0 ** (-db_per_octave * np.log2(k) / 20.0), jnp.float32)


def source_filter_synth(
    f0_hz: jnp.ndarray,
    harmonic_gain: jnp.ndarray,
    noise_magnitudes: jnp.ndarray,
    lsf: jnp.ndarray,
    envelope_gain: jnp.ndarray,
    sample_rate: float,
    hop: int,
    key: jax.Array,
    n_harmonics: int = 101,
    rolloff_db_per_octave: float = 6.0,
) -> jnp.ndarray:
    """Source-filter voice (DESIGN §3.1): harmonic excitation with a fixed glottal roll-off
    plus filtered noise, both through a frame-wise all-pole vocal-tract filter.

    Args:
      f0_hz: Frame-wise F0 (Hz), 0 = unvoiced. Shape [..., frames].
      harmonic_gain: Linear gain of the harmonic excitation. Shape [..., frames].
      noise_magnitudes: Noise filter gain on bands evenly spaced from 0 to Nyquist.
        Shape [..., frames, bands].
      lsf: Line spectral frequencies (radians, increasing in (0, pi)), order P even.
        Shape [..., frames, P].
      envelope_gain: Linear gain of the all-pole envelope. Shape [..., frames].
      sample_rate: Audio rate (Hz).
      hop: Samples per frame; the filter uses frames of 2 * hop with 50 % overlap.
      key: `jax.random` key for the noise.
      n_harmonics: Number of harmonics K.
      rolloff_db_per_octave: Glottal source slope (dB per octave, positive = falling).

    Returns:
      Audio, shape [..., frames * hop].
    """
    rolloff = glottal_rolloff(n_harmonics, rolloff_db_per_octave)
    amplitudes = harmonic_gain[..., None] * rolloff  # [..., T, K]
    excitation = harmonic_synth(f0_hz, amplitudes, sample_rate, hop)
    excitation = excitation + filtered_noise(noise_magnitudes, hop, key)
    return allpole_filter(excitation, lsf, envelope_gain, hop)
