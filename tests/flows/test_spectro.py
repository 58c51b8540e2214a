"""The priors' front end: compression round trip, patches and their inverse, the crop and
its edges, training excerpts giving exactly one patch, and config errors."""

import numpy as np
import pytest

from gensep.errors import ConfigError
from gensep.flows.spectro import (
    SpectroConfig,
    compress,
    crop,
    expand,
    from_patches,
    magnitude,
    patch_starts,
    to_patches,
    training_patches,
    uncrop,
)

CFG = SpectroConfig(
    sample_rate=8000, n_fft=128, hop=32, bin_start=2, patch_bins=32, patch_frames=8, patch_hop=4
)


def test_compression_is_invertible_and_zero_at_silence(rng):
    mag = np.abs(rng.standard_normal(1000)).astype(np.float32) * 10.0 ** rng.uniform(-5, 0, 1000)
    np.testing.assert_allclose(expand(compress(mag, CFG), CFG), mag, rtol=1e-5, atol=1e-9)
    assert compress(np.zeros(3), CFG).tolist() == [0.0, 0.0, 0.0]


def test_a_full_scale_sine_reads_one_in_its_bin():
    for n_fft in (128, 1024):
        cfg = SpectroConfig(sample_rate=8000, n_fft=n_fft, hop=n_fft // 4, patch_bins=8)
        k = n_fft // 8  # a bin-centred frequency
        t = np.arange(8000) / 8000
        mag = magnitude(np.sin(2 * np.pi * k * 8000 / n_fft * t), cfg, center=True)
        assert mag[5:-5, k].mean() == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("frames", [1, 7, 8, 9, 12, 13, 50])
def test_patches_cover_every_frame_and_average_back(rng, frames):
    spec = rng.standard_normal((frames, CFG.patch_bins)).astype(np.float32)
    starts, padded = patch_starts(frames, CFG)
    assert padded >= frames and starts[-1] + CFG.patch_frames == padded
    assert padded - CFG.patch_hop < max(frames, CFG.patch_frames)  # no patch wasted
    patches = to_patches(spec, CFG)
    assert patches.shape == (len(starts), CFG.patch_frames, CFG.patch_bins, 1)
    np.testing.assert_allclose(from_patches(patches, CFG, frames), spec, rtol=1e-6)


def test_uncrop_holds_the_edge_bins():
    values = np.arange(2 * CFG.patch_bins, dtype=float).reshape(2, -1)
    full = uncrop(values, CFG)
    assert full.shape == (2, CFG.bins)
    np.testing.assert_array_equal(crop(full, CFG), values)
    np.testing.assert_array_equal(full[:, : CFG.bin_start], values[:, :1].repeat(2, 1))
    assert np.all(full[:, CFG.bin_start + CFG.patch_bins :] == values[:, -1:])


def test_training_excerpts_give_one_patch_of_the_tracks_interior_frames(rng):
    audio = rng.standard_normal(4000).astype(np.float32)
    start = 5 * CFG.hop  # a frame boundary of the centred STFT of the whole signal
    excerpt = audio[start - CFG.n_fft // 2 : start - CFG.n_fft // 2 + CFG.excerpt_samples]
    patch = training_patches(excerpt[None], CFG)
    assert patch.shape == (1, CFG.patch_frames, CFG.patch_bins, 1)
    whole = compress(crop(magnitude(audio, CFG, center=True), CFG), CFG)
    np.testing.assert_allclose(patch[0, ..., 0], whole[5 : 5 + CFG.patch_frames], atol=1e-5)
    with pytest.raises(ValueError, match="excerpt_samples"):
        training_patches(audio[None, :100], CFG)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(bin_start=60, patch_bins=32), "not within the 65 bins"),
        (dict(patch_hop=9), "patch_hop 9 > patch_frames 8"),
        (dict(hop=256), "hop 256 > n_fft"),
        (dict(patch_frames=0), "patch_frames 0"),
    ],
    ids=["crop", "patch_hop", "hop", "frames"],
)
def test_bad_settings_are_config_errors(kwargs, message):
    base = dict(sample_rate=8000, n_fft=128, hop=32, patch_bins=32, patch_frames=8, patch_hop=4)
    with pytest.raises(ConfigError, match=message):
        SpectroConfig(**{**base, **kwargs})
