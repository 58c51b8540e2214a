"""Rendering one choir track: the four voices through FluidSynth, the mixture, the F0
truth, written in MUSDB layout (see `gensep.data.choir` for the dataset as a whole)."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from gensep.data import choir_score as cs
from gensep.data.choir_f0 import f0_from_midi_voice, frame_levels, key_tuning
from gensep.data.choir_split import Chorale
from gensep.data.layout import sum_error, write_track
from gensep.data.midi import render_midi_file
from gensep.data.track import Track

F0_HOP_S = 0.01
TRIM_FLOOR_DB = 60.0
MIXTURE_PEAK = 0.9
SPLIT_CODE = {"train": 0, "test": 1}


@dataclasses.dataclass(frozen=True)
class TrackJob:
    """Everything one worker needs to render (or describe) one track."""

    split: str
    index: int
    chorale: Chorale
    seed: int
    sample_rate: int
    programs: str
    max_seconds: float | None
    soundfont: str
    out: str
    tune_group: str
    render: bool  # False: the track is on disk already, only describe it


def render_job(job: TrackJob) -> dict:
    """Render (or, when already on disk, only describe) one track -> its meta entry."""
    rng = np.random.default_rng([job.seed, SPLIT_CODE[job.split], job.index])
    notes, phrase_ends = cs.score_notes(job.chorale.path)
    plan = cs.plan_track(notes, len(phrase_ends) + 1, job.programs, rng)
    folder = Path(job.out) / job.split / job.chorale.id
    if job.render:
        _render_track(job, notes, phrase_ends, plan, folder)
    voices = {v: dataclasses.asdict(p) for v, p in plan.voices.items()}
    return {
        "split": job.split,
        "track": job.chorale.id,
        "corpus_id": job.chorale.id,
        "title": job.chorale.title,
        "tune_key": job.chorale.tune_key,
        "tune_group": job.tune_group,
        "seconds": sf.info(str(folder / "mixture.wav")).duration,
        "tempo_bpm": plan.tempo_bpm,
        "transpose": plan.transpose,
        "voices": voices,
        "sum_error": sum_error(folder, cs.VOICES),
    }


def _render_track(job: TrackJob, notes: dict, phrase_ends: np.ndarray, plan, folder: Path) -> None:
    """Render the four voices (each as its odd and even notes), mix, write the track."""
    end_s = max(n[-1, 1] for n in notes.values()) * 60.0 / plan.tempo_bpm + cs.TAIL_S
    parts, audio = {}, {}  # voice -> [(notes_s, bends)], [float [samples] per part]
    with tempfile.TemporaryDirectory(prefix="gensep-choir-") as tmp:
        for voice in cs.VOICES:
            voice_plan = plan.voices[voice]
            tuning = key_tuning(job.soundfont, voice_plan.program, job.sample_rate)
            timed = cs.timed_notes(notes[voice], plan)
            phrase = np.searchsorted(phrase_ends, notes[voice][:, 0], side="right")
            velocity = np.asarray(voice_plan.phrase_velocity)[phrase]
            parts[voice], audio[voice] = [], []
            for first in (0, 1):
                part = timed[first::2]
                bends = cs.bend_curve(voice_plan, end_s, part, tuning.offset)
                path = cs.write_voice_midi(
                    Path(tmp) / f"{voice}{first}.mid", part, velocity[first::2],
                    voice_plan.program, bends, end_s,
                )  # fmt: skip
                parts[voice].append((part, bends))
                rendered = render_midi_file(path, job.soundfont, job.sample_rate)
                audio[voice].append(rendered.mean(axis=0))
    audio = _trim(audio, job.sample_rate, job.max_seconds)
    stems, mixture = quantised_mix({v: sum(a) for v, a in audio.items()})
    frames = int((len(mixture) - 1) / (F0_HOP_S * job.sample_rate)) + 1
    times = np.arange(frames) * F0_HOP_S
    f0 = {}
    for voice in cs.VOICES:
        levels = np.stack([frame_levels(a, job.sample_rate, times) for a in audio[voice]])
        tuning = key_tuning(job.soundfont, plan.voices[voice].program, job.sample_rate)
        f0[voice] = (times, f0_from_midi_voice(parts[voice], times, levels, tuning))
    sources = {v: s[None].astype(np.float32) for v, s in stems.items()}
    track = Track(job.chorale.id, job.sample_rate, mixture[None].astype(np.float32), sources, f0)
    write_track(job.out, job.split, track)


def _trim(audio: dict[str, list], rate: int, max_seconds: float | None) -> dict[str, list]:
    """Pad every part to one length, cut the trailing silence common to all stems (below
    TRIM_FLOOR_DB under the loudest stem sample), then cut to `max_seconds`."""
    length = max(len(a) for parts in audio.values() for a in parts)
    audio = {
        v: [np.pad(a.astype(np.float64), (0, length - len(a))) for a in parts]
        for v, parts in audio.items()
    }
    loudest = np.max(np.abs(np.stack([sum(parts) for parts in audio.values()])), axis=0)
    audible = np.flatnonzero(loudest > loudest.max() * 10 ** (-TRIM_FLOOR_DB / 20))
    end = audible[-1] + 1 if len(audible) else length
    if max_seconds is not None:
        end = min(end, round(max_seconds * rate))
    return {v: [a[:end] for a in parts] for v, parts in audio.items()}


def quantised_mix(stems: dict[str, np.ndarray]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Scale all stems by one gain so their sum (and every stem, should voices cancel in
    the sum) peaks at MIXTURE_PEAK at most, round each to the 16-bit grid (k / 32768), and
    sum: float64 {voice: [samples]}, mixture [samples]; the sum of the stems equals the
    mixture exactly, in float32 and in PCM_16."""
    total = sum(stems.values())
    peak = max(float(np.abs(a).max()) for a in (total, *stems.values()))
    # Rounding moves each stem by at most half a step: leave room for that.
    gain = (MIXTURE_PEAK - len(stems) / 65536) / peak if peak > 0 else 1.0
    rounded = {v: np.round(s * gain * 32768) / 32768 for v, s in stems.items()}
    return rounded, sum(rounded.values())
