"""Audio I/O against soundfile/numpy and closed-form signals; bad inputs; chunking."""

import numpy as np
import pytest
import soundfile as sf

from gensep import AudioError
from gensep.audio import chunk_count, load_audio, merge_chunks, save_audio, split_chunks


def _write(path, data, rate=16000, subtype="FLOAT"):
    sf.write(str(path), data, rate, subtype=subtype)
    return path


@pytest.mark.parametrize(
    ("suffix", "subtype", "atol"),
    [
        pytest.param(".wav", "FLOAT", 0, id="wav-float"),
        pytest.param(".wav", "PCM_16", 1 / 32768, id="wav-pcm16"),
        pytest.param(".flac", "PCM_24", 1 / 2**23, id="flac-24"),
    ],
)
def test_load_matches_soundfile_layout(tmp_path, rng, suffix, subtype, atol):
    data = rng.uniform(-0.9, 0.9, (1000, 2)).astype(np.float32)
    path = _write(tmp_path / f"x{suffix}", data, subtype=subtype)
    audio, rate = load_audio(path)
    assert rate == 16000 and audio.dtype == np.float32 and audio.shape == (2, 1000)
    assert audio.flags["C_CONTIGUOUS"]
    np.testing.assert_allclose(audio, data.T, atol=atol)


def test_ogg_is_read(tmp_path):
    t = np.arange(16000) / 16000
    data = 0.5 * np.sin(2 * np.pi * 440 * t)
    audio, _ = load_audio(_write(tmp_path / "x.ogg", data, subtype="VORBIS"))
    n = min(audio.shape[1], data.size)
    assert np.corrcoef(audio[0, :n], data[:n])[0, 1] > 0.99  # lossy codec


def test_mp3_round_trip_if_supported(tmp_path):
    if "MP3" not in sf.available_formats():
        pytest.skip("this libsndfile build cannot write MP3")
    t = np.arange(44100) / 44100
    data = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    save_audio(tmp_path / "x.mp3", data, 44100)
    audio, rate = load_audio(tmp_path / "x.mp3")
    assert rate == 44100 and audio.shape[0] == 1
    # MP3 adds encoder delay: compare magnitude spectra rather than samples.
    spec = np.abs(np.fft.rfft(audio[0, 4410:39690]))
    assert abs(np.argmax(spec) / (35280 / 44100) - 440) < 2


def test_resampling_matches_closed_form_sinusoid(tmp_path):
    n = 44100
    t = np.arange(n) / 44100
    path = _write(tmp_path / "s.wav", 0.5 * np.sin(2 * np.pi * 440 * t), rate=44100)
    audio, rate = load_audio(path, sample_rate=16000)
    assert rate == 16000
    assert abs(audio.shape[1] - round(n * 16000 / 44100)) <= 1
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(audio.shape[1]) / 16000)
    # The resampling filter rings at the signal's abrupt start and end: trim 50 ms each side.
    inner = slice(800, -800)
    np.testing.assert_allclose(audio[0, inner], ref[inner], atol=1e-3)


def test_mono_is_the_channel_mean(tmp_path, rng):
    data = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    audio, _ = load_audio(_write(tmp_path / "m.wav", data), mono=True)
    np.testing.assert_allclose(audio, data.mean(axis=1)[None], atol=1e-7)


def _text_as_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is not audio")
    return path


def _nan_wav(tmp_path):
    data = np.zeros((1600, 1), np.float32)
    data[800] = np.nan
    return _write(tmp_path / "nan.wav", data)


def _empty_wav(tmp_path):
    return _write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32))


BAD_INPUTS = [
    pytest.param(lambda p: p / "missing.wav", r"missing\.wav: no such file", id="missing"),
    pytest.param(lambda p: p, "is a folder", id="directory"),
    pytest.param(_text_as_wav, r"notes\.wav: not a readable audio file", id="not-audio"),
    pytest.param(_empty_wav, r"empty\.wav: 0 samples", id="zero-samples"),
    pytest.param(_nan_wav, r"nan\.wav: 1 non-finite .* at 0\.050 s", id="nan"),
    pytest.param(
        lambda p: _write(p / "nine.wav", np.zeros((100, 9), np.float32)),
        r"nine\.wav: 9 channels, at most 8",
        id="nine-channels",
    ),
]


