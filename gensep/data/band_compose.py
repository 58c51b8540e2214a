"""Procedural songs for the rendered band set: a seeded plan and one `pretty_midi` object
per stem (vocals, drums, bass, other).

Songs are in 4/4 with 4-bar phrases over a looped chord progression. Times are in seconds,
pitches are MIDI note numbers. All randomness comes from the numpy Generator passed to
`compose_song`, so a song is a pure function of that generator's state.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pretty_midi

STEMS = ("vocals", "drums", "bass", "other")
TEMPO_BPM = (70.0, 150.0)
PHRASE_BARS = 4
RESOLUTION = 960  # MIDI ticks per beat: < 0.5 ms timing error at 150 bpm
BEND_RANGE_CENTS = 200.0  # General MIDI default pitch-bend range: +-2 semitones
BEND_HOP_S = 0.01  # vibrato pitch bends sit on the 10 ms F0 grid, so the truth is exact

PROGRESSIONS = {
    "major": ("I V vi IV", "I IV V IV", "vi IV I V", "I vi IV V", "I IV vi V", "ii V I I",
              "I bVII IV I", "I iii IV V"),
    "minor": ("i bVI bIII bVII", "i iv v i", "i bVII bVI bVII", "i iv bVII bIII",
              "i bVI iv V", "i bVI bVII i", "i iv i V"),
}  # fmt: skip
SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_DEGREES = {"i": 0, "ii": 2, "iii": 4, "iv": 5, "v": 7, "vi": 9, "vii": 11}
KEY_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")

# Voice oohs, synth voice, lead 6 (voice). Not 52 (choir aahs): in FluidR3_GM it is an
# ensemble patch whose pitch is off its MIDI note by -33..+7 cents across the range, which
# would make the F0 truth wrong.
VOCAL_PROGRAMS = (53, 54, 85)
VOCAL_RANGES = {"low": (52, 69), "high": (60, 77)}  # E3-A4 and C4-F5: singable
BASS_PROGRAMS = tuple(range(32, 40))
# (programs, patterns that suit them): keys, guitars, strings, synth pads.
OTHER_CHOICES = (
    (tuple(range(0, 8)), ("quarters", "half_notes", "charleston", "arpeggio", "offbeats")),
    (tuple(range(24, 32)), ("strum", "offbeats", "arpeggio", "quarters")),
    (tuple(range(48, 52)), ("pad", "half_notes")),
    (tuple(range(88, 96)), ("pad", "half_notes")),
)
# Comping rhythms in eighth-note steps of one bar: (step, length in steps).
OTHER_PATTERNS = {
    "pad": ((0, 8),), "half_notes": ((0, 4), (4, 4)), "charleston": ((0, 3), (3, 5)),
    "quarters": ((0, 2), (2, 2), (4, 2), (6, 2)), "offbeats": ((1, 1), (3, 1), (5, 1), (7, 1)),
    "strum": ((0, 2), (2, 1), (3, 2), (5, 1), (6, 2)),
    "arpeggio": tuple((step, 1) for step in range(8)),
}  # fmt: skip
# Bass lines in eighth-note steps: (step, length, chord member: R root, 5 fifth, O octave,
# 3 third, A chromatic approach to the next chord's root).
BASS_PATTERNS = {
    "whole": ((0, 8, "R"),), "quarters": ((0, 2, "R"), (2, 2, "R"), (4, 2, "R"), (6, 2, "R")),
    "root_fifth": ((0, 3, "R"), (3, 1, "R"), (4, 3, "5"), (7, 1, "R")),
    "eighths": tuple((step, 1, "R") for step in range(8)),
    "octaves": tuple((step, 1, "RO"[step % 2]) for step in range(8)),
    "walking": ((0, 2, "R"), (2, 2, "3"), (4, 2, "5"), (6, 2, "A")),
    "syncopated": ((0, 3, "R"), (3, 3, "R"), (6, 2, "5")),
}  # fmt: skip
# Drum grooves in 16th-note steps of one bar; X accent, x normal (GM percussion keys:
# 36 kick, 37 side stick, 38 snare, 42 closed hat, 44 pedal hat, 46 open hat, 51 ride).
DRUM_PATTERNS = {
    "rock": {36: "x.......x.x.....", 38: "....X.......X...", 42: "X.x.X.x.X.x.X.x."},
    "half_time": {36: "x.....x...x.....", 38: "........X.......", 42: "X.x.x.x.X.x.x.x."},
    "disco": {36: "X...X...X...X...", 38: "....X.......X...", 42: "x...x...x...x...",
              46: "..x...x...x...x."},
    "funk": {36: "x..x......x..x..", 38: "....X..x.x..X..x", 42: "XxxxXxxxXxxxXxxx"},
    "ride": {36: "x.......x..x....", 37: "....x.......x...", 44: "....x.......x...",
             51: "X...x.x.X...x.x."},
}  # fmt: skip
TOMS = (50, 48, 47, 45, 43, 41)  # high to low
CRASHES = (49, 57)


@dataclasses.dataclass
class Song:
    """A composed song.

    Attributes:
      plan: JSON-able settings (tempo, key, progression, programs, pans, patterns, ...).
      midi: {stem: PrettyMIDI} with one instrument each, lasting `seconds`.
      vocal_notes: float64 [notes, 3]: onset (s), offset (s), MIDI pitch; monophonic,
        sorted by onset.
      vocal_bends: float64 [events, 2]: time (s), pitch-bend value (-8192..8191 for
        -+BEND_RANGE_CENTS), sorted by time; each value holds until the next event.
      seconds: Song length (s); notes end by `seconds - tail` so releases can ring.
    """

    plan: dict
    midi: dict[str, pretty_midi.PrettyMIDI]
    vocal_notes: np.ndarray
    vocal_bends: np.ndarray
    seconds: float


def chord_of(numeral: str, tonic: int) -> tuple[int, tuple[int, ...]]:
    """A Roman numeral ("bVII", "iv") -> (root pitch class 0-11, triad intervals)."""
    name = numeral.removeprefix("b")
    root = (tonic + _DEGREES[name.lower()] - int(name != numeral)) % 12
    return root, (0, 4 if name.isupper() else 3, 7)


def compose_song(rng: np.random.Generator, seconds: float) -> Song:
    """Compose a song of `seconds` (s) from `rng`: settings, then one part per stem."""
    mode = str(rng.choice(list(SCALES)))
    family = int(rng.integers(len(OTHER_CHOICES)))
    plan = {
        "seconds": float(seconds), "tempo_bpm": round(float(rng.uniform(*TEMPO_BPM)), 2),
        "key": KEY_NAMES[int(rng.integers(12))], "mode": mode,
        "progression": str(rng.choice(PROGRESSIONS[mode])),
        "bars_per_chord": int(rng.choice([1, 1, 2])), "sevenths": bool(rng.random() < 0.3),
        "programs": {"vocals": int(rng.choice(VOCAL_PROGRAMS)), "drums": 0,
                     "bass": int(rng.choice(BASS_PROGRAMS)),
                     "other": int(rng.choice(OTHER_CHOICES[family][0]))},
        # Stereo placement, -1 left .. 1 right, applied after rendering (see band.py).
        "pans": {"vocals": round(float(rng.uniform(-0.1, 0.1)), 3),
                 "drums": round(float(rng.uniform(-0.25, 0.25)), 3),
                 "bass": round(float(rng.uniform(-0.1, 0.1)), 3),
                 "other": round(float(rng.choice([-1, 1]) * rng.uniform(0.3, 0.7)), 3)},
        "patterns": {"drums": str(rng.choice(list(DRUM_PATTERNS))),
                     "bass": str(rng.choice(list(BASS_PATTERNS))),
                     "other": str(rng.choice(OTHER_CHOICES[family][1]))},
        "vocal_range": str(rng.choice(list(VOCAL_RANGES))),
        "intro_bars": int(rng.integers(0, 3)) if seconds >= 15 else 0,
    }  # fmt: skip
    grid = _Grid(plan, seconds)
    vocals, notes, bends = _vocals(rng, plan, grid)
    parts = {"vocals": vocals, "drums": _drums(rng, plan, grid), "bass": _bass(rng, plan, grid)}
    parts["other"] = _other(rng, plan, grid)
    midi = {}
    for stem, instrument in parts.items():
        # A last no-op event (pan centre, the default) makes the file, and so the render,
        # at least `seconds` long.
        instrument.control_changes.append(pretty_midi.ControlChange(10, 64, seconds))
        midi[stem] = pretty_midi.PrettyMIDI(resolution=RESOLUTION, initial_tempo=plan["tempo_bpm"])
        midi[stem].instruments.append(instrument)
    return Song(plan, midi, notes, bends, float(seconds))


class _Grid:
    """Song time: bars of 4 beats from 0 s; events are kept only before the cutoff."""

    def __init__(self, plan: dict, seconds: float) -> None:
        self.beat = 60.0 / plan["tempo_bpm"]
        self.seconds, self.cutoff = seconds, seconds - min(1.0, 0.1 * seconds)
        self.bars = max(1, int(np.ceil(self.cutoff / (4 * self.beat))))
        self.intro = plan["intro_bars"]
        tonic = KEY_NAMES.index(plan["key"])
        chords = [chord_of(n, tonic) for n in plan["progression"].split()]
        self.chords = [
            chords[(b // plan["bars_per_chord"]) % len(chords)] for b in range(self.bars)
        ]
        self.scale = {(tonic + step) % 12 for step in SCALES[plan["mode"]]}
        self.sevenths = plan["sevenths"]

    def time(self, bar: int, beats: float) -> float:
        return (4 * bar + beats) * self.beat

    def phrase_start(self, bar: int) -> bool:
        return bar == 0 or (bar >= self.intro and (bar - self.intro) % PHRASE_BARS == 0)

    def tones(self, bar: int) -> list[int]:
        """Chord pitch classes of a bar (root first; with a 7th in `sevenths` songs)."""
        root, triad = self.chords[min(bar, self.bars - 1)]
        tones = [(root + i) % 12 for i in triad]
        if self.sevenths:  # major 7th where the scale has it, else a minor (dominant) 7th
            major_seventh = triad[1] == 4 and (root + 11) % 12 in self.scale
            tones.append((root + (11 if major_seventh else 10)) % 12)
        return tones

    def add(self, part: pretty_midi.Instrument, pitch: int, start: float, end: float,
            velocity: float) -> None:  # fmt: skip
        if start < self.cutoff:
            velocity = int(np.clip(round(velocity), 1, 127))
            part.notes.append(pretty_midi.Note(velocity, int(pitch), start, min(end, self.cutoff)))


def _drums(rng: np.random.Generator, plan: dict, grid: _Grid) -> pretty_midi.Instrument:
    part = pretty_midi.Instrument(program=0, is_drum=True, name="drums")
    groove = DRUM_PATTERNS[plan["patterns"]["drums"]]
    step_s = grid.beat / 4
    for bar in range(grid.bars):
        hits: dict[int, list[tuple[int, float]]] = {s: [] for s in range(16)}
        for key, row in groove.items():
            for step, mark in enumerate(row):
                if mark != ".":
                    hits[step].append((key, (112 if mark == "X" else 84) - 12 * (step % 2)))
        if grid.phrase_start(bar):
            hits[0] = [(k, v) for k, v in hits[0] if k not in (42, 51)]
            hits[0] += [(int(rng.choice(CRASHES)), 110), (36, 110)]
        last_in_phrase = (bar - grid.intro) % PHRASE_BARS == PHRASE_BARS - 1
        if (last_in_phrase or bar == grid.intro - 1) and rng.random() < 0.75:
            first = int(rng.choice([12, 12, 8]))
            toms = rng.random() < 0.6
            for step in range(first, 16):
                key = TOMS[(step - first) * len(TOMS) // (16 - first)] if toms else 38
                hits[step] = [(key, 70 + 40 * (step - first) / (16 - first))]
        for step, keys in hits.items():
            start = grid.time(bar, step / 4) + float(np.clip(rng.normal(0, 0.003), -0.006, 0.006))
            for key, velocity in keys:
                grid.add(part, key, max(start, 0.0), start + step_s, velocity + rng.normal(0, 6))
    return part


def _bass(rng: np.random.Generator, plan: dict, grid: _Grid) -> pretty_midi.Instrument:
    part = pretty_midi.Instrument(program=plan["programs"]["bass"], name="bass")
    pattern, length = BASS_PATTERNS[plan["patterns"]["bass"]], rng.uniform(0.6, 0.95)
    eighth = grid.beat / 2
    for bar in range(grid.bars):
        tones = grid.tones(bar)
        root = 28 + (tones[0] - 4) % 12  # E1..D#2
        following = 28 + (grid.tones(bar + 1)[0] - 4) % 12
        member = {"R": root, "5": root + 7, "O": root + 12, "3": root + (tones[1] - tones[0]) % 12,
                  "A": following + int(rng.choice([-1, 1]))}  # fmt: skip
        for step, steps, name in pattern:
            start = grid.time(bar, step / 2)
            velocity = (100 if step % 2 == 0 else 85) + rng.normal(0, 5)
            grid.add(part, member[name], start, start + steps * eighth * length, velocity)
    return part


def _other(rng: np.random.Generator, plan: dict, grid: _Grid) -> pretty_midi.Instrument:
    part = pretty_midi.Instrument(program=plan["programs"]["other"], name="other")
    name = plan["patterns"]["other"]
    legato = 1.0 if name in ("pad", "half_notes") else rng.uniform(0.5, 0.9)
    eighth, previous = grid.beat / 2, [55, 60, 64]
    for bar in range(grid.bars):
        previous = _voicing(grid.tones(bar), previous)
        for index, (step, steps) in enumerate(OTHER_PATTERNS[name]):
            start = grid.time(bar, step / 2)
            end = start + steps * eighth * legato
            velocity = (88 if step % 2 == 0 else 74) + rng.normal(0, 5)
            if name == "arpeggio":
                up_down = previous + previous[-2:0:-1]
                grid.add(part, up_down[index % len(up_down)], start, end, velocity)
                continue
            spread = 0.012 if name == "strum" else 0.0  # guitar strings strummed low to high
            for i, pitch in enumerate(previous):
                grid.add(part, pitch, start + i * spread, end, velocity - 4 * i)
    return part


def _voicing(tones: list[int], previous: list[int]) -> list[int]:
    """The close-position chord (lowest note in 52..63) nearest to the previous voicing."""
    candidates = []
    for inversion in range(len(tones)):
        order = tones[inversion:] + tones[:inversion]
        pitches = [52 + (order[0] - 52) % 12]
        for pc in order[1:]:
            pitches.append(pitches[-1] + (pc - pitches[-1]) % 12)
        candidates.append(pitches)
    return min(candidates, key=lambda c: sum(abs(a - b) for a, b in zip(c, previous)))  # noqa: B905


def _vocals(
    rng: np.random.Generator, plan: dict, grid: _Grid
) -> tuple[pretty_midi.Instrument, np.ndarray, np.ndarray]:
    """A sung-like line: two 2-bar phrases per 4 bars with breaths, chord tones on strong
    beats, steps between, a long note closing each phrase; delayed vibrato by pitch bend."""
    part = pretty_midi.Instrument(program=plan["programs"]["vocals"], name="vocals")
    low, high = VOCAL_RANGES[plan["vocal_range"]]
    notes: list[tuple[float, float, int]] = []
    pitch, direction = (low + high) // 2, 1
    cells = ((1.0,), (0.5, 0.5), (1.5, 0.5), (2.0,), (0.5, 1.0, 0.5)) if grid.beat > 0.5 else (
        (1.0,), (1.0,), (1.5, 0.5), (2.0,), (0.5, 0.5))  # fmt: skip
    legato = rng.uniform(0.85, 0.97)
    for bar in range(grid.intro, grid.bars, 2):
        if notes and rng.random() < 0.2:  # now and then an instrumental phrase
            continue
        begin = float(rng.choice([0.0, 0.5, 1.0]))
        end = begin + float(rng.choice([4.0, 5.0, 5.5, 6.0]))  # then a breath of >= 2 beats
        beats = begin
        while beats < end and grid.time(bar, beats) < grid.cutoff:
            for duration in cells[int(rng.integers(len(cells)))]:
                if beats >= end or grid.time(bar, beats) >= grid.cutoff:
                    break
                duration = max(duration, 1.0) if beats + duration >= end - 0.5 else duration
                tones = grid.tones(bar + int(beats // 4))
                pool = [p for p in range(low, high + 1) if p % 12 in grid.scale or p % 12 in tones]
                chord = [p for p in pool if p % 12 in tones]
                if beats % 1 == 0 or beats + duration >= end:
                    near = np.array([p for p in chord if abs(p - pitch) <= 7] or chord)
                    weights = 1.0 / (1.0 + np.abs(near - pitch - direction))
                    pitch = int(rng.choice(near, p=weights / weights.sum()))
                else:
                    index = int(np.argmin(np.abs(np.array(pool) - pitch)))
                    index += direction * int(rng.choice([1, 1, 2]))
                    pitch = pool[int(np.clip(index, 0, len(pool) - 1))]
                if pitch <= low + 2 or pitch >= high - 2 or rng.random() < 0.3:
                    direction = 1 if pitch <= low + 2 else -1 if pitch >= high - 2 else -direction
                start, stop = grid.time(bar, beats), grid.time(bar, beats + duration * legato)
                notes.append((start, min(stop, grid.cutoff), pitch))
                grid.add(part, pitch, start, stop, 96 + 10 * np.sin(np.pi * beats / 8))
                beats += duration
    notes_array = np.array(notes, dtype=np.float64).reshape(-1, 3)
    bends = _vibrato(rng, notes_array, grid.seconds)
    part.pitch_bends = [pretty_midi.PitchBend(int(v), float(t)) for t, v in bends]
    return part, notes_array, bends


def _vibrato(rng: np.random.Generator, notes: np.ndarray, end_s: float) -> np.ndarray:
    """Pitch-bend events [events, 2] (time s, value): vibrato starting 0.2 s into each note
    of 0.35 s or more (fading in over 0.15 s), held through its release until the next note.
    Events sit on multiples of BEND_HOP_S and are written only where the value changes."""
    rate_hz, depth = rng.uniform(4.5, 6.5), rng.uniform(15.0, 40.0)  # depth in cents
    events: list[tuple[float, int]] = []
    for i, (onset, offset, _) in enumerate(notes):
        until = notes[i + 1, 0] if i + 1 < len(notes) else end_s
        frames = np.arange(np.floor(onset / BEND_HOP_S) + 1, np.ceil(until / BEND_HOP_S))
        times = np.concatenate([[onset], frames * BEND_HOP_S])  # each note starts unbent
        since = times - onset - 0.2
        cents = depth * np.clip(since / 0.15, 0, 1) * np.sin(2 * np.pi * rate_hz * since)
        if offset - onset < 0.35:
            cents[:] = 0.0
        values = np.clip(np.round(cents / BEND_RANGE_CENTS * 8192), -8192, 8191).astype(int)
        for time, value in zip(times, values, strict=True):
            if not events or value != events[-1][1]:
                events.append((float(time), int(value)))
    return np.array(events, dtype=np.float64).reshape(-1, 2)
