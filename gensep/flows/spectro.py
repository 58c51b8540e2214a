"""The fixed front end of the flow priors: audio -> compressed magnitude patches and back.

Shared by prior training (`gensep.flows.trainer`) and likelihood separation
(`gensep.separation.flow`), and written into every prior's card, so a prior always sees
what it was trained on:

  mono audio at `sample_rate`
    -> |STFT| (hann, n_fft / hop), divided by n_fft / 4: a full-scale sine reads 1.0 in
       its peak bin whatever n_fft is ("sine amplitude" units)
    -> y = log1p(|X| / ref), ref = 10 ** (ref_db / 20)
    -> bins [bin_start, bin_start + patch_bins)
    -> patches [N, patch_frames, patch_bins, 1], a new patch every patch_hop frames, the
       last padded with zeros (= silence: y = 0 at |X| = 0).

Why log1p(|X| / ref): above ref it is log |X| plus a constant (a dB scale: loudness, and
a gain change is a shift the flow's ActNorm absorbs), below it is linear, so silence is
0 with a finite slope rather than log 0 = -inf: a flow cannot earn unbounded density by
squeezing near-silent bins, and gradients through it are bounded (1 / (ref + |X|)). It is
exactly invertible (`expand`: ref * expm1(y)). |X| ** 0.3 was the other candidate: also
invertible, but its slope is infinite at 0, which a gradient-based separation feels in
every quiet bin.

Training excerpts are `excerpt_samples` long and transformed without centring, so each
gives exactly one patch of interior frames; separation uses the centred STFT of
`gensep.separation.common` (the frames its masks are applied on).
"""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np

from gensep.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class SpectroConfig:
    """Rate, STFT, compression and patching of a prior's input (see the module docstring).

    sample_rate: Hz; audio at other rates is resampled to it. n_fft, hop: STFT (samples).
    ref_db: the compression's knee (dB re a full-scale sine).
    bin_start, patch_bins: the frequency crop (STFT bins) the priors model; bins outside
      it are masked like the crop's nearest edge bin at separation.
    patch_frames: frames per patch. patch_hop: frames between patch starts at separation
      (patch_frames: no overlap; less: overlapping patches share their frames' masks).
    """

    sample_rate: int = 22050
    n_fft: int = 1024
    hop: int = 256
    ref_db: float = -60.0
    bin_start: int = 0
    patch_frames: int = 32
    patch_bins: int = 256
    patch_hop: int = 32

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop", "patch_frames", "patch_bins", "patch_hop"):
            if getattr(self, name) < 1:
                raise ConfigError(f"spectro.{name} {getattr(self, name)!r} must be >= 1")
        if self.hop > self.n_fft:
            raise ConfigError(f"spectro.hop {self.hop} > n_fft {self.n_fft}: frames would skip")
        if self.bin_start < 0 or self.bin_start + self.patch_bins > self.bins:
            raise ConfigError(
                f"spectro bins [{self.bin_start}, {self.bin_start + self.patch_bins}) are not "
                f"within the {self.bins} bins of n_fft {self.n_fft}: lower bin_start or "
                "patch_bins, or raise n_fft"
            )
        if self.patch_hop > self.patch_frames:
            raise ConfigError(
                f"spectro.patch_hop {self.patch_hop} > patch_frames {self.patch_frames}: "
                "frames between patches would never be separated"
            )

    @property
    def bins(self) -> int:
        """Bins of the full STFT, n_fft / 2 + 1."""
        return self.n_fft // 2 + 1

    @property
    def ref(self) -> float:
        return float(10.0 ** (self.ref_db / 20.0))

    @property
    def excerpt_samples(self) -> int:
        """Audio samples whose uncentred STFT has exactly patch_frames frames."""
        return (self.patch_frames - 1) * self.hop + self.n_fft

    @property
    def top_hz(self) -> float:
        """Upper edge of the crop (Hz)."""
        return (self.bin_start + self.patch_bins - 1) * self.sample_rate / self.n_fft


def magnitude(audio: np.ndarray, cfg: SpectroConfig, center: bool) -> np.ndarray:
    """|STFT| in sine-amplitude units: [..., samples] -> float32 [..., frames, bins]."""
    spec = librosa.stft(
        np.asarray(audio, np.float32), n_fft=cfg.n_fft, hop_length=cfg.hop, center=center
    )
    return (np.abs(np.swapaxes(spec, -1, -2)) * (4.0 / cfg.n_fft)).astype(np.float32)


