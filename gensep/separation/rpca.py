"""Robust PCA separation (Huang, Chen, Smaragdis & Hasegawa-Johnson, ICASSP 2012).

The magnitude spectrogram D of the mixture is split as D = L + S, with L of low rank (the
accompaniment, which repeats) and S sparse (the voice, which varies), by principal component
pursuit: minimise ||L||_* + lambda ||S||_1 subject to D = L + S, with
lambda = k / sqrt(max(frames, bins)) (k = `lambda_scale`, 1 in the paper). It is solved by
the inexact augmented Lagrange multiplier method of Lin, Chen & Ma (2010) with their
constants (mu_0 = 1.25 / ||D||_2, rho = 1.5), stopped at ||D - L - S||_F / ||D||_F < `tol`.

Mask: the paper's binary mask, vocals where |S| > gain |L| (gain = `mask_gain`, 1 in the
paper), accompaniment elsewhere; `mask="soft"` gives S^2 / (S^2 + gain^2 L^2) instead. Either
way the two masks sum to one, so the estimates sum to the mixture. The masks are computed on
the mid signal and applied to every channel.

STFT: the power of two nearest 64 ms with a quarter hop (1024/256 at 16 kHz, the rate of
the paper's MIR-1K data; 2048/512 at 44.1 kHz). Cost: each ALM iteration is one singular
value thresholding of a [frames, bins] matrix. It runs through the eigendecomposition of
the bins x bins Gram matrix (cost independent of the rank, unlike a truncated SVD, which is
slow on noise-like input where the rank grows into the hundreds), and the magnitude is
averaged over groups of adjacent bins so that RPCA sees at most 513 columns: nothing
changes at 16 kHz; at 44.1 kHz pairs of 21.5 Hz bins become 43 Hz columns (harmonics of a
voice above ~90 Hz stay apart) and the masks are repeated back to full resolution
(`max_columns=None` keeps every bin, about 5x slower at 44.1 kHz). The iterates are
float32, the Gram matrix and its eigendecomposition float64. tol = 1e-4 (Lin et al. use
1e-7, out of float32's reach) stops after about 21 iterations; against tol = 1e-6 (about
33) it flips binary-mask bins holding 2e-4 of the mixture's energy on noise and 3e-5 on a
synthetic song.
"""

from __future__ import annotations

import math

import numpy as np

from gensep.errors import GensepError
from gensep.separation.common import apply_masks, mid, stft

STEMS = ("vocals", "accompaniment")
MAX_COLUMNS = 513  # a 1024-point STFT's bins; bounds the cost per iteration


def separate(
    mixture: np.ndarray,
    sample_rate: int,
    *,
    lambda_scale: float = 1.0,
    mask: str = "binary",
    mask_gain: float = 1.0,
    tol: float = 1e-4,
    max_iter: int = 100,
    max_columns: int | None = MAX_COLUMNS,
    n_fft: int | None = None,
    hop: int | None = None,
) -> dict[str, np.ndarray]:
    """Split the mixture into a sparse part (vocals) and a low-rank part (accompaniment).

    Args:
      mixture: float32 [channels, samples].
      sample_rate: Hz; sets the STFT (module docstring).
      lambda_scale: k in lambda = k / sqrt(max(frames, bins)); larger k puts less in the
        sparse (vocal) part.
      mask: "binary" (the paper's) or "soft" (module docstring).
      mask_gain: The gain on |L| in either mask; above 1 favours the accompaniment.
      tol: Relative residual ||D - L - S||_F / ||D||_F at which the ALM stops.
      max_iter: The most ALM iterations (each one Gram matrix, eigendecomposition and two
        matrix products).
      max_columns: Average adjacent bins so that RPCA sees at most this many columns (the
        cost per iteration grows with its square); None keeps every bin.
      n_fft, hop: STFT size and hop (samples) instead of the 64 ms default; hop defaults to
        n_fft // 4.

    Returns:
      {"vocals", "accompaniment"}: float32 [channels, samples] each, summing to the mixture
      up to STFT reconstruction error.
    """
    if mask not in ("binary", "soft"):
        raise GensepError(f"rpca: mask={mask!r}; use 'binary' (the paper's) or 'soft'")
    if not lambda_scale > 0 or not mask_gain > 0 or not tol > 0 or max_iter < 1:
        raise GensepError(
            f"rpca: lambda_scale={lambda_scale!r}, mask_gain={mask_gain!r}, tol={tol!r} must be "
            f"> 0 and max_iter={max_iter!r} >= 1"
        )
    if max_columns is not None and max_columns < 1:
        raise GensepError(f"rpca: max_columns={max_columns!r}; pass an integer >= 1 or None")
    n_fft = n_fft or 2 ** round(math.log2(0.064 * sample_rate))
    hop = hop or n_fft // 4
    mag = np.abs(stft(mid(mixture), n_fft, hop))  # [frames, bins]
    bins = mag.shape[1]
    group = 1 if max_columns is None else math.ceil(bins / max_columns)
    pad = (-bins) % group
    pooled = np.pad(mag, ((0, 0), (0, pad)), mode="edge")
    pooled = pooled.reshape(mag.shape[0], -1, group).mean(axis=2)  # [frames, columns]
    low_rank, sparse = robust_pca(
        pooled, lambda_scale / math.sqrt(max(pooled.shape)), tol, max_iter
    )
    sparse, low_rank = np.abs(sparse), mask_gain * np.abs(low_rank)
    if mask == "binary":
        vocals = (sparse > low_rank).astype(np.float32)
    else:
        power = sparse**2 + low_rank**2
        # 0 / 0 only where D is 0 there: nothing to split, give it to the accompaniment.
        vocals = np.where(power > 0, sparse**2 / np.where(power > 0, power, 1.0), 0.0)
    vocals = np.repeat(vocals, group, axis=1)[:, :bins]  # [frames, bins]
    return apply_masks(mixture, np.stack([vocals, 1.0 - vocals]), STEMS, n_fft, hop)


