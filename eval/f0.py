"""Score F0 estimators against F0 truth: mir_eval melody metrics per method and voice.

    python eval/f0.py --methods true,salience --data data/choir --split test
    python eval/f0.py --methods true,salience,score --bach10 /work/shared/data/bach10

Each estimate is resampled onto the truth's frame times (`mir_eval.melody.to_cent_voicing`)
and scored per voice: raw pitch accuracy (RPA) and raw chroma accuracy (RCA) at 50 cents,
voicing recall (VR), voicing false alarm (VFA) and overall accuracy (OA). VFA is left empty
for a voice whose truth has less than 0.5 s unvoiced (a rate over a handful of frames
says nothing). The table holds the mean over tracks, and each method's speed as seconds
of audio per second of estimation (x-real-time, on one process; with --jobs > 1 the
tracks share the cores).

Methods: "true" (the truth itself: scores 1.0, a check of the scoring), and the methods of
`gensep.f0.estimate.estimate_f0` ("salience", "score", "neural"). "score" needs a score file
beside the audio (Bach10's `NN-Name.mid`, or a single *.mid / *.musicxml in a layout track
folder) and is skipped where there is none; "neural" is skipped when its model is missing.
`--neural-model LABEL=PATH` adds a method LABEL: "neural" with the model at PATH (say, one
trained with rendered chorales, whose rows on the rendered test split are optimistic).
Estimated voices are matched to the truth's by name, else by rank of median pitch.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import mir_eval
import numpy as np

from gensep.data.track import F0Track, Track
from gensep.errors import GensepError

METHODS = ("true", "salience", "score", "neural")
METRICS = ("rpa", "rca", "vr", "vfa", "oa")
FIELDS = ("dataset", "method", "track", "voice", *METRICS, "audio_s", "estimate_s")
SCORE_SUFFIXES = (".mid", ".midi", ".musicxml", ".mxl", ".xml")
MIN_UNVOICED_S = 0.5  # less unvoiced truth than this: no VFA


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--methods", default="true,salience", help="comma-separated methods")
    parser.add_argument("--data", help="a MUSDB-layout root whose tracks hold <voice>.f0.csv")
    parser.add_argument("--split", default="test", help="split of --data (default test)")
    parser.add_argument("--bach10", help="the Bach10 root (voicing re-derived from the stems)")
    parser.add_argument("--max-tracks", type=int, help="only the first N tracks of each set")
    parser.add_argument("--jobs", type=int, default=1, help="tracks in parallel (processes)")
    parser.add_argument(
        "--neural-model",
        action="append",
        default=[],
        metavar="LABEL=PATH",
        help="a method LABEL: the neural estimator with the model at PATH (repeatable)",
    )
    parser.add_argument("--out", help="CSV of per-track scores (default results/f0/<set>.csv)")
    return parser


def neural_models(specs: list[str]) -> dict[str, str]:
    """{label: model path} from LABEL=PATH arguments, each model loaded once to check it."""
    from gensep.f0.neural import load_f0_model

    models = {}
    for spec in specs:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            raise GensepError(f"--neural-model {spec!r}: expected LABEL=PATH")
        if label in METHODS or label in models:
            raise GensepError(f"--neural-model {spec!r}: label {label!r} is already a method")
        try:
            load_f0_model(path)
        except GensepError as err:
            raise GensepError(f"--neural-model {spec!r}: no model at {path} ({err})") from err
        models[label] = path
    return models


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    try:
        sets = _datasets(args)
        models = neural_models(args.neural_model)
        known = [*METHODS, *models]
        unknown = set(methods) - set(known)
        if unknown:
            raise GensepError(f"unknown methods {sorted(unknown)}; known: {', '.join(known)}")
        methods = _available(methods)
        rows = []
        for name, jobs in sets:
            jobs = [(name, loader, methods, models) for loader in jobs[: args.max_tracks]]
            if args.jobs > 1:
                with ProcessPoolExecutor(args.jobs) as pool:
                    results = list(pool.map(_score_track, jobs))
            else:
                results = [_score_track(job) for job in jobs]
            for track_rows, notes in results:
                rows += track_rows
                for note in notes:
                    print(f"note: {note}", file=sys.stderr)
    except (GensepError, OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    default = "results/f0/" + "+".join(name.replace("/", "-") for name, _ in sets) + ".csv"
    out = Path(args.out or default)
    write_rows(out, rows)
    print(format_table(rows))
    print(f"per-track scores: {out}")
    return 0


def _datasets(args: argparse.Namespace) -> list[tuple[str, list]]:
    """[(set name, [track loader, ...])]; a loader is a picklable (kind, root, key) tuple."""
    from gensep.data.bach10 import bach10_piece_names
    from gensep.data.layout import list_tracks

    sets = []
    if args.data:
        name = f"{Path(args.data).name}/{args.split}"
        sets.append((name, [("layout", str(f), None) for f in list_tracks(args.data, args.split)]))
    if args.bach10:
        names = bach10_piece_names(args.bach10)
        sets.append(("bach10", [("bach10", args.bach10, piece) for piece in names]))
    if not sets:
        raise GensepError("pass --data ROOT (with --split) and/or --bach10 ROOT")
    return sets


def _available(methods: list[str]) -> list[str]:
    """Drop "neural" (with a note) when its module or model is missing."""
    if "neural" not in methods:
        return methods
    try:
        from gensep.f0.neural import default_f0_model_path

        if default_f0_model_path().with_suffix(".npz").is_file():
            return methods
        why = f"no model at {default_f0_model_path()}"
    except ImportError as err:
        why = f"gensep.f0.neural is not available ({err})"
    print(f"note: skipping method 'neural': {why}", file=sys.stderr)
    return [m for m in methods if m != "neural"]


def load_track(loader: tuple[str, str, str | None]) -> tuple[Track, list[str], Path | None]:
    """(track, truth voice names high to low, score file or None)."""
    kind, root, key = loader
    if kind == "bach10":
        from gensep.data.bach10 import BACH10_SOURCES, load_bach10

        track = load_bach10(root, [key], voicing_from_stems=True)[0]
        score = Path(root) / key / f"{key}.mid"
        return track, list(BACH10_SOURCES), score if score.is_file() else None
    from gensep.data.layout import read_track

    track = read_track(root)
    if not track.f0:
        raise GensepError(f"track {track.name}: no <voice>.f0.csv truth in {root}")
    scores = [p for p in sorted(Path(root).iterdir()) if p.suffix.lower() in SCORE_SUFFIXES]
    return track, voices_high_to_low(track.f0), scores[0] if len(scores) == 1 else None


def voices_high_to_low(f0: dict[str, F0Track]) -> list[str]:
    """Voice names sorted by the median of their voiced F0, highest first."""

    def median(name: str) -> float:
        hz = f0[name][1]
        return float(np.median(hz[hz > 0])) if np.any(hz > 0) else 0.0

    return sorted(f0, key=median, reverse=True)


def _score_track(job: tuple) -> tuple[list[dict], list[str]]:
    dataset, loader, methods, models = job
    track, names, score = load_track(loader)
    rows, notes = [], []
    for method in methods:
        if method == "score" and score is None:
            notes.append(f"{track.name}: no score file beside the audio; 'score' skipped")
            continue
        start = time.perf_counter()
        if method == "true":
            estimate = dict(track.f0)
        else:
            from gensep.f0.estimate import estimate_f0

            try:
                kind, model = ("neural", models[method]) if method in models else (method, None)
                estimate = estimate_f0(
                    track.mixture, track.rate, kind, names, score=score, model=model
                )
            except GensepError as err:  # one method failing on one track is not fatal
                notes.append(f"{track.name}: method {method!r} failed ({err}); not scored")
                continue
        elapsed = time.perf_counter() - start
        for voice, scores in score_voices(track.f0, names, estimate).items():
            rows.append(
                {"dataset": dataset, "method": method, "track": track.name, "voice": voice}
                | scores
                | {"audio_s": track.seconds, "estimate_s": elapsed}
            )
    return rows, notes


def score_voices(
    truth: dict[str, F0Track], names: list[str], estimate: dict[str, F0Track]
) -> dict[str, dict[str, float]]:
    """{voice: {metric: value}} for the truth's voices `names` (high to low)."""
    if set(estimate) != set(names):
        ranked = voices_high_to_low(estimate)
        if len(ranked) != len(names):
            raise GensepError(
                f"estimate has voices {sorted(estimate)}, the truth {names}: cannot match them"
            )
        estimate = {name: estimate[other] for name, other in zip(names, ranked, strict=True)}
    return {name: melody_scores(truth[name], estimate[name]) for name in names}