def _xp(x):
    """jax.numpy for JAX arrays (and tracers), numpy otherwise."""
    import jax

    if isinstance(x, jax.Array):
        import jax.numpy as jnp

        return jnp
    return np


def compress(mag, cfg: SpectroConfig):
    """y = log1p(|X| / ref): magnitudes (sine-amplitude units, >= 0) -> the priors' input."""
    return _xp(mag).log1p(mag / cfg.ref)


def expand(y, cfg: SpectroConfig):
    """Inverse of `compress`: ref * expm1(y)."""
    return cfg.ref * _xp(y).expm1(y)


def crop(spec, cfg: SpectroConfig):
    """[..., bins] -> [..., patch_bins]: the modelled frequency range."""
    return spec[..., cfg.bin_start : cfg.bin_start + cfg.patch_bins]


def uncrop(values: np.ndarray, cfg: SpectroConfig) -> np.ndarray:
    """[..., patch_bins] -> [..., bins], holding the edge bins' values outside the crop."""
    below = cfg.bin_start
    above = cfg.bins - cfg.bin_start - cfg.patch_bins
    return np.pad(values, [(0, 0)] * (values.ndim - 1) + [(below, above)], mode="edge")


def training_patches(audio: np.ndarray, cfg: SpectroConfig) -> np.ndarray:
    """Excerpts [B, excerpt_samples] -> patches float32 [B, patch_frames, patch_bins, 1]."""
    audio = np.asarray(audio, np.float32)
    if audio.ndim != 2 or audio.shape[-1] != cfg.excerpt_samples:
        raise ValueError(
            f"excerpts of shape {audio.shape}: expected [B, {cfg.excerpt_samples}] "
            "(spectro.excerpt_samples)"
        )
    y = compress(crop(magnitude(audio, cfg, center=False), cfg), cfg)
    return np.ascontiguousarray(y[..., None], np.float32)  # [B, T, F, 1]


def patch_starts(frames: int, cfg: SpectroConfig) -> tuple[np.ndarray, int]:
    """(first frame of each patch [N], padded frame count) covering `frames` frames.

    N is the fewest patches, at least one, a patch_hop apart, reaching the last frame; the
    padded count is (N - 1) * patch_hop + patch_frames >= frames.
    """
    if frames < 1:
        raise ValueError(f"frames {frames} must be >= 1")
    n = 1 + max(0, -(-(frames - cfg.patch_frames) // cfg.patch_hop))
    return np.arange(n) * cfg.patch_hop, (n - 1) * cfg.patch_hop + cfg.patch_frames


def to_patches(spec: np.ndarray, cfg: SpectroConfig) -> np.ndarray:
    """A spectrogram [frames, patch_bins] (already cropped and compressed) -> patches
    [N, patch_frames, patch_bins, 1], zero-padded at the end (`patch_starts`)."""
    starts, padded = patch_starts(spec.shape[0], cfg)
    spec = np.pad(spec, [(0, padded - spec.shape[0]), (0, 0)])
    index = starts[:, None] + np.arange(cfg.patch_frames)  # [N, T_p]
    return spec[index][..., None]


def from_patches(patches: np.ndarray, cfg: SpectroConfig, frames: int) -> np.ndarray:
    """Inverse of `to_patches`: patches [N, patch_frames, F, 1] -> [frames, F], each frame
    the mean over the patches that hold it."""
    return overlap_average(patches[..., 0], cfg.patch_hop, frames)


def overlap_average(blocks: np.ndarray, hop: int, frames: int) -> np.ndarray:
    """Blocks [N, L, ...] starting every `hop` frames -> [frames, ...], the mean of the
    blocks covering each frame (frames past the last block's end are not allowed)."""
    n, length = blocks.shape[:2]
    total = (n - 1) * hop + length
    if frames > total:
        raise ValueError(f"{n} blocks of {length} frames, {hop} apart, cover {total} < {frames}")
    out = np.zeros((total, *blocks.shape[2:]), np.float64)
    count = np.zeros(total)
    for k in range(n):
        out[k * hop : k * hop + length] += blocks[k]
        count[k * hop : k * hop + length] += 1
    shape = (total,) + (1,) * (blocks.ndim - 2)
    return (out / count.reshape(shape))[:frames].astype(blocks.dtype)


__all__ = [
    "SpectroConfig",
    "compress",
    "crop",
    "expand",
    "from_patches",
    "magnitude",
    "overlap_average",
    "patch_starts",
    "to_patches",
    "training_patches",
    "uncrop",
]
