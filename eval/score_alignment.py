"""Score-to-recording alignment (`gensep.f0.align`) measured on Bach10 and a rendered choir.

    python eval/score_alignment.py --bach10 ../shared/data/bach10 --choir data/choir/test

Prints, for each dataset given:
1. `Alignment.similarity` of every (score, recording) pair: each piece's own score
   (match) against every other piece's (mismatch), and the margin around the threshold.
2. Bach10: onset error |aligned score onset - true audio onset| over the notes of
   `NN-Name.txt`, with the fitted line (global) and the warping path (path), on the
   recordings and on them shifted (1.5 s of silence first) and slowed to 0.9x speed (phase
   vocoder, pitch kept); an "oracle" row maps the score through the true onsets instead.
3. Bach10: the aligned score F0 against the F0 truth (mir_eval.melody, voicing from the
   stems), per part (score parts matched to instruments by mean pitch order).
4. Choir: the truth F0 as the "score" is the recording's own timing, so the fit should
   give offset 0 and scale 1 (and 1.5 s, 1/0.9 on the shifted, slowed mixtures).
5. Time per alignment, and for the five Bach10 pieces back to back (2.8 minutes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from gensep.data.bach10 import load_bach10
from gensep.data.layout import list_tracks, read_f0_csv
from gensep.data.track import f0_on_frames
from gensep.f0.align import (
    ANALYSIS_RATE,
    FEATURE_HOP,
    MIN_SIMILARITY,
    ScoreMismatchError,
    align_score,
    fit_alignment,
    recording_chroma,
    score_chroma,
)
from gensep.f0.score import from_score

HOP_S = FEATURE_HOP / ANALYSIS_RATE
PAD_S, SPEED = 1.5, 0.9  # the shifted, slowed variant: silence first (s), playback speed
MELODY_KEYS = ("Raw Pitch Accuracy", "Raw Chroma Accuracy", "Voicing Recall", "Voicing False Alarm")


def shift_and_slow(audio: np.ndarray, rate: int) -> np.ndarray:
    """`PAD_S` s of silence, then `audio` [samples] at `SPEED`x speed (pitch kept)."""
    import librosa

    slow = librosa.effects.time_stretch(audio, rate=SPEED)
    return np.concatenate([np.zeros(round(PAD_S * rate), np.float32), slow])


def similarities(items: list[tuple]) -> np.ndarray:
    """[score, recording, (similarity, line_similarity)] of `Alignment` (nan: recording too
    short for the score) for items (name, score tracks, mono audio, rate, ...)."""
    audio = [recording_chroma(item[2], item[3])[0] for item in items]
    scores = [score_chroma(item[1], HOP_S) for item in items]
    out = np.full((len(items), len(items), 2), np.nan)
    for i, (chroma, first) in enumerate(scores):
        for j, recording in enumerate(audio):
            try:
                alignment = fit_alignment(chroma, recording, HOP_S, first)
                out[i, j] = alignment.similarity, alignment.line_similarity
            except ScoreMismatchError:
                pass
    return out


def print_similarities(label: str, names: list[str], sim: np.ndarray) -> tuple[float, float]:
    """Print the match / mismatch distributions; return (lowest match, highest mismatch)."""
    print(f"\n## {label}: similarity (line similarity), own score (match) vs another piece's")
    for name, (value, line) in zip(names, np.diagonal(sim).T, strict=True):
        print(f"  match    {name:32s} {value:.3f} ({line:.3f})")
    mismatch = ~np.eye(len(names), dtype=bool)
    for k, measure in enumerate(("similarity", "line similarity")):
        match, others = np.diagonal(sim[..., k]), sim[..., k][mismatch]
        short = int(np.isnan(others).sum())
        worst = np.unravel_index(np.nanargmax(np.where(mismatch, sim[..., k], -1)), mismatch.shape)
        others = others[np.isfinite(others)]
        print(
            f"  {measure:15s} matches    n={match.size:3d} min {match.min():.3f} median "
            f"{np.median(match):.3f} max {match.max():.3f}\n  {measure:15s} mismatches "
            f"n={others.size:3d} min {others.min():.3f} median {np.median(others):.3f} max "
            f"{others.max():.3f} ({names[worst[0]]} score on {names[worst[1]]}); {short} more "
            "rejected as too short"
        )
        if k == 0:
            lowest, highest = float(match.min()), float(others.max())
    return lowest, highest


def bach10(root: Path) -> list[tuple]:
    items = []
    for track in load_bach10(root, voicing_from_stems=True):
        folder = root / track.name
        notes = np.loadtxt(folder / f"{track.name}.txt", ndmin=2)[:, :2] / 1000.0
        score = from_score(folder / f"{track.name}.mid")
        items.append((track.name, score, track.mixture.mean(axis=0), track.rate, notes, track.f0))
    return items


def true_times(score_s: np.ndarray, onsets: np.ndarray, audio_s: np.ndarray) -> np.ndarray:
    """Score times (s) mapped through the true (score onset, audio onset) pairs: linearly
    between them, at the first / last pair's tempo beyond them."""
    inside = np.interp(score_s, onsets, audio_s)
    slope_first = (audio_s[1] - audio_s[0]) / (onsets[1] - onsets[0])
    slope_last = (audio_s[-1] - audio_s[-2]) / (onsets[-1] - onsets[-2])
    before = audio_s[0] + slope_first * (score_s - onsets[0])
    after = audio_s[-1] + slope_last * (score_s - onsets[-1])
    return np.where(score_s < onsets[0], before, np.where(score_s > onsets[-1], after, inside))


