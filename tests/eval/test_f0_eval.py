"""eval/f0.py: F0 scoring against closed-form truth, and the script end to end on a tiny
rendered layout dataset of harmonic tones."""

import csv
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from gensep.data.layout import write_track
from gensep.data.track import Track

EVAL = Path(__file__).resolve().parents[2] / "eval"
_spec = importlib.util.spec_from_file_location("eval_f0", EVAL / "f0.py")
eval_f0 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(eval_f0)

RATE = 16000
NOTE_S = 1.0
VOICES = ("soprano", "alto", "tenor", "bass")
# Per track, MIDI pitches per voice (high to low), one per NOTE_S; None = a rest.
CHORDS = {
    "one": [[72, 74, 76], [67, 69, 67], [64, 65, 60], [48, 50, 52]],
    "two": [[76, 74, 72], [69, 67, None], [60, 59, 57], [45, 43, 41]],
}


def hz(pitch):
    return 0.0 if pitch is None else 440.0 * 2.0 ** ((pitch - 69) / 12)


def tone(pitches):
    """Harmonic tone (8 partials, amplitude 0.7 ** (h - 1) / h, four fit in [-1, 1])."""
    f0 = np.repeat([hz(p) for p in pitches], round(NOTE_S * RATE))
    cycles = np.cumsum(f0) / RATE
    phase = 2 * np.pi * np.mod(np.arange(1, 9)[:, None] * cycles, 1.0)  # [8, samples]
    amplitude = 0.7 ** np.arange(8) / np.arange(1, 9)  # sums to 1.70
    return (amplitude @ np.sin(phase) / 8).astype(np.float32)[None]  # [1, samples]


def truth(pitches, times):
    return np.array([hz(pitches[min(int(t // NOTE_S), len(pitches) - 1)]) for t in times])


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("f0set")
    times = np.arange(0, 3 * NOTE_S, 0.01)
    for name, parts in CHORDS.items():
        sources = {voice: tone(p) for voice, p in zip(VOICES, parts, strict=True)}
        f0 = {voice: (times, truth(p, times)) for voice, p in zip(VOICES, parts, strict=True)}
        mixture = np.sum(list(sources.values()), axis=0)
        write_track(root, "test", Track(name, RATE, mixture, sources, f0))
    return root


def test_scores_of_known_estimates_on_another_time_grid():
    times = np.arange(0, 3.0, 0.01)
    ref = (times, truth([69, None, 72], times))  # A4, a 1 s rest, C5
    grid = np.arange(0, 3.0, 0.02) + 0.005  # the estimate's own frames
    same = eval_f0.melody_scores(ref, (grid, truth([69, None, 72], grid)))
    # Only the frames within a 20 ms estimate frame of a change can differ.
    assert same["rpa"] > 0.98 and same["vr"] > 0.98 and same["vfa"] < 0.03
    octave = eval_f0.melody_scores(ref, (grid, truth([81, None, 84], grid)))
    assert octave["rpa"] < 0.02 and octave["rca"] > 0.98
    semitone = eval_f0.melody_scores(ref, (grid, truth([70, None, 73], grid)))
    assert semitone["rpa"] < 0.02 and semitone["rca"] < 0.02
    always_voiced = eval_f0.melody_scores(ref, (grid, truth([69, 69, 72], grid)))
    assert always_voiced["vfa"] > 0.97 and always_voiced["vr"] > 0.98


def test_estimates_with_other_names_are_matched_by_pitch_rank():
    times = np.arange(0, 1.0, 0.01)
    ref = {"low": (times, np.full_like(times, 100.0)), "high": (times, np.full_like(times, 400.0))}
    estimate = {"v1": (times, np.full_like(times, 401.0)), "v2": (times, np.full_like(times, 99.0))}
    scores = eval_f0.score_voices(ref, ["high", "low"], estimate)
    assert scores["high"]["rpa"] == 1.0 and scores["low"]["rpa"] == 1.0
    # Less than 0.5 s unvoiced truth: no VFA.
    assert np.isnan(scores["high"]["vfa"])


def test_script_scores_truth_perfectly_and_salience_sensibly(dataset, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    argv = ["--methods", "true,salience", "--data", str(dataset), "--split", "test"]
    assert eval_f0.main([*argv, "--out", str(out)]) == 0
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 2 * 2 * 4  # methods x tracks x voices
    assert {r["voice"] for r in rows} == set(VOICES)
    for row in rows:
        scores = {m: float(row[m]) for m in eval_f0.METRICS}
        if row["method"] == "true":
            assert scores["rpa"] == scores["rca"] == scores["vr"] == scores["oa"] == 1.0
            # Only the alto of track "two" rests long enough for a false-alarm rate.
            resting = row["track"] == "two" and row["voice"] == "alto"
            assert scores["vfa"] == 0.0 if resting else np.isnan(scores["vfa"])
        assert float(row["audio_s"]) == pytest.approx(3 * NOTE_S)
    salience = {
        (r["track"], r["voice"]): float(r["rpa"]) for r in rows if r["method"] == "salience"
    }
    # Track "one" is right away from its note changes (measured 0.99-1.0 per voice): the
    # voices are matched to the truth's by name. In "two" every chord tone is a harmonic
    # of the bass, and the bass's octave outweighs the soprano: the upper three voices
    # slide down a line (measured soprano 0.33, alto 0, tenor 0.33, bass 1.0).
    assert all(salience["one", voice] > 0.95 for voice in VOICES)
    assert salience["two", "bass"] > 0.95
    assert 0.5 < np.mean(list(salience.values())) < 1.0
    table = capsys.readouterr().out
    assert "salience" in table and "mean" in table


def test_script_without_a_dataset_or_with_an_unknown_method_fails_cleanly(dataset, capsys):
    assert eval_f0.main(["--methods", "true"]) == 2
    assert eval_f0.main(["--methods", "magic", "--data", str(dataset)]) == 2
    err = capsys.readouterr().err
    assert "--data" in err and "unknown methods" in err


def test_score_without_a_score_file_is_skipped_with_a_note(dataset, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    argv = ["--methods", "true,score", "--data", str(dataset), "--max-tracks", "1"]
    assert eval_f0.main([*argv, "--out", str(out)]) == 0
    with open(out) as handle:
        assert {r["method"] for r in csv.DictReader(handle)} == {"true"}
    assert "no score file" in capsys.readouterr().err


def test_a_named_neural_model_is_its_own_method(dataset, tmp_path, capsys):
    from gensep.f0.neural import default_f0_model_path

    shipped = default_f0_model_path()
    out = tmp_path / "scores.csv"
    argv = ["--data", str(dataset), "--max-tracks", "1", "--out", str(out)]
    models = ["--neural-model", f"again={shipped}.npz"]
    assert eval_f0.main(["--methods", "neural,again", *models, *argv]) == 0
    with open(out) as handle:
        rows = list(csv.DictReader(handle))
    rpa = {(r["method"], r["voice"]): float(r["rpa"]) for r in rows}
    assert {method for method, _ in rpa} == {"neural", "again"}
    # the same file under another label: the same estimates, so the same scores
    assert all(rpa["again", voice] == rpa["neural", voice] for voice in VOICES)
    for bad, message in [
        ("again", "expected LABEL=PATH"),
        (f"salience={shipped}", "already a method"),
        (f"x={tmp_path / 'missing'}", "no model at"),
    ]:
        assert eval_f0.main(["--methods", "true", "--neural-model", bad, *argv]) == 2
        assert message in capsys.readouterr().err
