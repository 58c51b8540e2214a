"""Learning-free multi-F0: harmonic-summation salience, peak picking, Viterbi voice assignment.

    tracks = salience_f0(mixture, 16000, n_voices=4)  # [(times_s, hz), ...], highest first

1. A log-frequency magnitude spectrogram: a 128 ms STFT at 16 kHz mapped onto a 10-cent
   axis, less 1% of each frame's peak (leakage and noise), compressed (** 0.3) so that
   quiet voices still count.
2. Harmonic summation: the salience of a pitch is the weighted sum of that spectrogram at
   its first 10 harmonics (weight 0.6 ** (h - 1)), each looked up within +-20 cents
   (ensembles and vibrato smear partials). The steep decay keeps the octave below a note,
   which collects the note's partials as its even harmonics, under the note itself.
3. Per frame, the 6 most salient pitches, each hiding +-150 cents around it (the skirts of
   a strong note), refined to sub-bin pitch on the unwidened harmonic sum. A candidate
   with another one an octave or a twelfth below loses a quarter of what a smooth
   spectrum of that lower note would put on its harmonics (Klapuri's spectral smoothness:
   the octave-up ghost; only a quarter, as real doublings at the octave are common).
4. Voices ordered high to low take one candidate each, or none, by a joint Viterbi
   (`gensep.f0.assign.assign_voices`): log salience over a voicing threshold, a range
   prior, a cost per semitone of jump and per voicing change.

Measured with eval/f0.py (constants tuned on 3 choir train tracks and Bach10 pieces 01-02):
mean raw pitch accuracy 0.79 on the rendered choir test split and on all of Bach10 (0.77 on
pieces 03-05), 55-80x real time on 2 busy CPU cores. Weak spots: a voice resting while
others sing takes another voice's octave ghost if one fits its range (the voicing threshold
only silences voices where nothing is left); chords whose tones are all harmonics of the
bass, where the bass's octave can outweigh a quiet upper voice and the upper voices slide
down a line; unisons (strict ordering gives one of the two voices another candidate).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.fft
import soxr
from scipy.ndimage import maximum_filter1d

from gensep.data.track import F0Track
from gensep.errors import AudioError, GensepError
from gensep.f0.assign import assign_voices

SATB_RANGES = ((250.0, 1050.0), (170.0, 700.0), (120.0, 520.0), (75.0, 350.0))  # Hz
ANALYSIS_RATE = 16000  # Hz; every input is resampled to it
WINDOW = 2048  # STFT window (samples at ANALYSIS_RATE, 128 ms)
N_FFT = 4096
BIN_CENTS = 10.0
AXIS_HZ = (27.0, 7900.0)  # the log-frequency axis; an octave below the lowest pitch
PITCH_HZ = (55.0, 1400.0)  # candidate pitches
FLOOR = 0.01  # of each frame's peak magnitude, taken off before compression
COMPRESSION = 0.3  # magnitude exponent
N_HARMONICS = 10
DECAY = 0.6  # harmonic h weighs DECAY ** (h - 1)
TOLERANCE_BINS = 2  # a harmonic is looked up within +- this many bins
SUPPRESS_CENTS = 150.0  # a candidate hides others this close
GHOST = 0.25  # share of the harmonic-ghost estimate taken off a candidate
GHOST_TOLERANCE_CENTS = 50.0
GHOST_RATIOS = (2, 3)
_REF_HZ = 55.0  # 0 cents


def salience_f0(
    audio: np.ndarray,
    sample_rate: int,
    n_voices: int = 4,
    hop_s: float = 0.01,
    ranges: Sequence[tuple[float, float]] | None = None,
    *,
    n_candidates: int = 6,
    voicing_threshold: float = 0.3,
    jump_cost: float = 1.0,
    switch_cost: float = 2.0,
) -> list[F0Track]:
    """The F0 of `n_voices` voices of a mixture, highest voice first.

    Args:
      audio: Mixture, [samples] or [channels, samples] (channels are averaged).
      sample_rate: Its rate (Hz).
      n_voices: How many voices to return.
      hop_s: Output frame hop (s); frames are centred at 0, hop_s, 2 hop_s, ...
      ranges: (low Hz, high Hz) per voice, highest voice first; outside it a pitch is
        penalised, not forbidden. None: SATB ranges for 4 voices, else no range prior.
      n_candidates: Salience peaks per frame the voices choose from.
      voicing_threshold: Salience, relative to the track's loud frames (95th percentile
        of each frame's strongest peak), below which a voice prefers to be unvoiced.
      jump_cost: Cost per semitone of pitch jump between frames (capped at an octave), in
        units of log salience.
      switch_cost: Cost of a voice starting or stopping.

    Returns:
      `n_voices` (times_s [frames], hz [frames]) tracks, 0 Hz = unvoiced, highest voice
      first; the frames are the same for every voice.

    Raises:
      AudioError: badly shaped, too short (< one 128 ms window), silent or non-finite audio.
      GensepError: a bad n_voices, hop_s or ranges, or too many voices and candidates for
        the joint Viterbi.
    """
    mono = _mono(audio, sample_rate)
    if n_voices < 1:
        raise GensepError(f"n_voices {n_voices}: need at least one voice")
    if not hop_s > 0:
        raise GensepError(f"hop_s {hop_s}: the frame hop must be positive (seconds)")
    if ranges is None:
        ranges = SATB_RANGES if n_voices == 4 else [PITCH_HZ] * n_voices
    if len(ranges) != n_voices or any(not 0 < lo < hi for lo, hi in ranges):
        raise GensepError(
            f"ranges {ranges}: need one (low Hz, high Hz) pair with 0 < low < high per voice "
            f"({n_voices} voices)"
        )
    duration = mono.size / sample_rate
    if sample_rate != ANALYSIS_RATE:
        mono = soxr.resample(mono, sample_rate, ANALYSIS_RATE, quality="HQ")
    times = np.arange(int(np.floor(duration / hop_s + 1e-9)) + 1) * hop_s
    spec = log_spectrogram(mono, times)
    wide = maximum_filter1d(spec, 2 * TOLERANCE_BINS + 1, axis=1)
    cents, strength = pick_candidates(harmonic_salience(wide), spec, wide, n_candidates)
    pitch = assign_voices(
        cents,
        strength / voicing_threshold,
        [(_cents(lo), _cents(hi)) for lo, hi in ranges],
        jump_cost=jump_cost,
        switch_cost=switch_cost,
    )  # [N, T] cents, NaN = unvoiced
    hz = np.where(np.isnan(pitch), 0.0, _REF_HZ * 2.0 ** (np.nan_to_num(pitch) / 1200.0))
    return [(times, hz[v]) for v in range(n_voices)]


def _mono(audio: np.ndarray, sample_rate: int) -> np.ndarray:
    audio = np.asarray(audio, np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    if audio.ndim != 1:
        raise AudioError(f"audio of shape {audio.shape}: expected [samples] or [channels, samples]")
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int | np.integer):
        raise AudioError(f"sample rate {sample_rate!r}: need an integer rate (Hz)")
    if sample_rate < 8000:
        raise AudioError(f"sample rate {sample_rate} Hz: need at least 8000 Hz")
    if audio.size < WINDOW * sample_rate / ANALYSIS_RATE:
        raise AudioError(
            f"{audio.size} samples at {sample_rate} Hz: too short for F0 estimation — "
            f"pass at least {WINDOW / ANALYSIS_RATE * 1000:.0f} ms of audio"
        )
    if not np.isfinite(audio).all():
        raise AudioError("audio holds NaN or Inf samples — check how it was made or decoded")
    if not np.any(audio):
        raise AudioError("audio is silent (all samples 0): no F0 to estimate")
    return audio


def _cents(hz: float | np.ndarray) -> np.ndarray:
    return 1200.0 * np.log2(np.asarray(hz, np.float64) / _REF_HZ)


def log_spectrogram(mono: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Compressed magnitude STFT of 16 kHz `mono` at `times` (s) on the log axis
    `log_axis()` -> [T, B]. Below ~600 Hz a log bin is finer than an FFT bin and is
    interpolated; above, it takes the largest FFT bin inside it. Frames are centred on
    `times`, the signal zero-padded at both ends."""
    centres = np.round(times * ANALYSIS_RATE).astype(np.int64)
    padded = np.pad(mono, (WINDOW // 2, WINDOW // 2 + 1))
    framed = np.lib.stride_tricks.sliding_window_view(padded, WINDOW)  # a view, no copy
    window = np.hanning(WINDOW).astype(np.float32)
    # In chunks of frames: a whole 10-min recording's complex STFT would take ~2 GB.
    return np.concatenate(
        [
            _log_magnitude(np.abs(scipy.fft.rfft(framed[chunk] * window, N_FFT, axis=-1)))
            for chunk in np.array_split(centres, max(1, centres.size // 1000))
        ]
    )


def _log_magnitude(magnitude: np.ndarray) -> np.ndarray:
    """An STFT magnitude [T, N_FFT // 2 + 1] on `log_axis()`, less the floor, compressed."""
    axis = log_axis()
    fft_bin = _REF_HZ * 2.0 ** (axis / 1200.0) * N_FFT / ANALYSIS_RATE
    low = np.floor(fft_bin).astype(np.int64)
    frac = (fft_bin - low).astype(np.float32)
    spec = magnitude[:, low] * (1 - frac) + magnitude[:, low + 1] * frac
    edges = np.ceil(_REF_HZ * 2.0 ** ((axis - BIN_CENTS / 2) / 1200.0) * N_FFT / ANALYSIS_RATE)
    edges = edges.astype(np.int64)
    wide = np.flatnonzero(np.diff(np.append(edges, edges[-1] + 1)) > 0)  # >= 1 FFT bin inside
    pooled = np.maximum.reduceat(magnitude, edges[wide], axis=1)[:, : wide.size]
    spec[:, wide] = np.maximum(spec[:, wide], pooled)
    floor = FLOOR * spec.max(axis=1, keepdims=True)
    return np.maximum(spec - floor, 0.0) ** COMPRESSION


def log_axis() -> np.ndarray:
    """The log-frequency axis of `log_spectrogram` (cents re 55 Hz) [B]."""
    return np.arange(_cents(AXIS_HZ[0]), _cents(AXIS_HZ[1]), BIN_CENTS)


def pitch_axis() -> np.ndarray:
    """The candidate pitches of `harmonic_salience` (cents re 55 Hz) [P]."""
    return np.arange(_cents(PITCH_HZ[0]), _cents(PITCH_HZ[1]), BIN_CENTS)


def harmonic_salience(wide: np.ndarray) -> np.ndarray:
    """Harmonic-summation salience [T, P] on `pitch_axis()` of a `log_spectrogram` [T, B]
    widened by a +-`TOLERANCE_BINS` maximum filter."""
    salience = np.zeros((wide.shape[0], pitch_axis().size), np.float32)
    for h in range(1, N_HARMONICS + 1):
        start = _first_bin() + _bins(h)
        stop = min(start + salience.shape[1], wide.shape[1])
        salience[:, : stop - start] += DECAY ** (h - 1) * wide[:, start:stop]
    return salience


def _first_bin() -> int:
    """The `log_axis()` bin of the first candidate pitch."""
    return int(np.round((pitch_axis()[0] - log_axis()[0]) / BIN_CENTS))


def _bins(ratio: float) -> int:
    """A frequency ratio in log-axis bins."""
    return int(np.round(1200 * np.log2(ratio) / BIN_CENTS))


def _gather(spec: np.ndarray, where: np.ndarray) -> np.ndarray:
    """spec [T, B] at bins where [T, ...] of each frame; 0 outside the axis."""
    inside = (where >= 0) & (where < spec.shape[1])
    flat = np.clip(where, 0, spec.shape[1] - 1).reshape(spec.shape[0], -1)
    return np.where(inside, np.take_along_axis(spec, flat, axis=1).reshape(where.shape), 0.0)


def pick_candidates(
    salience: np.ndarray, spec: np.ndarray, wide: np.ndarray, n_candidates: int
) -> tuple[np.ndarray, np.ndarray]:
    """The `n_candidates` most salient pitches per frame, each hiding +-`SUPPRESS_CENTS`.

    Args:
      salience: `harmonic_salience(wide)`. Shape [T, P].
      spec: The `log_spectrogram`, for sub-bin pitch: the widening flattens peaks, so each
        candidate is refined on the unwidened harmonic sum (the best of the bins within
        the tolerance, then parabolic interpolation). Shape [T, B].
      wide: `spec` widened, for the ghost estimates. Shape [T, B].
      n_candidates: Candidates per frame (K).

    Returns:
      (cents re 55 Hz [T, K], strength [T, K]); strength is salience over the 95th
      percentile of the frames' largest salience, less `GHOST` times the harmonic-ghost
      estimate (`_ghost`) where another candidate lies an octave or a twelfth below; 0
      (cents NaN) where nothing was left to pick.
    """
    left_over = salience.copy()
    best = np.zeros((salience.shape[0], n_candidates), np.int64)
    reach = round(SUPPRESS_CENTS / BIN_CENTS)
    for k in range(n_candidates):
        best[:, k] = np.argmax(left_over, axis=1)
        lo, hi = np.maximum(best[:, k] - reach, 0), best[:, k] + reach + 1
        left_over[
            (np.arange(salience.shape[1]) >= lo[:, None])
            & (np.arange(salience.shape[1]) < hi[:, None])
        ] = 0.0
    value = np.take_along_axis(salience, best, axis=1)
    cents = pitch_axis()[best] + _refine(spec, best)
    reference = np.percentile(salience.max(axis=1), 95)
    discounted = value
    for ratio in GHOST_RATIOS:
        below = np.abs(cents[:, :, None] - 1200 * np.log2(ratio) - cents[:, None, :])
        has_below = (below < GHOST_TOLERANCE_CENTS).any(axis=2)
        ghost = np.minimum(_ghost(wide, best, ratio), value)
        discounted = np.where(has_below, discounted - GHOST * ghost, discounted)
    strength = np.maximum(discounted, 0.0) / reference if reference > 0 else np.zeros_like(value)
    return np.where(strength > 0, cents, np.nan), strength


def _harmonic_bins(best: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """Log-axis bins [T, K, R] of candidate pitches `best` [T, K] times `ratios` [R]."""
    offsets = np.round(1200 * np.log2(ratios) / BIN_CENTS).astype(np.int64)
    return _first_bin() + best[:, :, None] + offsets


def _refine(spec: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Cents to add to each candidate [T, K]: the peak of the unwidened harmonic sum within
    +-(TOLERANCE_BINS + 1) bins, parabolically interpolated."""
    reach = TOLERANCE_BINS + 1
    shifts = np.arange(-reach - 1, reach + 2)  # one more each side for the parabola
    harmonics = np.arange(1, N_HARMONICS + 1)
    where = _harmonic_bins(best, harmonics)[..., None] + shifts  # [T, K, H, D]
    summed = np.einsum("tkhd,h->tkd", _gather(spec, where), DECAY ** (harmonics - 1.0))
    peak = np.argmax(summed[..., 1:-1], axis=2) + 1  # [T, K] index into shifts
    left, mid, right = (
        np.take_along_axis(summed, (peak + d)[..., None], 2)[..., 0] for d in (-1, 0, 1)
    )
    curvature = left - 2 * mid + right
    offset = np.where(curvature < 0, 0.5 * (left - right) / np.minimum(curvature, -1e-12), 0.0)
    return (shifts[peak] + np.clip(offset, -0.5, 0.5)) * BIN_CENTS


def _ghost(wide: np.ndarray, best: np.ndarray, ratio: int) -> np.ndarray:
    """What a note at each candidate's pitch / `ratio` with a smooth spectrum would put on
    the candidate's harmonics [T, K]: harmonic h of p is harmonic ratio * h of p / ratio,
    and a smooth spectrum puts there about the smaller of its neighbours ratio * h -+ 1
    (Klapuri's spectral smoothness)."""
    harmonics = np.arange(1, N_HARMONICS + 1)
    below = _gather(wide, _harmonic_bins(best, (ratio * harmonics - 1) / ratio))
    above = _gather(wide, _harmonic_bins(best, (ratio * harmonics + 1) / ratio))
    mix = np.minimum(below, above)
    return mix @ DECAY ** (harmonics - 1.0)  # [T, K]
