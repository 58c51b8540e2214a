"""F0-informed harmonic soft masks: each source's expected power spectrum from its F0 alone.

For every source and STFT frame a comb is drawn: at each harmonic h·f0 below Nyquist the
power spectrum of the analysis window's main lobe, weighted by a fixed spectral rolloff.
The masks are the ratio of the combs (a Wiener filter whose source variances are the
combs), so a partial shared by two voices is split by their combs' ratio, and the masks
sum to one: the estimates sum to the mixture up to STFT reconstruction error.

Nothing is learnt or fitted and the mixture is only masked, never analysed: every default
below follows from the window or from voice acoustics, none was tuned on data.

- Lobe: the exact power response of the periodic Hann window `librosa.stft` uses,
  |W(d)|² with W(d) = sinc(d) / (1 - d²) for a partial d bins away (equal to the FFT of
  the window to 1e-10 from N = 512 up, see tests), cut at its first zeros, d = ±2. Not a
  Gaussian: the true shape costs the same and its zeros make the ±2-bin cut exact.
- Sweep: the STFT window spans `n_fft / hop` frames, over which vibrato moves a partial
  by many bins at high harmonics (30 cents of vibrato moves harmonic 10 of 400 Hz by
  ±9 bins at 16 kHz / 2048). Each frame's comb is therefore the average of the frame-wise
  combs under its window, weighted by the window's energy w²: the power spectrogram of a
  slowly swept partial is the lobe spread over the frequencies the window sees it at.
- Rolloff: partial amplitudes fall 6 dB/octave (glottal source -12 dB/oct, lip radiation
  +6 dB/oct; the slope `gensep.dsp.glottal_rolloff` uses), powers h^-2.
- Floor: a voiced source also owns power between its partials (side lobes, breath,
  F0 error), `floor` = 1e-3 of a first partial's peak: the Hann window's highest side lobe
  (-31.5 dB). An unvoiced source keeps `unvoiced_floor` = 1e-6 (-60 dB), so bins nobody
  voiced claims are split equally among all sources while in voiced frames the silent
  sources get almost nothing. Both floors follow the window-weighted voicing above.
- Harmonics: by default up to where the rolloff takes a partial under the floor (h = 33
  with the defaults) and below Nyquist; further partials would hardly move the masks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import scipy.ndimage

from gensep.data.track import f0_on_frames
from gensep.errors import GensepError
from gensep.separation.common import apply_masks, ratio_masks, stft_settings

# Half-width (bins) of the Hann main lobe: its first zeros.
LOBE_HALF_WIDTH = 2


class F0Error(GensepError, ValueError):
    """An `f0` track or f0_harmonic option that cannot be used (bad shape or values).

    A ValueError too, like the other value errors in `gensep.errors`, where it could move.
    """


def separate(
    mixture: np.ndarray,
    sample_rate: int,
    *,
    f0: Mapping[str, tuple[np.ndarray, np.ndarray]],
    n_fft: int | None = None,
    hop: int | None = None,
    n_harmonics: int | None = None,
    rolloff: float = 6.0,
    floor: float = 1e-3,
    unvoiced_floor: float = 1e-6,
    sweep: bool = True,
) -> dict[str, np.ndarray]:
    """Mask the mixture with one soft harmonic comb per source, drawn from its F0 track.

    Args:
      mixture: [channels, samples], float. Every channel gets the same masks (they depend
        on the F0s only, as a mask computed on the mid signal would).
      sample_rate: Hz; picks the STFT when `n_fft`/`hop` are None (`default_stft`).
      f0: {source: (times_s [n], hz [n])}, 0 Hz = unvoiced, times strictly increasing.
        A track that ends before the audio leaves the frames after its end unvoiced.
      n_fft, hop: STFT size and hop (samples); a periodic Hann window of `n_fft`.
      n_harmonics: Most partials per source; None: up to where the rolloff takes a
        partial's power under `floor` (all up to Nyquist when `rolloff` is 0).
      rolloff: Spectral slope of the partial amplitudes (dB per octave, >= 0).
      floor: Power a voiced source owns in every bin, relative to a partial's peak.
      unvoiced_floor: The same for an unvoiced source (> 0, so bins nobody claims are
        split equally).
      sweep: Spread each partial over the F0s the analysis window covers (see module).

    Returns:
      {source: float32 [channels, samples]} in the order of `f0`'s keys.

    Raises:
      F0Error: a malformed F0 track or option, naming the source and the fix.
    """
    tracks = check_f0(f0)
    n_fft, hop = stft_settings(sample_rate, n_fft, hop)
    bad_count = n_harmonics is not None and n_harmonics < 1
    if rolloff < 0 or not 0 < unvoiced_floor <= floor or bad_count:
        raise F0Error(
            f"rolloff={rolloff}, floor={floor}, unvoiced_floor={unvoiced_floor}, "
            f"n_harmonics={n_harmonics}: pass rolloff >= 0, 0 < unvoiced_floor <= floor "
            "and n_harmonics >= 1 (or None)"
        )
    if n_harmonics is None:
        n_harmonics = default_n_harmonics(rolloff, floor)
    n_frames = 1 + mixture.shape[-1] // hop  # librosa.stft with center=True
    frame_times = np.arange(n_frames) * hop / sample_rate
    powers = np.stack(
        [
            source_power(
                f0_on_frames(times, hz, frame_times),
                sample_rate,
                n_fft,
                hop,
                n_harmonics=n_harmonics,
                rolloff=rolloff,
                floor=floor,
                unvoiced_floor=unvoiced_floor,
                sweep=sweep,
            )
            for times, hz in tracks.values()
        ]
    )  # [S, T, F]
    return apply_masks(mixture, ratio_masks(powers), list(tracks), n_fft, hop)


def source_power(
    f0_frames: np.ndarray,
    sample_rate: int,
    n_fft: int,
    hop: int,
    *,
    n_harmonics: int,
    rolloff: float = 6.0,
    floor: float = 1e-3,
    unvoiced_floor: float = 1e-6,
    sweep: bool = True,
) -> np.ndarray:
    """One source's expected power spectrogram from its frame-wise F0 (see module docstring).

    Args:
      f0_frames: F0 (Hz) at the STFT frame centres, 0 = unvoiced. Shape [frames].
      sample_rate, n_fft, hop: The STFT (Hz, samples, samples).
      n_harmonics, rolloff, floor, unvoiced_floor, sweep: As in `separate`.

    Returns:
      Power relative to a first partial's peak, float64 [frames, n_fft // 2 + 1].
    """
    n_bins = n_fft // 2 + 1
    comb = harmonic_comb(f0_frames, sample_rate, n_fft, n_harmonics, rolloff)
    voiced = (f0_frames > 0).astype(np.float64)
    if sweep:
        kernel = window_energy_kernel(n_fft, hop)
        comb = scipy.ndimage.convolve1d(comb, kernel, axis=0, mode="constant")
        voiced = scipy.ndimage.convolve1d(voiced, kernel, mode="constant")
    share = unvoiced_floor + (floor - unvoiced_floor) * voiced  # [T]
    return comb + share[:, None] * np.ones(n_bins)


def harmonic_comb(
    f0_frames: np.ndarray, sample_rate: int, n_fft: int, n_harmonics: int, rolloff: float
) -> np.ndarray:
    """Sum over partials h·f0 < Nyquist of h^(-2 rolloff / 6.02) · hann_lobe(bin - h·f0 bins).

    Args:
      f0_frames: F0 (Hz), 0 = unvoiced. Shape [frames].
      sample_rate, n_fft: Hz and samples of the (Hann) STFT.
      n_harmonics: Most partials drawn per frame.
      rolloff: Amplitude slope (dB per octave).

    Returns:
      float64 [frames, n_fft // 2 + 1]; all zero in unvoiced frames.
    """
    n_frames, n_bins = f0_frames.shape[0], n_fft // 2 + 1
    h = np.arange(1, n_harmonics + 1, dtype=np.float64)
    centre = f0_frames[:, None] * h * (n_fft / sample_rate)  # [T, H] in bins
    keep = (f0_frames[:, None] > 0) & (centre < n_bins - 1)
    frame, harmonic = np.nonzero(keep)
    centre = centre[frame, harmonic]
    gain = 10.0 ** (-rolloff * np.log2(h[harmonic]) / 10.0)  # power, so /10
    # Bins within the lobe's ±2 half-width: floor(c) - 1 .. floor(c) + 2 (lobe 0 beyond).
    bins = np.floor(centre)[:, None] + np.arange(-1, LOBE_HALF_WIDTH + 1)  # [P, 4]
    weight = gain[:, None] * hann_lobe_power(bins - centre[:, None])
    inside = (bins >= 0) & (bins < n_bins)
    flat = (frame[:, None] * n_bins + bins.astype(np.int64))[inside]
    comb = np.bincount(flat, weight[inside], minlength=n_frames * n_bins)
    return comb.reshape(n_frames, n_bins)


def hann_lobe_power(offset: np.ndarray) -> np.ndarray:
    """|W(d)|² / |W(0)|² of a Hann window, main lobe only: 0 for |d| >= 2 bins.

    W(d) = sinc(d) / (1 - d²) is the large-N transform of the Hann window at d bins
    from the partial; at d = ±1 its limit is 1/2.
    """
    d = np.abs(np.asarray(offset, dtype=np.float64))
    near_one = np.abs(d - 1.0) < 1e-6
    amplitude = np.sinc(d) / np.where(near_one, 1.0, 1.0 - d**2)
    amplitude = np.where(near_one, 0.5, amplitude)
    return np.where(d < LOBE_HALF_WIDTH, amplitude**2, 0.0)


def window_energy_kernel(n_fft: int, hop: int) -> np.ndarray:
    """w²(k·hop) of the periodic Hann window for the frames it spans, summing to 1. [2K+1]."""
    reach = (n_fft // 2 - 1) // hop
    lag = np.arange(-reach, reach + 1) * hop
    kernel = np.cos(np.pi * lag / n_fft) ** 4  # Hann (cos²) squared, centred
    return kernel / kernel.sum()


def default_n_harmonics(rolloff: float, floor: float, limit: int = 1000) -> int:
    """Partials until the rolloff takes a partial's power under `floor` (`limit` if never)."""
    if rolloff <= 0:
        return limit
    return min(limit, math.ceil(floor ** (-6.0206 / (2.0 * rolloff))))


def check_f0(
    f0: Mapping[str, tuple[np.ndarray, np.ndarray]],
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The F0 option as {source: (times float64 [n], hz float64 [n])}, or an F0Error."""
    if not isinstance(f0, Mapping) or not f0:
        got = "empty" if isinstance(f0, Mapping) else f"a {type(f0).__name__}"
        raise F0Error(
            f"f0 is {got}: pass one track per source, {{name: (times_s, hz)}}, 0 Hz where unvoiced"
        )
    out = {}
    for name, track in f0.items():
        where = f"f0[{name!r}]"
        if not isinstance(track, tuple | list) or len(track) != 2:
            raise F0Error(f"{where} is not a (times_s, hz) pair: pass two 1-D arrays")
        times, hz = (np.asarray(a, dtype=np.float64) for a in track)
        if times.ndim != 1 or hz.ndim != 1 or times.shape != hz.shape or times.size == 0:
            raise F0Error(
                f"{where}: times shape {times.shape}, hz shape {hz.shape}; pass two 1-D "
                "arrays of the same non-zero length (one F0 value per time)"
            )
        if not np.all(np.isfinite(times)) or np.any(np.diff(times) <= 0):
            raise F0Error(
                f"{where}: times are not finite and strictly increasing; sort the track "
                "and drop repeated times"
            )
        if not np.all(np.isfinite(hz)) or np.any(hz < 0):
            raise F0Error(
                f"{where}: hz has NaN, inf or negative values; mark unvoiced frames "
                "with 0 Hz instead"
            )
        out[name] = (times, hz)
    return out
