"""Ideal binary mask: every time-frequency bin goes whole to the loudest true source."""

from __future__ import annotations

import numpy as np

from gensep.separation.common import apply_masks, stft, stft_settings


def separate(
    mixture: np.ndarray,
    sample_rate: int,
    *,
    references: dict[str, np.ndarray],
    n_fft: int | None = None,
    hop: int | None = None,
) -> dict[str, np.ndarray]:
    """Mask each channel with 1 where a source's true magnitude is the largest, else 0.

    Winner-take-all rather than a per-source threshold, so the masks sum to one and the
    estimates to the mixture; ties go to the first source.

    Args: as `oracle_irm.separate`, without the mask power.
    """
    n_fft, hop = stft_settings(sample_rate, n_fft, hop)
    names = list(references)
    mags = np.abs(stft(np.stack([references[n] for n in names]), n_fft, hop))  # [S, C, T, F]
    winner = np.argmax(mags, axis=0)  # [C, T, F]
    masks = (np.arange(len(names))[:, None, None, None] == winner[None]).astype(np.float32)
    return apply_masks(mixture, masks, names, n_fft, hop)