def by_pitch(tracks: dict) -> list[str]:
    """Track names from the highest mean voiced pitch to the lowest."""
    mean = {name: np.mean(np.log2(hz[hz > 0])) for name, (_, hz) in tracks.items()}
    return sorted(mean, key=mean.get, reverse=True)


def melody(aligned: dict, truth: dict) -> dict[str, np.ndarray]:
    """{truth part: mir_eval.melody scores in `MELODY_KEYS` order} (parts by pitch order)."""
    import mir_eval

    out = {}
    for part, source in zip(by_pitch(aligned), by_pitch(truth), strict=True):
        ref_t, ref_hz = truth[source]
        est_hz = f0_on_frames(*aligned[part], ref_t)
        scores = mir_eval.melody.evaluate(ref_t, ref_hz, ref_t, est_hz)
        out[source] = np.array([scores[key] for key in MELODY_KEYS])
    return out


def report_bach10(items: list[tuple]) -> None:
    names = [item[0] for item in items]
    match, worst = print_similarities("Bach10", names, similarities(items))
    errors: dict[str, list[np.ndarray]] = {}
    scores: dict[str, dict[str, list[np.ndarray]]] = {}
    seconds = []
    for _, score, mono, rate, notes, truth in items:
        onsets, first = np.unique(notes[:, 1], return_index=True)
        oracle = {p: (true_times(t, onsets, notes[first, 0]), hz) for p, (t, hz) in score.items()}
        for warp, aligned in [("oracle", oracle)] + [
            (warp, align_score(score, mono, rate, warp=warp)[0]) for warp in ("global", "path")
        ]:
            for source, row in melody(aligned, truth).items():
                scores.setdefault(warp, {}).setdefault(source, []).append(row)
        for variant, audio in (("", mono), (" shifted+slowed", shift_and_slow(mono, rate))):
            start = time.perf_counter()
            _, alignment = align_score(score, audio, rate)
            seconds.append((time.perf_counter() - start, audio.size / rate))
            true = notes[:, 0] if not variant else PAD_S + notes[:, 0] / SPEED
            for warp in ("global", "path"):
                predicted = alignment.to_audio(notes[:, 1], warp)
                errors.setdefault(warp + variant, []).append(np.abs(predicted - true))
    print("\n## Bach10: onset error (s) over all notes, |aligned - true audio onset|")
    print(f"  {'warp':24s} {'median':>7s} {'p90':>7s} {'max':>7s}")
    for label, err in errors.items():
        e = np.concatenate(err)
        print(f"  {label:24s} {np.median(e):7.3f} {np.percentile(e, 90):7.3f} {e.max():7.3f}")
    print("\n## Bach10: aligned score F0 vs F0 truth (mir_eval.melody), mean over the pieces;")
    print("   oracle: the score mapped through the true onsets (NN-Name.txt)")
    print(f"  {'warp':8s} {'part':10s}  RPA    RCA    VR     VFA")
    for warp, parts in scores.items():
        for source, rows in parts.items():
            print(f"  {warp:8s} {source:10s} " + " ".join(f"{v:6.3f}" for v in np.mean(rows, 0)))
    per = np.array(seconds)
    print(
        f"\n## timing: {per[:, 0].mean():.2f} s per alignment (mean over {len(per)} recordings "
        f"of {per[:, 1].mean():.0f} s)"
    )
    audio, tracks = back_to_back(items)
    start = time.perf_counter()
    _, alignment = align_score(tracks, audio, items[0][3])
    print(
        f"  all pieces back to back ({audio.size / items[0][3] / 60:.1f} min): "
        f"{time.perf_counter() - start:.2f} s, similarity {alignment.similarity:.3f}"
    )
    print(f"  threshold {MIN_SIMILARITY}: lowest match {match:.3f}, highest mismatch {worst:.3f}")


