"""Score-to-recording alignment against recordings rendered here from known notes, with a
known offset and tempo (and, where present, Bach10's real recordings and note onsets)."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gensep.errors import AudioError, GensepError
from gensep.f0 import Alignment, ScoreError, ScoreMismatchError, align_score, from_score
from gensep.f0.align import ANALYSIS_RATE, FEATURE_HOP, MIN_SIMILARITY
from gensep.f0.score import notes_to_f0

ROOT = Path(__file__).resolve().parents[2]
BACH10 = ROOT.parent / "shared" / "data" / "bach10"
RATE = 16000
HOP_S = FEATURE_HOP / ANALYSIS_RATE  # 46 ms, the alignment's time resolution
OFFSET_S, SCALE = 0.7, 1.1  # the rendering starts 0.7 s late and plays 1.1x slower
RANGES = {"soprano": (60, 79), "alto": (55, 72), "tenor": (48, 67), "bass": (36, 55)}


def random_piece(seed: int, n_chords: int = 24) -> dict[str, np.ndarray]:
    """{voice: notes [n, 3] (onset s, offset s, MIDI)}: random pitches in each voice's
    range on 0.4-0.8 s chords, after 1 s of silence (as a MIDI file often starts)."""
    rng = np.random.default_rng(seed)
    onsets = 1.0 + np.concatenate([[0.0], np.cumsum(rng.choice([0.4, 0.6, 0.8], n_chords))])
    return {
        voice: np.stack([onsets[:-1], onsets[1:], rng.integers(lo, hi + 1, n_chords)], axis=1)
        for voice, (lo, hi) in RANGES.items()
    }


def score_tracks(piece: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The piece as `from_score` gives it: F0 on a 10 ms grid from 0 s to the last offset."""
    end = max(float(notes[:, 1].max()) for notes in piece.values())
    times = np.arange(int(np.ceil(end / 0.01)) + 1) * 0.01
    return {voice: (times, notes_to_f0(notes, times)) for voice, notes in piece.items()}


def render(piece: dict[str, np.ndarray], offset_s: float, scale: float) -> np.ndarray:
    """float32 [samples] at RATE: each voice four harmonics (amplitude 1/h) of its note's
    F0, score time s sounding at audio time offset_s + scale * s, 1 s of silence after."""
    end = max(float(notes[:, 1].max()) for notes in piece.values())
    audio_t = np.arange(round((offset_s + scale * end + 1.0) * RATE)) / RATE
    score_t = (audio_t - offset_s) / scale
    out = np.zeros_like(audio_t)
    for notes in piece.values():
        f0 = notes_to_f0(notes, score_t)
        phase = 2 * np.pi * np.cumsum(f0) / RATE  # radians; float64 over a few seconds
        out += sum(np.sin(h * phase) / h for h in range(1, 5)) * (f0 > 0)
    return (0.1 * out).astype(np.float32)


@pytest.fixture(scope="module")
def piece():
    return random_piece(seed=1)


@pytest.fixture(scope="module")
def recording(piece):
    return render(piece, OFFSET_S, SCALE)


@pytest.mark.parametrize("warp", ["path", "global"])
def test_recovers_known_offset_and_tempo(piece, recording, warp):
    tracks, alignment = align_score(score_tracks(piece), recording, RATE, warp=warp)
    assert isinstance(alignment, Alignment)
    # The path is on a 46 ms grid: the line through it is good to a fraction of a hop (seeds
    # 1-6 measured: offset error 12-24 ms, scale error < 0.2 %); over the 14 s score a 1-hop
    # error at one end would tilt the scale by 0.3 %.
    assert abs(alignment.offset_s - OFFSET_S) < HOP_S
    assert abs(alignment.scale - SCALE) < 0.005
    assert alignment.similarity > MIN_SIMILARITY
    assert alignment.residual_s < HOP_S  # measured 25-28 ms
    seconds = recording.size / RATE
    for voice, (times, hz) in tracks.items():
        assert np.all(np.diff(times) > 0) and times.min() >= 0 and times.max() <= seconds
        # the note the rendering plays at each aligned frame (closed-form mapping back)
        truth = notes_to_f0(piece[voice], (times - OFFSET_S) / SCALE)
        voiced = hz > 0
        assert voiced.sum() > 0.9 * np.count_nonzero(truth)
        # frames within a hop of a note change may land on the neighbour note
        assert np.mean(np.isclose(hz[voiced], truth[voiced], rtol=1e-6)) > 0.95


