"""F0 truth of a rendered choir voice, and the soundfont tuning it corrects for.

A voice is rendered as two MIDI files, its odd and its even notes, and its stem is their
sum; so each frame's sound can be traced to the note that makes it. The truth per frame:
  - voiced where a note sounds in the score, or where a note has started and its part's
    audio is within `floor_db` of the voice's loudest frame (a release still ringing);
  - F0 of the louder part's last note where both parts sound (a new note's attack under
    the previous note's release), of the sounding note otherwise;
  - F0 = the pitch sent (note, plus the 14-bit pitch-bend value in force: detune, vibrato)
    plus the soundfont's own tuning error of that key, measured by `key_tuning`. The
    renderer sends the bend minus that error, so the sum is the intended pitch.
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from gensep.data import choir_score as cs
from gensep.data.midi import render_midi_file

VOICING_FLOOR_DB = 40.0
LEVEL_WINDOW_S = 0.04
CALIBRATION_KEYS = range(28, 101)  # MIDI keys measured by `key_tuning`
_CAL_NOTE_S, _CAL_GAP_S, _CAL_SKIP_S = 2.0, 0.3, 0.2

Bends = tuple[np.ndarray, np.ndarray]  # (times s [m], 14-bit values [m])


def f0_from_midi_voice(
    parts: Sequence[tuple[np.ndarray, Bends]],
    frame_times: np.ndarray,
    levels: np.ndarray | None = None,
    tuning: Mapping[int, float] | None = None,
    floor_db: float = VOICING_FLOOR_DB,
) -> np.ndarray:
    """The F0 truth of one voice, frame by frame.

    Args:
      parts: The MIDI files the voice was rendered as, each (notes, bends): notes float
        [n, 3] (onset s, offset s, MIDI pitch), sorted, not overlapping one another across
        parts; bends (times s [m], 14-bit values [m]) as written, each value holding until
        the next (0 before the first).
      frame_times: float [frames], s.
      levels: float [parts, frames], each part's rendered RMS around each frame
        (`frame_levels`); None: voicing and F0 from the score alone (no release tails).
      tuning: {MIDI key: cents the soundfont sounds sharp of the pitch sent}; None: 0.
      floor_db: A started part rings while its level is within this of the loudest level.

    Returns:
      float [frames], Hz; 0 = unvoiced.
    """
    frame_times = np.asarray(frame_times, np.float64)
    shape = (len(parts), len(frame_times))
    hz, sounding, started = np.zeros(shape), np.zeros(shape, bool), np.zeros(shape, bool)
    for i, (notes, (bend_times, bend_values)) in enumerate(parts):
        if not len(notes):
            continue
        last = np.searchsorted(notes[:, 0], frame_times, side="right") - 1  # [frames]
        started[i] = last >= 0
        last = np.maximum(last, 0)
        sounding[i] = started[i] & (frame_times < notes[last, 1])
        bend = np.searchsorted(bend_times, frame_times, side="right") - 1
        cents = np.where(bend >= 0, bend_values[np.maximum(bend, 0)], 0) / cs.BEND_STEPS_PER_CENT
        keys = notes[last, 2]
        if tuning:
            cents = cents + np.array([tuning.get(int(k), 0.0) for k in keys])
        hz[i] = 440.0 * 2.0 ** ((keys + cents / 100 - 69) / 12)
    if levels is None:
        active, loudness = sounding, sounding.astype(np.float64)
    else:
        levels = np.asarray(levels, np.float64)
        floor = levels.max(initial=0.0) * 10 ** (-floor_db / 20)
        active = sounding | (started & (levels > floor))
        loudness = levels
    choice = np.argmax(np.where(active, loudness, -np.inf), axis=0)  # [frames]
    f0 = hz[choice, np.arange(len(frame_times))]
    return np.where(active.any(axis=0), f0, 0.0)


def frame_levels(
    audio: np.ndarray, sample_rate: int, frame_times: np.ndarray, window_s: float = LEVEL_WINDOW_S
) -> np.ndarray:
    """RMS of `audio` float [samples] in a `window_s` window centred on each frame time
    (zero outside the signal) -> float [frames]."""
    half = round(window_s * sample_rate / 2)
    energy = np.concatenate([[0.0], np.cumsum(np.asarray(audio, np.float64) ** 2)])
    centre = np.round(np.asarray(frame_times) * sample_rate).astype(np.int64)
    lo = np.clip(centre - half, 0, len(audio))
    hi = np.clip(centre + half + 1, 0, len(audio))
    return np.sqrt((energy[hi] - energy[lo]) / (2 * half + 1))


@functools.cache
def key_tuning(soundfont: str, program: int, sample_rate: int) -> dict[int, float]:
    """How sharp (cents) each key of a soundfont program sounds when sent unbent.

    Sampled soundfonts are not in tune: FluidR3's choir aahs sound up to 47 cents flat on
    some keys. Each key of CALIBRATION_KEYS is rendered for 2 s (velocity 90, no bend, the
    renderer's release); its pitch is measured over 0.2-1.8 s from the spectrum (harmonic
    peaks, see `pitch_offset_cents`). Cached per process; about 0.5 s per program.

    Returns:
      {MIDI key: cents}, rounded to 0.1 cent.
    """
    period = _CAL_NOTE_S + _CAL_GAP_S
    keys = list(CALIBRATION_KEYS)
    notes = np.array([(i * period, i * period + _CAL_NOTE_S, k) for i, k in enumerate(keys)])
    end_s = len(keys) * period
    with tempfile.TemporaryDirectory(prefix="gensep-tuning-") as tmp:
        path = cs.write_voice_midi(
            Path(tmp) / "keys.mid", notes, np.full(len(keys), 90), program,
            (np.zeros(1), np.zeros(1, np.int64)), end_s,
        )  # fmt: skip
        audio = render_midi_file(path, soundfont, sample_rate).mean(axis=0)
    tuning = {}
    for i, key in enumerate(keys):
        start = round((i * period + _CAL_SKIP_S) * sample_rate)
        stop = round((i * period + _CAL_NOTE_S - _CAL_SKIP_S) * sample_rate)
        tuning[key] = round(pitch_offset_cents(audio[start:stop], sample_rate, key), 1)
    return tuning


def pitch_offset_cents(segment: np.ndarray, sample_rate: int, key: int) -> float:
    """Cents by which a steady tone float [samples] is sharp of MIDI `key`.

    Each harmonic h (up to 8, below 0.45 * rate) is located as the largest peak of the
    Hann-windowed, zero-padded spectrum within +-60 cents of h * f(key), refined by a
    parabola through the log magnitudes; the answer is the magnitude-weighted median of the
    harmonics' deviations. 0.0 when the segment is silent.
    """
    n_fft = 1 << int(np.ceil(np.log2(max(len(segment), 1) * 4)))
    spectrum = np.abs(np.fft.rfft(segment * np.hanning(len(segment)), n_fft))
    if not spectrum.any():
        return 0.0
    nominal = 440.0 * 2 ** ((key - 69) / 12)
    found = []
    for h in range(1, 9):
        target = h * nominal
        if target > 0.45 * sample_rate:
            break
        lo, hi = np.round(target * 2 ** (np.array([-60, 60]) / 1200) * n_fft / sample_rate)
        k = int(lo) + int(np.argmax(spectrum[int(lo) : int(hi) + 1]))
        a, b, c = np.log(spectrum[k - 1 : k + 2] + 1e-30)
        shift = 0.5 * (a - c) / (a - 2 * b + c) if a - 2 * b + c < 0 else 0.0
        found.append((1200 * np.log2((k + shift) * sample_rate / n_fft / target), spectrum[k]))
    cents, weight = np.array(found).T
    order = np.argsort(cents)
    total = np.cumsum(weight[order])
    return float(cents[order][np.searchsorted(total, total[-1] / 2)])
