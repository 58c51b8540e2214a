"""From a chorale score to what the synthesiser is sent, and the F0 truth that follows.

Each voice becomes one-channel MIDI files (`write_voice_midi`): program change, pitch-bend
range set explicitly to +-2 semitones through RPN 0 (the GM default, sent anyway), a
shorter release, notes, and a pitch-bend message every `BEND_STEP_S` carrying the voice's
constant detune plus a sinusoidal vibrato (`bend_curve`). The F0 truth built from the same
values is in `choir_f0`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import mido  # installed with pretty_midi; written directly to control event order
import numpy as np

VOICES = ("soprano", "alto", "tenor", "bass")
# General MIDI programs (0-based) each voice draws from. "voice": choir aahs, voice oohs,
# synth voice. "woodwind" (harder, as in Bach10): violin, oboe / clarinet, oboe, alto sax /
# tenor sax, clarinet / bassoon, cello. No flute: its samples are 10-20 cents sharp in
# both soundfonts, which would make the "pitch sent" F0 truth wrong by as much.
PROGRAMS = {
    "voice": {voice: (52, 53, 54) for voice in VOICES},
    "woodwind": {"soprano": (40, 68), "alto": (71, 68, 65), "tenor": (66, 71), "bass": (70, 42)},
}
# Plausible MIDI ranges: a transposition may not push a voice past these (nor further
# past them than the score already goes).
RANGES = {"soprano": (60, 81), "alto": (53, 74), "tenor": (48, 69), "bass": (40, 62)}
TEMPO_BPM = (60.0, 100.0)  # quarter notes per minute
TRANSPOSE = (-3, 3)  # semitones
VELOCITY = (70, 110)  # per voice; each phrase then moves it by up to PHRASE_VELOCITY
PHRASE_VELOCITY = 12
DETUNE_CENTS = 8.0  # constant per voice, uniform in +-DETUNE_CENTS
VIBRATO_HZ = (4.5, 6.5)
VIBRATO_CENTS = (10.0, 40.0)  # peak deviation
BEND_RANGE_SEMITONES = 2
BEND_STEP_S = 0.005
TAIL_S = 2.0  # MIDI files run this long past the last note-off so releases ring out
TICKS_PER_SECOND = 2000  # 1000 ticks per beat at the MIDI default 120 bpm
BEND_STEPS_PER_CENT = 8192 / (100 * BEND_RANGE_SEMITONES)  # 14-bit bend steps per cent
# Release shortened for clean legato (the soundfonts' voice releases ring up to 1 s): a
# SoundFont 2.01 NRPN offset of the volume-envelope release; FluidSynth doubles the data,
# so -1600 is -3200 timecents, release x 0.16 (FluidR3 choir aahs: 0.97 s -> 0.14 s to -40 dB).
RELEASE_NRPN = -1600


@dataclasses.dataclass(frozen=True)
class VoicePlan:
    """How one voice is played (all drawn per track; see `plan_track`)."""

    program: int  # General MIDI program, 0-based
    phrase_velocity: tuple[int, ...]  # MIDI velocity of each phrase
    detune_cents: float
    vibrato_hz: float
    vibrato_cents: float  # peak deviation
    vibrato_phase: float  # radians at t = 0


@dataclasses.dataclass(frozen=True)
class TrackPlan:
    tempo_bpm: float  # quarter notes per minute
    transpose: int  # semitones, all voices
    voices: dict[str, VoicePlan]


def settings() -> dict:
    """The rendering settings of this module, for dataset metadata."""
    return {
        "programs": PROGRAMS,
        "ranges_midi": RANGES,
        "tempo_bpm_range": TEMPO_BPM,
        "transpose_range": TRANSPOSE,
        "velocity_range": VELOCITY,
        "phrase_velocity_move": PHRASE_VELOCITY,
        "detune_cents_max": DETUNE_CENTS,
        "vibrato_hz_range": VIBRATO_HZ,
        "vibrato_cents_range": VIBRATO_CENTS,
        "pitch_bend_range_semitones": BEND_RANGE_SEMITONES,
        "pitch_bend_set_by": "RPN 0 at t=0",
        "pitch_bend_step_s": BEND_STEP_S,
        "release_nrpn_120_38": RELEASE_NRPN,
        "note_split": "each voice rendered as two MIDI files (odd / even notes), summed",
    }


def score_notes(path: str | Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Read a four-part chorale (parts in S, A, T, B order) into monophonic note lists.

    Ties are merged and grace notes dropped. A part is monophonic: of a chord, or of notes
    starting together, the top note is kept; a note that overlaps the next is cut at the
    next onset.

    Returns:
      ({voice: float [notes, 3] (onset, offset in quarter notes; MIDI pitch)},
       phrase ends: float [phrases - 1], quarter-note offsets where a soprano fermata ends).
    """
    from music21 import converter, expressions

    score = converter.parse(str(path))
    notes, fermata_ends = {}, []
    for voice, part in zip(VOICES, score.parts, strict=True):
        rows = []
        for note in part.stripTies().flatten().notes:
            if note.duration.isGrace:
                continue
            onset, offset = float(note.offset), float(note.offset + note.quarterLength)
            rows.append((onset, offset, max(p.midi for p in note.pitches)))
            if voice == "soprano" and any(
                isinstance(e, expressions.Fermata) for e in note.expressions
            ):
                fermata_ends.append(offset)
        notes[voice] = monophonic(np.asarray(rows, np.float64).reshape(-1, 3))
    end = max(float(n[-1, 1]) for n in notes.values() if len(n))
    return notes, np.unique([e for e in fermata_ends if e < end])


