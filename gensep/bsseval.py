"""BSSEval v4 images metrics (SDR, SIR, SAR, ISR per source and frame): museval's, faster.

`museval.evaluate(..., mode="v4")` fits one set of 512-tap distortion filters per estimate on
the whole signal, then scores every frame with them. Same arithmetic here, loops taken out:

1. The lagged correlations (museval: one full-length FFT per pair of channels) come from a
   block FFT of all channels at once; the cross-spectra are summed over blocks before one
   inverse FFT, so only the 2 * 512 - 1 lags needed are paid for.
2. The Gram matrix G (channels x lags, squared) is built once and solved by Cholesky for all
   estimates at once, with museval's regulariser: (G + eps I) C = D, eps = float64 epsilon.
3. Each frame alone is convolved with the filters (so is museval's: a 511-sample tail, no
   samples from the neighbouring frames), all frames and channels in batched FFTs and
   matrix products; the energies are read off the spectra (Parseval).

Agreement with museval: 1e-7 dB or better in the tests and benchmark (signals with a noise
floor). Where the references are nearly rank deficient over 512 lags (steep low-pass, pure
tones without noise) the filters are ill-determined and both implementations, museval with
its BLAS thread count, move by rounding: a RuntimeWarning says so.

Layout: museval's, [sources, samples, channels] float64: a `gensep.metrics.Scorer`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import scipy.fft
import scipy.linalg
from numpy.lib.stride_tricks import sliding_window_view

FILTER_LENGTH = 512  # museval's distortion filter length (taps)

# Batch sizes, tuned on 2 cores: small reused buffers that stay in cache beat big batches
# (and fresh memory costs page faults). Correlation stage: FFT size (blocks of 8192 - 2 * 511
# samples) and blocks per batch. Scoring stage: complex bins per [rows, frames, bins] buffer
# (~3 MB: one 1 s frame of 4 stereo sources at 44.1 kHz).
_CORRELATION_FFT = 2**13
_BLOCKS_PER_BATCH = 8
_SPECTRUM_BUDGET = 200_000
# Above this `_amplification` of the filter solve, results (museval's too) move by ~0.01 dB
# with rounding. Measured on steeply low-passed noise under a white floor, ours vs museval:
# 6e-7 dB at 6e6, 6e-4 dB at 3e8, 4e-2 dB at 2e10; music-like choir stems: ~4e3.
_AMPLIFICATION_WARNING = 1e9


def bss_eval_v4(
    references: np.ndarray,
    estimates: np.ndarray,
    window: int,
    hop: int,
    *,
    filter_length: int = FILTER_LENGTH,
) -> dict[str, np.ndarray]:
    """BSSEval v4 images metrics, equal to `museval.evaluate(..., mode="v4", padding=True)`.

    Frames follow museval's `Framing`: floor((samples - window) / hop) + 1 windows of `window`
    samples starting every `hop` samples (a trailing partial window is dropped), or a single
    frame over the whole signal when `window >= samples`.

    Args:
      references: True sources. Shape [sources, samples, channels], float64. No source may be
        silent throughout (museval refuses that; `gensep.metrics.bss_eval` checks it).
      estimates: Estimated sources, same shape as `references`.
      window: Frame length (samples).
      hop: Hop between frame starts (samples).
      filter_length: Distortion filter length (taps); museval always uses 512.

    Returns:
      {"SDR", "SIR", "SAR", "ISR"}: float64 of shape [sources, frames], dB. A frame where any
      reference or estimate is exactly silent (channel sum zero at every sample) is NaN for
      every source, as in museval; a zero denominator gives +inf, as in museval.
    """
    references = np.asarray(references, dtype=np.float64)
    estimates = np.asarray(estimates, dtype=np.float64)
    if references.shape != estimates.shape or references.ndim != 3:
        raise ValueError(
            f"bss_eval_v4: references {references.shape} and estimates {estimates.shape} must "
            "both be [sources, samples, channels]; pad or trim the estimates to the references"
        )
    n_sources, n_samples, n_channels = references.shape
    # Channel-major rows, row index = source * channels + channel: museval's filter layout.
    ref_rows = references.transpose(0, 2, 1).reshape(n_sources * n_channels, n_samples)
    est_rows = estimates.transpose(0, 2, 1).reshape(n_sources * n_channels, n_samples)

    filters_all, filters_own, amplification = _distortion_filters(
        ref_rows, est_rows, n_sources, filter_length
    )
    if amplification > _AMPLIFICATION_WARNING:
        warnings.warn(
            f"bss_eval_v4: the distortion filters are ill-determined (amplification "
            f"{amplification:.1e} > {_AMPLIFICATION_WARNING:.0e}): the references are nearly "
            f"rank deficient over {filter_length} lags, so SIR, ISR and SAR depend on "
            "floating-point rounding, museval's too (by 0.01 dB or more; its results change "
            "with the BLAS thread count). Typical cause: references with spectral nulls "
            "(steep low-pass, pure tones without noise); compare such scores only coarsely",
            RuntimeWarning,
            stacklevel=2,
        )
    frame_length = min(window, n_samples)
    n_frames = (n_samples - window) // hop + 1 if window < n_samples else 1

    def frames(signals: np.ndarray) -> np.ndarray:
        """[rows, samples] -> view [rows, frames, frame_length], museval's framing."""
        return sliding_window_view(signals, frame_length, axis=1)[:, ::hop][:, :n_frames]

    energies = _frame_energies(frames(ref_rows), frames(est_rows), filters_all, filters_own)
    # museval's silence test: the channel sum is zero throughout the frame (channels that
    # cancel count as silent). One silent source makes the frame NaN for every source.
    sums = [_channel_sum(x) for x in (references, estimates)]  # [sources, samples] each
    silent = np.any([~np.any(frames(total != 0), axis=2) for total in sums], axis=(0, 1))
    scores = {
        "SDR": _db(energies["target"], energies["distortion"]),
        "ISR": _db(energies["target"], energies["spatial"]),
        "SIR": _db(energies["own"], energies["interference"]),
        "SAR": _db(energies["all"], energies["artifacts"]),
    }
    return {name: np.where(silent, np.nan, value) for name, value in scores.items()}


