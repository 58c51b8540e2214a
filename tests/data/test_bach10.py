"""Bach10 from the shared data folder (never copied into the repository): names, rates,
F0 truth in Hz at the right times, stem voicing, mixture vs the sum of the stems."""

from pathlib import Path

import numpy as np
import pytest
import scipy.io
import soundfile as sf

from gensep.data import load_bach10
from gensep.data.bach10 import BACH10_SOURCES, _stem_voiced
from gensep.errors import DatasetError

# <repository>/../shared/data/bach10, found from this file (tests/data/test_bach10.py).
BACH10 = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bach10").resolve()
PIECE = "01-AchGottundHerr"
needs_bach10 = pytest.mark.skipif(
    not (BACH10 / PIECE).is_dir(), reason=f"Bach10 not found at {BACH10} (shared data)"
)


@pytest.fixture(scope="module")
def piece():
    (track,) = load_bach10(BACH10, pieces=[1], max_seconds=10.0)
    return track


@needs_bach10
def test_piece_names_rate_and_shapes(piece):
    assert piece.name == PIECE and piece.rate == 44100
    assert piece.source_names == ["violin", "clarinet", "saxophone", "bassoon"]
    assert piece.mixture.shape == (1, 441000) and piece.mixture.dtype == np.float32
    assert all(s.shape == (1, 441000) for s in piece.sources.values())
    saxophone, _ = sf.read(BACH10 / PIECE / f"{PIECE}-saxphone.flac", frames=441000)
    np.testing.assert_array_equal(piece.sources["saxophone"][0], saxophone.astype(np.float32))


@needs_bach10
def test_f0_in_hz_at_the_right_times(piece):
    midi = scipy.io.loadmat(BACH10 / PIECE / f"{PIECE}-GTF0s.mat")["GTF0s"]
    frame = 500  # 5.023 s, voiced in all four parts
    for row, name in enumerate(BACH10_SOURCES):
        times, hz = piece.f0[name]
        assert times[frame] == pytest.approx(0.023 + 0.010 * frame)
        assert midi[row, frame] > 0
        assert hz[frame] == pytest.approx(440.0 * 2 ** ((midi[row, frame] - 69) / 12))
        assert times[-1] < 10.0 <= times[-1] + 0.010  # frames cropped with the audio
        np.testing.assert_array_equal(hz == 0, midi[row, : hz.size] == 0)
    assert 350 < piece.f0["violin"][1][frame] < 1000  # a violin, not MIDI numbers
    assert 50 < piece.f0["bassoon"][1][frame] < 250


@needs_bach10
def test_mixture_is_the_sum_of_the_stems(piece):
    """The mixture is the stems' digital sum within 2 LSB of 16-bit (each file was rounded on
    its own), except where that sum passes full scale and the mixture clips: one sample of
    piece 01, at 1.94 s, where the sum is -1.0081 and the mixture -1.0."""
    total = sum(piece.sources.values())[0]
    error = np.abs(piece.mixture[0] - total)
    print(f"{PIECE} (first 10 s): max |mixture - sum of stems| = {error.max():.6f}")
    assert error.max() == pytest.approx(0.0080872, abs=1e-6)
    clipped = np.abs(total) > 1.0
    assert clipped.sum() == 1 and np.all(np.abs(piece.mixture[0][clipped]) == 1.0)
    assert error[~clipped].max() <= 2 / 32768 + 1e-7


@needs_bach10
def test_voicing_from_stems_only_removes_frames():
    (plain,) = load_bach10(BACH10, pieces=["01"], max_seconds=3.0)
    (masked,) = load_bach10(BACH10, pieces=[PIECE], max_seconds=3.0, voicing_from_stems=True)
    for name in BACH10_SOURCES:
        np.testing.assert_array_equal(masked.f0[name][0], plain.f0[name][0])
        kept = masked.f0[name][1] > 0
        assert np.all(plain.f0[name][1][kept] == masked.f0[name][1][kept])
        assert np.all(masked.f0[name][1][plain.f0[name][1] == 0] == 0)


def test_stem_voicing_threshold_on_a_synthetic_stem():
    rate = 1000
    audio = np.zeros((1, 3 * rate), np.float32)
    audio[0, :rate] = 1.0  # 0 dB
    audio[0, rate : 2 * rate] = 10 ** (-30 / 20)  # -30 dB: voiced
    audio[0, 2 * rate :] = 10 ** (-50 / 20)  # -50 dB: below the 40 dB floor
    voiced = _stem_voiced(audio, rate, np.array([0.5, 1.5, 2.5]))
    np.testing.assert_array_equal(voiced, [True, True, False])


def test_missing_root(tmp_path):
    with pytest.raises(DatasetError, match="no such Bach10 root"):
        load_bach10(tmp_path / "bach10")


def test_piece_missing_a_file(tmp_path):
    folder = tmp_path / "01-Piece"
    folder.mkdir()
    for suffix in ("", "-violin", "-clarinet", "-bassoon"):
        sf.write(folder / f"01-Piece{suffix}.flac", np.zeros(100), 44100)
    with pytest.raises(DatasetError, match=r"01-Piece: missing 01-Piece-saxphone\.flac, 01-P"):
        load_bach10(tmp_path)


@needs_bach10
def test_unknown_piece_lists_the_pieces():
    with pytest.raises(DatasetError, match=r"no Bach10 piece 11; there are \['01-AchGott"):
        load_bach10(BACH10, pieces=[11])
