"""ExcerptSampler: shapes per mode, slices of the tracks, silence, seeds, resume, shards."""

import json

import numpy as np
import pytest

from gensep.data.sampler import ExcerptSampler
from gensep.data.track import Track
from gensep.errors import AudioError, DatasetError

RATE = 8000
N = 400  # excerpt samples (50 ms)
SOURCES = ("bass", "drums", "vocals")


def _track(rng, name, seconds=1.0, channels=2, rate=RATE, silent=()):
    n = int(rate * seconds)
    stems = {
        s: (np.zeros if s in silent else lambda shape: rng.uniform(-0.5, 0.5, shape))(
            (channels, n)
        ).astype(np.float32)
        for s in SOURCES
    }
    return Track(name, rate, np.sum(list(stems.values()), axis=0), stems)


@pytest.fixture
def tracks(rng):
    return [_track(rng, f"t{i}", seconds=0.5 + 0.25 * i) for i in range(4)]


def _sampler(tracks, mode="mixture", **kwargs):
    kwargs.setdefault("source", "drums" if mode == "source" else None)
    return ExcerptSampler(tracks, N, kwargs.pop("batch_size", 8), mode, 7, **kwargs)


def _dbfs(x):
    return 10 * np.log10(np.mean(np.square(x, dtype=np.float64)) + 1e-30)


@pytest.mark.parametrize("mono", [False, True], ids=["stereo", "mono"])
@pytest.mark.parametrize("mode", ["mixture", "source", "remix"])
def test_shapes_and_dtypes(tracks, mode, mono):
    batch = _sampler(tracks, mode, mono=mono).next_batch()
    c = 1 if mono else 2
    audio = {"mixture": (8, c, N), "source": (8, c, N), "sources": (8, 3, c, N)}
    expected = {"mixture": ["mixture"], "source": ["source"], "remix": ["mixture", "sources"]}
    for key in expected[mode]:
        assert batch[key].shape == audio[key] and batch[key].dtype == np.float32
    index_shape = (8, 3) if mode == "remix" else (8,)
    assert batch["track_index"].shape == index_shape and batch["track_index"].dtype == np.int32
    assert batch["start"].shape == index_shape and batch["start"].dtype == np.int64
    assert all(a.flags.c_contiguous for a in batch.values())


@pytest.mark.parametrize("mono", [False, True], ids=["stereo", "mono"])
@pytest.mark.parametrize("mode", ["mixture", "source"])
def test_excerpts_are_slices_of_the_tracks(tracks, mode, mono):
    sampler = _sampler(tracks, mode, mono=mono)
    for _ in range(3):
        batch = next(sampler)
        for audio, t, s in zip(batch[mode], batch["track_index"], batch["start"], strict=True):
            track = tracks[t]
            full = track.mixture if mode == "mixture" else track.sources["drums"]
            want = full[:, s : s + N]
            want = want.mean(axis=0, keepdims=True) if mono else want
            np.testing.assert_allclose(audio, want, rtol=1e-6, atol=1e-7)


def test_remix_is_the_sum_of_gained_source_slices(tracks):
    batch = _sampler(tracks, "remix", sources=["vocals", "bass"], batch_size=16).next_batch()
    np.testing.assert_allclose(batch["mixture"], batch["sources"].sum(axis=1), atol=1e-6)
    assert np.all((batch["gain_db"] >= -6.0) & (batch["gain_db"] <= 3.0))
    assert np.ptp(batch["gain_db"]) > 3.0  # the gains do vary
    for i in range(16):
        for j, name in enumerate(["vocals", "bass"]):
            t, s = batch["track_index"][i, j], batch["start"][i, j]
            gain = 10 ** (batch["gain_db"][i, j] / 20)
            want = tracks[t].sources[name][:, s : s + N] * gain
            np.testing.assert_allclose(batch["sources"][i, j], want, rtol=1e-5, atol=1e-7)
    # random pairing: sources of one item come from different tracks somewhere in the batch
    assert np.any(batch["track_index"][:, 0] != batch["track_index"][:, 1])


