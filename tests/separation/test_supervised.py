"""Supervised methods through the registry on tiny untrained models: every architecture
separates, estimates sum to the mixture at any rate and channel count, outputs are the
card's sources, and missing or mismatched models are clear errors."""

import numpy as np
import pytest
from flax import nnx

from gensep.config import to_dict
from gensep.data.example import example
from gensep.errors import CheckpointError, GensepError
from gensep.models.masknet import MaskNet, MaskNetConfig
from gensep.models.store import save_model
from gensep.models.supervised import ARCHS
from gensep.separation import get_method, list_methods, separate
from gensep.separation.common import map_masks

SR = 16000
VOICES = ("soprano", "alto", "tenor", "bass")
CHUNKS = dict(chunk_seconds=1.0, overlap_seconds=0.25)


def save_tiny(folder, arch, sources=VOICES):
    cfg = MaskNetConfig(
        arch=arch, sample_rate=SR, n_fft=256, hop=64, sources=sources, hidden=16, channels=4,
        heads=2, layers=3 if arch == "cnn" else 2,
    )  # fmt: skip
    model = MaskNet(cfg, rngs=nnx.Rngs(0))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    save_model(folder / arch, params, {"config": {"model": to_dict(cfg)}})
    return folder / arch


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    return {arch: save_tiny(folder, arch) for arch in ARCHS}


def test_the_five_methods_are_registered_as_supervised_needing_a_model():
    assert {m.name for m in list_methods("supervised")} == set(ARCHS)
    for arch in ARCHS:
        assert get_method(arch).needs == ("model",) and callable(get_method(arch).load())


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_each_architecture_separates_the_chorale(models, arch):
    track = example()
    est = separate(track.mixture, track.rate, arch, model=models[arch], **CHUNKS)
    assert list(est) == list(VOICES)  # the card's sources, in its order
    assert {v.shape for v in est.values()} == {track.mixture.shape}
    np.testing.assert_allclose(sum(est.values()), track.mixture, atol=1e-4)
    assert all(np.std(v) > 0 for v in est.values())


def test_each_channel_is_separated_as_if_it_were_alone(models, rng):
    track = example()
    other = np.roll(track.mixture, 3000, axis=-1) * 0.5
    stereo = separate(np.concatenate([track.mixture, other]), SR, "crnn", model=models["crnn"])
    for c, channel in enumerate([track.mixture, other]):
        alone = separate(channel, SR, "crnn", model=models["crnn"])
        for name in VOICES:
            np.testing.assert_allclose(stereo[name][c], alone[name][0], atol=1e-6)


def test_stereo_44k_input_sums_to_the_mixture(models, rng):
    n = int(1.7 * 44100)
    left = rng.normal(0, 0.1, n).astype(np.float32)
    right = np.zeros(n, np.float32)
    right[n // 2 :] = left[n // 2 :]  # silent first half: its estimates must be silent too
    mixture = np.stack([left, right])
    est = separate(mixture, 44100, "blstm", model=models["blstm"], **CHUNKS)
    assert {v.shape for v in est.values()} == {mixture.shape}
    np.testing.assert_allclose(sum(est.values()), mixture, atol=1e-4)
    # masks only scale the channel's own STFT: nothing leaks into the silent half
    # (away from the STFT window at the switch; 4096-point frames at 44.1 kHz)
    quiet = slice(0, n // 2 - 4096)
    assert max(float(np.abs(v[1, quiet]).max()) for v in est.values()) < 1e-6


def test_same_rate_and_resampled_paths_agree_in_their_sum(models, rng):
    """A 16 kHz input runs all in JAX; 8 kHz through resampling and mapped masks."""
    x = rng.normal(0, 0.1, (1, 8000)).astype(np.float32)
    est = separate(x, 8000, "unet", model=models["unet"], **CHUNKS)
    np.testing.assert_allclose(sum(est.values()), x, atol=1e-4)


def test_names_select_and_order_the_outputs_as_the_harness_asks(models):
    track = example()
    est = separate(
        track.mixture, track.rate, "cnn", model=models["cnn"], names=["bass", "soprano"],
        n_sources=2, **CHUNKS,
    )  # fmt: skip
    assert list(est) == ["bass", "soprano"]
    with pytest.raises(GensepError, match="separates"):
        separate(track.mixture, track.rate, "cnn", model=models["cnn"], names=["vocals"])
    with pytest.raises(GensepError, match="n_sources=3"):
        separate(track.mixture, track.rate, "cnn", model=models["cnn"], n_sources=3)


def test_missing_model_is_a_clear_error(tmp_path):
    track = example()
    with pytest.raises(GensepError, match="needs model="):
        separate(track.mixture, track.rate, "blstm")
    from gensep.separation.supervised import separate_blstm

    with pytest.raises(GensepError, match="needs model=PATH"):
        separate_blstm(track.mixture, track.rate)
    with pytest.raises(CheckpointError, match="no such model file"):
        separate(track.mixture, track.rate, "blstm", model=tmp_path / "nothing")


def test_a_model_of_another_architecture_is_refused(models):
    track = example()
    with pytest.raises(GensepError, match="a unet model, not a blstm one"):
        separate(track.mixture, track.rate, "blstm", model=models["unet"])


def test_bad_chunking_is_a_clear_error(models):
    track = example()
    with pytest.raises(GensepError, match="overlap_seconds < chunk_seconds"):
        separate(
            track.mixture, track.rate, "blstm", model=models["blstm"], chunk_seconds=1.0,
            overlap_seconds=1.0,
        )  # fmt: skip


def test_a_re_exported_model_at_the_same_path_is_reloaded(tmp_path):
    track = example()
    path = save_tiny(tmp_path, "blstm")
    assert list(separate(track.mixture, track.rate, "blstm", model=path, **CHUNKS)) == list(VOICES)
    path = save_tiny(tmp_path, "blstm", sources=("s", "a", "t", "b"))
    assert list(separate(track.mixture, track.rate, "blstm", model=path, **CHUNKS)) == list("satb")


def test_map_masks_is_the_identity_on_the_same_grid_and_sums_to_one(rng):
    masks = rng.dirichlet(np.ones(3), size=(2, 5, 9)).transpose(3, 0, 1, 2)  # [S, C, T, F]
    same = map_masks(masks, 0.01, 16000, 5, 0.01, 16, 16000)
    assert same is masks
    mapped = map_masks(masks, 0.01, 16000, 7, 0.008, 64, 44100)
    assert mapped.shape == (3, 2, 7, 33)
    np.testing.assert_allclose(mapped.sum(axis=0), 1.0, atol=1e-12)
    # above the model's Nyquist (8 kHz) every bin holds the top model bin's masks
    top = np.arange(33) * 44100 / 64 >= 8000
    np.testing.assert_allclose(
        mapped[..., top], np.repeat(mapped[..., top][..., :1], top.sum(), -1)
    )
