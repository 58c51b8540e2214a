"""Separation metrics: SI-SDR (whole signal and on frames) and BSSEval v4.

Layout at this boundary is NumPy float, one source as [channels, samples] and several as
[sources, channels, samples]. museval wants [sources, samples, channels]; the conversion
happens here and nowhere else (`sources_to_museval` / `sources_from_museval` for dicts).

BSSEval v4 has two back ends giving the same numbers: `gensep.bsseval` ("fast", the default:
equal to museval to rounding, ~15x faster on a 30 s 44.1 kHz stereo 4-source track and ~6x
on 16 kHz mono, see bench/bench_scorer.py) and museval itself ("museval"), imported inside
the function that needs it: importing it costs about a second.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gensep.bsseval import bss_eval_v4
from gensep.errors import AudioError

METRIC_NAMES = ("SDR", "SIR", "SAR", "ISR")

# Centred reference energy at or below this fraction of the raw energy is silence: float64
# rounding leaves ~1e-31, a real signal 100 dB under its DC offset has 1e-10.
_RESIDUE = 1e-20

# A BSSEval back end: (references, estimates) as [sources, samples, channels] float64,
# window and hop in samples -> {metric name: [sources, frames]}. `bss_eval(scorer=name)`
# picks one from SCORERS (defined below the back ends).
Scorer = Callable[[np.ndarray, np.ndarray, int, int], dict[str, np.ndarray]]


def si_sdr(
    estimate: np.ndarray,
    reference: np.ndarray,
    *,
    zero_mean: bool = True,
    eps: float = 1e-12,
) -> float | np.ndarray:
    """Scale-invariant signal-to-distortion ratio (dB) over the last axis, batched over the rest.

    With `s` the reference and `ŝ` the estimate: alpha = <ŝ, s> / ||s||², target = alpha s,
    noise = ŝ - target, SI-SDR = 10 log10(||target||² / ||noise||²).

    - `zero_mean=True`: Le Roux et al. 2019, "SDR - half-baked or well done?": the mean of
      both signals is removed first, so a DC offset costs nothing.
    - `zero_mean=False`: the variant of the UMSS evaluation code (Schulze-Forster et al.),
      which skips the mean removal, so a DC offset in the estimate counts as noise.

    Only the last axis is reduced. For multichannel audio use `si_sdr_multichannel`, which
    scores all channels of a source as one signal.

    Args:
      estimate: Estimated signal. Shape [..., samples].
      reference: Reference signal, same shape as `estimate`.
      zero_mean: Remove the mean over the last axis first (see above).
      eps: Guard added to the noise energy (amplitude² · samples) and to the energy ratio:
        SI-SDR = 10 log10(||target||² / (||noise||² + eps) + eps), so a perfect estimate gives
        a large finite value instead of +inf and a silent or orthogonal estimate gives
        10 log10(eps) (-120 dB by default) instead of -inf or NaN. eps=0 gives the bare definition.

    Returns:
      SI-SDR in dB, a float for 1-D inputs, else an array of shape [...]. NaN where the
      reference has zero energy (after mean removal when `zero_mean`, up to float rounding,
      so a constant reference is NaN): the ratio is undefined there, and the caller decides
      whether to drop such items.
    """
    estimate = np.asarray(estimate, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if estimate.shape != reference.shape:
        raise AudioError(
            f"si_sdr: estimate shape {estimate.shape} != reference shape {reference.shape}; "
            "trim or pad both to the same [..., samples] first"
        )
    raw_energy = np.sum(reference**2, axis=-1)
    if zero_mean:
        estimate = estimate - estimate.mean(axis=-1, keepdims=True)
        reference = reference - reference.mean(axis=-1, keepdims=True)
    return _si_sdr_centred(estimate, reference, raw_energy, eps)


def si_sdr_multichannel(
    estimate: np.ndarray,
    reference: np.ndarray,
    *,
    zero_mean: bool = True,
    eps: float = 1e-12,
) -> float | np.ndarray:
    """SI-SDR (dB) of multichannel audio, all channels of a source scored as one signal.

    The last two axes [channels, samples] are flattened into one, so one scale factor is
    fitted for all channels together (a level change shared by the channels is forgiven, a
    change of the stereo balance is not). With `zero_mean`, each channel's own mean is removed
    before flattening, since a DC offset is a per-channel property.

    Args:
      estimate: Estimated audio. Shape [..., channels, samples].
      reference: Reference audio, same shape as `estimate`.
      zero_mean: As in `si_sdr` (Le Roux et al. when True, the UMSS variant when False).
      eps: As in `si_sdr`.

    Returns:
      SI-SDR in dB, a float for [channels, samples] inputs, else shape [...]. NaN where the
      reference is silent on every channel.
    """
    estimate = np.asarray(estimate, dtype=np.float64)
    reference = np.asarray(reference, dtype=np.float64)
    if estimate.shape != reference.shape or estimate.ndim < 2:
        raise AudioError(
            f"si_sdr_multichannel: estimate shape {estimate.shape} and reference shape "
            f"{reference.shape} must be equal and at least 2-D [..., channels, samples]; "
            "use si_sdr for 1-D signals"
        )
    raw_energy = np.sum(reference**2, axis=(-2, -1))
    if zero_mean:
        estimate = estimate - estimate.mean(axis=-1, keepdims=True)
        reference = reference - reference.mean(axis=-1, keepdims=True)
    flat_shape = (*estimate.shape[:-2], -1)
    return _si_sdr_centred(
        estimate.reshape(flat_shape), reference.reshape(flat_shape), raw_energy, eps
    )


def framewise_si_sdr(
    estimates: np.ndarray,
    references: np.ndarray,
    sample_rate: int,
    *,
    frame_seconds: float = 1.0,
    zero_mean: bool = False,
    min_reference_energy: float = 0.0,
    eps: float = 1e-12,
) -> np.ndarray:
    """SI-SDR (dB) on non-overlapping frames: the UMSS evaluation protocol (1 s frames).

    Frames are round(frame_seconds * sample_rate) samples long; the trailing partial frame
    is dropped. Within a frame the channels are scored together (`si_sdr_multichannel`).

    Args:
      estimates: Estimated sources. Shape [sources, channels, samples], or [sources, samples]
        for mono.
      references: Reference sources, same shape as `estimates`.
      sample_rate: Sample rate (Hz).
      frame_seconds: Frame length (s).
      zero_mean: As in `si_sdr`; False (no mean removal) matches the UMSS code.
      min_reference_energy: A frame whose reference energy (sum of squares over its channels
        and samples, before any mean removal) is <= this is NaN. 0.0 marks only exactly
        silent frames, where SI-SDR is undefined.
      eps: As in `si_sdr`.

    Returns:
      SI-SDR per source and frame (dB), float64, shape [sources, frames]. Aggregate with
      np.nanmedian / np.nanmean to skip the silent frames.
    """
    estimates = _as_sources_channels_samples(estimates, "estimates")
    references = _as_sources_channels_samples(references, "references")
    _check_same_shape(estimates, references)
    frame_length = _seconds_to_samples(frame_seconds, sample_rate, "frame_seconds")
    n_sources, n_channels, n_samples = references.shape
    n_frames = n_samples // frame_length
    if n_frames == 0:
        raise AudioError(
            f"framewise_si_sdr: {n_samples} samples are shorter than one frame of "
            f"{frame_length} samples ({frame_seconds} s at {sample_rate} Hz); "
            "pass a shorter frame_seconds"
        )
    shape = (n_sources, n_channels, n_frames, frame_length)
    est = estimates[..., : n_frames * frame_length].reshape(shape).swapaxes(1, 2)
    ref = references[..., : n_frames * frame_length].reshape(shape).swapaxes(1, 2)
    # est, ref: [sources, frames, channels, frame_length]
    scores = si_sdr_multichannel(est, ref, zero_mean=zero_mean, eps=eps)
    quiet = np.sum(ref**2, axis=(-2, -1)) <= min_reference_energy
    return np.where(quiet, np.nan, scores)


def bss_eval(
    references: np.ndarray,
    estimates: np.ndarray,
    sample_rate: int,
    *,
    window_seconds: float = 1.0,
    hop_seconds: float = 1.0,
    scorer: str = "fast",
) -> dict[str, np.ndarray]:
    """BSSEval v4 (SDR, SIR, SAR, ISR in dB per source and frame), museval's definition.

    Both back ends compute `museval.evaluate(..., mode="v4", padding=True)`: "fast"
    (`gensep.bsseval.bss_eval_v4`, the default) reimplements it with batched FFTs and one
    Cholesky solve and agrees with it to rounding (1e-7 dB or better on signals with a noise
    floor); "museval" calls museval. Where the references are nearly rank deficient over the
    512 filter lags (steep low-pass, pure tones without noise) the filters are ill-determined
    and both move by rounding, museval with its BLAS thread count; the fast scorer warns then.

    Windows and hops are converted to round(seconds * sample_rate) samples here: museval's
    own default is 44100 samples whatever the rate, which is wrong for anything but 44.1 kHz.
    Frames follow museval: floor((samples - window) / hop) + 1 full windows (the trailing
    partial window dropped), or one window over everything when the signal is shorter.

    museval traps, kept in mind when reading results:
      - a frame where any reference or any estimate is exactly silent (museval tests the
        sum over channels, so channels that cancel exactly count as silent) is NaN for
        every source, not only the silent one; aggregate with np.nanmedian.
      - fewer than two sources is refused here: SIR needs an interfering source, and
        museval's track-level evaluation silently returns no scores in that case.

    Args:
      references: True sources. Shape [sources, channels, samples], or [sources, samples] for
        mono. Note the order (references first), which follows museval, not `si_sdr`.
      estimates: Estimated sources, same shape as `references`.
      sample_rate: Sample rate (Hz).
      window_seconds: Window length (s).
      hop_seconds: Hop between windows (s).
      scorer: Back end, "fast" or "museval" (see above).

    Returns:
      {"SDR", "SIR", "SAR", "ISR"}: each float64 of shape [sources, frames], dB.

    Raises:
      ValueError: an unknown `scorer`.
      AudioError (a ValueError): shapes differ, fewer than 2 sources, non-finite values, or
        a source that is silent throughout (museval would fail deep inside).
    """
    if scorer not in SCORERS:
        raise ValueError(
            f"bss_eval: unknown scorer {scorer!r}; pass one of {sorted(SCORERS)} "
            '("fast" is gensep.bsseval, "museval" calls museval.evaluate)'
        )
    references = _as_sources_channels_samples(references, "references")
    estimates = _as_sources_channels_samples(estimates, "estimates")
    _check_same_shape(estimates, references)
    if references.shape[0] < 2:
        raise AudioError(
            f"bss_eval: got {references.shape[0]} source(s) of shape {references.shape}; "
            "BSSEval needs at least 2 (SIR measures leakage from the others, and museval's "
            "track evaluation returns no scores for one). Add the residual (mixture minus the "
            "source) as a second source"
        )
    for name, audio in (("references", references), ("estimates", estimates)):
        _check_finite_and_not_silent(audio, name)
    window = _seconds_to_samples(window_seconds, sample_rate, "window_seconds")
    hop = _seconds_to_samples(hop_seconds, sample_rate, "hop_seconds")
    scores = SCORERS[scorer](references.swapaxes(1, 2), estimates.swapaxes(1, 2), window, hop)
    return {name: np.asarray(scores[name], dtype=np.float64) for name in METRIC_NAMES}


def sources_to_museval(sources: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Convert {name: [channels, samples]} (gensep) to {name: [samples, channels]} (musdb).

    Args:
      sources: Audio per source name, each of shape [channels, samples].

    Returns:
      The same names, each a transposed view of shape [samples, channels] (no copy).
    """
    return {
        name: _transpose_2d(audio, name, "[channels, samples]") for name, audio in sources.items()
    }