def back_to_back(items: list[tuple]) -> tuple[np.ndarray, dict]:
    """(The recordings [samples] one after the other, their scores likewise; parts joined
    by pitch order)."""
    parts: dict[str, list] = {}
    offset = 0.0
    for _, score, _, _, _, _ in items:
        for i, name in enumerate(by_pitch(score)):
            t, hz = score[name]
            parts.setdefault(f"part{i}", []).append((t + offset, hz))
        offset += max(t[-1] for t, _ in score.values()) + 0.01
    tracks = {
        name: (np.concatenate([t for t, _ in v]), np.concatenate([hz for _, hz in v]))
        for name, v in parts.items()
    }
    return np.concatenate([item[2] for item in items]), tracks


def report_choir(root: Path, limit: int | None) -> None:
    items = []
    for folder in list_tracks(root.parent, root.name)[:limit]:
        audio, rate = sf.read(str(folder / "mixture.wav"), dtype="float32", always_2d=True)
        tracks = {p.name.split(".")[0]: read_f0_csv(p) for p in sorted(folder.glob("*.f0.csv"))}
        items.append((folder.name, tracks, audio.mean(axis=1), rate))
    names = [item[0] for item in items]
    print_similarities(f"choir {root}", names, similarities(items))
    print("\n## choir: fitted offset (s) and scale; truth F0 as the score")
    for label, pad, speed in (("as rendered", 0.0, 1.0), ("shifted+slowed", PAD_S, SPEED)):
        fits = []
        for _, tracks, mono, rate in items:
            audio = mono if speed == 1.0 else shift_and_slow(mono, rate)
            _, alignment = align_score(tracks, audio, rate)
            fits.append((alignment.offset_s - pad, alignment.scale - 1 / speed))
        err = np.abs(np.array(fits))
        print(
            f"  {label:16s} expected offset {pad:.2f} scale {1 / speed:.4f}: |offset error| "
            f"median {np.median(err[:, 0]):.3f} max {err[:, 0].max():.3f} s; |scale error| "
            f"median {np.median(err[:, 1]):.4f} max {err[:, 1].max():.4f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bach10", type=Path, help="the Bach10 root (holding 01-.../)")
    parser.add_argument("--choir", type=Path, help="a rendered split: <root>/<split>/")
    parser.add_argument("--limit", type=int, help="use only the first N choir tracks")
    args = parser.parse_args(argv)
    if args.bach10 is None and args.choir is None:
        parser.error("give --bach10 PATH and/or --choir PATH")
    if args.bach10 is not None:
        report_bach10(bach10(args.bach10))
    if args.choir is not None:
        report_choir(args.choir, args.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
