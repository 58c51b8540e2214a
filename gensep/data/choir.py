"""A rendered choir dataset: Bach chorales from music21's corpus, one stem per voice
(soprano, alto, tenor, bass) rendered with FluidSynth, in MUSDB layout with F0 truth:

  <out>/{train,test}/<bwv id>/{mixture,soprano,alto,tenor,bass}.wav + <voice>.f0.csv
  <out>/meta.json

Which chorales go where is `choir_split` (split by tune, Bach10's tunes excluded); what
each voice is sent and its F0 truth is `choir_score`. Here: rendering and writing.

Audio: each voice is rendered alone (train: TRAIN_SOUNDFONT, test: TEST_SOUNDFONT), mono
(the mean of FluidSynth's two channels), all four padded to one length; the silence after
the last sample that any stem has within TRIM_FLOOR_DB of the loudest stem sample is cut,
then the track is cut to `max_seconds`. One gain for the whole track puts the mixture
peak at MIXTURE_PEAK; each stem is rounded to the 16-bit grid and the mixture is their
sum, so on disk the stems sum to the mixture exactly (PCM_16, no clipping).

F0 truth (10 ms hop, frame k at k * 10 ms): see `choir_score.f0_from_midi_voice`;
voicing = a note sounds in the score, or its release still rings: the stem's RMS in a
40 ms window is within VOICING_FLOOR_DB of the stem's loudest frame.
"""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from gensep import atomic
from gensep.data import choir_score as cs
from gensep.data.choir_f0 import (
    LEVEL_WINDOW_S,
    VOICING_FLOOR_DB,
    f0_from_midi_voice,
    frame_levels,
    key_tuning,
)
from gensep.data.choir_split import TEST_FRACTION, Chorale, corpus_index, split_chorales
from gensep.data.layout import write_track
from gensep.data.midi import (
    TEST_SOUNDFONT,
    TRAIN_SOUNDFONT,
    find_soundfont,
    fluidsynth_binary,
    render_midi_file,
    soundfont_sha256,
)
from gensep.data.track import Track
from gensep.errors import DatasetError

F0_HOP_S = 0.01
TRIM_FLOOR_DB = 60.0
MIXTURE_PEAK = 0.9
_SPLIT_CODE = {"train": 0, "test": 1}


@dataclasses.dataclass(frozen=True)
class _Job:
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
    tuning: dict  # {program: {MIDI key: cents}} of `soundfont`, see choir_f0.key_tuning
    render: bool  # False: the track is on disk already, only describe it