def monophonic(notes: np.ndarray) -> np.ndarray:
    """Keep the top note of simultaneous onsets and cut overlaps: [n, 3] -> [m, 3]."""
    notes = notes[np.lexsort((-notes[:, 2], notes[:, 0]))]
    keep = np.ones(len(notes), bool)
    keep[1:] = notes[1:, 0] > notes[:-1, 0]
    notes = notes[keep].copy()
    notes[:-1, 1] = np.minimum(notes[:-1, 1], notes[1:, 0])
    return notes


def plan_track(
    notes: Mapping[str, np.ndarray], phrases: int, programs: str, rng: np.random.Generator
) -> TrackPlan:
    """Draw a track's tempo, transposition and per-voice program, dynamics, detune and
    vibrato from `rng` (the draws are made in a fixed order: reproducible)."""
    tempo = float(rng.uniform(*TEMPO_BPM))
    allowed = [t for t in range(TRANSPOSE[0], TRANSPOSE[1] + 1) if _fits(notes, t)]
    transpose = int(rng.choice(allowed))
    voices = {}
    for voice in VOICES:
        base = int(rng.integers(VELOCITY[0], VELOCITY[1] + 1))
        moves = rng.integers(-PHRASE_VELOCITY, PHRASE_VELOCITY + 1, phrases)
        voices[voice] = VoicePlan(
            program=int(rng.choice(PROGRAMS[programs][voice])),
            phrase_velocity=tuple(int(v) for v in np.clip(base + moves, 1, 127)),
            detune_cents=round(float(rng.uniform(-DETUNE_CENTS, DETUNE_CENTS)), 3),
            vibrato_hz=round(float(rng.uniform(*VIBRATO_HZ)), 3),
            vibrato_cents=round(float(rng.uniform(*VIBRATO_CENTS)), 3),
            vibrato_phase=round(float(rng.uniform(0, 2 * np.pi)), 4),
        )
    return TrackPlan(round(tempo, 2), transpose, voices)


def _fits(notes: Mapping[str, np.ndarray], transpose: int) -> bool:
    """True when no voice goes past its RANGES (or past where the score already goes)."""
    for voice, (low, high) in RANGES.items():
        pitches = notes[voice][:, 2]
        if len(pitches) and (
            pitches.min() + transpose < min(low, pitches.min())
            or pitches.max() + transpose > max(high, pitches.max())
        ):
            return False
    return True


def timed_notes(notes: np.ndarray, plan: TrackPlan) -> np.ndarray:
    """Quarter-note score -> float [n, 3] (onset s, offset s, MIDI pitch), transposed, with
    times on the MIDI tick grid (what the synthesiser actually gets)."""
    seconds = notes[:, :2] * 60.0 / plan.tempo_bpm
    ticks = np.round(seconds * TICKS_PER_SECOND) / TICKS_PER_SECOND
    return np.column_stack([ticks, notes[:, 2] + plan.transpose])


