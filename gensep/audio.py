"""Audio at the boundaries: files <-> float32 [channels, samples], resampling, chunking.

Reading goes through soundfile (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1), resampling
through soxr. Writing is atomic. Every problem with an input raises `AudioError` naming
the file, what is wrong and what to do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from gensep.atomic import atomic_output
from gensep.errors import AudioError

MAX_CHANNELS = 8
_FORMATS = {".wav": "WAV", ".flac": "FLAC", ".ogg": "OGG", ".mp3": "MP3"}


def load_audio(
    path: str | Path, sample_rate: int | None = None, mono: bool = False
) -> tuple[np.ndarray, int]:
    """Read an audio file.

    Args:
      path: wav/flac/ogg/mp3 file.
      sample_rate: Resample to this rate (Hz) with soxr (very high quality); None keeps
        the file's rate.
      mono: Average the channels into one.

    Returns:
      (audio, rate): float32 C-contiguous [channels, samples] and its rate (Hz).

    Raises:
      AudioError: missing file, a folder, not audio, 0 samples, NaN/Inf samples, more than
        MAX_CHANNELS channels, or an invalid `sample_rate`.
    """
    path = Path(path)
    if sample_rate is not None and (int(sample_rate) != sample_rate or sample_rate <= 0):
        raise AudioError(
            f"{path.name}: requested sample rate {sample_rate!r} must be a positive integer"
        )
    if not path.exists():
        raise AudioError(f"{path}: no such file — check the path")
    if path.is_dir():
        raise AudioError(f"{path}: is a folder, not an audio file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        raise AudioError(
            f"{path.name}: not a readable audio file ({err}); supported: "
            f"{', '.join(sorted(_FORMATS))}"
        ) from err
    if data.shape[0] == 0:
        raise AudioError(f"{path.name}: 0 samples — is the file empty?")
    if data.shape[1] > MAX_CHANNELS:
        raise AudioError(
            f"{path.name}: {data.shape[1]} channels, at most {MAX_CHANNELS} are supported — "
            "downmix or split it first"
        )
    bad = ~np.isfinite(data)
    if bad.any():
        first = int(np.argmax(bad.any(axis=1)))
        raise AudioError(
            f"{path.name}: {int(bad.sum())} non-finite (NaN/Inf) samples, the first at "
            f"{first / rate:.3f} s — the file is corrupt"
        )
    audio = data.T  # [C, N]
    if mono:
        audio = audio.mean(axis=0, keepdims=True)
    if sample_rate is not None and sample_rate != rate:
        audio = soxr.resample(audio.T, rate, int(sample_rate), quality="VHQ").T
        rate = int(sample_rate)
    return np.ascontiguousarray(audio, dtype=np.float32), int(rate)


def save_audio(
    path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str | None = None
) -> Path:
    """Write audio atomically (temporary file + rename; an existing file is replaced only
    on success).

    Args:
      path: Output file; the extension picks the format (.wav, .flac, .ogg, .mp3).
      audio: [channels, samples] (1-D is taken as mono), finite.
      sample_rate: Rate (Hz).
      subtype: soundfile subtype (e.g. "PCM_16", "FLOAT"); default: the format's default.

    Raises:
      AudioError: unknown extension, bad shape, non-finite samples, or peaks above 1.0 in
        an integer format (which would clip).
    """
    path = Path(path)
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(f"{path.name}: unknown audio extension; use one of {sorted(_FORMATS)}")
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 1:
        audio = audio[None]
    if audio.ndim != 2 or not 1 <= audio.shape[0] <= MAX_CHANNELS:
        raise AudioError(
            f"{path.name}: audio of shape {audio.shape} is not "
            f"[channels (1-{MAX_CHANNELS}), samples]"
        )
    if audio.shape[1] == 0:
        raise AudioError(f"{path.name}: refusing to write 0 samples")
    if not np.all(np.isfinite(audio)):
        raise AudioError(f"{path.name}: audio has NaN/Inf samples; nothing written")
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise AudioError(f"{path.name}: sample rate {sample_rate!r} must be a positive integer")
    subtype = subtype or sf.default_subtype(fmt)
    peak = float(np.abs(audio).max())
    if subtype.startswith(("PCM", "ULAW", "ALAW")) and peak > 1.0:
        raise AudioError(
            f"{path.name}: peak {peak:.3f} > 1.0 would clip in {subtype}; normalise the audio "
            'or save with subtype="FLOAT"'
        )
    with atomic_output(path) as tmp:
        sf.write(str(tmp), audio.T, int(sample_rate), subtype=subtype, format=fmt)
    return path


def chunk_count(length: int, chunk: int, overlap: int) -> int:
    """Number of chunks `split_chunks` makes of `length` samples (at least 1)."""
    _check_chunking(chunk, overlap)
    step = chunk - overlap
    return max(1, -(-(length - overlap) // step))


def split_chunks(audio: np.ndarray, chunk: int, overlap: int) -> np.ndarray:
    """Cut a signal into fixed-size overlapping chunks (zero-padded at the end), so a jitted
    model compiles once for any input length.

    Args:
      audio: [..., samples].
      chunk: Samples per chunk.
      overlap: Samples shared by consecutive chunks (0 <= overlap < chunk).

    Returns:
      [..., n_chunks, chunk]; chunk i starts at sample i * (chunk - overlap).
    """
    n = audio.shape[-1]
    count = chunk_count(n, chunk, overlap)
    step = chunk - overlap
    total = (count - 1) * step + chunk
    padded = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, total - n)])
    index = np.arange(count)[:, None] * step + np.arange(chunk)[None, :]
    return padded[..., index]


def merge_chunks(chunks: np.ndarray, overlap: int, length: int) -> np.ndarray:
    """Overlap-add chunks back with a linear cross-fade over each overlap (the inverse of
    `split_chunks`: merging unprocessed chunks gives the signal back exactly).

    Args:
      chunks: [..., n_chunks, chunk].
      overlap: The overlap used by `split_chunks`.
      length: Output length (samples).

    Returns:
      [..., length].
    """
    count, chunk = chunks.shape[-2:]
    _check_chunking(chunk, overlap)
    step = chunk - overlap
    weight = np.ones(chunk)
    if overlap:
        ramp = (np.arange(overlap) + 0.5) / overlap  # strictly positive: no 0/0 anywhere
        weight[:overlap] = ramp
        weight[-overlap:] = ramp[::-1]
    total = (count - 1) * step + chunk
    index = (np.arange(count)[:, None] * step + np.arange(chunk)[None, :]).ravel()
    out = np.zeros((*chunks.shape[:-2], total), np.float64)
    norm = np.zeros(total)
    np.add.at(norm, index, np.tile(weight, count))
    weighted = (chunks * weight).reshape(*chunks.shape[:-2], -1)
    np.add.at(out, (..., index), weighted)  # sums where chunks overlap
    result = out[..., :length] / norm[:length]
    return result.astype(chunks.dtype, copy=False)


def _check_chunking(chunk: int, overlap: int) -> None:
    if chunk <= 0 or not 0 <= overlap < chunk:
        raise ValueError(f"need chunk > 0 and 0 <= overlap < chunk, got {chunk=}, {overlap=}")
