"""Audio I/O against soundfile/numpy and closed-form signals; bad inputs; chunking."""

import re

import numpy as np
import pytest
import soundfile as sf

from gensep.audio import (
    MAX_CHANNELS,
    chunk_count,
    load_audio,
    merge_chunks,
    save_audio,
    split_chunks,
)
from gensep.errors import AudioError

HAS_MP3 = "MP3" in sf.available_formats()
needs_mp3 = pytest.mark.skipif(not HAS_MP3, reason="this libsndfile build cannot write MP3")


def _write(path, data, rate=16000, subtype="FLOAT"):
    """Write [samples, channels] `data` with soundfile directly (the reference writer)."""
    sf.write(path, data, rate, subtype=subtype)
    return path


def _sine(freq_hz, rate, seconds=1.0, amplitude=0.5):
    t = np.arange(round(seconds * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


# ---------------------------------------------------------------- load_audio


@pytest.mark.parametrize(
    ("name", "subtype", "atol"),
    [
        pytest.param("x.wav", "FLOAT", 0, id="wav-float"),
        pytest.param("x.wav", "PCM_16", 1 / 32768, id="wav-pcm16"),
        pytest.param("x.flac", "PCM_16", 1 / 32768, id="flac-pcm16"),
        pytest.param("x.flac", "PCM_24", 1 / 2**23, id="flac-pcm24"),
    ],
)
def test_load_matches_soundfile(tmp_path, rng, name, subtype, atol):
    data = rng.uniform(-0.9, 0.9, (1000, 2)).astype(np.float32)  # [N, C]
    path = _write(tmp_path / name, data, subtype=subtype)
    audio, rate = load_audio(path)
    assert rate == 16000 and audio.dtype == np.float32 and audio.shape == (2, 1000)
    assert audio.flags["C_CONTIGUOUS"]
    reference, _ = sf.read(path, dtype="float32", always_2d=True)
    np.testing.assert_array_equal(audio, reference.T)
    np.testing.assert_allclose(audio, data.T, atol=atol)  # only quantisation lost


def test_mono_is_the_channel_mean(tmp_path, rng):
    data = rng.uniform(-1, 1, (500, 3)).astype(np.float32)
    audio, _ = load_audio(_write(tmp_path / "m.wav", data), mono=True)
    assert audio.shape == (1, 500)
    np.testing.assert_allclose(audio[0], data.astype(np.float64).mean(axis=1), atol=1e-7)


@pytest.mark.parametrize(
    ("file_rate", "rate"),
    [
        pytest.param(44100, 16000, id="44k1-to-16k"),
        pytest.param(22050, 48000, id="22k05-to-48k"),
        pytest.param(48000, 44100, id="48k-to-44k1"),
    ],
)
def test_resampling_matches_closed_form_sinusoid(tmp_path, file_rate, rate):
    n = file_rate  # one second
    path = _write(tmp_path / "s.wav", _sine(440, file_rate), rate=file_rate)
    audio, got_rate = load_audio(path, sample_rate=rate)
    assert got_rate == rate and audio.dtype == np.float32
    assert abs(audio.shape[1] - round(n * rate / file_rate)) <= 1
    reference = 0.5 * np.sin(2 * np.pi * 440 * np.arange(audio.shape[1]) / rate)
    # The signal starts and stops abruptly, so the resampling filter rings for ~70 target
    # samples at each end; compare 50 ms inside, where only the filter's error remains.
    inner = slice(rate // 20, -(rate // 20))
    np.testing.assert_allclose(audio[0, inner], reference[inner], atol=1e-5)


def test_resampling_downmixes_first_and_same_rate_is_untouched(tmp_path, rng):
    data = rng.uniform(-0.5, 0.5, (4410, 2)).astype(np.float32)
    path = _write(tmp_path / "st.wav", data, rate=44100)
    same, rate = load_audio(path, sample_rate=np.int64(44100))
    assert rate == 44100
    np.testing.assert_array_equal(same, data.T)
    mono, _ = load_audio(path, sample_rate=16000, mono=True)
    assert mono.shape == (1, 1600)


@pytest.mark.parametrize(
    ("name", "subtype", "min_corr"),
    [
        pytest.param("r.flac", "PCM_24", None, id="flac"),
        pytest.param("r.ogg", None, 0.999, id="ogg-vorbis"),
        pytest.param("r.mp3", None, 0.999, id="mp3", marks=needs_mp3),
    ],
)
def test_codec_round_trip(tmp_path, name, subtype, min_corr):
    t = np.arange(44100) / 44100
    chirp = 0.5 * np.sin(2 * np.pi * (200 * t + 400 * t**2))  # 200 -> 1000 Hz
    audio = np.stack([chirp, _sine(660, 44100, amplitude=0.3)]).astype(np.float32)  # [2, N]
    save_audio(tmp_path / name, audio, 44100, subtype=subtype)
    back, rate = load_audio(tmp_path / name)
    assert rate == 44100 and back.shape[0] == 2
    if min_corr is None:  # lossless
        assert back.shape == audio.shape
        np.testing.assert_allclose(back, audio, atol=1 / 2**23)
        return
    # Lossy: samples change, but libsndfile trims the encoder delay, so they still line up
    # (a one-sample shift already drops the correlation to ~0.996).
    n = min(back.shape[1], audio.shape[1])
    for got, want in zip(back[:, :n], audio[:, :n], strict=True):
        assert np.corrcoef(got, want)[0, 1] > min_corr


def _text_as_wav(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a text file, not audio\n" * 20)
    return path


def _zero_frames(tmp_path):
    return _write(tmp_path / "empty.wav", np.zeros((0, 1), np.float32))


def _non_finite(tmp_path):
    data = np.zeros((1600, 2), np.float32)
    data[800, 1] = np.nan  # 0.050 s at 16 kHz
    data[1200, 0] = np.inf
    return _write(tmp_path / "nan.wav", data)


def _nine_channels(tmp_path):
    return _write(tmp_path / "nine.wav", np.zeros((100, MAX_CHANNELS + 1), np.float32))


def _folder(tmp_path):
    folder = tmp_path / "stems"
    folder.mkdir()
    return folder


@pytest.mark.parametrize(
    ("make", "name", "problem"),
    [
        pytest.param(lambda p: p / "missing.wav", "missing.wav", "no such file", id="missing"),
        pytest.param(_folder, "stems", "is a directory", id="directory"),
        pytest.param(_text_as_wav, "notes.wav", "not a readable audio file", id="not-audio"),
        pytest.param(_zero_frames, "empty.wav", "0 samples — is the file empty", id="empty"),
        pytest.param(
            _non_finite,
            "nan.wav",
            r"2 non-finite \(NaN/Inf\) samples, the first at 0\.050 s \(channel 1\)",
            id="nan-inf",
        ),
        pytest.param(_nine_channels, "nine.wav", "9 channels, more than the 8", id="9-channels"),
    ],
)
def test_bad_file_raises_naming_file_and_problem(tmp_path, make, name, problem):
    with pytest.raises(AudioError, match=f"{re.escape(name)}: {problem}"):
        load_audio(make(tmp_path))


def test_not_audio_keeps_the_soundfile_error_as_cause(tmp_path):
    with pytest.raises(AudioError) as info:
        load_audio(_text_as_wav(tmp_path))
    assert isinstance(info.value.__cause__, RuntimeError)


@pytest.mark.parametrize(
    "rate",
    [
        pytest.param(0, id="zero"),
        pytest.param(-16000, id="negative"),
        pytest.param(22050.5, id="fractional"),
        pytest.param(True, id="bool"),
        pytest.param("16000", id="string"),
    ],
)
def test_invalid_requested_rate(tmp_path, rate):
    path = _write(tmp_path / "ok.wav", np.zeros((100, 1), np.float32))
    with pytest.raises(AudioError, match=r"ok\.wav: requested sample rate .* not a positive"):
        load_audio(path, sample_rate=rate)


def test_too_short_to_resample(tmp_path):
    path = _write(tmp_path / "one.wav", np.zeros((1, 1), np.float32), rate=44100)
    with pytest.raises(AudioError, match=r"one\.wav: 1 samples .* too short to resample"):
        load_audio(path, sample_rate=16000)


# ---------------------------------------------------------------- save_audio


def test_float_round_trip_is_exact_and_creates_parents(tmp_path, rng):
    audio = rng.uniform(-1.5, 1.5, (2, 2000)).astype(np.float32)  # peaks > 1 are fine in FLOAT
    target = tmp_path / "a" / "b" / "f.wav"
    assert save_audio(target, audio, 16000, subtype="float") == target
    back, rate = load_audio(target)
    assert rate == 16000
    np.testing.assert_array_equal(back, audio)
    assert sorted(p.name for p in target.parent.iterdir()) == ["f.wav"]  # no temp file left


def test_pcm16_round_trip_within_one_step(tmp_path, rng):
    audio = rng.uniform(-1, 1, (2, 2000)).astype(np.float32)
    save_audio(tmp_path / "p.wav", audio, 16000)  # wav defaults to PCM_16
    assert sf.info(tmp_path / "p.wav").subtype == "PCM_16"
    back, _ = load_audio(tmp_path / "p.wav")
    np.testing.assert_allclose(back, audio, atol=1 / 32768)


def test_one_dimensional_audio_is_mono(tmp_path):
    audio = _sine(440, 8000)
    save_audio(tmp_path / "m.wav", audio, 8000, subtype="FLOAT")
    back, _ = load_audio(tmp_path / "m.wav")
    np.testing.assert_array_equal(back, audio[None])


@pytest.mark.parametrize(
    ("name", "subtype", "fix"),
    [
        pytest.param("loud.wav", None, 'subtype="FLOAT"', id="wav-default-pcm16"),
        pytest.param("loud.wav", "PCM_24", 'subtype="FLOAT"', id="wav-pcm24"),
        pytest.param("loud.flac", None, "write a .wav", id="flac-has-no-float"),
    ],
)
def test_refuses_to_clip_integer_formats(tmp_path, name, subtype, fix):
    loud = np.full((1, 100), 0.5, np.float32)
    loud[0, 10] = 1.5
    with pytest.raises(AudioError, match=rf"{re.escape(name)}: peak 1\.500 > 1\.0 would clip"):
        save_audio(tmp_path / name, loud, 16000, subtype=subtype)
    with pytest.raises(AudioError, match=re.escape(fix)):
        save_audio(tmp_path / name, loud, 16000, subtype=subtype)
    assert not (tmp_path / name).exists()


@pytest.mark.parametrize(
    ("name", "audio", "rate", "subtype", "match"),
    [
        pytest.param("x.aiff", np.zeros((1, 10)), 16000, None, r"\.flac, \.mp3", id="extension"),
        pytest.param("x.wav", np.zeros((2, 3, 4)), 16000, None, "not \\[channels", id="3-d"),
        pytest.param("x.wav", np.zeros((100, 2)), 16000, None, "transpose", id="samples-first"),
        pytest.param("x.wav", np.zeros((1, 0)), 16000, None, "0 samples", id="empty"),
        pytest.param("x.wav", np.full((1, 10), np.nan), 16000, None, "10 non-finite", id="nan"),
        pytest.param("x.wav", np.zeros((1, 10)), 0, None, "not a positive integer", id="rate-0"),
        pytest.param("x.wav", np.zeros((1, 10)), 16000, "VORBIS", "PCM_16, ", id="subtype"),
        pytest.param("x.wav", np.zeros((1, 10), complex), 16000, None, "complex", id="complex"),
    ],
)
def test_save_rejects_bad_input(tmp_path, name, audio, rate, subtype, match):
    with pytest.raises(AudioError, match=rf"{re.escape(name)}: .*{match}"):
        save_audio(tmp_path / name, audio, rate, subtype=subtype)
    assert list(tmp_path.iterdir()) == []


@needs_mp3
def test_libsndfile_refusal_is_an_audio_error(tmp_path):
    with pytest.raises(AudioError, match=r"x\.mp3: libsndfile refused .* 12345 Hz"):
        save_audio(tmp_path / "x.mp3", np.zeros((1, 1000)), 12345)
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic(tmp_path, monkeypatch):
    target = tmp_path / "keep.wav"
    save_audio(target, np.zeros((1, 100), np.float32), 16000)
    before = target.read_bytes()
    seen = []

    def failing_write(file, *args, **kwargs):
        seen.append(file)
        with open(file, "wb") as handle:  # a half-written file, then the disk fills up
            handle.write(before[:20])
        raise OSError("No space left on device")

    monkeypatch.setattr(sf, "write", failing_write)
    with pytest.raises(OSError, match="No space left"):
        save_audio(target, np.full((1, 100), 0.5, np.float32), 16000)
    assert len(seen) == 1 and seen[0] != target and seen[0].parent == target.parent
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.wav"]  # no temp file left


# ---------------------------------------------------------------- chunking


CHUNKINGS = [
    pytest.param(10000, 1024, 256, id="typical"),
    pytest.param(300, 1024, 256, id="shorter-than-chunk"),
    pytest.param(1, 64, 16, id="one-sample"),
    pytest.param(4096, 1024, 0, id="no-overlap-divisible"),
    pytest.param(4000, 1024, 0, id="no-overlap-ragged"),
    pytest.param(1024 + 768 * 3, 1024, 256, id="exact-fit"),
    pytest.param(1024, 1024, 256, id="exactly-one-chunk"),
    pytest.param(777, 100, 70, id="overlap-over-half"),
    pytest.param(5000, 1000, 999, id="max-overlap"),
]


@pytest.mark.parametrize(("length", "chunk", "overlap"), CHUNKINGS)
def test_split_matches_slicing_and_count_is_minimal(rng, length, chunk, overlap):
    x = rng.standard_normal((2, 3, length)).astype(np.float32)
    chunks = split_chunks(x, chunk, overlap)
    count = chunk_count(length, chunk, overlap)
    assert chunks.shape == (2, 3, count, chunk) and chunks.dtype == np.float32
    step = chunk - overlap
    # The fewest chunks that reach the end: one fewer would not, and there is at least one.
    assert (count - 1) * step + chunk >= length
    assert count == 1 or (count - 2) * step + chunk < length
    padded = np.concatenate([x, np.zeros((2, 3, count * chunk))], axis=-1)
    for i in range(count):
        np.testing.assert_array_equal(chunks[..., i, :], padded[..., i * step : i * step + chunk])


@pytest.mark.parametrize(("length", "chunk", "overlap"), CHUNKINGS)
def test_split_then_merge_is_identity(rng, length, chunk, overlap):
    x = rng.standard_normal((2, length)).astype(np.float32)
    merged = merge_chunks(split_chunks(x, chunk, overlap), overlap, length)
    assert merged.shape == x.shape and merged.dtype == np.float32
    np.testing.assert_allclose(merged, x, rtol=1e-6, atol=1e-6)


def test_cross_fade_is_linear_between_neighbours(rng):
    chunk, overlap, length = 1000, 200, 5000
    x = rng.uniform(0.5, 1.0, length)  # positive, so "between" is easy to state
    chunks = split_chunks(x, chunk, overlap)
    gains = rng.uniform(0.5, 2.0, chunks.shape[0])
    merged = merge_chunks(chunks * gains[:, None], overlap, length)
    step = chunk - overlap
    fade = (np.arange(overlap) + 0.5) / overlap  # how far into the next chunk we are
    for i in range(chunks.shape[0] - 1):
        region = slice((i + 1) * step, (i + 1) * step + overlap)
        expected = x[region] * ((1 - fade) * gains[i] + fade * gains[i + 1])
        np.testing.assert_allclose(merged[region], expected, rtol=1e-12)
        low, high = sorted(gains[i : i + 2])
        assert np.all(merged[region] >= low * x[region] - 1e-12)
        assert np.all(merged[region] <= high * x[region] + 1e-12)
    only_first = slice(0, step)  # covered by chunk 0 alone: no fading at the signal's start
    np.testing.assert_allclose(merged[only_first], gains[0] * x[only_first], rtol=1e-12)


@pytest.mark.parametrize(("length", "chunk", "overlap"), CHUNKINGS)
def test_merged_sample_lies_between_the_chunks_covering_it(rng, length, chunk, overlap):
    chunks = rng.standard_normal((chunk_count(length, chunk, overlap), chunk))
    merged = merge_chunks(chunks, overlap, length)
    step = chunk - overlap
    low = np.full(length, np.inf)
    high = np.full(length, -np.inf)
    for i, values in enumerate(chunks):  # reference: every chunk that covers each sample
        n = max(0, min(chunk, length - i * step))
        low[i * step : i * step + n] = np.minimum(low[i * step : i * step + n], values[:n])
        high[i * step : i * step + n] = np.maximum(high[i * step : i * step + n], values[:n])
    assert np.all(merged >= low - 1e-12) and np.all(merged <= high + 1e-12)


@pytest.mark.parametrize(
    ("chunk", "overlap"),
    [
        pytest.param(100, 100, id="overlap-equals-chunk"),
        pytest.param(100, -1, id="negative-overlap"),
        pytest.param(0, 0, id="empty-chunk"),
        pytest.param(100.0, 10, id="float-chunk"),
    ],
)
def test_invalid_chunking(chunk, overlap):
    with pytest.raises(ValueError, match="chunk"):
        split_chunks(np.zeros(1000), chunk, overlap)
    with pytest.raises(ValueError, match="chunk"):
        chunk_count(1000, chunk, overlap)


def test_merge_rejects_a_length_the_chunks_do_not_cover():
    with pytest.raises(ValueError, match=r"length 2000 is outside \[0, 1800\]"):
        merge_chunks(np.zeros((2, 1000)), 200, 2000)


def test_atomic_outputs_get_ordinary_permissions(tmp_path):
    import os

    from gensep import atomic

    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    written = atomic.write_text(tmp_path / "atomic.txt", "x")
    assert os.stat(written).st_mode & 0o777 == os.stat(plain).st_mode & 0o777
