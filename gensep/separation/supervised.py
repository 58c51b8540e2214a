"""Supervised mask networks as separation methods (--method blstm|unet|cnn|transformer|crnn).

A trained model (`train/supervised.py --export`, `<name>.npz + <name>.json`) is applied
chunked: the input (any rate, any channel count, any length) is cut into fixed chunks
with a cross-faded overlap (`gensep.audio.split_chunks`), so the jitted network compiles
once per chunk shape and memory stays flat with the input's length. Every (chunk,
channel) pair is one row of a fixed-size batch:
  1. the row is resampled to the model's rate (soxr) if the input's differs;
  2. the network predicts softmax masks on the model's STFT from that row alone, so each
     channel of a stereo input gets its own masks (a channel of a panned mix is one more
     mixture with other source gains, which the remix training covers);
  3. at the model's rate the masks multiply the row's STFT at the model's n_fft / hop and
     the inverse STFT gives the estimates (all in one jitted call); at another rate the
     masks are mapped onto the input's own STFT (`default_stft` of its rate: linear in
     time and frequency, the top model bin's mask held above the model's Nyquist,
     `common.map_masks`) and applied there, so no band of the input is lost.
The masks sum to 1, so the estimates sum to the mixture up to STFT rounding. The
outputs are named and ordered as the model card's sources.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soxr

from gensep.audio import merge_chunks, split_chunks
from gensep.errors import GensepError
from gensep.separation.common import chunk_grid, default_stft, istft, map_masks, stft

ARCHS = ("blstm", "unet", "cnn", "transformer", "crnn")


def separate(
    mixture: np.ndarray,
    sample_rate: int,
    *,
    model: str | Path | None = None,
    chunk_seconds: float = 10.0,
    overlap_seconds: float = 1.0,
    batch_rows: int = 4,
    names: Sequence[str] | None = None,
    n_sources: int | None = None,
    progress: bool = False,
    arch: str | None = None,
) -> dict[str, np.ndarray]:
    """Separate the sources a trained mask network was trained on.

    Args:
      mixture: float32 [channels, samples] at `sample_rate`.
      sample_rate: Hz.
      model: The model path (`<name>` of <name>.npz + <name>.json); required.
      chunk_seconds, overlap_seconds: Chunking (cross-faded overlap); rounded down to the
        model's hop. The recurrent and attention models see one chunk as their context.
      batch_rows: (chunk, channel) rows per jitted call (memory vs speed).
      names: Return only these of the model's sources, in this order (the evaluation
        harness passes the dataset's names); None = all, in the card's order.
      n_sources: If given, must equal the number of sources returned (harness check).
      progress: Show a progress bar counted in seconds of audio.
      arch: The architecture the caller expects (the registered method's name); a model
        of another architecture is an error, so a table row cannot mislabel a model.

    Returns:
      {source: float32 [channels, samples]}; with all sources, they sum to the mixture
      up to STFT rounding.

    Raises:
      GensepError: no model, a model of another architecture, names the model does not
        separate, bad chunking. CheckpointError: a missing or unreadable model file.
    """
    if model is None:
        raise GensepError(
            f"method {arch or 'supervised'!r} needs model=PATH (a trained model, "
            "<name>.npz + <name>.json: train/supervised.py --export RUN --to PATH); "
            "on the command line: --model PATH"
        )
    runner = _runner(*_model_key(model))
    if arch is not None and runner.arch != arch:
        raise GensepError(
            f"{model}: a {runner.arch} model, not a {arch} one — use --method {runner.arch}"
        )
    chosen = _chosen_sources(runner.sources, names, n_sources, model)
    rate_m, hop_m = runner.rate, runner.hop
    chunk_m, _, chunk_in, overlap_in = chunk_grid(
        chunk_seconds, overlap_seconds, rate_m, hop_m, sample_rate
    )
    if batch_rows < 1:
        raise GensepError(f"batch_rows {batch_rows!r} must be >= 1")
    pieces = split_chunks(mixture, chunk_in, overlap_in)  # [C, K, chunk_in]
    n_channels, n_chunks = pieces.shape[:2]
    rows = [(c, k) for k in range(n_chunks) for c in range(n_channels)]
    same_rate = sample_rate == rate_m
    n_fft_in, hop_in = default_stft(sample_rate)
    out = np.zeros((len(runner.sources), n_channels, n_chunks, chunk_in), np.float32)
    bar = _bar(progress, mixture.shape[-1] / sample_rate, runner.arch)
    for first in range(0, len(rows), batch_rows):
        batch = rows[first : first + batch_rows]
        audio = np.zeros((batch_rows, chunk_m), np.float32)  # a full batch: one shape
        for i, (c, k) in enumerate(batch):
            audio[i] = _to_model_rate(pieces[c, k], sample_rate, rate_m, chunk_m)
        if same_rate:
            est = runner.estimates(audio)  # [R, S, chunk_m]
            for i, (c, k) in enumerate(batch):
                out[:, c, k] = est[i]
        else:
            masks = runner.masks(audio)  # [R, S, T_m, F_m]
            for i, (c, k) in enumerate(batch):
                spec = stft(pieces[c, k], n_fft_in, hop_in)  # [T_in, F_in]
                mapped = map_masks(
                    masks[i],
                    hop_m / rate_m,
                    rate_m,
                    spec.shape[-2],
                    hop_in / sample_rate,
                    n_fft_in,
                    sample_rate,
                )
                out[:, c, k] = istft(mapped * spec[None], n_fft_in, hop_in, chunk_in)
        if bar is not None:
            bar.update(len(batch) / n_channels * (chunk_in - overlap_in) / sample_rate)
    if bar is not None:
        bar.close()
    merged = merge_chunks(out, overlap_in, mixture.shape[-1])  # [S, C, N]
    index = {name: j for j, name in enumerate(runner.sources)}
    return {name: merged[index[name]] for name in chosen}


def _chosen_sources(
    sources: tuple[str, ...], names: Sequence[str] | None, n_sources: int | None, model
) -> list[str]:
    chosen = list(sources) if names is None else list(names)
    unknown = [n for n in chosen if n not in sources]
    if unknown or len(set(chosen)) != len(chosen):
        raise GensepError(
            f"{model}: separates {list(sources)}; asked for {chosen} — a model only returns "
            "the sources it was trained on (train one on this dataset's stems)"
        )
    if n_sources is not None and n_sources != len(chosen):
        raise GensepError(
            f"{model}: n_sources={n_sources}, but the model gives {len(chosen)} {chosen}"
        )
    return chosen


def _to_model_rate(audio: np.ndarray, rate: int, rate_m: int, length: int) -> np.ndarray:
    if rate != rate_m:
        audio = soxr.resample(audio, rate, rate_m, quality="HQ")
    return np.pad(audio, (0, max(0, length - audio.shape[-1])))[:length]


def _bar(progress: bool, seconds: float, name: str):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=round(seconds, 1), unit="s", desc=name)


def _model_key(model: str | Path) -> tuple[str, int | None]:
    """(path, npz modification time): a re-exported model at the same path is reloaded."""
    path = Path(model).with_suffix("")
    try:
        mtime = path.with_suffix(".npz").stat().st_mtime_ns
    except OSError:
        mtime = None  # load_masknet names the missing file
    return str(path), mtime


class _Runner:
    """A loaded model with its jitted mask and estimate functions (one compile per shape)."""

    def __init__(self, path: str):
        import jax
        from flax import nnx

        from gensep.models.masknet import masks, separate_with_model
        from gensep.models.store import load_masknet

        model, self.card = load_masknet(path)
        c = model.config
        self.arch, self.sources = c.arch, tuple(c.sources)
        self.rate, self.hop = c.sample_rate, c.hop
        graphdef, params = nnx.split(model)
        self._params = params
        self._masks = jax.jit(lambda p, audio: masks(nnx.merge(graphdef, p), audio))
        self._estimates = jax.jit(
            lambda p, audio: separate_with_model(nnx.merge(graphdef, p), audio)
        )

    def masks(self, audio: np.ndarray) -> np.ndarray:
        """[R, N] mono rows at the model's rate -> masks [R, S, T, F]."""
        return np.asarray(self._masks(self._params, audio))

    def estimates(self, audio: np.ndarray) -> np.ndarray:
        """[R, N] mono rows at the model's rate -> estimates [R, S, N]."""
        return np.asarray(self._estimates(self._params, audio))


@functools.lru_cache(maxsize=4)
def _runner(path: str, mtime: int | None) -> _Runner:
    del mtime  # part of the cache key only
    return _Runner(path)


def _for_arch(arch: str):
    def separate_arch(mixture: np.ndarray, sample_rate: int, **options) -> dict[str, np.ndarray]:
        return separate(mixture, sample_rate, arch=arch, **options)

    separate_arch.__name__ = f"separate_{arch}"
    separate_arch.__doc__ = f"`separate` for a {arch} model (a model of another arch is refused)."
    return separate_arch


separate_blstm = _for_arch("blstm")
separate_unet = _for_arch("unet")
separate_cnn = _for_arch("cnn")
separate_transformer = _for_arch("transformer")
separate_crnn = _for_arch("crnn")
