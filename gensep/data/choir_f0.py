"""F0 truth of a rendered choir voice, and the soundfont tuning it corrects for.

A voice is rendered as two MIDI files, its odd and its even notes, and its stem is their
sum; so each frame's sound can be traced to the note that makes it. The truth per frame:
  - voiced where a note sounds in the score, or where a note has started and its part's
    audio is within `floor_db` of the voice's loudest frame (a release still ringing);
  - F0 of the louder part's last note where both parts sound (a new note's attack under
    the previous note's release), of the sounding note otherwise;
  - F0 = the pitch sent (note, plus the 14-bit pitch-bend value in force: detune, vibrato,
    minus the key's steady tuning error, which the renderer compensates) plus how that
    key of the soundfont sounds when sent unbent, at that time since its note-on: steady
    offset and drift (attack scoops, vibrato in the samples), measured by `key_tuning`.
"""

from __future__ import annotations

import dataclasses
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.ndimage import median_filter

from gensep.data import choir_score as cs
from gensep.data.midi import render_midi_file

VOICING_FLOOR_DB = 40.0
LEVEL_WINDOW_S = 0.04
CALIBRATION_KEYS = range(28, 101)  # MIDI keys measured by `key_tuning`
DRIFT_HOP_S = 0.01
DRIFT_MEDIAN_FRAMES = 9
_CAL_NOTE_S, _CAL_GAP_S, _CAL_SKIP_S, _CAL_WINDOW_S = 4.0, 0.3, 0.2, 0.064

Bends = tuple[np.ndarray, np.ndarray]  # (times s [m], 14-bit values [m])


