"""Salience multi-F0 against closed-form mixtures of harmonic tones with known pitch."""

import itertools
import math

import mir_eval
import numpy as np
import pytest

from gensep.errors import AudioError, GensepError
from gensep.f0.assign import joint_states
from gensep.f0.salience import salience_f0

RATE = 16000
NOTE_S = 0.75
# MIDI pitches per voice (soprano to bass), one per NOTE_S; None = a rest. Four-part
# chords within the SATB ranges, an octave between bass and tenor in the first, all four
# resting in the third.
VOICES = [
    [72, 74, None, 76, 77],
    [67, 69, None, 71, 69],
    [60, 62, None, 64, 60],
    [48, 50, None, 55, 53],
]
REST = (2 * NOTE_S, 3 * NOTE_S)
MARGIN_S = 0.08  # half the 128 ms window and a frame: frames this near a change see both


def hz(pitch):
    return 0.0 if pitch is None else 440.0 * 2.0 ** ((pitch - 69) / 12)


def harmonic_tone(pitches, rate=RATE, n_harmonics=8):
    """Sum of sines at the harmonics of each note (amplitude 0.7 ** (h - 1) / h), phase
    accumulated in cycles across notes so that note changes do not click."""
    f0 = np.repeat([hz(p) for p in pitches], round(NOTE_S * rate))  # [samples]
    cycles = np.cumsum(f0) / rate
    tone = sum(
        0.7 ** (h - 1) / h * np.sin(2 * np.pi * np.mod(h * cycles, 1.0))
        for h in range(1, n_harmonics + 1)
    )
    return np.where(f0 * n_harmonics < rate / 2, tone, 0.0) * (f0 > 0)