def render_choir(
    out: str | Path,
    n_train: int,
    n_test: int,
    seed: int = 0,
    sample_rate: int = 16000,
    programs: str = "voice",
    max_seconds: float | None = None,
    progress: bool = True,
    workers: int = 1,
    *,
    overwrite: bool = False,
    test_fraction: float = TEST_FRACTION,
) -> dict:
    """Render `n_train` + `n_test` chorales into `out` (MUSDB layout) and write meta.json.

    Args:
      out: Dataset root.
      n_train, n_test: Tracks per split (the first ones of each split's fixed order, which
        visits every tune group once before any twice).
      seed: Picks the split and every track's variation (track i of a split draws from
        `np.random.default_rng([seed, split code, i])`): same seed, same bytes.
      sample_rate: Hz (FluidSynth renders at it directly), 8000-96000.
      programs: "voice" (choir aahs / voice oohs / synth voice) or "woodwind".
      max_seconds: Cut every track to this many seconds (tests, examples); None: whole.
      progress: Show a tqdm bar over tracks.
      workers: Processes rendering tracks in parallel; the output does not depend on it.
      overwrite: Re-render tracks whose folder already holds mixture.wav (skipped if False).
      test_fraction: Share of the (non-Bach10) chorales dealt to the test split by tune.

    Returns:
      The metadata written to `<out>/meta.json`.

    Raises:
      ValueError: bad arguments, or more tracks asked than a split holds.
      DatasetError: `out` holds tracks or a meta.json from a render with other arguments.
      RenderError: FluidSynth or a soundfont is missing, or a render failed.
    """
    _check_args(n_train, n_test, sample_rate, programs, max_seconds, workers)
    out = Path(out)
    chorales, skipped = corpus_index()
    split = split_chorales(chorales, seed, test_fraction)
    for name, n in (("train", n_train), ("test", n_test)):
        available = getattr(split, name)
        if n > len(available):
            raise ValueError(
                f"n_{name}={n} but the {name} split holds {len(available)} chorales "
                f"({split.tunes(name)} tunes) once Bach10's tunes are excluded: ask for at "
                f"most {len(available)} (or change test_fraction)"
            )
    settings = {
        "seed": seed, "sample_rate": sample_rate, "programs": programs,
        "max_seconds": max_seconds, "test_fraction": test_fraction,
    }  # fmt: skip
    chosen = {"train": split.train[:n_train], "test": split.test[:n_test]}
    _check_existing(out, settings, chosen, overwrite)
    fonts = {"train": find_soundfont(TRAIN_SOUNDFONT), "test": find_soundfont(TEST_SOUNDFONT)}
    tuning = {
        name: {p: key_tuning(str(fonts[name]), p, sample_rate) for p in _programs(programs)}
        for name, tracks in chosen.items()
        if tracks
    }
    jobs = []
    for name, tracks in chosen.items():
        for i, chorale in enumerate(tracks):
            done = (out / name / chorale.id / "mixture.wav").is_file()
            jobs.append(
                _Job(name, i, chorale, seed, sample_rate, programs, max_seconds,
                     str(fonts[name]), str(out), split.group[chorale.id], tuning[name],
                     overwrite or not done)
            )  # fmt: skip
    bar = tqdm(total=len(jobs), desc="choir", unit="track", disable=not progress)
    if workers > 1 and sum(j.render for j in jobs) > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            entries = list(_counted(pool.imap(_run_job, jobs), bar))
    else:
        entries = list(_counted(map(_run_job, jobs), bar))
    bar.close()
    meta = {
        "dataset": "gensep rendered choir (Bach chorales, music21 corpus, FluidSynth)",
        "sources": list(cs.VOICES),
        **settings,
        "split": {name: [e for e in entries if e["split"] == name] for name in chosen},
        "split_rule": _split_summary(split),
        "excluded": split.excluded,
        "skipped": skipped,
        "renderer": _renderer_info(fonts, sample_rate),
        "key_tuning_cents": tuning,
        "max_abs_error_sum_of_stems": max((e["sum_error"] for e in entries), default=0.0),
    }
    for entry in entries:
        del entry["split"]
    atomic.write_json(out / "meta.json", meta)
    return meta


def _counted(entries, bar):
    for entry in entries:
        bar.update(1)
        yield entry


def _run_job(job: _Job) -> dict:
    """Render (or, when already on disk, only describe) one track -> its meta entry."""
    rng = np.random.default_rng([job.seed, _SPLIT_CODE[job.split], job.index])
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
        "sum_error": sum_error(folder),
    }


def _render_track(job: _Job, notes: dict, phrase_ends: np.ndarray, plan, folder: Path) -> None:
    """Render the four voices (each as its odd and even notes), mix, write the track."""
    end_s = max(n[-1, 1] for n in notes.values()) * 60.0 / plan.tempo_bpm + cs.TAIL_S
    parts, audio = {}, {}  # voice -> [(notes_s, bends)], [float [samples] per part]
    with tempfile.TemporaryDirectory(prefix="gensep-choir-") as tmp:
        for voice in cs.VOICES:
            voice_plan = plan.voices[voice]
            tuning = job.tuning[voice_plan.program]
            timed = cs.timed_notes(notes[voice], plan)
            phrase = np.searchsorted(phrase_ends, notes[voice][:, 0], side="right")
            velocity = np.asarray(voice_plan.phrase_velocity)[phrase]
            parts[voice], audio[voice] = [], []
            for first in (0, 1):
                part = timed[first::2]
                bends = cs.bend_curve(voice_plan, end_s, part, tuning)
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
        tuning = job.tuning[plan.voices[voice].program]
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
    """Scale all stems by one gain so their sum peaks at MIXTURE_PEAK, round each to the
    16-bit grid (k / 32768), and sum: float64 {voice: [samples]}, mixture [samples]; the
    sum of the stems equals the mixture exactly, in float32 and in PCM_16."""
    total = sum(stems.values())
    peak = float(np.abs(total).max())
    # Rounding moves each stem by at most half a step: leave room for that.
    gain = (MIXTURE_PEAK - len(stems) / 65536) / peak if peak > 0 else 1.0
    rounded = {v: np.round(s * gain * 32768) / 32768 for v, s in stems.items()}
    return rounded, sum(rounded.values())


