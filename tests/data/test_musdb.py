"""MUSDB18 through musdb: a tiny STEMS file written with stempeg, a WAV (HQ) folder written
by write_track, and every error before or around musdb."""

import sys

import numpy as np
import pytest

from gensep.data import Track, load_musdb
from gensep.data.layout import write_track
from gensep.data.musdb import iter_musdb
from gensep.errors import DatasetError

RATE = 44100
FREQS = {"drums": 220.0, "bass": 110.0, "other": 440.0, "vocals": 880.0}  # one tone a stem


def _stems(seconds=2.0):
    """{source: float32 [2, samples]}: a sinusoid per stem, the channels phase-shifted."""
    t = np.arange(int(seconds * RATE)) / RATE
    return {
        name: 0.2 * np.stack([np.sin(2 * np.pi * f * t), np.sin(2 * np.pi * f * t + 0.5)])
        for name, f in FREQS.items()
    }


def _snr_db(reference, estimate):
    return 10 * np.log10(np.sum(reference**2) / np.sum((estimate - reference) ** 2))


@pytest.fixture(scope="module")
def stems_root(tmp_path_factory):
    """`<root>/test/Artist - Title.stem.mp4`, streams mixture, drums, bass, other, vocals."""
    stempeg = pytest.importorskip("stempeg")
    root = tmp_path_factory.mktemp("musdb")
    (root / "test").mkdir()
    stems = _stems()
    order = [sum(stems.values()), *(stems[name] for name in ("drums", "bass", "other", "vocals"))]
    data = np.stack([x.T for x in order])  # [5, samples, 2]
    writer = stempeg.StreamsWriter(codec="aac", bitrate=256000)
    stempeg.write_stems(str(root / "test" / "Artist - Title.stem.mp4"), data, RATE, writer)
    return root, stems


def test_stems_file_reads_back_up_to_aac_loss(stems_root):
    root, stems = stems_root
    (track,) = load_musdb(root, split="test")
    assert track.name == "Artist - Title" and track.rate == RATE and track.f0 is None
    assert track.source_names == ["vocals", "drums", "bass", "other"]
    assert track.mixture.dtype == np.float32 and track.mixture.shape[0] == 2
    # AAC pads to whole 1024-sample frames; compare the written span, edges trimmed for the
    # encoder's start-up and end transients.
    n = stems["bass"].shape[1]
    assert n <= track.mixture.shape[1] < n + 2048
    span = slice(2048, n - 2048)
    for name, reference in stems.items():
        assert _snr_db(reference[:, span], track.sources[name][:, span]) > 20, name
    assert _snr_db(sum(stems.values())[:, span], track.mixture[:, span]) > 20


def test_stems_source_selection_and_resampling(stems_root):
    root, _ = stems_root
    (track,) = iter_musdb(root, split="test", sources=["bass"], sample_rate=22050)
    assert track.source_names == ["bass"] and track.rate == 22050
    assert track.sources["bass"].shape == track.mixture.shape
    assert abs(track.mixture.shape[1] - 1.0 * 22050 * 2) < 1100


def test_stems_missing_when_wav_expected(stems_root):
    root, _ = stems_root
    with pytest.raises(DatasetError, match=r"no track folders .* pass is_wav=False"):
        load_musdb(root, split="test", is_wav=True)


def test_wav_layout_readable_by_musdb_and_load_musdb(tmp_path):
    musdb = pytest.importorskip("musdb")
    stems = {name: audio.astype(np.float32) for name, audio in _stems(1.0).items()}
    mixture = sum(stems.values())
    write_track(tmp_path, "test", Track("Artist - Song", RATE, mixture, stems))
    db = musdb.DB(root=str(tmp_path), is_wav=True, subsets="test")
    assert [t.name for t in db.tracks] == ["Artist - Song"]
    np.testing.assert_allclose(db.tracks[0].targets["vocals"].audio, stems["vocals"].T, atol=1e-4)

    (track,) = load_musdb(tmp_path, split="test", is_wav=True)
    assert track.source_names == ["vocals", "drums", "bass", "other"]
    np.testing.assert_allclose(track.mixture, mixture, atol=1e-4)  # PCM_16 on disk
    for name, audio in stems.items():
        np.testing.assert_allclose(track.sources[name], audio, atol=1e-4)


def test_wav_layout_missing_stem(tmp_path):
    stems = {name: audio.astype(np.float32) for name, audio in _stems(0.2).items()}
    folder = write_track(tmp_path, "test", Track("A - B", RATE, sum(stems.values()), stems))
    (folder / "drums.wav").unlink()
    with pytest.raises(DatasetError, match=r"MUSDB track A - B: no drums\.wav"):
        load_musdb(tmp_path, split="test", is_wav=True)
    assert load_musdb(tmp_path, split="test", is_wav=True, sources=["bass"])[0].sources


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        pytest.param({"root": "nowhere"}, DatasetError, "no such dataset root", id="root"),
        pytest.param({"split": "valid"}, DatasetError, r"no train/ folder .*\['test'\]", id="sub"),
        pytest.param({"split": "dev"}, ValueError, "split 'dev'", id="split"),
        pytest.param({"subsets": "test"}, ValueError, "not both", id="both"),
        pytest.param({"sources": ["piano"]}, DatasetError, "must be one of", id="source"),
        pytest.param({"sample_rate": 0}, ValueError, "positive integer", id="rate"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, error, match):
    (tmp_path / "test").mkdir()
    kwargs = {"root": tmp_path, **kwargs}
    if kwargs["root"] == "nowhere":
        kwargs["root"] = tmp_path / "nowhere"
    with pytest.raises(error, match=match):
        load_musdb(**kwargs)


def test_no_stem_files_suggests_is_wav(tmp_path):
    (tmp_path / "test" / "Some Track").mkdir(parents=True)
    with pytest.raises(DatasetError, match=r"no \.stem\.mp4 files .* pass is_wav=True"):
        load_musdb(tmp_path, split="test")


def test_missing_ffmpeg_is_a_dataset_error(tmp_path, monkeypatch):
    """stempeg raises RuntimeError at import when ffmpeg is not on PATH."""
    (tmp_path / "test").mkdir()
    for name in [m for m in sys.modules if m.split(".")[0] in ("musdb", "stempeg")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("PATH", str(tmp_path))
    try:
        with pytest.raises(DatasetError, match="install Debian's ffmpeg"):
            load_musdb(tmp_path, split="test")
    finally:
        for name in [m for m in sys.modules if m.split(".")[0] in ("musdb", "stempeg")]:
            del sys.modules[name]  # drop half-imported modules; monkeypatch restores the rest
