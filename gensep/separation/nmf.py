"""NMF with its components clustered by pitch into as many sources as asked.

The magnitude spectrogram V [bins, frames] of the mid signal is factorised as V ~ W H with
`n_components` spectral templates W and their activations H (KL divergence, multiplicative
updates, NNDSVDa initialisation: `librosa.decompose.decompose` over scikit-learn's NMF).
Each template gets a pitch: the argmax of its harmonic salience (`librosa.salience`, 10
harmonics weighted 0.8^(h-1), searched over `pitch_range_hz`), which prefers the true
fundamental over its octaves as long as the template has energy at the odd harmonics. The
default range, 50-1100 Hz, spans sung fundamentals (bass E2 82 Hz to soprano C6 1047 Hz);
NMF often gives a voice's upper harmonics a template of their own, and a wider range lets
such a template's pitch land far above every voice, where k-means spends a whole source on
it (measured: a four-voice test lost two voices with 2000 Hz). The components
are then grouped by 1-D k-means on log2 pitch, each weighted by its share of the model's
magnitude so that faint components (noise, onsets) move the cluster centres little.

Sources come out ordered from the highest to the lowest cluster pitch (the weighted mean
log-pitch of the cluster): for a choir pass names=["soprano", "alto", "tenor", "bass"] in
that order. A source's model V_j = W_j H_j gives the masks V_j^p / sum_k V_k^p (p =
`mask_power`; 1, the usual ratio for a magnitude model), which sum to one, so the
estimates sum to the mixture. No references are used: this is the unsupervised baseline.
"""

from __future__ import annotations

import warnings

import librosa
import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from gensep.errors import GensepError
from gensep.separation.common import apply_masks, default_stft, mid, ratio_masks, stft

DEFAULT_SOURCES = 4
COMPONENTS_PER_SOURCE = 8
PITCH_RANGE_HZ = (50.0, 1100.0)
HARMONICS = np.arange(1, 11)