def test_mixture_mode_never_reads_sources(tracks, monkeypatch):
    def forbidden(self):
        raise AssertionError(f"mixture mode read the stems of {self.name}")

    monkeypatch.setattr(Track, "sources", property(forbidden), raising=False)
    with pytest.raises(AssertionError):
        tracks[0].sources  # noqa: B018 — the guard works
    sampler = _sampler(tracks, "mixture")
    for _ in range(5):
        sampler.next_batch()


@pytest.mark.parametrize("mode", ["mixture", "source", "remix"])
def test_same_seed_same_batches(tracks, mode):
    a, b = _sampler(tracks, mode), _sampler(tracks, mode)
    other = ExcerptSampler(tracks, N, 8, mode, 8, source="drums" if mode == "source" else None)
    for _ in range(3):
        x, y, z = a.next_batch(), b.next_batch(), other.next_batch()
        for key in x:
            np.testing.assert_array_equal(x[key], y[key])
        assert not np.array_equal(x["start"], z["start"])


@pytest.mark.parametrize("mode", ["mixture", "remix"])
def test_resume_draws_what_an_uninterrupted_sampler_would(tracks, mode):
    sampler = _sampler(tracks, mode)
    for _ in range(3):
        sampler.next_batch()
    state = json.loads(json.dumps(sampler.state_dict()))
    assert state["batches_drawn"] == 3
    ahead = [sampler.next_batch() for _ in range(4)]
    resumed = _sampler(tracks, mode)
    resumed.load_state_dict(state)
    for want in ahead:
        got = resumed.next_batch()
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    assert resumed.batches_drawn == 7


def test_resume_refuses_another_configuration(tracks):
    state = _sampler(tracks, "mixture").state_dict()
    with pytest.raises(ValueError, match="build the sampler as the saved run did"):
        _sampler(tracks, "mixture", batch_size=4).load_state_dict(state)
    with pytest.raises(ValueError, match="build the sampler"):
        _sampler(tracks[:3], "mixture").load_state_dict(state)


@pytest.mark.parametrize("num_shards", [2, 4])
@pytest.mark.parametrize("mode", ["mixture", "source", "remix"])
def test_shards_union_is_the_global_batch(tracks, mode, num_shards):
    whole = _sampler(tracks, mode)
    shards = [
        _sampler(tracks, mode, num_shards=num_shards, shard_index=k) for k in range(num_shards)
    ]
    for _ in range(3):
        want = whole.next_batch()
        parts = [s.next_batch() for s in shards]
        assert parts[0]["start"].shape[0] == 8 // num_shards
        for key in want:
            np.testing.assert_array_equal(np.concatenate([p[key] for p in parts]), want[key])
    # a shard's state resumes the unsharded sampler (same global seed stream)
    whole_state, shard_state = whole.state_dict(), shards[-1].state_dict()
    assert whole_state == shard_state


@pytest.mark.parametrize("mode", ["mixture", "source", "remix"])
def test_half_silent_track_never_yields_silent_excerpts(rng, mode):
    track = _track(rng, "half", seconds=1.0)
    half = track.mixture.shape[-1] // 2
    track.mixture[:, :half] = 0.0
    for audio in track.sources.values():
        audio[:, :half] = 0.0
    sampler = _sampler([track], mode, batch_size=16, silence_db=-40.0, remix_gain_db=(-20, 0))
    for _ in range(10):
        batch = sampler.next_batch()
        if mode == "remix":  # the test applies to the source before its gain
            gains = 10 ** (batch["gain_db"][:, :, None, None] / 20)
            excerpts = (batch["sources"] / gains).reshape(-1, 2, N)
        else:
            excerpts = batch[mode]
        assert min(_dbfs(x) for x in excerpts) >= -40.0
    unchecked = _sampler([track], mode, batch_size=16, silence_db=-np.inf).next_batch()
    assert np.any(unchecked["start"] + N <= half)  # without the test, silent excerpts occur


