"""The rendered band set: layout, exact stem sums, distinct stems, reproducibility, meta,
musdb compatibility and the vocal F0 truth."""

import hashlib
import json
from pathlib import Path

import librosa
import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from gensep.data.band import F0_HOP_S, render_band, vocal_f0
from gensep.data.band_compose import BASS_PROGRAMS, STEMS, VOCAL_RANGES, compose_song
from gensep.data.layout import read_f0_csv
from gensep.data.midi import RenderError, find_soundfont, fluidsynth_binary

SECONDS = 6.0
FILES = ["mixture.wav", *(f"{s}.wav" for s in STEMS), "vocals.f0.csv"]


def _render(root: Path, seed: int, n_train: int = 1, n_test: int = 1) -> dict:
    return render_band(root, n_train, n_test, seed=seed, min_seconds=SECONDS,
                       max_seconds=SECONDS, progress=False)  # fmt: skip


@pytest.fixture(scope="module")
def band(tmp_path_factory) -> tuple[Path, dict]:
    try:
        fluidsynth_binary(), find_soundfont("FluidR3_GM.sf2"), find_soundfont("TimGM6mb.sf2")
    except RenderError as err:
        pytest.skip(str(err))
    root = tmp_path_factory.mktemp("band")
    return root, _render(root, seed=3)


def _folders(root: Path) -> list[Path]:
    return [root / "train" / "band_train_000", root / "test" / "band_test_000"]


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_layout_stereo_pcm16(band):
    root, _ = band
    assert sorted(p.name for p in root.iterdir()) == ["meta.json", "test", "train"]
    for folder in _folders(root):
        assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
        for name in FILES[:-1]:
            info = sf.info(folder / name)
            assert (info.samplerate, info.channels, info.subtype) == (44100, 2, "PCM_16")
            assert info.frames == round(SECONDS * 44100)


def test_stems_sum_exactly_to_the_mixture_on_disk(band):
    root, meta = band
    for folder in _folders(root):
        mixture = sf.read(folder / "mixture.wav", dtype="int16")[0].astype(np.int64)
        stems = [sf.read(folder / f"{s}.wav", dtype="int16")[0].astype(np.int64) for s in STEMS]
        np.testing.assert_array_equal(np.sum(stems, axis=0), mixture)
        assert 0.5 * 32768 < np.abs(mixture).max() <= 0.9 * 32768
    assert meta["max_abs_error"] == 0.0
    assert all(track["max_abs_error"] == 0.0 for track in meta["tracks"].values())


def test_stems_are_audible_distinct_and_drums_are_transient(band):
    root, _ = band
    for folder in _folders(root):
        mono = {s: sf.read(folder / f"{s}.wav")[0].mean(axis=1) for s in STEMS}
        for stem, x in mono.items():
            assert np.sqrt(np.mean(x**2)) > 0.01, f"{folder.name}/{stem} is (nearly) silent"
        correlation = np.corrcoef(np.stack(list(mono.values())))
        assert np.abs(correlation - np.eye(len(STEMS))).max() < 0.9
        # Share of the energy in transients: the percussive part of a median-filter HPSS.
        # `other` is not compared: muted guitars and staccato keys are percussive too.
        share = {}
        for stem, x in mono.items():
            magnitude = np.abs(librosa.stft(x, n_fft=1024, hop_length=1024))  # small: fast
            harmonic, percussive = librosa.decompose.hpss(magnitude, kernel_size=17)
            share[stem] = (percussive**2).sum() / ((harmonic**2).sum() + (percussive**2).sum())
        assert share["drums"] > max(0.5, share["vocals"], share["bass"]), share


def test_channels_are_panned_apart(band):
    root, meta = band
    for folder in _folders(root):
        track = meta["tracks"][folder.name]
        other = sf.read(folder / "other.wav")[0]
        left, right = np.sqrt(np.mean(other**2, axis=0))
        pan = track["pans"]["other"]  # |pan| >= 0.3: >= 4 dB between the channels
        assert abs(20 * np.log10(left / right)) > 3 and (left > right) == (pan < 0)


def test_same_seed_gives_identical_bytes(band, tmp_path):
    root, _ = band
    _render(tmp_path, seed=3)
    assert _digests(tmp_path) == _digests(root)


def test_another_seed_gives_another_song(band, tmp_path):
    root, meta = band
    other = _render(tmp_path, seed=4, n_test=0)
    first, second = meta["tracks"]["band_train_000"], other["tracks"]["band_train_000"]
    assert {k: v for k, v in first.items() if k != "gain"} != second
    a = sf.read(root / "train" / "band_train_000" / "mixture.wav")[0]
    b = sf.read(tmp_path / "train" / "band_train_000" / "mixture.wav")[0]
    assert np.abs(np.corrcoef(a.mean(axis=1), b.mean(axis=1))[0, 1]) < 0.5


def test_meta_records_settings_and_soundfonts(band):
    root, meta = band
    assert json.loads((root / "meta.json").read_text()) == meta
    assert (meta["seed"], meta["sample_rate"], meta["stems"]) == (3, 44100, list(STEMS))
    fonts = meta["soundfonts"]
    assert (fonts["train"]["file"], fonts["test"]["file"]) == ("FluidR3_GM.sf2", "TimGM6mb.sf2")
    assert fonts["train"]["sha256"] != fonts["test"]["sha256"]
    assert all(len(font["sha256"]) == 64 for font in fonts.values())
    assert meta["fluidsynth"][0].isdigit()
    track = meta["tracks"]["band_test_000"]
    assert track["split"] == "test" and track["seconds"] == SECONDS
    assert 70 <= track["tempo_bpm"] <= 150 and track["programs"]["bass"] in BASS_PROGRAMS


