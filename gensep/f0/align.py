"""Align a score's F0 tracks to a recording that plays it at its own tempo and offset.

    tracks, alignment = align_score(from_score("bach.mid"), mono, sample_rate)

Method: chroma of the recording (constant-Q, energy, unit-norm frames) and chroma made
from the score's F0 tracks themselves (each voiced frame's pitch class, weighted by its
duration), both on one hop of 46 ms; subsequence DTW of the whole score against the
recording (which may have silence, tuning or applause around the piece); a robust
straight-line fit `t_audio = offset_s + scale * t_score` to the warping path (least
squares, trimmed of outliers and refitted). The tracks' frames keep their Hz and move to
the times the warping path gives (`warp="path"`, the default: it follows fermatas and
rubato), or to the fitted line (`warp="global"`).

Measured with eval/score_alignment.py on Bach10 (real players, fermatas held up to 2.3x
their value): the path puts note onsets within 30 ms of the truth (median; 90th
percentile 106 ms), the fitted line only within 221 ms (504 ms), since the pieces' own
tempo is not steady; the path-warped score F0 reaches 0.89-0.90 raw pitch accuracy
against the F0 truth per part (0.91-0.92 mapped through the true onsets), the
line-warped 0.61-0.71. A 3-minute recording takes about 2 s (chroma 1.3 s, DTW 0.8 s).
Chroma energy without log compression, and the score's fundamentals without their upper
partials, separated matching from mismatched scores best (both raised mismatched
scores' similarity about as much as matching ones').

Mismatch: `Alignment.similarity` is the mean chroma cosine similarity along the warping
path over the score's voiced frames. DTW bends any score to fit any recording somewhat,
but a score of another piece, even another Bach chorale in the same style, stays well
below a matching one; see `MIN_SIMILARITY` for the measurements behind the threshold.
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np

from gensep.data.track import F0Track
from gensep.errors import AudioError
from gensep.f0.score import ScoreError

ANALYSIS_RATE = 22050  # Hz; the recording is resampled to this for its chroma
FEATURE_HOP = 1024  # samples at ANALYSIS_RATE: 46.4 ms, a multiple of 2^6 as the CQT needs
MIN_SCALE = 0.5  # the fastest tempo ratio the DTW steps allow (the slowest is 3)
WARPS = ("global", "path")
# `Alignment.similarity` below which a score is another piece's. Measured (eval/
# score_alignment.py): own scores 0.883-0.905 on Bach10's 5 pieces, 0.839-0.917 on the 20
# rendered choir test chorales (truth F0 as the score); other pieces' scores 0.498-0.692
# on Bach10 (20 pairs: the hard case, Bach chorales all), 0.268-0.684 on the choir (325
# pairs). 0.765 sits 0.074 below the lowest match and 0.073 above the highest mismatch.
MIN_SIMILARITY = 0.765


class ScoreMismatchError(ScoreError):
    """A score that does not match the recording (another piece, or far too long for it)."""


@dataclasses.dataclass(frozen=True)
class Alignment:
    """Where and how fast a recording plays a score.

    Attributes:
      offset_s: Audio time (s) of score time 0.
      scale: Audio seconds per score second (> 1: the recording is slower than the score).
      similarity: Mean cosine similarity (0-1) of the score's and the recording's chroma
        along the warping path, over the score's voiced frames; higher = better match.
      residual_s: Median |warping path - fitted line| (s) over the path's points; large
        where the performance bends the tempo (fermatas, rubato) or the score is wrong.
      line_similarity: `similarity` along the fitted line instead of the path: lower where
        the tempo is not steady (what `warp="global"` would give).
      inliers: Fraction of the path's points the line fit kept.
      hop_s: Chroma / DTW hop (s).
      path_s: The warping path as (score s, audio s) rows. Shape [points, 2].
    """

    offset_s: float
    scale: float
    similarity: float
    residual_s: float
    line_similarity: float
    inliers: float
    hop_s: float
    path_s: np.ndarray = dataclasses.field(repr=False, compare=False)

    def to_audio(self, score_s: np.ndarray, warp: str = "path") -> np.ndarray:
        """Audio times (s) of score times `score_s` (s): along the warping path (`warp=
        "path"`: linearly between its points, at the fitted tempo beyond them) or the fitted
        line (`warp="global"`). Strictly increasing where `score_s` is."""
        score_s = np.asarray(score_s, np.float64)
        if warp == "global":
            return self.offset_s + self.scale * score_s
        if warp != "path":
            raise ValueError(f"unknown warp {warp!r}; known: {', '.join(WARPS)}")
        x, y = self.path_s[:, 0], self.path_s[:, 1]
        inside = np.interp(score_s, x, y)
        before = y[0] + self.scale * (score_s - x[0])
        after = y[-1] + self.scale * (score_s - x[-1])
        return np.where(score_s < x[0], before, np.where(score_s > x[-1], after, inside))


def align_score(
    tracks: dict[str, F0Track],
    audio: np.ndarray,
    sample_rate: int,
    *,
    min_similarity: float = MIN_SIMILARITY,
    warp: str = "path",
) -> tuple[dict[str, F0Track], Alignment]:
    """Move score F0 tracks onto the time line of a recording of the score.

    Args:
      tracks: {part: (times s [n], Hz [n], 0 = rest)} in the score's timing
        (`gensep.f0.score.from_score`).
      audio: The recording, float [samples] or [channels, samples] (channels averaged).
      sample_rate: Its rate (Hz).
      min_similarity: Below this `Alignment.similarity` the score is taken for another
        piece: `ScoreMismatchError`. 0 accepts any score.
      warp: "path": frames follow the DTW path (between its points linearly, beyond them
        at the fitted tempo); "global": every frame moves by the fitted offset and tempo
        (for a recording known to keep a steady tempo).

    Returns:
      ({part: (audio times s, Hz)} with the frames that fall inside the recording, in the
      order of `tracks`; the `Alignment`).

    Raises:
      ScoreError: no tracks, or no voiced frame in any of them.
      AudioError: empty, non-finite or silent audio.
      ScoreMismatchError: the score does not match the recording, or the recording is too
        short to play the score at even twice its tempo.
    """
    if warp not in WARPS:
        raise ValueError(f"unknown warp {warp!r}; known: {', '.join(WARPS)}")
    hop_s = FEATURE_HOP / ANALYSIS_RATE
    chroma, first = score_chroma(tracks, hop_s)
    audio_chroma, seconds = recording_chroma(audio, sample_rate)
    alignment = fit_alignment(chroma, audio_chroma, hop_s, first)
    if alignment.similarity < min_similarity:
        raise ScoreMismatchError(
            f"the score does not match the recording: chroma similarity "
            f"{alignment.similarity:.3f} along the alignment is below the threshold "
            f"{min_similarity:.3f} (a matching score scores higher). Is it the score of this "
            f"piece? (pass min_similarity=0 to accept it anyway)"
        )
    aligned = {}
    for name, (times, hz) in tracks.items():
        audio_times = alignment.to_audio(times, warp)
        keep = (audio_times >= 0.0) & (audio_times <= seconds)
        aligned[name] = (audio_times[keep], np.asarray(hz, np.float64)[keep])
    return aligned, alignment


def recording_chroma(audio: np.ndarray, sample_rate: int) -> tuple[np.ndarray, float]:
    """(Unit-norm chroma [12, frames] on `FEATURE_HOP` at `ANALYSIS_RATE`, 0 in silent
    frames; the recording's length in s) of float audio [samples] or [channels, samples]."""
    import librosa

    audio = np.asarray(audio, np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=0)
    if audio.ndim != 1 or audio.size == 0:
        raise AudioError(f"audio of shape {audio.shape}: expected [samples] or [channels, samples]")
    if not np.isfinite(audio).all():
        raise AudioError("audio has NaN or infinite samples: nothing to align the score to")
    seconds = audio.size / sample_rate
    if seconds < 2 * FEATURE_HOP / ANALYSIS_RATE:
        raise AudioError(f"audio of {seconds * 1e3:.0f} ms is too short to align a score to")
    if np.abs(audio).max() < 1e-5:  # -100 dBFS: silence or a quiet dither
        raise AudioError(
            "the audio is silent (peak below -100 dBFS): nothing to align the score to"
        )
    y = librosa.resample(audio, orig_sr=sample_rate, target_sr=ANALYSIS_RATE)
    with warnings.catch_warnings():  # librosa warns on signals shorter than its lowest filter
        warnings.simplefilter("ignore")
        energy = librosa.feature.chroma_cqt(
            y=y, sr=ANALYSIS_RATE, hop_length=FEATURE_HOP, norm=None, n_octaves=7
        )
    return _unit_columns(energy), seconds


def score_chroma(tracks: dict[str, F0Track], hop_s: float) -> tuple[np.ndarray, int]:
    """(Unit-norm chroma [12, frames] of the voiced span of the score's tracks, 0 where all
    parts rest; the index of its first frame on the score's hop-`hop_s` grid from 0 s).

    Each voiced F0 frame adds its duration to its pitch class in the chroma frame it falls in."""
    if not tracks:
        raise ScoreError("no score tracks to align")
    rows, weights, frames = [], [], []
    for name, (times, hz) in tracks.items():
        times, hz = np.asarray(times, np.float64), np.asarray(hz, np.float64)
        if times.shape != hz.shape or times.ndim != 1:
            raise ScoreError(f"score track {name!r}: times {times.shape} and Hz {hz.shape} differ")
        voiced = np.isfinite(hz) & (hz > 0)
        if not voiced.any():
            continue
        duration = np.gradient(times) if times.size > 1 else np.ones(1)
        midi = 69.0 + 12.0 * np.log2(hz[voiced] / 440.0)
        rows.append(np.round(midi).astype(np.int64) % 12)
        weights.append(duration[voiced])
        frames.append(np.round(times[voiced] / hop_s).astype(np.int64))
    if not rows:
        raise ScoreError(f"the score tracks ({', '.join(tracks)}) have no voiced frame to align")
    frame = np.concatenate(frames)
    first = int(frame.min())
    energy = np.zeros((12, int(frame.max()) - first + 1))
    np.add.at(energy, (np.concatenate(rows), frame - first), np.concatenate(weights))
    return _unit_columns(energy), first


def fit_alignment(
    chroma: np.ndarray, audio_chroma: np.ndarray, hop_s: float, first: int = 0
) -> Alignment:
    """Subsequence DTW of score chroma [12, n] (its frame 0 at score time `first * hop_s`)
    against recording chroma [12, m], then the robust line fit (see the module docstring)."""
    import librosa

    n, m = chroma.shape[1], audio_chroma.shape[1]
    if m < MIN_SCALE * n + 1:
        raise ScoreMismatchError(
            f"the recording ({m * hop_s:.1f} s) is too short for the score ({n * hop_s:.1f} s "
            f"of notes): it would have to play at more than {1 / MIN_SCALE:.0f}x the score's "
            "tempo. Is it the score of this piece, or is the recording cut?"
        )
    similarity = chroma.T @ audio_chroma  # [n, m] cosine: columns are unit or 0
    # Local tempo ratio within [1/2, 3]: a fermata may hold a chord three times its value.
    # Each step costs its cell times the frames it spans on the longer side, so a path is
    # not cheaper for skipping frames (measured: unbiased ends, half the line residual).
    steps = np.array([[1, 1], [2, 1], [1, 2], [1, 3]])
    try:
        _, path = librosa.sequence.dtw(
            C=1.0 - similarity, subseq=True, step_sizes_sigma=steps, weights_mul=steps.max(1)
        )
    except librosa.ParameterError as err:  # no path: the recording is too short
        raise ScoreMismatchError(f"no alignment of the score to the recording ({err})") from err
    path = path[::-1]  # librosa backtracks from the end
    if path[:, 0].max() >= n or path[:, 1].max() >= m:
        # librosa 0.10-0.11 swaps the columns when the query (score) is the longer input
        path = path[:, ::-1]
    score_s, audio_s = (path[:, 0] + first) * hop_s, path[:, 1] * hop_s
    offset_s, scale, keep = robust_line(score_s, audio_s, tolerance=2 * hop_s)
    residual = np.abs(audio_s - offset_s - scale * score_s)
    voiced = np.flatnonzero(np.any(chroma > 0, axis=0))
    on_path = np.interp(voiced, path[:, 0], path[:, 1])
    on_line = (offset_s + scale * (voiced + first) * hop_s) / hop_s
    return Alignment(
        offset_s=offset_s,
        scale=scale,
        similarity=_mean_on(similarity, voiced, on_path),
        residual_s=float(np.median(residual)),
        line_similarity=_mean_on(similarity, voiced, on_line),
        inliers=float(keep.mean()),
        hop_s=hop_s,
        path_s=np.stack([score_s, audio_s], axis=1),
    )


def _mean_on(similarity: np.ndarray, rows: np.ndarray, columns: np.ndarray) -> float:
    """Mean of similarity [n, m] at (rows, nearest columns) [k]; a column outside the
    recording counts as no match at all (0)."""
    column = np.round(columns).astype(np.int64)
    inside = (column >= 0) & (column < similarity.shape[1])
    values = similarity[rows, np.clip(column, 0, similarity.shape[1] - 1)]
    return float(np.where(inside, values, 0.0).mean())


def robust_line(
    x: np.ndarray, y: np.ndarray, tolerance: float, rounds: int = 20
) -> tuple[float, float, np.ndarray]:
    """(offset, slope, kept points [n] bool) of y = offset + slope * x, least squares refitted
    to the points within max(3 robust sigma (1.4826 MAD), `tolerance`) of the last fit."""
    keep = np.ones(x.shape, bool)
    for _ in range(rounds):
        slope, offset = np.polyfit(x[keep], y[keep], 1)
        residual = np.abs(y - offset - slope * x)
        bound = max(3.0 * 1.4826 * float(np.median(residual[keep])), tolerance)
        new = residual <= bound
        if new.sum() < 2 or np.array_equal(new, keep):
            break
        keep = new
    return float(offset), float(slope), keep


def _unit_columns(energy: np.ndarray) -> np.ndarray:
    """Unit-L2 columns of chroma energy [12, frames]; frames under a millionth of the
    loudest frame's total (silence) become 0, so they match nothing. No log compression:
    it raised mismatched scores' similarity more than matching ones'."""
    total = energy.sum(axis=0)
    peak = float(total.max()) if total.size else 0.0
    if peak <= 0.0:
        return np.zeros_like(energy)
    norm = np.linalg.norm(energy, axis=0)
    return np.where(total > 1e-6 * peak, energy / np.maximum(norm, 1e-30), 0.0)


__all__ = [
    "MIN_SIMILARITY",
    "WARPS",
    "Alignment",
    "ScoreMismatchError",
    "align_score",
    "fit_alignment",
    "recording_chroma",
    "score_chroma",
]