def sources_from_museval(sources: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Convert {name: [samples, channels]} (musdb) to {name: [channels, samples]} (gensep).

    Args:
      sources: Audio per source name, each of shape [samples, channels].

    Returns:
      The same names, each a transposed view of shape [channels, samples] (no copy).
    """
    return {
        name: _transpose_2d(audio, name, "[samples, channels]") for name, audio in sources.items()
    }


def _museval_scores(
    references: np.ndarray, estimates: np.ndarray, window: int, hop: int
) -> dict[str, np.ndarray]:
    """The museval back end (`Scorer`); arrays [sources, samples, channels] float64."""
    import museval  # slow import, only paid by callers of bss_eval

    sdr, isr, sir, sar = museval.evaluate(
        references, estimates, win=window, hop=hop, mode="v4", padding=True
    )
    return {"SDR": sdr, "ISR": isr, "SIR": sir, "SAR": sar}


SCORERS: dict[str, Scorer] = {"fast": bss_eval_v4, "museval": _museval_scores}


def _si_sdr_centred(
    estimate: np.ndarray, reference: np.ndarray, raw_energy: np.ndarray, eps: float
) -> float | np.ndarray:
    """SI-SDR over the last axis of signals already centred (or not) by the caller.

    `raw_energy` is the reference energy before centring: a constant reference such as
    0.1 leaves rounding residue (~1e-31 of its energy) after mean removal rather than an
    exact zero, and must still count as silent.
    """
    ref_energy = np.sum(reference**2, axis=-1)
    silent = ref_energy <= _RESIDUE * raw_energy
    # Silent references would divide by zero; give them energy 1 and overwrite with NaN after,
    # so no warning is raised per item of a large batch.
    alpha = np.sum(estimate * reference, axis=-1) / np.where(silent, 1.0, ref_energy)
    target = alpha[..., None] * reference
    noise = estimate - target
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.sum(target**2, axis=-1) / (np.sum(noise**2, axis=-1) + eps)
        out = 10.0 * np.log10(ratio + eps)
    out = np.where(silent, np.nan, out)
    return float(out) if out.ndim == 0 else out


def _as_sources_channels_samples(audio: np.ndarray, name: str) -> np.ndarray:
    audio = np.asarray(audio, dtype=np.float64)
    if audio.ndim == 2:
        return audio[:, None, :]  # mono [sources, samples] -> [sources, 1, samples]
    if audio.ndim != 3:
        raise AudioError(
            f"{name}: shape {audio.shape} is not [sources, channels, samples] or "
            "[sources, samples]; stack the sources on the first axis"
        )
    return audio


def _check_same_shape(estimates: np.ndarray, references: np.ndarray) -> None:
    if estimates.shape != references.shape:
        raise AudioError(
            f"estimates shape {estimates.shape} != references shape {references.shape} "
            "([sources, channels, samples]); trim or pad the estimates to the references"
        )


def _check_finite_and_not_silent(audio: np.ndarray, name: str) -> None:
    for index, source in enumerate(audio):
        if not np.all(np.isfinite(source)):
            raise AudioError(
                f"{name}[{index}] contains NaN or inf; check the model output or the file it "
                "was read from"
            )
        # The same test as museval's: channel sum zero at every sample.
        if not np.any(source.sum(axis=0)):
            raise AudioError(
                f"{name}[{index}] is all zero (or its channels cancel exactly), which BSSEval "
                "cannot score; drop that source from both references and estimates, or add "
                "tiny noise to it if it must stay"
            )


def _seconds_to_samples(seconds: float, sample_rate: int, name: str) -> int:
    samples = round(seconds * sample_rate)
    if samples < 1:
        raise AudioError(
            f"{name}={seconds} at {sample_rate} Hz is {samples} samples; pass a positive "
            "duration of at least one sample"
        )
    return samples


def _transpose_2d(audio: np.ndarray, name: str, layout: str) -> np.ndarray:
    audio = np.asarray(audio)
    if audio.ndim != 2:
        raise AudioError(f"source {name!r}: shape {audio.shape} is not {layout}")
    return audio.T