def sum_error(folder: str | Path) -> float:
    """max |sum of the stems - mixture| of a written track, read back as 16-bit integers."""
    folder = Path(folder)
    mixture = sf.read(str(folder / "mixture.wav"), dtype="int16")[0].astype(np.int64)
    total = sum(sf.read(str(folder / f"{v}.wav"), dtype="int16")[0].astype(np.int64)
                for v in cs.VOICES)  # fmt: skip
    return float(np.abs(total - mixture).max()) / 32768


def _programs(programs: str) -> list[int]:
    return sorted({p for choices in cs.PROGRAMS[programs].values() for p in choices})


def _check_args(n_train, n_test, sample_rate, programs, max_seconds, workers) -> None:
    for name, n in (("n_train", n_train), ("n_test", n_test)):
        if int(n) != n or n < 0:
            raise ValueError(f"{name}={n!r} must be an integer >= 0")
    if int(sample_rate) != sample_rate or not 8000 <= sample_rate <= 96000:
        raise ValueError(f"sample_rate={sample_rate!r}: FluidSynth renders 8000-96000 Hz")
    if programs not in cs.PROGRAMS:
        raise ValueError(f"programs={programs!r}: choose one of {sorted(cs.PROGRAMS)}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds={max_seconds!r} must be positive (or None: whole pieces)")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"workers={workers!r} must be an integer >= 1")


def _check_existing(out: Path, settings: dict, chosen: dict, overwrite: bool) -> None:
    """Refuse to mix this render with leftovers of a render with other arguments."""
    meta = out / "meta.json"
    if meta.is_file() and not overwrite:
        old = json.loads(meta.read_text())
        differ = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if differ:
            raise DatasetError(
                f"{meta}: rendered with other settings {differ} (old, new) — render into a "
                "new folder or pass overwrite=True"
            )
    for name, tracks in chosen.items():
        wanted = {c.id for c in tracks}
        folder = out / name
        stale = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name not in wanted
                       and not p.name.startswith(".")) if folder.is_dir() else []  # fmt: skip
        if stale:
            raise DatasetError(
                f"{folder}: tracks {stale[:5]}{'...' if len(stale) > 5 else ''} are not part of "
                "this render (left by one with other arguments?) — delete them or render "
                "into a new folder"
            )


def _split_summary(split) -> dict:
    return {
        "unit": "tune group: equal RKBWV title, equal tune key, or soprano openings within "
        "2 edits (see gensep/data/choir_split.py)",
        "tune_groups": len(set(split.group.values())),
        "train_available": len(split.train),
        "train_tunes": split.tunes("train"),
        "test_available": len(split.test),
        "test_tunes": split.tunes("test"),
    }


def _renderer_info(fonts: dict[str, Path], sample_rate: int) -> dict:
    version = subprocess.run(
        [fluidsynth_binary(), "--version"], capture_output=True, text=True, check=False
    ).stdout
    match = re.search(r"version\s+(\S+)", version)
    return {
        "synthesiser": "FluidSynth (fast render, chorus and reverb off)",
        "fluidsynth_version": match.group(1) if match else "unknown",
        "soundfonts": {
            name: {"path": str(path), "sha256": soundfont_sha256(path)}
            for name, path in fonts.items()
        },
        "sample_rate": sample_rate,
        "channels": 1,
        "subtype": "PCM_16",
        "mixture_peak": MIXTURE_PEAK,
        "programs": cs.PROGRAMS,
        "ranges_midi": cs.RANGES,
        "tempo_bpm_range": cs.TEMPO_BPM,
        "transpose_range": cs.TRANSPOSE,
        "velocity_range": cs.VELOCITY,
        "phrase_velocity_move": cs.PHRASE_VELOCITY,
        "detune_cents_max": cs.DETUNE_CENTS,
        "vibrato_hz_range": cs.VIBRATO_HZ,
        "vibrato_cents_range": cs.VIBRATO_CENTS,
        "pitch_bend_range_semitones": cs.BEND_RANGE_SEMITONES,
        "pitch_bend_set_by": "RPN 0 at t=0",
        "pitch_bend_step_s": cs.BEND_STEP_S,
        "f0_hop_s": F0_HOP_S,
        "voicing": f"score note sounding, or stem RMS ({LEVEL_WINDOW_S * 1000:.0f} ms) within "
        f"{VOICING_FLOOR_DB:.0f} dB of its loudest frame after a note (release tail)",
        "trim_floor_db": TRIM_FLOOR_DB,
    }
