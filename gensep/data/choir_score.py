"""From a chorale score to what the synthesiser is sent, and the F0 truth that follows.

Each voice becomes its own one-channel MIDI file: program change, pitch-bend range set
explicitly to +-2 semitones through RPN 0 (the GM default, sent anyway), notes, and a
pitch-bend message every `BEND_STEP_S` carrying the voice's constant detune plus a
sinusoidal vibrato. The F0 truth is that same curve: note pitch (transposed) plus the
bend in force, with the bend quantised to the 14-bit value actually written.
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
_BEND_SCALE = 8192 / (100 * BEND_RANGE_SEMITONES)  # 14-bit steps per cent


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


def bend_curve(voice: VoicePlan, end_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Pitch-bend messages: (times s [m], 14-bit values int [m], -8192..8191), one every
    BEND_STEP_S from 0 to `end_s`: detune + vibrato, rounded to the 14-bit grid."""
    ticks = np.arange(0, round(end_s * TICKS_PER_SECOND) + 1, round(BEND_STEP_S * TICKS_PER_SECOND))
    times = ticks / TICKS_PER_SECOND
    cents = voice.detune_cents + voice.vibrato_cents * np.sin(
        2 * np.pi * voice.vibrato_hz * times + voice.vibrato_phase
    )
    return times, np.clip(np.round(cents * _BEND_SCALE), -8192, 8191).astype(np.int64)


def write_voice_midi(
    path: str | Path,
    notes_s: np.ndarray,
    velocities: np.ndarray,
    program: int,
    bends: tuple[np.ndarray, np.ndarray],
    end_s: float,
) -> Path:
    """Write one voice as a type-0 MIDI file on channel 0.

    Args:
      notes_s: float [n, 3] (onset s, offset s, MIDI pitch) from `timed_notes`.
      velocities: int [n], 1..127.
      program: General MIDI program (0-based).
      bends: (times s [m], values [m]) from `bend_curve`.
      end_s: End of the file (s); FluidSynth stops rendering soon after it.
    """
    events = [(0, 0, mido.Message("program_change", program=program))]
    rpn = ((101, 0), (100, 0), (6, BEND_RANGE_SEMITONES), (38, 0), (101, 127), (100, 127))
    events += [(0, 1, mido.Message("control_change", control=c, value=v)) for c, v in rpn]
    events += [
        (round(t * TICKS_PER_SECOND), 2, mido.Message("pitchwheel", pitch=int(v)))
        for t, v in zip(*bends, strict=True)
    ]
    for (onset, offset, pitch), velocity in zip(notes_s, velocities, strict=True):
        # At equal ticks a note-off (3) goes before a note-on (4): repeated pitches re-sound.
        events.append(
            (round(offset * TICKS_PER_SECOND), 3, mido.Message("note_off", note=int(pitch)))
        )
        events.append(
            (
                round(onset * TICKS_PER_SECOND),
                4,
                mido.Message("note_on", note=int(pitch), velocity=int(velocity)),
            )
        )
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=500_000, time=0)])
    now = 0
    for tick, _, message in events:
        track.append(message.copy(time=tick - now))
        now = tick
    track.append(
        mido.MetaMessage("end_of_track", time=max(0, round(end_s * TICKS_PER_SECOND) - now))
    )
    midi = mido.MidiFile(type=0, ticks_per_beat=TICKS_PER_SECOND // 2)
    midi.tracks.append(track)
    midi.save(str(path))
    return Path(path)


def f0_from_midi_voice(
    notes_s: np.ndarray,
    bends: tuple[np.ndarray, np.ndarray],
    frame_times: np.ndarray,
    ringing: np.ndarray | None = None,
) -> np.ndarray:
    """The F0 a voice was sent, frame by frame.

    Args:
      notes_s: float [n, 3] (onset s, offset s, MIDI pitch), monophonic, sorted.
      bends: (times s [m], 14-bit values [m]) as written; a value holds until the next one
        (0 before the first).
      frame_times: float [frames], s.
      ringing: bool [frames], where the rendered stem still sounds (`ringing_frames`);
        None counts only the notes' own spans.

    Returns:
      float [frames], Hz; 0 = unvoiced. A frame is voiced when a note sounds at it
      (onset <= t < offset) or when a note has started before it and `ringing` is True
      (a release tail, or a rest the release rings into): then F0 is the last note's
      pitch. F0 = 440 * 2**((pitch + bend_cents / 100 - 69) / 12).
    """
    frame_times = np.asarray(frame_times, np.float64)
    last = np.searchsorted(notes_s[:, 0], frame_times, side="right") - 1  # [frames]
    started = last >= 0
    last = np.maximum(last, 0)
    voiced = started & (frame_times < notes_s[last, 1])
    if ringing is not None:
        voiced |= started & ringing
    times, values = bends
    index = np.searchsorted(times, frame_times, side="right") - 1
    cents = np.where(index >= 0, values[np.maximum(index, 0)], 0) / _BEND_SCALE
    midi = notes_s[last, 2] + cents / 100
    return np.where(voiced, 440.0 * 2.0 ** ((midi - 69) / 12), 0.0)


def ringing_frames(
    stem: np.ndarray,
    sample_rate: int,
    frame_times: np.ndarray,
    floor_db: float = 40.0,
    window_s: float = 0.04,
) -> np.ndarray:
    """Frames where a stem still sounds: RMS in a `window_s` window centred on the frame
    (zero-padded at the edges) above the stem's loudest such frame minus `floor_db`.

    Args:
      stem: float [samples], mono.
      frame_times: float [frames], s.

    Returns:
      bool [frames].
    """
    half = round(window_s * sample_rate / 2)
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(stem, np.float64) ** 2)])
    centre = np.round(np.asarray(frame_times) * sample_rate).astype(np.int64)
    lo = np.clip(centre - half, 0, len(stem))
    hi = np.clip(centre + half + 1, 0, len(stem))
    rms = np.sqrt((energy[hi] - energy[lo]) / (2 * half + 1))
    peak = rms.max(initial=0.0)
    return (rms > peak * 10 ** (-floor_db / 20)) & (peak > 0)