def _distortion_filters(
    ref_rows: np.ndarray, est_rows: np.ndarray, n_sources: int, taps: int
) -> tuple[np.ndarray, np.ndarray, float]:
    """Least-squares filters from the delayed references to each estimate channel.

    Returns:
      filters_all: Onto all references. Shape [source * channel in, taps, source * channel
        out], so estimate channel e is sum over rows a of filters_all[a, :, e] * ref_rows[a].
      filters_own: Onto each estimate's own reference only. Shape [sources, channel in,
        taps, channel out].
      amplification: The largest `_amplification` over all the solves.
    """
    n_rows = ref_rows.shape[0]
    n_channels = n_rows // n_sources
    corr = _lagged_correlations(ref_rows, np.concatenate([ref_rows, est_rows]), taps)
    # D[(a, p), e] = <x_a delayed by p, estimate channel e> = corr[a, e, p + taps - 1].
    cross = corr[:, n_rows:, taps - 1 :].transpose(0, 2, 1).reshape(n_rows * taps, n_rows)
    own, amplification = [], 0.0
    for j in range(n_sources):
        rows = slice(j * n_channels, (j + 1) * n_channels)
        rhs = cross[j * n_channels * taps : (j + 1) * n_channels * taps, rows]
        solution, norm = _solve_gram(lambda rows=rows: _gram(corr[rows, rows], taps), rhs)
        own.append(solution.reshape(n_channels, taps, n_channels))
        amplification = max(amplification, _amplification(solution, rhs, norm))
    solution, norm = _solve_gram(lambda: _gram(corr[:, :n_rows], taps), cross)
    amplification = max(amplification, _amplification(solution, cross, norm))
    return solution.reshape(n_rows, taps, n_rows), np.stack(own), amplification


