"""MUSDB-layout folders: write_track -> read_track/load_tracks round trips and every error."""

import numpy as np
import pytest

from gensep.data import Track, load_tracks, read_track
from gensep.data.layout import list_tracks, write_f0_csv, write_track
from gensep.errors import AudioError, DatasetError

RATE = 8000
PCM16 = 1 / 32768  # one 16-bit step


def _track(rng, name="song", sources=("bass", "drums", "vocals"), channels=2, seconds=0.5):
    n = int(RATE * seconds)
    stems = {s: rng.uniform(-0.3, 0.3, (channels, n)).astype(np.float32) for s in sources}
    mixture = sum(stems.values()) if stems else rng.uniform(-0.3, 0.3, (channels, n))
    times = np.arange(20) * 0.01
    f0 = {"vocals": (times, np.where(times < 0.1, 0.0, 220.0))} if "vocals" in stems else None
    return Track(name, RATE, np.asarray(mixture, np.float32), stems, f0)


def test_round_trip_to_pcm16_precision(tmp_path, rng):
    track = _track(rng)
    folder = write_track(tmp_path, "test", track)
    back = read_track(folder)
    assert back.name == "song" and back.rate == RATE
    assert back.source_names == ["bass", "drums", "vocals"]  # sorted file names
    np.testing.assert_allclose(back.mixture, track.mixture, atol=PCM16)
    for name, audio in track.sources.items():
        assert back.sources[name].dtype == np.float32
        np.testing.assert_allclose(back.sources[name], audio, atol=PCM16)
    assert list(back.f0) == ["vocals"]
    np.testing.assert_allclose(back.f0["vocals"][0], track.f0["vocals"][0], atol=1e-4)
    np.testing.assert_allclose(back.f0["vocals"][1], track.f0["vocals"][1], atol=1e-4)


def test_source_selection_order_and_f0(tmp_path, rng):
    folder = write_track(tmp_path, "test", _track(rng))
    back = read_track(folder, sources=["drums", "bass"])
    assert back.source_names == ["drums", "bass"]
    assert back.f0 is None  # no F0 file for the selected sources
    alone = read_track(folder, sources=())
    assert alone.sources == {} and alone.f0 is None
    with pytest.raises(DatasetError, match="must be distinct"):
        read_track(folder, sources=["bass", "bass"])


def test_resampling_on_read(tmp_path, rng):
    folder = write_track(tmp_path, "test", _track(rng, seconds=0.25))
    back = read_track(folder, sample_rate=16000)
    assert back.rate == 16000 and back.mixture.shape == (2, 4000)
    assert all(s.shape == (2, 4000) for s in back.sources.values())


def test_load_tracks_and_list_tracks(tmp_path, rng):
    for name in ("b", "a"):
        write_track(tmp_path, "train", _track(rng, name=name))
    (tmp_path / "train" / ".hidden").mkdir()
    (tmp_path / "train" / "notes").mkdir()  # no audio: not a track, skipped
    assert [p.name for p in list_tracks(tmp_path, "train")] == ["a", "b"]
    tracks = load_tracks(tmp_path, "train", sources=["vocals"])
    assert [t.name for t in tracks] == ["a", "b"]
    assert all(t.source_names == ["vocals"] for t in tracks)


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match=r"no such dataset root .* --musdb-root"):
        load_tracks(tmp_path / "nowhere", "test")


def test_missing_split_lists_the_existing_ones(tmp_path, rng):
    write_track(tmp_path, "train", _track(rng))
    with pytest.raises(DatasetError, match=r"no split 'test' .*\['train'\]"):
        load_tracks(tmp_path, "test")


def test_no_tracks(tmp_path):
    (tmp_path / "test").mkdir()
    with pytest.raises(DatasetError, match="no tracks"):
        load_tracks(tmp_path, "test")


def test_missing_stem_names_track_and_file(tmp_path, rng):
    write_track(tmp_path, "test", _track(rng))
    with pytest.raises(DatasetError, match=r"track song: missing other\.wav"):
        load_tracks(tmp_path, "test", sources=["vocals", "other"])


def test_missing_mixture_is_an_error_not_a_skip(tmp_path, rng):
    folder = write_track(tmp_path, "test", _track(rng))
    write_track(tmp_path, "test", _track(rng, name="other song"))
    (folder / "mixture.wav").unlink()
    with pytest.raises(DatasetError, match=r"track song: stems but no mixture\.wav"):
        load_tracks(tmp_path, "test")
    with pytest.raises(DatasetError, match=r"track song: no mixture\.wav"):
        read_track(folder)


def test_no_stems_without_explicit_empty_selection(tmp_path, rng):
    folder = write_track(tmp_path, "test", _track(rng, sources=()))
    with pytest.raises(DatasetError, match=r"no source stems .* sources=\(\)"):
        read_track(folder)


def test_tracks_with_different_stems(tmp_path, rng):
    write_track(tmp_path, "test", _track(rng, name="a"))
    write_track(tmp_path, "test", _track(rng, name="b", sources=("bass", "vocals")))
    with pytest.raises(DatasetError, match=r"track b has stems .* pass sources"):
        load_tracks(tmp_path, "test")
    assert len(load_tracks(tmp_path, "test", sources=["bass", "vocals"])) == 2


def test_stem_shape_must_equal_the_mixture(tmp_path, rng):
    folder = write_track(tmp_path, "test", _track(rng))
    mono = _track(rng, channels=1)
    write_track(tmp_path / "mono", "test", mono)
    (tmp_path / "mono" / "test" / "song" / "bass.wav").replace(folder / "bass.wav")
    with pytest.raises(DatasetError, match=r"bass\.wav is \(1, 4000\) .* must match the mixture"):
        read_track(folder)


def test_stem_rate_must_equal_the_mixture(tmp_path, rng):
    folder = write_track(tmp_path, "test", _track(rng))
    track = _track(rng)
    write_track(tmp_path / "fast", "test", Track("song", 2 * RATE, track.mixture, {}))
    (tmp_path / "fast" / "test" / "song" / "mixture.wav").replace(folder / "drums.wav")
    with pytest.raises(DatasetError, match=r"drums\.wav is .* at 16000 Hz"):
        read_track(folder)


def test_bad_f0_file_is_an_audio_error(tmp_path, rng):
    folder = write_track(tmp_path, "test", _track(rng))
    (folder / "bass.f0.csv").write_text("time,hz\n0,1\n")
    with pytest.raises(AudioError, match=r"bass\.f0\.csv: expected a header"):
        read_track(folder)
    write_f0_csv(folder / "bass.f0.csv", np.array([0.0, 0.01]), np.array([0.0, 55.0]))
    assert sorted(read_track(folder).f0) == ["bass", "vocals"]


def test_unreadable_stem_is_an_audio_error(tmp_path, rng):
    folder = write_track(tmp_path, "test", _track(rng))
    (folder / "drums.wav").write_bytes(b"not audio")
    with pytest.raises(AudioError, match=r"drums\.wav: not a readable audio file"):
        read_track(folder)
