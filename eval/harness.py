"""The evaluation harness: every method on every track, one JSON per (method, track).

Layout of a results folder:
    config.yaml                         the run's resolved `EvalConfig`
    runs/<table>/<row>/<track>.json     status, runtime, x-real-time and per-frame scores
    estimates/<table>/<row>/<track>/<source>.wav   when `save_estimates`
`<table>` is "sources" (the dataset's own stems) or a two-stem view such as
"vocals-accompaniment"; oracle and floor rows are run for every table in use, so each
table carries its ceiling and its floor.

A (row, track) whose JSON says "ok" or "skipped" is not run again (resumable); a method
that raises leaves a "failed" JSON with the traceback and the run goes on.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import multiprocessing
import os
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from gensep import evaluation as ev
from gensep.atomic import write_json
from gensep.audio import save_audio
from gensep.data import Track, load_bach10, read_track
from gensep.data.bach10 import bach10_piece_names
from gensep.data.layout import list_tracks
from gensep.data.musdb import musdb_track_names, read_musdb_track
from gensep.errors import DatasetError
from gensep.separation import get_method, separate

SOURCES_TABLE = "sources"
_THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
ORACLE_KINDS = ("oracle", "floor")


def track_names(dataset: ev.DatasetConfig) -> list[str]:
    """The dataset's track names, sorted, cut to `max_tracks`."""
    if dataset.root is None:
        raise DatasetError(f"dataset kind {dataset.kind!r} needs a root (--root PATH)")
    if dataset.kind == "layout":
        names = [p.name for p in list_tracks(dataset.root, dataset.split)]
    elif dataset.kind == "musdb":
        names = sorted(musdb_track_names(dataset.root, dataset.split, dataset.is_wav))
    elif dataset.kind == "bach10":
        names = bach10_piece_names(dataset.root)
    else:
        raise DatasetError(f"dataset kind {dataset.kind!r}: use layout, musdb or bach10")
    return names[: dataset.max_tracks] if dataset.max_tracks else names


def load_track(dataset: ev.DatasetConfig, name: str) -> Track:
    """Read one track, resampled and cropped as the config says."""
    if dataset.kind == "layout":
        track = read_track(Path(dataset.root) / dataset.split / name, None, dataset.sample_rate)
    elif dataset.kind == "musdb":
        track = read_musdb_track(
            dataset.root, name, dataset.split, dataset.is_wav, sample_rate=dataset.sample_rate
        )
    else:
        (track,) = load_bach10(dataset.root, [name], dataset.sample_rate)
    if dataset.max_seconds:
        n = round(dataset.max_seconds * track.rate)
        f0 = None
        if track.f0:
            f0 = {
                k: (t[t < dataset.max_seconds], hz[t < dataset.max_seconds])
                for k, (t, hz) in track.f0.items()
            }
        track = Track(
            track.name,
            track.rate,
            track.mixture[:, :n],
            {k: v[:, :n] for k, v in track.sources.items()},
            f0,
        )
    return track


def tables(config: ev.EvalConfig) -> dict[str, tuple[str, ...] | None]:
    """{table name: two-stem names, or None for the dataset's own sources} in use."""
    out: dict[str, tuple[str, ...] | None] = {}
    for method in config.methods:
        stems = get_method(method.name).stems
        if stems is None:
            out[SOURCES_TABLE] = None
        else:
            out["-".join(stems)] = stems
    return out


def jobs_for_track(config: ev.EvalConfig) -> list[tuple[str, ev.MethodConfig]]:
    """(table, method) pairs: every method in its own table, oracle/floor rows in all."""
    pairs = []
    for table, stems in tables(config).items():
        for method in config.methods:
            spec = get_method(method.name)
            if spec.kind in ORACLE_KINDS or spec.stems == stems:
                pairs.append((table, method))
    return pairs


def result_path(out: Path, table: str, row: str, track: str) -> Path:
    return out / "runs" / table / row / f"{track}.json"


def is_done(path: Path) -> bool:
    try:
        return json.loads(path.read_text()).get("status") in ("ok", "skipped")
    except (OSError, ValueError):
        return False


def run_track(config: ev.EvalConfig, out: str, name: str) -> list[dict[str, Any]]:
    """Run every pending (table, method) on one track; returns the short status records."""
    out_dir = Path(out)
    pending = [
        (table, method)
        for table, method in jobs_for_track(config)
        if not is_done(result_path(out_dir, table, method.row, name))
    ]
    if not pending:
        return []
    base = {"track": name, "dataset": dataclasses.asdict(config.dataset)}
    try:
        track = load_track(config.dataset, name)
    except Exception as err:  # an unreadable track fails its rows, not the run
        return [_write_failure(out_dir, table, method, base, err) for table, method in pending]
    info = {
        **base,
        "rate": track.rate,
        "seconds": track.seconds,
        "channels": int(track.mixture.shape[0]),
    }
    records = []
    for table, method in pending:
        record = _run_one(config, out_dir, track, table, method, info)
        records.append({k: record.get(k) for k in ("table", "row", "track", "status", "error")})
    return records