def test_musdb_reads_the_test_split(band):
    musdb = pytest.importorskip("musdb")
    root, _ = band
    db = musdb.DB(root=str(root), is_wav=True, subsets="test")
    assert [t.name for t in db.tracks] == ["band_test_000"]
    track = db.tracks[0]
    assert set(STEMS) <= set(track.targets)
    folder = _folders(root)[1]
    np.testing.assert_array_equal(track.audio, sf.read(folder / "mixture.wav")[0])
    for stem in STEMS:
        audio = track.targets[stem].audio  # [samples, channels] float64
        np.testing.assert_array_equal(audio, sf.read(folder / f"{stem}.wav")[0])


def test_vocal_f0_file_follows_the_sung_pitch(band):
    root, _ = band
    for folder in _folders(root):
        times, hz = read_f0_csv(folder / "vocals.f0.csv")
        np.testing.assert_allclose(times, np.arange(len(times)) * F0_HOP_S, atol=1e-9)
        assert len(times) == round(SECONDS / F0_HOP_S)
        voiced = hz > 0
        assert 0.2 < voiced.mean() < 0.95
        low = librosa.midi_to_hz(min(r[0] for r in VOCAL_RANGES.values()) - 1)  # bends: < 1 st
        high = librosa.midi_to_hz(max(r[1] for r in VOCAL_RANGES.values()) + 1)
        assert np.all((hz[voiced] > low) & (hz[voiced] < high))
        # An independent estimate (YIN on the isolated stem) agrees within 50 cents on most
        # voiced frames; slow soundfont attacks and note changes account for the rest.
        audio, rate = sf.read(folder / "vocals.wav")
        estimate = librosa.yin(audio.mean(axis=1), fmin=120, fmax=900, sr=rate,
                               frame_length=2048, hop_length=441)[: len(hz)]  # fmt: skip
        cents = 1200 * np.abs(np.log2(estimate[voiced] / hz[voiced]))
        assert np.mean(cents < 50) > 0.7


def test_vocal_f0_rule_on_a_synthetic_note():
    rate = 8000
    t = np.arange(rate) / rate  # 1 s
    # A note 0.1-0.4 s, then a release decaying 60 dB per second: within 30 dB until 0.9 s.
    envelope = np.where(t < 0.1, 0.0, np.where(t < 0.4, 1.0, 10 ** (-3 * (t - 0.4))))
    audio = (envelope * np.sin(2 * np.pi * 440 * t))[None]
    notes = np.array([[0.1, 0.4, 69.0]])
    bends = np.array([[0.1, 0.0], [0.25, 4096.0]])  # +1 semitone from 0.25 s
    times, hz = vocal_f0(notes, bends, audio, rate)
    assert len(times) == 100
    voiced = np.flatnonzero(hz)
    assert voiced[0] == 10 and 88 <= voiced[-1] <= 90
    np.testing.assert_allclose(hz[10:25], 440.0)
    np.testing.assert_allclose(hz[25 : voiced[-1] + 1], 440.0 * 2 ** (1 / 12))
    # The next note's onset ends the previous release.
    times, hz = vocal_f0(np.array([[0.1, 0.4, 69.0], [0.6, 0.7, 72.0]]), bends, audio, rate)
    assert hz[59] == pytest.approx(440.0 * 2 ** (1 / 12))
    assert hz[60] == pytest.approx(440.0 * 2 ** (4 / 12))  # 72 + the bend still in force


def test_composition_is_seeded_and_singable():
    def song(seed: int):
        return compose_song(np.random.default_rng(seed), 12.0)

    a, b, c = song(5), song(5), song(6)
    assert a.plan == b.plan and np.array_equal(a.vocal_notes, b.vocal_notes)
    assert a.plan != c.plan
    for s in (a, c):
        assert list(s.midi) == list(STEMS)
        drums = s.midi["drums"].instruments[0]
        assert drums.is_drum and {36, 38} & {n.pitch for n in drums.notes}
        assert s.midi["bass"].instruments[0].program in BASS_PROGRAMS
        onsets, offsets, pitches = s.vocal_notes.T
        assert np.all(offsets > onsets) and np.all(offsets[:-1] <= onsets[1:])  # monophonic
        low, high = VOCAL_RANGES[s.plan["vocal_range"]]
        assert pitches.min() >= low and pitches.max() <= high
        for midi in s.midi.values():
            assert isinstance(midi, pretty_midi.PrettyMIDI)
            assert midi.get_end_time() == pytest.approx(12.0, abs=1e-3)


def test_existing_tracks_are_kept_and_other_settings_refused(band):
    root, meta = band
    mixture = _folders(root)[0] / "mixture.wav"
    before = mixture.stat().st_mtime_ns
    assert _render(root, seed=3) == meta
    assert mixture.stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="overwrite=True"):
        _render(root, seed=4)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(n_train=-1), "n_train"),
        (dict(n_test=1.5), "n_test"),
        (dict(n_train=0, n_test=0), "nothing to render"),
        (dict(seed=-2), "seed"),
        (dict(sample_rate=44100.0), "sample_rate"),
        (dict(sample_rate=4000), "sample_rate"),
        (dict(min_seconds=1), "min_seconds"),
        (dict(max_seconds=float("nan")), "max_seconds"),
        (dict(min_seconds=20, max_seconds=10), "swap"),
    ],
)
def test_bad_arguments_are_refused(tmp_path, kwargs, message):
    args = dict(n_train=1, n_test=0) | kwargs
    with pytest.raises(ValueError, match=message):
        render_band(tmp_path, progress=False, **args)
    assert not any(tmp_path.iterdir())