def _gram(corr: np.ndarray, taps: int) -> np.ndarray:
    """museval's G + eps I from correlations corr[a, b, k + taps - 1] = sum_n x_a[n] x_b[n + k].

    G[(a, p), (b, q)] = <x_a delayed by p, x_b delayed by q> = corr[a, b, p - q + taps - 1];
    eps is float64 machine epsilon, museval's regulariser. Shape [rows * taps, rows * taps].
    """
    n_rows = corr.shape[0]
    lag = np.arange(taps)[:, None] - np.arange(taps)[None, :] + taps - 1
    rows = np.arange(n_rows)
    gram = corr[rows[:, None, None, None], rows[None, None, :, None], lag[None, :, None, :]]
    gram = gram.reshape(n_rows * taps, n_rows * taps)  # [(row, lag), (row, lag)]
    gram.reshape(-1)[:: n_rows * taps + 1] += np.finfo(np.float64).eps
    return gram


def _solve_gram(build: Callable[[], np.ndarray], rhs: np.ndarray) -> tuple[np.ndarray, float]:
    """Solve (G + eps I) C = D for G + eps I = build(), [n, n]; rhs [n, m] -> ([n, m], ||G||₁).

    Cholesky in place first (G is a Gram matrix, symmetric positive semidefinite: half the
    work of museval's LU and no copy); when rounding leaves it indefinite, museval's path on
    a fresh G: LU, then least squares if LU finds it exactly singular (museval's drops the
    eps there, a difference of 2e-16 on the diagonal).
    """
    gram = build()
    # One band of rows at a time, so that no second matrix-sized temporary is made.
    norm = max(np.abs(gram[i : i + 256]).sum(axis=1).max() for i in range(0, len(gram), 256))
    try:
        # gram.T is Fortran-ordered, so LAPACK factors it in place; both triangles are G's.
        factor = scipy.linalg.cho_factor(gram.T, overwrite_a=True, check_finite=False)
        return scipy.linalg.cho_solve(factor, rhs, check_finite=False), float(norm)
    except np.linalg.LinAlgError:
        gram = build()
    try:
        return np.linalg.solve(gram, rhs), float(norm)
    except np.linalg.LinAlgError:
        return np.linalg.lstsq(gram, rhs, rcond=None)[0], float(norm)


def _amplification(solution: np.ndarray, rhs: np.ndarray, norm: float) -> float:
    """How far the filters reach into G's ill-determined directions: max over columns of
    ||c||² ||G||₁ / c'Gc (c'Gc = c'D). 1 to ~1e4 for well-posed references; ~cond(G) when c
    lies along G's weakest directions, where rounding decides c. Exact degeneracies (a
    silent channel, dual mono) stay low: museval and this module then agree to ~1e-13 dB.
    """
    energy = np.einsum("nm,nm->m", solution, rhs)
    size = np.einsum("nm,nm->m", solution, solution) * norm
    ratio = np.divide(size, energy, out=np.zeros_like(size), where=energy > 0)
    ratio[(energy <= 0) & (size > 0)] = np.inf
    return float(ratio.max())