def _run_one(config, out_dir, track, table, method, info) -> dict[str, Any]:
    spec = get_method(method.name)
    stems = tables(config)[table]
    record = {
        **info,
        "table": table,
        "row": method.row,
        "method": method.name,
        "kind": spec.kind,
        "options": method.options,
        "permutation": method.permutation,
        "scorer": config.scorer,
        "si_sdr_variant": ev.SI_SDR_VARIANT,
    }
    path = result_path(out_dir, table, method.row, track.name)
    references = track.sources if stems is None else ev.grouped_references(track.sources, stems)
    if references is None:
        reason = f"track has no {ev.TWO_STEM[stems]} stem for the {table} table"
        return _write(path, {**record, "status": "skipped", "error": reason})
    options = dict(method.options)
    if isinstance(options.get("score"), str):  # a per-track score: "{root}/{track}/{track}.mid"
        options["score"] = options["score"].format(root=config.dataset.root, track=track.name)
    if "references" in spec.needs:
        options["references"] = references
    if "f0" in spec.needs:
        if not track.f0:
            return _write(path, {**record, "status": "skipped", "error": "track has no F0"})
        options.setdefault("f0", {k: track.f0[k] for k in references})
    if spec.stems is None and "references" not in spec.needs and "f0" not in spec.needs:
        options.setdefault("n_sources", len(references))
        options.setdefault("names", list(references))
    try:
        start = time.perf_counter()
        estimates = separate(track.mixture, track.rate, method.name, **options)
        runtime = time.perf_counter() - start
        estimates = {k: v for k, v in estimates.items() if k != "residual"}
        if method.permutation == "best":
            estimates = ev.best_permutation(references, estimates)
        start = time.perf_counter()
        scores = ev.score_track(
            references,
            estimates,
            track.rate,
            scorer=config.scorer,
            frame_seconds=config.frame_seconds,
            silence_db=config.silence_db,
            instglow=config.instglow,
        )
        score_time = time.perf_counter() - start
    except Exception as err:
        return _write(
            path,
            {
                **record,
                "status": "failed",
                "error": f"{type(err).__name__}: {err}",
                "traceback": traceback.format_exc(),
            },
        )
    if config.save_estimates:
        for source, audio in estimates.items():
            peak = float(np.max(np.abs(audio)))
            save_audio(
                out_dir / "estimates" / table / method.row / track.name / f"{source}.wav",
                audio,
                track.rate,
                subtype="FLOAT" if peak > 1 else "PCM_16",
            )
    return _write(
        path,
        {
            **record,
            "status": "ok",
            "runtime_s": runtime,
            "x_real_time": track.seconds / max(runtime, 1e-9),
            "score_time_s": score_time,
            "scores": scores,
        },
    )


def _write(path: Path, record: dict[str, Any]) -> dict[str, Any]:
    write_json(path, record)
    return record


def _write_failure(out_dir, table, method, base, err) -> dict[str, Any]:
    record = {
        **base,
        "table": table,
        "row": method.row,
        "method": method.name,
        "status": "failed",
        "error": f"{type(err).__name__}: {err}",
        "traceback": traceback.format_exc(),
    }
    _write(result_path(out_dir, table, method.row, base["track"]), record)
    return {k: record.get(k) for k in ("table", "row", "track", "status", "error")}


def run(
    config: ev.EvalConfig, out: str | Path, progress: Callable[[Iterator], Iterator] | None = None
) -> list[dict[str, Any]]:
    """Run the whole evaluation; returns the status records of the work done now.

    Tracks go to `config.jobs` processes (spawned: JAX does not survive a fork), each
    writing its own JSONs, so a crash loses at most the row being computed.
    """
    for method in config.methods:
        get_method(method.name)  # unknown names fail before any work
    rows = [m.row for m in config.methods]
    if len(set(rows)) != len(rows):
        raise ValueError(f"method rows {rows} repeat; give repeated methods distinct labels")
    names = track_names(config.dataset)
    out = str(out)
    progress = progress or (lambda it, **_: it)
    records: list[dict[str, Any]] = []
    if config.jobs <= 1:
        for name in progress(names, total=len(names)):
            records += run_track(config, out, name)
        return records
    context = multiprocessing.get_context("spawn")
    # One BLAS/OpenMP thread per worker: N workers each spinning N threads on N cores were
    # measured 10-20x slower, and x-real-time figures would swing with the contention.
    threads = {name: "1" for name in _THREAD_VARIABLES if name not in os.environ}
    os.environ.update(threads)  # workers start on submit, so keep them set until the end
    try:
        with concurrent.futures.ProcessPoolExecutor(config.jobs, mp_context=context) as pool:
            futures = [pool.submit(run_track, config, out, name) for name in names]
            done = concurrent.futures.as_completed(futures)
            for future in progress(done, total=len(futures)):
                records += future.result()
    finally:
        for name in threads:
            del os.environ[name]
    return records
