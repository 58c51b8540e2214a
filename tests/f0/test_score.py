"""F0 tracks from MIDI and MusicXML scores against the closed-form pitch of their notes."""

import numpy as np
import pretty_midi
import pytest
from music21 import chord, note, stream, tempo

from gensep.f0 import ScoreError, from_score

# (part name, MIDI pitches), each note 1.5 quarter notes at 90 per minute = 1 s
PARTS = [("", [72, 74, 76]), ("", [48, 50, 52]), ("", [67, 69, 71]), ("", [64, 65, 67])]


def hz(pitch):
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def chorale(parts=PARTS, bpm=90):
    score = stream.Score()
    for name, pitches in parts:
        part = stream.Part()
        part.partName = name
        part.append(tempo.MetronomeMark(number=bpm))
        for p in pitches:
            part.append(note.Note(p, quarterLength=1.5) if np.isscalar(p) else chord.Chord(p))
        score.insert(0, part)
    return score


@pytest.mark.parametrize("fmt", ["musicxml", "midi"])
def test_unnamed_four_parts_become_satb_with_the_notes_pitch(tmp_path, fmt):
    path = tmp_path / ("a.musicxml" if fmt == "musicxml" else "a.mid")
    chorale().write(fmt, fp=path)
    tracks = from_score(path)
    # named from the highest mean pitch down, whatever the part order
    expected = {"soprano": PARTS[0][1], "bass": PARTS[1][1], "alto": PARTS[2][1]}
    expected["tenor"] = PARTS[3][1]
    assert sorted(tracks) == sorted(expected)
    for name, pitches in expected.items():
        times, f0 = tracks[name]
        for k, p in enumerate(pitches):
            inside = (times > k + 0.02) & (times < k + 0.98)  # clear of note edges
            np.testing.assert_allclose(f0[inside], hz(p), rtol=1e-12)
        assert np.all(f0[times > 3.02] == 0)


def test_named_parts_keep_their_names_and_chords_their_top_note(tmp_path):
    parts = [("Flute 1", [(72, 76, 79)]), ("S", [60]), ("Flute 1", [55])]
    path = tmp_path / "named.musicxml"
    chorale(parts, bpm=60).write("musicxml", fp=path)
    tracks = from_score(path)
    assert list(tracks) == ["flute_1", "soprano", "flute_1_3"]
    times, f0 = tracks["flute_1"]
    np.testing.assert_allclose(f0[(times > 0.1) & (times < 0.9)], hz(79))


def test_midi_tempo_map_sets_the_timing(tmp_path):
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    inst = pretty_midi.Instrument(0, name="Bass")
    inst.notes.append(pretty_midi.Note(90, 40, 0.5, 2.25))
    midi.instruments.append(inst)
    drums = pretty_midi.Instrument(0, is_drum=True)
    drums.notes.append(pretty_midi.Note(90, 36, 0.0, 4.0))
    midi.instruments.append(drums)
    midi.write(str(tmp_path / "b.mid"))
    tracks = from_score(tmp_path / "b.mid")
    assert list(tracks) == ["bass"]  # the drum track is left out
    times, f0 = tracks["bass"]
    np.testing.assert_allclose(f0[(times >= 0.5) & (times < 2.25)], hz(40))
    assert np.all(f0[(times < 0.5) | (times >= 2.25)] == 0)


def test_bad_scores_raise_clear_errors(tmp_path):
    (tmp_path / "x.mid").write_bytes(b"not a midi file")
    with pytest.raises(ScoreError, match="unreadable MIDI"):
        from_score(tmp_path / "x.mid")
    (tmp_path / "x.txt").write_text("C D E")
    with pytest.raises(ScoreError, match="unknown score type"):
        from_score(tmp_path / "x.txt")
    with pytest.raises(ScoreError, match="no such score"):
        from_score(tmp_path / "missing.mid")
    pretty_midi.PrettyMIDI().write(str(tmp_path / "empty.mid"))
    with pytest.raises(ScoreError, match="no pitched notes"):
        from_score(tmp_path / "empty.mid")
