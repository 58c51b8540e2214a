"""F0 tracks from a score: one monophonic track per part of a MIDI or MusicXML file.

Timing is the file's own: MIDI seconds through its tempo map (pretty_midi), MusicXML
quarter notes through its metronome marks (music21; 120 quarter notes per minute where
there is none). This suits a recording that follows the score's timing exactly (a
rendering of it, a performance to a click); a recording with its own tempo needs the
score aligned to it first.

Names: the parts' names where they are soprano/alto/tenor/bass (or S/A/T/B); four unnamed
parts are named soprano, alto, tenor, bass from the highest mean pitch down; other parts
keep their name, made file-safe, or `part<i>`.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from gensep.data.choir_score import monophonic
from gensep.data.track import F0Track
from gensep.errors import GensepError

HOP_S = 0.01
VOICES = ("soprano", "alto", "tenor", "bass")
MIDI_SUFFIXES = (".mid", ".midi")
MUSICXML_SUFFIXES = (".musicxml", ".xml", ".mxl")
_SHORT = {"s": "soprano", "a": "alto", "t": "tenor", "b": "bass"}


class ScoreError(GensepError):
    """A score that cannot be read, or that has no notes to follow."""


def from_score(path: str | Path, hop_s: float = HOP_S) -> dict[str, F0Track]:
    """{part name: (times s [frames], Hz [frames], 0 = unvoiced)} from a score file.

    Args:
      path: A MIDI (.mid/.midi) or MusicXML (.musicxml/.xml/.mxl) file.
      hop_s: Frame hop of the tracks (s); every track spans 0 to the score's last offset.

    Each part is made monophonic (the top note of a chord; a note overlapping the next is
    cut at its onset). Drum tracks and parts without notes are left out.

    Raises:
      ScoreError: an unreadable or unsupported file, or one without pitched notes.
    """
    path = Path(path)
    if not path.is_file():
        raise ScoreError(f"{path}: no such score file")
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        parts = _midi_parts(path)
    elif suffix in MUSICXML_SUFFIXES:
        parts = _musicxml_parts(path)
    else:
        raise ScoreError(
            f"{path}: unknown score type {suffix!r}; use MIDI ({', '.join(MIDI_SUFFIXES)}) or "
            f"MusicXML ({', '.join(MUSICXML_SUFFIXES)})"
        )
    parts = [(name, monophonic(notes)) for name, notes in parts if len(notes)]
    if not parts:
        raise ScoreError(f"{path}: no pitched notes in the score")
    end = max(float(notes[:, 1].max()) for _, notes in parts)
    times = np.arange(int(np.ceil(end / hop_s)) + 1) * hop_s
    names = part_names([name for name, _ in parts], [notes for _, notes in parts])
    tracks = [notes_to_f0(notes, times) for _, notes in parts]
    return {name: (times, f0) for name, f0 in zip(names, tracks, strict=True)}


def notes_to_f0(notes: np.ndarray, times: np.ndarray) -> np.ndarray:
    """F0 (Hz, 0 = silent) at `times` (s) of monophonic notes [n, 3] (onset s, offset s, MIDI)."""
    last = np.searchsorted(notes[:, 0], times, side="right") - 1
    index = np.maximum(last, 0)
    sounding = (last >= 0) & (times < notes[index, 1])
    return np.where(sounding, 440.0 * 2.0 ** ((notes[index, 2] - 69.0) / 12.0), 0.0)


def part_names(names: list[str], notes: list[np.ndarray]) -> list[str]:
    """Output names for the parts (see the module docstring)."""
    voices = [_voice(name) for name in names]
    if len(names) == 4 and not all(voices):
        mean_pitch = [float(np.mean(n[:, 2])) for n in notes]
        order = np.argsort(mean_pitch)[::-1]
        return [VOICES[int(np.flatnonzero(order == i)[0])] for i in range(4)]
    out: list[str] = []
    for i, (name, voice) in enumerate(zip(names, voices, strict=True)):
        safe = voice or re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_") or f"part{i + 1}"
        out.append(safe if safe not in out else f"{safe}_{i + 1}")
    return out


def _voice(name: str) -> str | None:
    key = re.sub(r"[^a-z]", "", name.lower())
    return _SHORT.get(key) or (key if key in VOICES else None)


def _midi_parts(path: Path) -> list[tuple[str, np.ndarray]]:
    import pretty_midi

    try:
        midi = pretty_midi.PrettyMIDI(str(path))
    except Exception as err:  # mido/pretty_midi raise many types on a broken file
        raise ScoreError(f"{path}: unreadable MIDI file ({type(err).__name__}: {err})") from err
    return [
        (
            inst.name,
            np.array([(n.start, n.end, n.pitch) for n in inst.notes], np.float64).reshape(-1, 3),
        )
        for inst in midi.instruments
        if not inst.is_drum
    ]


def _musicxml_parts(path: Path) -> list[tuple[str, np.ndarray]]:
    from music21 import converter

    try:
        score = converter.parse(str(path))
    except Exception as err:  # music21 raises its own and parser errors
        raise ScoreError(f"{path}: unreadable MusicXML ({type(err).__name__}: {err})") from err
    seconds = _seconds_of(score)
    parts = []
    for i, part in enumerate(score.parts):
        rows = [
            (float(seconds(n.offset)), float(seconds(n.offset + n.quarterLength)), p)
            for n in part.stripTies().flatten().notes
            if not n.duration.isGrace
            for p in [max(pitch.midi for pitch in n.pitches)]
        ]
        parts.append((part.partName or f"part{i + 1}", np.array(rows, np.float64).reshape(-1, 3)))
    return parts


def _seconds_of(score):
    """Quarter-note offset -> seconds, through the score's metronome marks."""
    marks = [
        (float(offset), float(mark.getQuarterBPM() or 120.0))
        for offset, _, mark in score.metronomeMarkBoundaries()
    ] or [(0.0, 120.0)]
    starts = np.array([o for o, _ in marks])
    spq = np.array([60.0 / bpm for _, bpm in marks])  # seconds per quarter note
    at = np.concatenate([[0.0], np.cumsum(np.diff(starts) * spq[:-1])])

    def seconds(offset: float) -> float:
        k = int(np.searchsorted(starts, float(offset), side="right") - 1)
        k = max(k, 0)
        return at[k] + (float(offset) - starts[k]) * spq[k]

    return seconds


__all__ = ["ScoreError", "from_score", "notes_to_f0", "part_names"]