def bend_curve(
    voice: VoicePlan,
    end_s: float,
    notes_s: np.ndarray | None = None,
    tuning: Mapping[int, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Pitch-bend messages, one every BEND_STEP_S from 0 to `end_s`.

    The bend is the voice's detune plus its vibrato, minus the soundfont's measured tuning
    error of the key last struck (`tuning`, cents; see `choir_f0.key_tuning`), so that the
    note sounds at the intended pitch.

    Args:
      voice: The voice's plan (detune, vibrato).
      end_s: Last message time (s).
      notes_s: float [n, 3] (onset s, offset s, MIDI pitch) the bend applies to; with
        `tuning`, the correction of the last note started (the first before any).
      tuning: {MIDI key: cents the soundfont sounds sharp}; None: no correction.

    Returns:
      (times s [m], values int [m]): 14-bit bend values, -8192..8191 (0 = no bend).
    """
    step = round(BEND_STEP_S * TICKS_PER_SECOND)
    times = np.arange(0, round(end_s * TICKS_PER_SECOND) + 1, step) / TICKS_PER_SECOND
    cents = voice.detune_cents + voice.vibrato_cents * np.sin(
        2 * np.pi * voice.vibrato_hz * times + voice.vibrato_phase
    )
    if tuning and notes_s is not None and len(notes_s):
        last = np.maximum(np.searchsorted(notes_s[:, 0], times, side="right") - 1, 0)
        cents = cents - np.array([tuning.get(int(k), 0.0) for k in notes_s[last, 2]])
    return times, np.clip(np.round(cents * BEND_STEPS_PER_CENT), -8192, 8191).astype(np.int64)


def write_voice_midi(
    path: str | Path,
    notes_s: np.ndarray,
    velocities: np.ndarray,
    program: int,
    bends: tuple[np.ndarray, np.ndarray],
    end_s: float,
) -> Path:
    """Write notes of one voice as a type-0 MIDI file on channel 0.

    At t = 0: the program, pitch-bend range (RPN 0) and a shorter release (SoundFont 2.01
    NRPN 120/38, see RELEASE_NRPN), then the bends and notes.

    Args:
      notes_s: float [n, 3] (onset s, offset s, MIDI pitch) from `timed_notes`.
      velocities: int [n], 1..127.
      program: General MIDI program (0-based).
      bends: (times s [m], values [m]) from `bend_curve`.
      end_s: End of the file (s); FluidSynth stops rendering soon after it.
    """
    release = 8192 + RELEASE_NRPN
    controls = (
        (101, 0), (100, 0), (6, BEND_RANGE_SEMITONES), (38, 0),  # RPN 0: bend range
        (99, 120), (98, 38), (6, release >> 7), (38, release & 127),  # NRPN: release
        (101, 127), (100, 127), (99, 127), (98, 127),  # deselect
    )  # fmt: skip
    events = [(0, 0, mido.Message("program_change", program=program))]
    events += [(0, 1, mido.Message("control_change", control=c, value=v)) for c, v in controls]
    events += [
        (round(t * TICKS_PER_SECOND), 2, mido.Message("pitchwheel", pitch=int(v)))
        for t, v in zip(*bends, strict=True)
    ]
    for (onset, offset, pitch), velocity in zip(notes_s, velocities, strict=True):
        on = mido.Message("note_on", note=int(pitch), velocity=int(velocity))
        off = mido.Message("note_off", note=int(pitch))
        # At equal ticks a note-off (3) goes before a note-on (4): repeated pitches re-sound.
        events.append((round(offset * TICKS_PER_SECOND), 3, off))
        events.append((round(onset * TICKS_PER_SECOND), 4, on))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    end = max(0, round(end_s * TICKS_PER_SECOND) - now)
    track.append(mido.MetaMessage("end_of_track", time=end))
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_SECOND // 2)
    midi.tracks.append(track)
    midi.save(str(path))
    return Path(path)