def _lagged_correlations(x: np.ndarray, y: np.ndarray, taps: int) -> np.ndarray:
    """Linear cross-correlations at lags -(taps - 1) .. taps - 1, by block FFT.

    Each block of B samples of x is correlated circularly with the B + 2 (taps - 1) samples
    of y around it; with an FFT of at least that size no lag of interest wraps around, so
    the sum over blocks of the cross-spectra is the exact linear correlation of the whole
    signals. Buffers are allocated once and reused from batch to batch.

    Args:
      x: Signals, shape [rows_x, samples].
      y: Signals, shape [rows_y, samples].
      taps: Number of non-negative lags.

    Returns:
      corr[a, b, k + taps - 1] = sum_n x[a, n] y[b, n + k] (zero outside the signals),
      shape [rows_x, rows_y, 2 * taps - 1].
    """
    (n_x, n_samples), n_y = x.shape, y.shape[0]
    margin = taps - 1
    block = min(n_samples, _CORRELATION_FFT - 2 * margin)
    n_fft = scipy.fft.next_fast_len(block + 2 * margin, real=True)
    n_bins = n_fft // 2 + 1
    n_blocks = -(-n_samples // block)
    per_batch = min(n_blocks, _BLOCKS_PER_BATCH)
    x_buf = np.zeros((n_x, per_batch, n_fft))
    y_buf = np.zeros((n_y, per_batch, n_fft))
    x_spec = np.empty((n_x, per_batch, n_bins), dtype=np.complex128)
    y_spec = np.empty((n_y, per_batch, n_bins), dtype=np.complex128)
    cross = np.zeros((n_bins, n_x, n_y), dtype=np.complex128)
    for first in range(0, n_blocks, per_batch):
        for slot in range(per_batch):
            start = (first + slot) * block
            _copy_zero_padded(x, start, start + block, x_buf[:, slot])
            _copy_zero_padded(y, start - margin, start + block + margin, y_buf[:, slot])
        np.fft.rfft(x_buf, axis=-1, out=x_spec)
        np.fft.rfft(y_buf, axis=-1, out=y_spec)
        np.conjugate(x_spec, out=x_spec)
        # Sum over blocks of conj(X) Y: one small matrix product per frequency bin.
        cross += np.matmul(x_spec.transpose(2, 0, 1), y_spec.transpose(2, 1, 0))  # [F, X, Y]
    corr = np.fft.irfft(cross, n=n_fft, axis=0)[: 2 * margin + 1]  # [lags, X, Y]
    return corr.transpose(1, 2, 0)


def _copy_zero_padded(signals: np.ndarray, start: int, stop: int, out: np.ndarray) -> None:
    """out[:, :stop - start] = signals[:, start:stop], zero outside the signals and after.
    signals [rows, samples], out [rows, >= stop - start]."""
    lo, hi = max(start, 0), min(stop, signals.shape[1])
    if hi <= lo:  # a slot past the end of the signals, in the last batch
        out[:] = 0.0
        return
    out[:, : lo - start] = 0.0
    out[:, lo - start : hi - start] = signals[:, lo:hi]
    out[:, hi - start :] = 0.0


def _frame_energies(
    ref_frames: np.ndarray, est_frames: np.ndarray, filters_all: np.ndarray, own: np.ndarray
) -> dict[str, np.ndarray]:
    """Energies of museval's decomposition per source and frame, each [sources, frames].

    `ref_frames`, `est_frames`: [rows, frames, samples]; filters as `_distortion_filters`
    returns them (`own` is its filters_own).

    With s the reference frame, ŝ the estimate frame, P_own and P_all the frame filtered by
    the own / all filters (full convolution, length frame + taps - 1, ŝ and s zero-padded):
    target ||s||², distortion ||ŝ - s||², spatial ||P_own - s||², own ||P_own||²,
    interference ||P_all - P_own||², all ||P_all||², artifacts ||ŝ - P_all||²; each summed
    over channels. The filtered energies come from the spectra (Parseval), batched over
    frames in buffers reused from batch to batch.
    """
    (n_rows, n_frames, frame_length), taps = ref_frames.shape, filters_all.shape[1]
    n_sources, n_channels = own.shape[0], own.shape[1]
    n_fft = scipy.fft.next_fast_len(frame_length + taps - 1, real=True)
    n_bins = n_fft // 2 + 1
    # Parseval for a real signal from its half spectrum: bins 1 .. N/2 - 1 count twice.
    weight = np.full(n_bins, 2.0 / n_fft)
    weight[0] = 1.0 / n_fft
    if n_fft % 2 == 0:
        weight[-1] = 1.0 / n_fft
    # One product gives both projections: [all filters | own filters, block diagonal].
    filters = np.zeros((n_rows, taps, 2 * n_rows))
    filters[:, :, :n_rows] = filters_all
    for j in range(n_sources):
        rows = slice(j * n_channels, (j + 1) * n_channels)
        filters[rows, :, n_rows:][:, :, rows] = own[j]
    filters_f = np.fft.rfft(filters, n=n_fft, axis=1).transpose(1, 0, 2)  # [bins, in, 2 out]

    per_batch = min(n_frames, max(1, _SPECTRUM_BUDGET // (n_rows * n_bins)))
    buf = np.zeros((n_rows, per_batch, n_fft))  # frames, zero-padded for linear convolution
    ref_f = np.empty((n_rows, per_batch, n_bins), dtype=np.complex128)
    est_f = np.empty_like(ref_f)
    proj = np.empty((n_bins, per_batch, 2 * n_rows), dtype=np.complex128)
    scratch = np.empty((n_bins, per_batch, n_rows), dtype=np.complex128)
    ref_t, est_t = ref_f.transpose(2, 1, 0), est_f.transpose(2, 1, 0)  # [bins, frames, rows]
    proj_all, proj_own = proj[..., :n_rows], proj[..., n_rows:]

    def energy(spectrum: np.ndarray, minus: np.ndarray | None = None) -> np.ndarray:
        """||spectrum - minus||² per source and frame from [bins, frames, rows]; uses scratch."""
        if minus is None:
            np.copyto(scratch, spectrum)
        else:
            np.subtract(spectrum, minus, out=scratch)
        flat = scratch.view(np.float64)  # [bins, frames, rows * (re, im)]
        np.square(flat, out=flat)
        per_row = (weight @ flat.reshape(n_bins, -1)).reshape(per_batch, n_rows, 2).sum(axis=2)
        return per_source(per_row.T)

    def per_source(rows_frames: np.ndarray) -> np.ndarray:
        """[rows, frames] -> [sources, frames], summing a source's channels."""
        return rows_frames.reshape(n_sources, n_channels, -1).sum(axis=1)

    names = ("target", "distortion", "spatial", "own", "interference", "all", "artifacts")
    out = {name: np.empty((n_sources, n_frames)) for name in names}
    for first in range(0, n_frames, per_batch):
        count = min(per_batch, n_frames - first)
        frames = slice(first, first + count)
        ref, est = ref_frames[:, frames], est_frames[:, frames]  # [rows, frames, samples]
        signal = buf[:, :count, :frame_length]
        np.subtract(est, ref, out=signal)
        out["distortion"][:, frames] = per_source(np.einsum("rtn,rtn->rt", signal, signal))
        out["target"][:, frames] = per_source(np.einsum("rtn,rtn->rt", ref, ref))
        buf[:, count:] = 0.0  # a short last batch
        signal[...] = est
        np.fft.rfft(buf, axis=-1, out=est_f)
        signal[...] = ref
        np.fft.rfft(buf, axis=-1, out=ref_f)
        np.matmul(ref_t, filters_f, out=proj)
        batch = {
            "own": energy(proj_own),
            "all": energy(proj_all),
            "spatial": energy(proj_own, ref_t),
            "interference": energy(proj_all, proj_own),
            "artifacts": energy(est_t, proj_all),
        }
        for name, value in batch.items():
            out[name][:, frames] = value[:, :count]
    return out


def _channel_sum(sources: np.ndarray) -> np.ndarray:
    """np.sum(sources, axis=2), bit for bit (so "exactly zero" is museval's), [S, N, C] ->
    [S, N]. Up to 2 channels numpy's sum is x0 + x1, done here 5x faster than its strided
    reduction; from 3 on its order of additions is left to numpy itself."""
    if sources.shape[2] == 1:
        return sources[..., 0]
    if sources.shape[2] == 2:
        return sources[..., 0] + sources[..., 1]
    return np.sum(sources, axis=2)


def _db(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """10 log10(num / den), +inf where den == 0 (museval's `_safe_db`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = 10.0 * np.log10(numerator / np.where(denominator == 0, 1.0, denominator))
    return np.where(denominator == 0, np.inf, ratio)