@pytest.mark.parametrize(("make", "match"), BAD_INPUTS)
def test_bad_inputs_raise_clear_errors(tmp_path, make, match):
    with pytest.raises(AudioError, match=match):
        load_audio(make(tmp_path))


def test_invalid_requested_rate(tmp_path):
    path = _write(tmp_path / "x.wav", np.zeros((100, 1), np.float32))
    with pytest.raises(AudioError, match="positive integer"):
        load_audio(path, sample_rate=0)


def test_save_round_trip_float_and_pcm(tmp_path, rng):
    audio = rng.uniform(-1, 1, (2, 2000)).astype(np.float32)
    save_audio(tmp_path / "out" / "f.wav", audio, 16000, subtype="FLOAT")
    back, _ = load_audio(tmp_path / "out" / "f.wav")
    np.testing.assert_array_equal(back, audio)
    save_audio(tmp_path / "p.wav", audio, 16000, subtype="PCM_16")
    back, _ = load_audio(tmp_path / "p.wav")
    np.testing.assert_allclose(back, audio, atol=1 / 32768)


def test_save_refuses_to_clip_and_bad_audio(tmp_path):
    loud = np.full((1, 100), 1.5, np.float32)
    with pytest.raises(AudioError, match="would clip in PCM_16"):
        save_audio(tmp_path / "loud.wav", loud, 16000)
    save_audio(tmp_path / "loud.wav", loud, 16000, subtype="FLOAT")  # allowed in float
    with pytest.raises(AudioError, match="NaN"):
        save_audio(tmp_path / "n.wav", np.full((1, 10), np.nan), 16000)
    with pytest.raises(AudioError, match="unknown audio extension"):
        save_audio(tmp_path / "x.aiff2", np.zeros((1, 10)), 16000)
    with pytest.raises(AudioError, match="not \\[channels"):
        save_audio(tmp_path / "x.wav", np.zeros((2, 3, 4)), 16000)


def test_save_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "keep.wav"
    save_audio(target, np.zeros((1, 100), np.float32), 16000)
    before = target.read_bytes()

    def failing_write(file, *args, **kwargs):
        open(file, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(sf, "write", failing_write)
    with pytest.raises(OSError, match="disk full"):
        save_audio(target, np.ones((1, 100), np.float32) * 0.5, 16000)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]  # no temp file left


@pytest.mark.parametrize(
    ("length", "chunk", "overlap"),
    [
        pytest.param(10000, 1024, 256, id="typical"),
        pytest.param(300, 1024, 256, id="shorter-than-chunk"),
        pytest.param(4096, 1024, 0, id="no-overlap-exact"),
        pytest.param(1024 + 768 * 3, 1024, 256, id="exact-fit"),
        pytest.param(5000, 1000, 999, id="max-overlap"),
    ],
)
def test_split_merge_identity(rng, length, chunk, overlap):
    x = rng.standard_normal((2, length)).astype(np.float32)
    chunks = split_chunks(x, chunk, overlap)
    assert chunks.shape == (2, chunk_count(length, chunk, overlap), chunk)
    np.testing.assert_allclose(merge_chunks(chunks, overlap, length), x, atol=1e-6)


def test_cross_fade_blends_processed_chunks():
    x = np.ones(3000)
    chunks = split_chunks(x, 1000, 200)
    scale = np.arange(1, chunks.shape[0] + 1, dtype=float)[:, None]
    merged = merge_chunks(chunks * scale, 200, 3000)
    # In the overlap of chunk 0 (x1) and chunk 1 (x2) the output rises monotonically from
    # one to the other: no clicks.
    region = merged[800:1000]
    assert np.all(np.diff(region) > 0) and region.min() > 1 and region.max() < 2
    with pytest.raises(ValueError, match="overlap < chunk"):
        split_chunks(x, 100, 100)