def robust_pca(
    data: np.ndarray, lam: float, tol: float = 1e-4, max_iter: int = 100
) -> tuple[np.ndarray, np.ndarray]:
    """Principal component pursuit by the inexact ALM method of Lin, Chen & Ma (2010).

    Args:
      data: D, a real matrix [m, n].
      lam: Weight of the sparse part's l1 norm.
      tol: Stop when ||D - L - S||_F / ||D||_F < tol.
      max_iter: Stop after this many iterations regardless.

    Returns:
      (L, S): the low-rank and the sparse part, float32 [m, n] each. Both zero for D = 0.
    """
    data = np.asarray(data, dtype=np.float32)
    norm_fro = float(np.linalg.norm(data))
    if norm_fro == 0.0:
        return np.zeros_like(data), np.zeros_like(data)
    norm_two = float(np.sqrt(np.linalg.eigvalsh(_gram(data))[-1]))
    dual = data / max(norm_two, float(np.abs(data).max()) / lam)
    mu, rho = 1.25 / norm_two, 1.5
    mu_max = mu * 1e7
    low_rank = np.zeros_like(data)
    sparse = np.zeros_like(data)
    for _ in range(max_iter):
        sparse = _shrink(data - low_rank + dual / mu, lam / mu)
        low_rank = _singular_value_threshold(data - sparse + dual / mu, 1.0 / mu)
        residual = data - low_rank - sparse
        dual += mu * residual
        mu = min(mu * rho, mu_max)
        if np.linalg.norm(residual) < tol * norm_fro:
            break
    return low_rank, sparse


def _shrink(x: np.ndarray, tau: float) -> np.ndarray:
    """Soft thresholding, the proximal operator of tau ||.||_1."""
    return np.sign(x) * np.maximum(np.abs(x) - tau, 0.0)


def _singular_value_threshold(x: np.ndarray, tau: float) -> np.ndarray:
    """U max(Sigma - tau, 0) V^T for x = U Sigma V^T, the proximal operator of tau ||.||_*.

    From the eigenvectors V of the Gram matrix over the smaller side: x V_k = U_k Sigma_k, so
    the result is x V_k diag(1 - tau / sigma_k) V_k^T over the sigma_k > tau. Squaring the
    singular values blurs those below ~3e-7 sigma_max in float64 (eigenvalue error ~ n eps
    sigma_max^2); at the default tol the ALM stops with tau near 1e-4 sigma_max.
    """
    if x.shape[0] < x.shape[1]:
        return _singular_value_threshold(x.T, tau).T
    eigenvalues, vectors = np.linalg.eigh(_gram(x))
    sigma = np.sqrt(np.maximum(eigenvalues, 0.0))
    keep = sigma > tau
    kept = vectors[:, keep].astype(np.float32)  # [n, rank]
    shrink = (1.0 - tau / sigma[keep]).astype(np.float32)
    return ((x @ kept) * shrink) @ kept.T


def _gram(x: np.ndarray) -> np.ndarray:
    """x^T x in float64: float32 would blur singular values below ~3e-4 sigma_max."""
    x = x.astype(np.float64)
    return x.T @ x
