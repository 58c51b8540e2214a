"""A rendered choir dataset: Bach chorales from music21's corpus, one stem per voice
(soprano, alto, tenor, bass) rendered with FluidSynth, in MUSDB layout with F0 truth:

  <out>/{train,test}/<bwv id>/{mixture,soprano,alto,tenor,bass}.wav + <voice>.f0.csv
  <out>/meta.json, <out>/musdb.yaml (musdb.DB(out, is_wav=True, setup_file="musdb.yaml"))

Which chorales go where: `choir_split` (split by tune, Bach10's tunes excluded). What each
voice is sent: `choir_score`. Its F0 truth and the soundfont tuning: `choir_f0`. Here:
rendering, mixing and writing.

Audio: each voice is rendered alone (train: TRAIN_SOUNDFONT, test: TEST_SOUNDFONT) as two
MIDI files, its odd and its even notes, summed; mono (the mean of FluidSynth's two
channels); all four voices padded to one length; the silence after
the last sample that any stem has within TRIM_FLOOR_DB of the loudest stem sample is cut,
then the track is cut to `max_seconds`. One gain for the whole track puts the mixture
peak at MIXTURE_PEAK; each stem is rounded to the 16-bit grid and the mixture is their
sum, so on disk the stems sum to the mixture exactly (PCM_16, no clipping).

F0 truth (10 ms hop, frame k at k * 10 ms): see `choir_f0.f0_from_midi_voice`. Voicing:
a note sounds in the score, or its release still rings (its part's RMS in a 40 ms window
within VOICING_FLOOR_DB of the voice's loudest frame).
"""

from __future__ import annotations

import json
import multiprocessing
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

from gensep import atomic
from gensep.data import choir_score as cs
from gensep.data.choir_f0 import LEVEL_WINDOW_S, VOICING_FLOOR_DB, key_tuning, preload_tunings
from gensep.data.choir_render import F0_HOP_S, MIXTURE_PEAK, TRIM_FLOOR_DB, TrackJob, render_job
from gensep.data.choir_split import TEST_FRACTION, corpus_index, split_chorales
from gensep.data.layout import write_musdb_setup
from gensep.data.midi import (
    TEST_SOUNDFONT,
    TRAIN_SOUNDFONT,
    find_soundfont,
    fluidsynth_version,
    soundfont_sha256,
)
from gensep.errors import DatasetError


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
        They are spawned: a script calling this with workers > 1 needs the usual
        `if __name__ == "__main__":` guard.
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
    jobs = []
    for name, tracks in chosen.items():
        for i, chorale in enumerate(tracks):
            done = (out / name / chorale.id / "mixture.wav").is_file()
            jobs.append(
                TrackJob(name, i, chorale, seed, sample_rate, programs, max_seconds,
                     str(fonts[name]), str(out), split.group[chorale.id],
                     overwrite or not done)
            )  # fmt: skip
    bar = tqdm(total=len(jobs), desc="choir", unit="track", disable=not progress)
    if workers > 1 and sum(j.render for j in jobs) > 1:
        # Measure each soundfont's tuning once, here, rather than once per worker.
        tunings = {
            (job.soundfont, program, sample_rate): key_tuning(job.soundfont, program, sample_rate)
            for job in jobs
            for program in _programs(programs)
        }
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, preload_tunings, (tunings,)) as pool:
            entries = list(_counted(pool.imap(render_job, jobs), bar))
    else:
        entries = list(_counted(map(render_job, jobs), bar))
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
        "key_tuning_cents": _key_offsets(entries, fonts, sample_rate),
        "max_abs_error_sum_of_stems": max((e["sum_error"] for e in entries), default=0.0),
    }
    for entry in entries:
        del entry["split"]
    atomic.write_json(out / "meta.json", meta)
    write_musdb_setup(out, cs.VOICES, sample_rate)
    return meta


def _counted(entries: Iterable[dict], bar: tqdm) -> Iterator[dict]:
    """Pass entries through, ticking the progress bar."""
    for entry in entries:
        bar.update(1)
        yield entry


def _programs(programs: str) -> list[int]:
    return sorted({p for choices in cs.PROGRAMS[programs].values() for p in choices})


def _key_offsets(entries: list[dict], fonts: dict[str, Path], sample_rate: int) -> dict:
    """{split: {program: {MIDI key: cents}}}: the measured steady tuning of each soundfont
    key used (`choir_f0.key_tuning`), which the renderer compensated through the bend."""
    used = {(e["split"], v["program"]) for e in entries for v in e["voices"].values()}
    offsets: dict[str, dict] = {}
    for split, program in sorted(used):
        tuning = key_tuning(str(fonts[split]), program, sample_rate)
        offsets.setdefault(split, {})[program] = tuning.offset
    return offsets


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
    return {
        "synthesiser": "FluidSynth (fast render, chorus and reverb off)",
        "fluidsynth_version": fluidsynth_version(),
        "soundfonts": {
            name: {"path": str(path), "sha256": soundfont_sha256(path)}
            for name, path in fonts.items()
        },
        "sample_rate": sample_rate,
        "channels": 1,
        "subtype": "PCM_16",
        "mixture_peak": MIXTURE_PEAK,
        **cs.settings(),
        "f0_hop_s": F0_HOP_S,
        "voicing": f"score note sounding, or stem RMS ({LEVEL_WINDOW_S * 1000:.0f} ms) within "
        f"{VOICING_FLOOR_DB:.0f} dB of its loudest frame after a note (release tail)",
        "trim_floor_db": TRIM_FLOOR_DB,
    }