def truth(pitches, times):
    return np.array([hz(pitches[min(int(t // NOTE_S), len(pitches) - 1)]) for t in times])


@pytest.fixture(scope="module")
def chorale():
    mixture = sum(harmonic_tone(p) for p in VOICES) / 4
    return mixture.astype(np.float32), salience_f0(mixture.astype(np.float32), RATE)


def test_four_voices_raw_pitch_accuracy(chorale):
    _, tracks = chorale
    assert len(tracks) == 4
    for pitches, (times, est) in zip(VOICES, tracks, strict=True):
        ref = truth(pitches, times)
        ref_v, ref_c, est_v, est_c = mir_eval.melody.to_cent_voicing(times, ref, times, est)
        # Measured 0.99-1.0; the slack is for the frames within 64 ms of the 2 changes
        # between sounding notes, which see both. Away from any change, every frame.
        assert mir_eval.melody.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c) > 0.95
        near = np.abs(times[:, None] - NOTE_S * np.arange(1, 5)).min(axis=1) < MARGIN_S
        correct = (est_v > 0) & (np.abs(est_c - ref_c) < 50)
        assert np.all(correct[(ref_v > 0) & ~near])


def test_a_rest_of_all_voices_is_unvoiced(chorale):
    _, tracks = chorale
    for pitches, (times, est) in zip(VOICES, tracks, strict=True):
        inside = (times > REST[0] + MARGIN_S) & (times < REST[1] - MARGIN_S)
        assert np.all(est[inside] == 0)
        ref = truth(pitches, times)
        ref_v, _, est_v, _ = mir_eval.melody.to_cent_voicing(times, ref, times, est)
        recall, false_alarm = mir_eval.melody.voicing_measures(ref_v, est_v)
        assert recall > 0.97
        assert false_alarm < 2 * MARGIN_S / NOTE_S  # the rest's edges at most


@pytest.mark.parametrize("resting", [0, 1], ids=["upper-rests", "lower-rests"])
def test_a_voice_resting_alone_is_unvoiced_where_no_ghost_fits_its_range(resting):
    # Ranges two octaves apart: no octave or twelfth of the sounding voice falls in the
    # resting one's range. With overlapping ranges (SATB) a resting inner voice is given
    # another voice's octave instead: see the module doc.
    parts = [[81, 83, 81, 79], [40, 43, 45, 41]]
    parts[resting][1:3] = [None, None]
    mixture = (harmonic_tone(parts[0]) + harmonic_tone(parts[1])).astype(np.float32)
    tracks = salience_f0(mixture, RATE, n_voices=2, ranges=[(600.0, 1100.0), (70.0, 140.0)])
    times, est = tracks[resting]
    ref = truth(parts[resting], times)
    ref_v, _, est_v, _ = mir_eval.melody.to_cent_voicing(times, ref, times, est)
    recall, false_alarm = mir_eval.melody.voicing_measures(ref_v, est_v)
    assert recall > 0.9
    assert false_alarm < MARGIN_S / NOTE_S  # the rest's two edges, of its 1.5 s


def test_voices_are_ordered_high_to_low(chorale):
    _, tracks = chorale
    hz_all = np.array([est for _, est in tracks])  # [4, T]
    for upper, lower in itertools.pairwise(hz_all):
        both = (upper > 0) & (lower > 0)
        assert np.all(upper[both] > lower[both])
    times = tracks[0][0]
    assert all(np.array_equal(t, times) for t, _ in tracks)
    np.testing.assert_allclose(np.diff(times), 0.01)
    assert times[0] == 0 and times[-1] <= 5 * NOTE_S


def test_channels_are_averaged(chorale):
    mixture, tracks = chorale
    stereo = np.stack([mixture * 0.5, mixture * 1.5])  # mean = mixture
    for (_, a), (_, b) in zip(salience_f0(stereo, RATE), tracks, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4)


def test_other_rate_hop_and_two_voices_without_ranges():
    rate = 44100
    mixture = harmonic_tone([76, 74, 72], rate) + harmonic_tone([57, 55, 53], rate)
    tracks = salience_f0(mixture.astype(np.float32), rate, n_voices=2, hop_s=0.02)
    for pitches, (times, est) in zip([[76, 74, 72], [57, 55, 53]], tracks, strict=True):
        np.testing.assert_allclose(np.diff(times), 0.02)
        ref = truth(pitches, times)
        ref_v, ref_c, est_v, est_c = mir_eval.melody.to_cent_voicing(times, ref, times, est)
        assert mir_eval.melody.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c) > 0.9


@pytest.mark.parametrize(("n_voices", "n_candidates"), [(1, 6), (2, 3), (4, 6), (3, 2)])
def test_joint_states_are_every_ordered_assignment(n_voices, n_candidates):
    states = joint_states(n_voices, n_candidates)
    # Vandermonde: sum_j C(N, j) C(K, j) = C(N + K, N)
    assert len(states) == math.comb(n_voices + n_candidates, n_voices)
    assert len({tuple(s) for s in states}) == len(states)
    for state in states:
        voiced = state[state < n_candidates]
        assert np.all(np.diff(voiced) > 0)


@pytest.mark.parametrize(
    ("audio", "rate", "match"),
    [
        (np.zeros(RATE, np.float32), RATE, "silent"),
        (np.ones(100, np.float32), RATE, "too short"),
        (np.full(RATE, np.nan, np.float32), RATE, "NaN"),
        (np.ones((2, 2, RATE), np.float32), RATE, "shape"),
        (np.ones(RATE, np.float32), 16000.5, "integer"),
    ],
    ids=["silent", "short", "nan", "3d", "float-rate"],
)
def test_bad_audio_is_an_audio_error(audio, rate, match):
    with pytest.raises(AudioError, match=match):
        salience_f0(audio, rate)


@pytest.mark.parametrize(
    "kwargs",
    [{"n_voices": 0}, {"hop_s": 0.0}, {"ranges": [(100.0, 50.0)] * 4}, {"ranges": [(1, 2)]}],
    ids=["no-voices", "zero-hop", "inverted-range", "ranges-per-voice"],
)
def test_bad_arguments_are_gensep_errors(kwargs):
    audio = harmonic_tone([60, 62])
    with pytest.raises(GensepError):
        salience_f0(audio.astype(np.float32), RATE, **kwargs)
