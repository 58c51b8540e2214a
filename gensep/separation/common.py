"""Shared parts of the mask-based methods: the STFT per rate, masking, the mid signal.

NumPy/librosa rather than `gensep.dsp`: these methods run once per track at whatever
length the track has, where a jitted transform would recompile for every new length.
`librosa.stft` is the transform `gensep.dsp.stft` is tested against, so both agree.
"""

from __future__ import annotations

import math

import librosa
import numpy as np

from gensep.errors import GensepError

# The fixed STFT of the oracle ceilings (issue: the ceiling must not move with model
# choices): 128 ms / 16 ms at 16 kHz, 93 ms / 23 ms at 44.1 kHz.
STFT_BY_RATE = {16000: (2048, 256), 44100: (4096, 1024), 48000: (4096, 1024)}


def default_stft(sample_rate: int) -> tuple[int, int]:
    """(n_fft, hop) for a rate: the table above, else the power of two nearest 100 ms, hop/4."""
    if sample_rate in STFT_BY_RATE:
        return STFT_BY_RATE[sample_rate]
    n_fft = 2 ** round(math.log2(0.1 * sample_rate))
    return n_fft, n_fft // 4


def stft_settings(sample_rate: int, n_fft: int | None, hop: int | None) -> tuple[int, int]:
    """(n_fft, hop) a method asked for, defaults filled in: `default_stft(sample_rate)`, and
    a hop of n_fft / 4 when only n_fft is given."""
    default_n_fft, default_hop = default_stft(sample_rate)
    n_fft = n_fft or default_n_fft
    return n_fft, hop or (default_hop if n_fft == default_n_fft else n_fft // 4)


def stft(audio: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Complex STFT, time-major like `gensep.dsp.stft`: [..., samples] -> [..., frames, bins]."""
    spec = librosa.stft(np.asarray(audio, dtype=np.float32), n_fft=n_fft, hop_length=hop)
    return np.swapaxes(spec, -1, -2)


def istft(spec: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Inverse of `stft`: [..., frames, bins] -> float32 [..., length]."""
    audio = librosa.istft(np.swapaxes(spec, -1, -2), n_fft=n_fft, hop_length=hop, length=length)
    return audio.astype(np.float32)


def mid(mixture: np.ndarray) -> np.ndarray:
    """The mean over channels: [channels, samples] -> [samples]."""
    return np.mean(mixture, axis=0)


def apply_masks(
    mixture: np.ndarray, masks: np.ndarray, names: list[str] | tuple[str, ...], n_fft: int, hop: int
) -> dict[str, np.ndarray]:
    """Mask the mixture's STFT and invert it, one estimate per source.

    Args:
      mixture: [channels, samples].
      masks: Real masks, [sources, frames, bins] (one mask for every channel, as computed
        on the mid signal) or [sources, channels, frames, bins] (one per channel).
      names: Source names, one per mask.
      n_fft, hop: The STFT the masks were computed on.

    Returns:
      {name: float32 [channels, samples]}.
    """
    spec = stft(mixture, n_fft, hop)  # [C, T, F]
    if masks.ndim == 3:
        masks = masks[:, None]  # [S, 1, T, F]
    audio = istft(masks * spec[None], n_fft, hop, mixture.shape[-1])  # [S, C, N]
    return {name: audio[i] for i, name in enumerate(names)}


def ratio_masks(powers: np.ndarray, eps: float = 1e-20) -> np.ndarray:
    """Masks P_j / sum_k P_k over the first axis; equal shares where all are ~0."""
    powers = np.maximum(powers, 0.0)
    total = powers.sum(axis=0, keepdims=True)
    silent = total <= eps
    return np.where(silent, 1.0 / powers.shape[0], powers / np.where(silent, 1.0, total))


def map_masks(
    masks: np.ndarray,
    frame_s: float,
    rate_m: int,
    n_frames_in: int,
    frame_s_in: float,
    n_fft_in: int,
    rate_in: int,
) -> np.ndarray:
    """Masks computed on a model's STFT grid, moved onto another rate's STFT grid.

    Linear interpolation in time (frame t of a centred STFT sits at t * hop / rate s) and
    in frequency (Hz), holding the model's top bin above its Nyquist frequency, then
    renormalised to sum to 1 over the sources, so the masked estimates still add up to
    the mixture. On the same grid (same rate, frames and bins) the masks come back as is.

    Args:
      masks: [S, ..., T_m, F_m] on the model grid, summing to 1 over axis 0.
      frame_s, rate_m: The model grid's hop (s) and rate (Hz); F_m = n_fft_m / 2 + 1.
      n_frames_in, frame_s_in, n_fft_in, rate_in: The target STFT's frame count, hop (s),
        size (samples) and rate (Hz).

    Returns:
      [S, ..., n_frames_in, n_fft_in // 2 + 1].
    """
    n_frames_m, n_bins_m = masks.shape[-2:]
    if (n_frames_m, n_bins_m) == (n_frames_in, n_fft_in // 2 + 1) and rate_m == rate_in:
        return masks
    t_in = np.arange(n_frames_in) * frame_s_in / frame_s  # positions on the model frames
    f_in = np.arange(n_fft_in // 2 + 1) * rate_in / n_fft_in  # Hz
    f_pos = np.minimum(f_in / (rate_m / 2) * (n_bins_m - 1), n_bins_m - 1)
    t_lo = np.clip(np.floor(t_in).astype(int), 0, n_frames_m - 1)
    t_hi = np.minimum(t_lo + 1, n_frames_m - 1)
    wt = np.clip(t_in - t_lo, 0, 1)[:, None]
    f_lo = np.floor(f_pos).astype(int)
    f_hi = np.minimum(f_lo + 1, n_bins_m - 1)
    wf = f_pos - f_lo
    rows = masks[..., t_lo, :] * (1 - wt) + masks[..., t_hi, :] * wt  # [S, ..., T_in, F_m]
    mapped = rows[..., f_lo] * (1 - wf) + rows[..., f_hi] * wf
    return mapped / np.maximum(mapped.sum(axis=0, keepdims=True), 1e-12)


def chunk_grid(
    chunk_seconds: float, overlap_seconds: float, rate_m: int, grid: int, sample_rate: int
) -> tuple[int, int, int, int]:
    """Chunk and overlap of a chunked model, rounded down to whole model frames.

    Args:
      chunk_seconds, overlap_seconds: What the caller asked for.
      rate_m, grid: The model's rate (Hz) and frame grid (samples at rate_m).
      sample_rate: The input's rate (Hz).

    Returns:
      (chunk_m, overlap_m) in model samples and (chunk_in, overlap_in) in input samples.

    Raises:
      GensepError: Unless 0 < overlap < chunk once both are on the grid.
    """
    chunk_m = round(chunk_seconds * rate_m) // grid * grid
    overlap_m = round(overlap_seconds * rate_m) // grid * grid
    if not 0 < overlap_m < chunk_m:
        raise GensepError(
            f"need 0 < overlap_seconds < chunk_seconds with both at least one model frame "
            f"({grid / rate_m * 1000:.0f} ms), got {overlap_seconds}, {chunk_seconds}"
        )
    scale = sample_rate / rate_m
    return chunk_m, overlap_m, round(chunk_m * scale), round(overlap_m * scale)