def separate(
    mixture: np.ndarray,
    sample_rate: int,
    *,
    n_sources: int | None = None,
    names: list[str] | tuple[str, ...] | None = None,
    n_components: int | None = None,
    seed: int = 0,
    max_iter: int = 200,
    mask_power: float = 1.0,
    pitch_range_hz: tuple[float, float] = PITCH_RANGE_HZ,
    n_fft: int | None = None,
    hop: int | None = None,
) -> dict[str, np.ndarray]:
    """Separate the mixture into `n_sources` sources by clustering NMF components by pitch.

    Args:
      mixture: float32 [channels, samples].
      sample_rate: Hz; picks the STFT (`default_stft`) and the pitch of each template.
      n_sources: How many sources; 4 unless `names` is given, then len(names).
      names: Source names from the highest to the lowest pitch; default "source0", ...
      n_components: NMF rank; default 8 per source. Must be at least `n_sources`.
      seed: Seeds the k-means restarts (and NMF when it falls back to random
        initialisation, on inputs shorter than n_components frames).
      max_iter: NMF multiplicative-update iterations at most.
      mask_power: p of the masks V_j^p / sum_k V_k^p; 2 gives power ratios.
      pitch_range_hz: (lowest, highest) fundamental (Hz) a template may be given.
      n_fft, hop: STFT size and hop (samples) instead of `default_stft`; hop defaults to
        n_fft // 4.

    Returns:
      {name: float32 [channels, samples]} in `names` order (highest pitch first), summing to
      the mixture up to STFT reconstruction error. A source that gets no component is
      silent.
    """
    names = _source_names(n_sources, names)
    n_components = n_components or COMPONENTS_PER_SOURCE * len(names)
    if n_components < len(names):
        raise GensepError(
            f"nmf: n_components={n_components} < {len(names)} sources; pass n_components of at "
            "least the number of sources"
        )
    if not mask_power > 0 or max_iter < 1:
        raise GensepError(f"nmf: mask_power={mask_power!r} must be > 0, max_iter >= 1")
    default_n_fft, default_hop = default_stft(sample_rate)
    hop = hop or (default_hop if not n_fft or n_fft == default_n_fft else n_fft // 4)
    n_fft = n_fft or default_n_fft
    mag = np.abs(stft(mid(mixture), n_fft, hop)).T  # [bins, frames]
    if not np.any(mag):  # a silent mid (channels in antiphase): nothing to tell apart
        masks = np.full((len(names), mag.shape[1], mag.shape[0]), 1.0 / len(names))
        return apply_masks(mixture, masks, names, n_fft, hop)
    templates, activations = _factorise(mag, n_components, seed, max_iter)
    freqs = librosa.fft_frequencies(sr=sample_rate, n_fft=n_fft)
    pitch_hz = template_pitch(templates, freqs, pitch_range_hz)
    loudness = templates.sum(axis=0) * activations.sum(axis=1)  # [components]
    labels = _cluster_by_pitch(np.log2(pitch_hz), loudness, len(names), seed)
    parts = np.stack(
        [templates[:, labels == j] @ activations[labels == j] for j in range(len(names))]
    )  # [sources, bins, frames]
    masks = ratio_masks(parts.astype(np.float64) ** mask_power)
    return apply_masks(mixture, np.swapaxes(masks, 1, 2), names, n_fft, hop)


def template_pitch(
    templates: np.ndarray, freqs: np.ndarray, pitch_range_hz: tuple[float, float] = PITCH_RANGE_HZ
) -> np.ndarray:
    """Each template's pitch (Hz): the argmax of its harmonic salience within a range.

    Args:
      templates: Magnitude spectra, [bins, components].
      freqs: Centre frequency (Hz) of each bin, [bins].
      pitch_range_hz: (lowest, highest) candidate pitch (Hz).

    Returns:
      [components] in Hz, on the bin grid (a 7.8 Hz step at 16 kHz / 2048 points: coarse for
      a pitch, fine enough to tell voices apart).
    """
    weights = 0.8 ** (HARMONICS - 1.0)
    salience = librosa.salience(
        templates,
        freqs=freqs,
        harmonics=HARMONICS,
        weights=weights,
        filter_peaks=False,
        fill_value=0.0,
        axis=-2,
    )  # [bins, components]
    lo, hi = pitch_range_hz
    # A candidate whose 2nd harmonic is above Nyquist has too little of the template to judge.
    search = np.flatnonzero((freqs >= lo) & (freqs <= min(hi, freqs[-1] / 2)))
    if search.size == 0:
        raise GensepError(
            f"nmf: no pitch candidates in {lo:g}-{hi:g} Hz at this rate / STFT; pass a larger "
            "n_fft or a sample rate of at least 8 kHz"
        )
    return freqs[search[np.argmax(salience[search], axis=0)]]


def _source_names(n_sources: int | None, names: list[str] | tuple[str, ...] | None) -> list[str]:
    if names is None:
        n = DEFAULT_SOURCES if n_sources is None else n_sources
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise GensepError(f"nmf: n_sources={n_sources!r} must be an integer >= 1")
        return [f"source{i}" for i in range(n)]
    names = [str(name) for name in names]
    if not names or len(set(names)) != len(names):
        raise GensepError(f"nmf: names={names!r} must be non-empty and distinct")
    if n_sources is not None and n_sources != len(names):
        raise GensepError(f"nmf: n_sources={n_sources} but {len(names)} names; pass one of the two")
    return names


def _factorise(
    mag: np.ndarray, n_components: int, seed: int, max_iter: int
) -> tuple[np.ndarray, np.ndarray]:
    """KL-NMF of mag [bins, frames]: templates [bins, K] and activations [K, frames]."""
    # NNDSVDa needs K <= min(bins, frames); very short inputs fall back to a seeded random init.
    init = "nndsvda" if n_components <= min(mag.shape) else "random"
    with warnings.catch_warnings():
        # Hitting max_iter is expected: masks need a good fit, not a converged one.
        warnings.simplefilter("ignore", ConvergenceWarning)
        templates, activations = librosa.decompose.decompose(
            mag,
            n_components=n_components,
            sort=False,
            init=init,
            solver="mu",
            beta_loss="kullback-leibler",
            max_iter=max_iter,
            random_state=seed,
        )
    return templates, activations


def _cluster_by_pitch(
    log_pitch: np.ndarray, weight: np.ndarray, n_sources: int, seed: int
) -> np.ndarray:
    """Source index per component, 0 for the cluster of the highest pitch: [components]."""
    weight = np.maximum(weight, 1e-12 * max(float(weight.max()), 1e-30))
    with warnings.catch_warnings():
        # Fewer distinct pitches than sources: k-means warns and leaves a source empty.
        warnings.simplefilter("ignore", ConvergenceWarning)
        kmeans = KMeans(n_clusters=n_sources, n_init=10, random_state=seed)
        labels = kmeans.fit_predict(log_pitch[:, None], sample_weight=weight)
    rank = np.argsort(-kmeans.cluster_centers_[:, 0], kind="stable")  # highest pitch first
    return np.argsort(rank)[labels]