def f0_from_midi_voice(
    parts: Sequence[tuple[np.ndarray, Bends]],
    frame_times: np.ndarray,
    levels: np.ndarray | None = None,
    tuning: KeyTuning | None = None,
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
      tuning: How the soundfont's keys sound when sent unbent (`key_tuning`): its offset
        and drift since the note-on are added to the pitch sent; None: nothing added.
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
        if tuning is not None:
            cents = cents + tuning.cents(keys.astype(np.int64), frame_times - notes[last, 0])
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


@dataclasses.dataclass(frozen=True)
class KeyTuning:
    """How each key of a soundfont program sounds when sent unbent (see `key_tuning`).

    Attributes:
      offset: {MIDI key: cents sharp}, the median over the held part of a 4 s note.
      drift: {MIDI key: float [frames]}, cents relative to `offset` from the note-on on, one
        value per DRIFT_HOP_S (attack scoops, vibrato recorded into the sample, ...).
    """

    offset: dict[int, float]
    drift: dict[int, np.ndarray]

    def cents(self, keys: np.ndarray, since_s: np.ndarray) -> np.ndarray:
        """Cents sharp of keys int [n] played for since_s float [n] seconds; beyond the
        measured span a key sounds at its offset."""
        out = np.zeros(len(keys))
        frame = np.round(np.asarray(since_s) / DRIFT_HOP_S).astype(np.int64)
        for key in np.unique(keys).astype(int):
            at = keys == key
            drift = self.drift.get(key, np.zeros(0))
            inside = at & (frame >= 0) & (frame < len(drift))
            out[at] = self.offset.get(key, 0.0)
            out[inside] += drift[frame[inside]]
        return out


_TUNINGS: dict[tuple[str, int, int], KeyTuning] = {}


def preload_tunings(tunings: dict[tuple[str, int, int], KeyTuning]) -> None:
    """Seed the `key_tuning` cache of this process (a worker pool's initializer)."""
    _TUNINGS.update(tunings)


def key_tuning(soundfont: str, program: int, sample_rate: int) -> KeyTuning:
    """Measure how sharp each key of a soundfont program sounds, over time.

    Sampled soundfonts are not in tune: FluidR3's choir aahs are up to 47 cents flat on
    some keys, its voice oohs scoop down from 50-65 cents sharp over their first 0.1 s, and
    some samples carry their own vibrato. Each key of CALIBRATION_KEYS is rendered alone for
    4 s (velocity 90, no bend, the renderer's release); its pitch is read every DRIFT_HOP_S
    from 64 ms windows (`pitch_offsets_cents`), then median-filtered over 90 ms. Cached per
    process (see `preload_tunings`); about 1 s per program.
    """
    if (soundfont, program, sample_rate) not in _TUNINGS:
        _TUNINGS[soundfont, program, sample_rate] = _measure_key_tuning(
            soundfont, program, sample_rate
        )
    return _TUNINGS[soundfont, program, sample_rate]


def _measure_key_tuning(soundfont: str, program: int, sample_rate: int) -> KeyTuning:
    period = _CAL_NOTE_S + _CAL_GAP_S
    keys = list(CALIBRATION_KEYS)
    notes = np.array([(i * period, i * period + _CAL_NOTE_S, k) for i, k in enumerate(keys)])
    with tempfile.TemporaryDirectory(prefix="gensep-tuning-") as tmp:
        path = cs.write_voice_midi(
            Path(tmp) / "keys.mid", notes, np.full(len(keys), 90), program,
            (np.zeros(1), np.zeros(1, np.int64)), len(keys) * period,
        )  # fmt: skip
        audio = render_midi_file(path, soundfont, sample_rate).mean(axis=0)
    half = round(_CAL_WINDOW_S * sample_rate / 2)
    audio = np.pad(audio, (half, half + round(period * sample_rate)))
    centres = np.round(np.arange(0, _CAL_NOTE_S, DRIFT_HOP_S) * sample_rate).astype(np.int64)
    held = slice(round(_CAL_SKIP_S / DRIFT_HOP_S), round((_CAL_NOTE_S - _CAL_SKIP_S) / DRIFT_HOP_S))
    offset, drift = {}, {}
    for i, key in enumerate(keys):
        start = round(i * period * sample_rate) + centres  # window starts (padded signal)
        windows = audio[start[:, None] + np.arange(2 * half)]  # [frames, window]
        cents = pitch_offsets_cents(windows, sample_rate, key)
        offset[key] = round(float(np.median(cents[held])), 1)
        # A 90 ms running median: the short-window reading of a choir sample (several
        # singers) jitters by tens of cents; a 100 ms attack scoop survives it.
        smooth = median_filter(cents - offset[key], DRIFT_MEDIAN_FRAMES, mode="nearest")
        drift[key] = np.round(smooth, 1).astype(np.float32)
    return KeyTuning(offset, drift)


def pitch_offsets_cents(windows: np.ndarray, sample_rate: int, key: int) -> np.ndarray:
    """Cents by which each of windows float [frames, samples] is sharp of MIDI `key`.

    Each harmonic h (up to 8, below 0.45 * rate) is located as the largest peak of the
    Hann-windowed spectrum (zero-padded 4x) within +-100 cents of h * f(key), refined by a
    parabola through the log magnitudes; a frame's answer is the magnitude-weighted median
    of its harmonics' deviations (0 for a silent frame). Returns float [frames].
    """
    frames, size = windows.shape
    n_fft = 4 * (1 << int(np.ceil(np.log2(size))))
    spectrum = np.abs(np.fft.rfft(windows * np.hanning(size), n_fft, axis=1)) + 1e-30
    nominal = 440.0 * 2 ** ((key - 69) / 12)
    cents, weight = [], []
    for h in range(1, 9):
        target = h * nominal
        if target > 0.45 * sample_rate:
            break
        lo, hi = (target * 2 ** (np.array([-100, 100]) / 1200) * n_fft / sample_rate).astype(int)
        lo = max(lo, 1)
        k = lo + np.argmax(spectrum[:, lo : hi + 1], axis=1)  # [frames]
        a, b, c = (np.log(spectrum[np.arange(frames), k + d]) for d in (-1, 0, 1))
        curve = a - 2 * b + c
        shift = np.where(curve < 0, 0.5 * (a - c) / np.where(curve < 0, curve, -1), 0.0)
        shift = np.clip(shift, -0.5, 0.5)  # a true peak's vertex lies within half a bin
        cents.append(1200 * np.log2((k + shift) * sample_rate / n_fft / target))
        weight.append(np.exp(b))
    if not cents:
        return np.zeros(frames)
    cents, weight = np.stack(cents, 1), np.stack(weight, 1)  # [frames, harmonics]
    order = np.argsort(cents, axis=1)
    cents, weight = np.take_along_axis(cents, order, 1), np.take_along_axis(weight, order, 1)
    total = np.cumsum(weight, axis=1)
    middle = np.argmax(total >= total[:, -1:] / 2, axis=1)
    silent = weight.max(axis=1) <= 1e-20
    return np.where(silent, 0.0, cents[np.arange(frames), middle])