def melody_scores(truth: F0Track, estimate: F0Track) -> dict[str, float]:
    """mir_eval melody metrics of one voice, the estimate resampled onto the truth's times."""
    ref_v, ref_c, est_v, est_c = mir_eval.melody.to_cent_voicing(
        np.asarray(truth[0], float),
        np.asarray(truth[1], float),
        np.asarray(estimate[0], float),
        np.asarray(estimate[1], float),
    )
    recall, false_alarm = mir_eval.melody.voicing_measures(ref_v, est_v)
    hop = float(np.median(np.diff(truth[0]))) if len(truth[0]) > 1 else 0.0
    if np.sum(ref_v == 0) * hop < MIN_UNVOICED_S:
        false_alarm = float("nan")
    return {
        "rpa": mir_eval.melody.raw_pitch_accuracy(ref_v, ref_c, est_v, est_c),
        "rca": mir_eval.melody.raw_chroma_accuracy(ref_v, ref_c, est_v, est_c),
        "vr": recall,
        "vfa": false_alarm,
        "oa": mir_eval.melody.overall_accuracy(ref_v, ref_c, est_v, est_c),
    }


def write_rows(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, FIELDS)
        writer.writeheader()
        writer.writerows(rows)


def summarise(rows: list[dict]) -> Iterator[tuple[str, str, str, dict[str, float], float]]:
    """(dataset, method, voice or "mean", {metric: mean over tracks}, x-real-time)."""
    keys = dict.fromkeys((r["dataset"], r["method"]) for r in rows)
    for dataset, method in keys:
        mine = [r for r in rows if r["dataset"] == dataset and r["method"] == method]
        per_track = {r["track"]: (r["audio_s"], r["estimate_s"]) for r in mine}
        audio, spent = np.sum(list(per_track.values()), axis=0)
        speed = audio / spent if spent > 0 else float("inf")
        for voice in [*dict.fromkeys(r["voice"] for r in mine), "mean"]:
            chosen = [r for r in mine if voice in ("mean", r["voice"])]
            means = {m: _nanmean([r[m] for r in chosen]) for m in METRICS}
            yield dataset, method, voice, means, speed


def _nanmean(values: list[float]) -> float:
    values = [float(v) for v in values if not np.isnan(float(v))]
    return float(np.mean(values)) if values else float("nan")


def format_table(rows: list[dict]) -> str:
    """The summary as a fixed-width table (x-RT "-" for "true": nothing is estimated)."""
    summary = list(summarise(rows))
    wide = max([len("method"), *(len(method) + 1 for _, method, *_ in summary)])
    header = f"{'dataset':<14}{'method':<{wide}}{'voice':<11}" + "".join(
        f"{m.upper():>7}" for m in METRICS
    )
    lines = [header + f"{'x-RT':>8}"]
    for dataset, method, voice, means, speed in summary:
        cells = "".join("      -" if np.isnan(means[m]) else f"{means[m]:7.3f}" for m in METRICS)
        pace = "-" if method == "true" else f"{speed:.1f}"
        lines.append(f"{dataset:<14}{method:<{wide}}{voice:<11}{cells}{pace:>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