def test_stereo_is_averaged(piece, recording):
    stereo = np.stack([recording, recording])
    _, mono_fit = align_score(score_tracks(piece), recording, RATE)
    _, stereo_fit = align_score(score_tracks(piece), stereo, RATE)
    assert stereo_fit.offset_s == pytest.approx(mono_fit.offset_s, abs=1e-6)
    assert stereo_fit.scale == pytest.approx(mono_fit.scale, abs=1e-6)


def test_another_piece_is_a_mismatch(piece, recording):
    other = score_tracks(random_piece(seed=2))
    message = rf"similarity 0\.\d+ .*threshold {MIN_SIMILARITY:.3f}"
    with pytest.raises(ScoreMismatchError, match=message):
        align_score(other, recording, RATE)
    # and it is a ScoreError: the command line reports it as one
    assert issubclass(ScoreMismatchError, ScoreError)
    _, alignment = align_score(other, recording, RATE, min_similarity=0.0)
    assert alignment.similarity < MIN_SIMILARITY


@pytest.mark.skipif(not BACH10.is_dir(), reason="Bach10 not present")
def test_bach10_own_score_aligns_and_another_chorale_does_not():
    name, other = "01-AchGottundHerr", "02-AchLiebenChristen"
    audio, rate = sf.read(str(BACH10 / name / f"{name}.flac"), dtype="float32")
    _, alignment = align_score(from_score(BACH10 / name / f"{name}.mid"), audio, rate)
    notes = np.loadtxt(BACH10 / name / f"{name}.txt")[:, :2] / 1000.0  # audio s, score s
    error = np.abs(alignment.to_audio(notes[:, 1]) - notes[:, 0])
    assert np.median(error) < 2 * HOP_S  # measured 32 ms
    with pytest.raises(ScoreMismatchError):
        align_score(from_score(BACH10 / other / f"{other}.mid"), audio, rate)


@pytest.mark.parametrize(
    "audio, error",
    [
        pytest.param(np.zeros(RATE * 10, np.float32), AudioError, id="silent"),
        pytest.param(np.full(RATE * 10, np.nan, np.float32), AudioError, id="nan"),
        pytest.param(np.zeros(0, np.float32), AudioError, id="empty"),
        pytest.param(np.zeros((2, 2, 100), np.float32), AudioError, id="3-d"),
    ],
)
def test_bad_audio(piece, audio, error):
    with pytest.raises(error):
        align_score(score_tracks(piece), audio, RATE)


def test_recording_far_too_short_for_the_score(piece, recording):
    with pytest.raises(ScoreMismatchError, match="too short"):
        align_score(score_tracks(piece), recording[: 3 * RATE], RATE)


@pytest.mark.parametrize(
    "tracks",
    [
        pytest.param({}, id="no tracks"),
        pytest.param({"soprano": (np.arange(100) * 0.01, np.zeros(100))}, id="all rests"),
        pytest.param({"soprano": (np.arange(3) * 0.01, np.ones(4))}, id="ragged"),
    ],
)
def test_bad_tracks(recording, tracks):
    with pytest.raises(ScoreError):
        align_score(tracks, recording, RATE)


def test_errors_are_gensep_errors():
    assert issubclass(ScoreMismatchError, GensepError) and issubclass(AudioError, GensepError)