def test_allow_silent_prob_lets_remix_sources_be_silent(rng):
    track = _track(rng, "half", seconds=1.0)
    track.sources["vocals"][:, : RATE // 2] = 0.0
    sampler = _sampler([track], "remix", batch_size=32, allow_silent_prob=1.0)
    vocals = sampler.next_batch()["sources"][:, 2]
    assert np.any(np.all(vocals == 0.0, axis=(1, 2)))


def test_all_silent_set_raises(rng):
    silent = [_track(rng, f"quiet{i}", silent=SOURCES) for i in range(2)]
    with pytest.raises(DatasetError, match=r"'mixture': all silent .*quiet0"):
        _sampler(silent, "mixture")
    with pytest.raises(DatasetError, match=r"'drums': all silent"):
        _sampler([_track(rng, "x", silent=["drums"])], "source")


def test_silent_stems_are_left_out_of_their_pool(rng):
    instrumental = _track(rng, "instrumental", silent=["vocals"])
    sung = _track(rng, "sung")
    batch = _sampler([instrumental, sung], "remix", batch_size=32).next_batch()
    assert np.all(batch["track_index"][:, 2] == 1)  # vocals only from the sung track
    assert set(batch["track_index"][:, 0]) == {0, 1}  # bass from both


def test_nearly_silent_set_raises_after_max_tries(rng):
    track = _track(rng, "click", seconds=2.0, silent=SOURCES)
    track.mixture[:, 1000:1010] = 0.9
    with pytest.raises(DatasetError, match=r"5 excerpts in a row were silent.*\['click'\]"):
        _sampler([track], "mixture", max_tries=5).next_batch()


def test_tracks_are_drawn_in_proportion_to_their_positions(rng):
    short, long = _track(rng, "short", seconds=0.5), _track(rng, "long", seconds=1.5)
    sampler = _sampler([short, long], "mixture", batch_size=64)
    index = np.concatenate([sampler.next_batch()["track_index"] for _ in range(8)])
    share = np.mean(index == 1)  # expected (12000 - 399) / (16000 - 798) = 0.763
    assert 0.70 < share < 0.83


def test_short_tracks_are_left_out_with_a_warning(rng):
    tracks = [_track(rng, "tiny", seconds=0.02), _track(rng, "ok")]
    with pytest.warns(UserWarning, match="tiny"):
        sampler = _sampler(tracks, "mixture")
    assert np.all(sampler.next_batch()["track_index"] == 1)


def test_validation_errors(tracks, rng):
    with pytest.raises(DatasetError, match="longer than every track"):
        ExcerptSampler(tracks, RATE * 10, 8, "mixture", 0)
    with pytest.raises(AudioError, match="t_other: 16000 Hz"):
        _sampler([*tracks, _track(rng, "t_other", rate=16000)])
    with pytest.raises(AudioError, match="1 channels"):
        _sampler([*tracks, _track(rng, "t_mono", channels=1)])
    with pytest.raises(ValueError, match="mode 'stems'"):
        _sampler(tracks, "stems")
    with pytest.raises(DatasetError, match="no source \\['piano'\\]"):
        _sampler(tracks, "source", source="piano")
    with pytest.raises(DatasetError, match="no source \\['piano'\\]"):
        _sampler(tracks, "remix", sources=["bass", "piano"])
    with pytest.raises(ValueError, match="source= is required"):
        _sampler(tracks, "source", source=None)
    with pytest.raises(ValueError, match="source= is required in, and only in"):
        _sampler(tracks, "mixture", source="bass")
    with pytest.raises(ValueError, match="num_shards 3"):
        _sampler(tracks, num_shards=3)
    with pytest.raises(ValueError, match="remix_gain_db"):
        _sampler(tracks, "remix", remix_gain_db=(3.0, -6.0))
    with pytest.raises(DatasetError, match="no tracks"):
        _sampler([])
