"""Ideal ratio mask: the ceiling of every mask-based method (needs the true sources)."""

from __future__ import annotations

import numpy as np

from gensep.separation.common import apply_masks, ratio_masks, stft, stft_settings


def separate(
    mixture: np.ndarray,
    sample_rate: int,
    *,
    references: dict[str, np.ndarray],
    mask_power: float = 1.0,
    n_fft: int | None = None,
    hop: int | None = None,
) -> dict[str, np.ndarray]:
    """Mask each channel of the mixture with |S_j|^p / sum_k |S_k|^p of the true sources.

    The masks are per channel (each channel's own reference STFTs), the oracle's best case.

    Args:
      mixture: [channels, samples].
      sample_rate: Hz; picks the STFT when `n_fft`/`hop` are None (`default_stft`).
      references: {source: [channels, samples]}, the true sources.
      mask_power: p: 1 gives magnitude ratios, 2 power (Wiener-like) ratios.
      n_fft, hop: STFT size and hop (samples); a model's own STFT to compare at it.
    """
    n_fft, hop = stft_settings(sample_rate, n_fft, hop)
    names = list(references)
    mags = np.abs(stft(np.stack([references[n] for n in names]), n_fft, hop))  # [S, C, T, F]
    return apply_masks(
        mixture, ratio_masks(mags.astype(np.float64) ** mask_power), names, n_fft, hop
    )
