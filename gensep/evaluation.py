"""Scoring one track's estimates the same way for every method (the harness's core).

`score_track` turns references and estimates into per-frame BSSEval v4 (SDR, SIR, SAR,
ISR) and SI-SDR on 1 s frames, on one frame mask shared by every method: a frame counts
only where every reference is above `silence_db` (dBFS, mean square over its channels).
museval's traps are handled here:
  - a frame where any reference or estimate is exactly zero is NaN for *every* source in
    museval; such frames of an estimate get a -200 dBFS dither before scoring (references
    silent in a frame are masked out anyway), and the number of dithered frames is kept;
  - an all-zero estimate raises in museval; the dither covers that too;
  - NaNs left after the mask are counted per metric, never silently averaged.
SI-SDR here is the UMSS protocol's variant (1 s frames, no mean removal).

`grouped_references` makes the two-stem views (vocals/accompaniment,
harmonic/percussive) that two-way methods are scored against.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from gensep import metrics
from gensep.errors import GensepError

SI_SDR = "SI-SDR"
METRICS = (*metrics.METRIC_NAMES, SI_SDR)
SI_SDR_VARIANT = "SI-SDR on 1 s frames without mean removal (UMSS protocol)"
_DITHER_DBFS = -200.0

# Two-stem views: the source a two-way method isolates, and the name of "everything else".
TWO_STEM = {
    ("vocals", "accompaniment"): "vocals",
    ("harmonic", "percussive"): "drums",  # percussive = drums, harmonic = the rest
}


@dataclasses.dataclass(frozen=True)
class DatasetConfig:
    """Where the tracks come from.

    Attributes:
      kind: "layout" (a MUSDB-layout folder, e.g. a rendered set), "musdb" (MUSDB18 through
        the musdb package) or "bach10".
      root: The dataset root (user-supplied for musdb and bach10).
      split: "test", "train", ... (layout and musdb; Bach10 has none).
      is_wav: MUSDB18-HQ wav folders instead of .stem.mp4 (musdb only).
      sample_rate: Resample every track to this rate (Hz); None keeps the files' rate.
      max_seconds: Score only the first this many seconds of each track; None: all.
      max_tracks: Only the first this many tracks (sorted by name); None: all.
    """

    kind: str = "layout"
    root: str | None = None
    split: str = "test"
    is_wav: bool = False
    sample_rate: int | None = None
    max_seconds: float | None = None
    max_tracks: int | None = None


@dataclasses.dataclass(frozen=True)
class MethodConfig:
    """One row of a table: a registered method with its options.

    Attributes:
      name: Registered method name (`gensep.separation.METHODS`).
      label: The row's name in results (default: `name`); lets one method appear with
        different options (irm with mask power 1 and 2).
      options: Keyword options for the method.
      permutation: "fixed" scores estimate k against reference k; "best" first matches
        estimates to references by the permutation with the best mean SI-SDR over the whole
        track (for blind methods whose source order is arbitrary, e.g. NMF clusters; the
        reports mark such rows).
    """

    name: str
    label: str | None = None
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    permutation: str = "fixed"

    @property
    def row(self) -> str:
        return self.label or self.name


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """A full evaluation run (configs/eval_*.yaml).

    Attributes:
      dataset: The tracks.
      methods: The rows.
      scorer: BSSEval back end, "fast" or "museval" (`gensep.metrics.bss_eval`).
      frame_seconds: BSSEval window = hop, and the SI-SDR frame (s).
      silence_db: A frame is scored only where every reference is above this (dBFS).
      instglow: Also score the InstGlow protocol (one SDR per 60 s mono segment).
      save_estimates: Write every estimate under results/<name>/estimates/.
      jobs: Tracks separated in parallel processes.
    """

    dataset: DatasetConfig
    methods: list[MethodConfig]
    scorer: str = "fast"
    frame_seconds: float = 1.0
    silence_db: float = -60.0
    instglow: bool = False
    save_estimates: bool = False
    jobs: int = 2


def frame_mask(
    references: np.ndarray, sample_rate: int, frame_seconds: float, silence_db: float
) -> np.ndarray:
    """Frames where every reference is above `silence_db` dBFS: bool [frames].

    Args:
      references: [sources, channels, samples].
    """
    frame = round(frame_seconds * sample_rate)
    n_frames = max(references.shape[-1] // frame, 1)
    usable = references[..., : n_frames * frame] if references.shape[-1] >= frame else references
    framed = usable.reshape(*usable.shape[:2], n_frames, -1)  # [S, C, T, L]
    power = np.mean(framed.astype(np.float64) ** 2, axis=(1, 3))  # [S, T]
    with np.errstate(divide="ignore"):
        level = 10 * np.log10(power)
    return np.all(level > silence_db, axis=0)


def score_track(
    references: dict[str, np.ndarray],
    estimates: dict[str, np.ndarray],
    sample_rate: int,
    *,
    scorer: str = "fast",
    frame_seconds: float = 1.0,
    silence_db: float = -60.0,
    instglow: bool = False,
) -> dict[str, Any]:
    """Per-frame scores of one track, on the common frame mask.

    Args:
      references, estimates: {source: [channels, samples]}, the same names and shapes.
      sample_rate: Hz.
      scorer, frame_seconds, silence_db, instglow: as in `EvalConfig`.

    Returns:
      {"sources": names, "mask": [frames] bool list, "frames": {source: {metric: [frames]
      floats, NaN where masked}}, "median": {source: {metric: median over the masked
      frames}}, "nan": {metric: NaN count inside the mask}, "dithered_frames": int, and
      "instglow_sdr": {source: median SDR over 60 s mono segments} when asked}.
    """
    names = list(references)
    if sorted(estimates) != sorted(names):
        raise GensepError(f"estimates {sorted(estimates)} do not match references {names}")
    refs = np.stack([references[n] for n in names]).astype(np.float64)  # [S, C, N]
    ests = np.stack([estimates[n] for n in names]).astype(np.float64)
    ests, dithered = _dither_silent_frames(ests, round(frame_seconds * sample_rate))
    refs, _ = _dither_silent_frames(refs, round(frame_seconds * sample_rate))
    mask = frame_mask(refs, sample_rate, frame_seconds, silence_db)
    bss = metrics.bss_eval(
        refs,
        ests,
        sample_rate,
        window_seconds=frame_seconds,
        hop_seconds=frame_seconds,
        scorer=scorer,
    )
    scores = dict(bss)
    scores[SI_SDR] = metrics.framewise_si_sdr(
        ests, refs, sample_rate, frame_seconds=frame_seconds, zero_mean=False
    )
    frames: dict[str, dict[str, list[float]]] = {n: {} for n in names}
    median: dict[str, dict[str, float]] = {n: {} for n in names}
    nan = {}
    for metric in METRICS:
        values = np.where(mask[None, : scores[metric].shape[1]], scores[metric], np.nan)
        inside = scores[metric][:, mask[: scores[metric].shape[1]]]
        nan[metric] = int(np.isnan(inside).sum())
        for i, name in enumerate(names):
            frames[name][metric] = [_finite_or_none(v) for v in values[i]]
            median[name][metric] = _nan_median(values[i])
    out = {
        "sources": names,
        "mask": [bool(m) for m in mask],
        "frames": frames,
        "median": median,
        "nan": nan,
        "dithered_frames": dithered,
    }
    if instglow:
        out["instglow_sdr"] = instglow_sdr(refs, ests, sample_rate, names, scorer)
    return out


def instglow_sdr(
    refs: np.ndarray, ests: np.ndarray, sample_rate: int, names: list[str], scorer: str
) -> dict[str, float]:
    """The InstGlow protocol: BSSEval SDR on mono downmixes, one value per 60 s segment
    (one segment when shorter), median over segments; {source: dB}."""
    mono_refs = refs.mean(axis=1)
    mono_ests = ests.mean(axis=1)
    seconds = min(60.0, refs.shape[-1] / sample_rate)
    sdr = metrics.bss_eval(
        mono_refs,
        mono_ests,
        sample_rate,
        window_seconds=seconds,
        hop_seconds=seconds,
        scorer=scorer,
    )["SDR"]
    return {name: _nan_median(sdr[i]) for i, name in enumerate(names)}


def grouped_references(
    references: dict[str, np.ndarray], stems: tuple[str, ...]
) -> dict[str, np.ndarray] | None:
    """The references of a two-stem method, or None if the track lacks the needed source.

    ("vocals", "accompaniment") -> vocals and the sum of the rest; ("harmonic",
    "percussive") -> the sum of everything but drums, and drums.
    """
    target = TWO_STEM.get(tuple(stems))
    if target is None or target not in references or len(references) < 2:
        return None
    rest = sum(audio for name, audio in references.items() if name != target)
    if stems[0] == target:
        return {stems[0]: references[target], stems[1]: rest}
    return {stems[0]: rest, stems[1]: references[target]}


def best_permutation(
    references: dict[str, np.ndarray], estimates: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Rename estimates to the references' names by the assignment with the best mean
    whole-track SI-SDR (Hungarian algorithm on the pairwise scores)."""
    from scipy.optimize import linear_sum_assignment

    ref_names, est_names = list(references), list(estimates)
    pairwise = np.array(
        [
            [metrics.si_sdr_multichannel(estimates[e], references[r]) for e in est_names]
            for r in ref_names
        ]
    )
    rows, cols = linear_sum_assignment(np.nan_to_num(pairwise, nan=-1e9), maximize=True)
    return {ref_names[r]: estimates[est_names[c]] for r, c in zip(rows, cols, strict=True)}


def _dither_silent_frames(audio: np.ndarray, frame: int) -> tuple[np.ndarray, int]:
    """Add a tiny seeded dither to every frame whose channel sum is exactly zero throughout
    (museval's silence test); returns (audio, number of frames dithered)."""
    n = audio.shape[-1]
    starts = range(0, n, frame)
    rng = np.random.default_rng(0)
    out, count = audio, 0
    for s in range(audio.shape[0]):
        for start in starts:
            if not np.any(audio[s, :, start : start + frame].sum(axis=0)):
                if out is audio:
                    out = audio.copy()
                seg = out[s, :, start : start + frame]
                seg += 10 ** (_DITHER_DBFS / 20) * rng.standard_normal(seg.shape)
                count += 1
    return out, count


def _nan_median(values: np.ndarray) -> float | None:
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    return float(np.median(finite)) if finite.size else None


def _finite_or_none(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
