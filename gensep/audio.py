"""Audio at the boundaries: files <-> float32 [channels, samples], resampling, chunking.

Reading goes through soundfile (WAV, FLAC, OGG, MP3 with libsndfile >= 1.1), resampling
through soxr. Writing is atomic: a reader never sees a half-written file. Every problem
with an input raises `AudioError` naming the file, what is wrong and what to do.

Chunking cuts long signals into fixed-size overlapping chunks, so a jitted model compiles
once whatever the input length, and puts them back with a linear cross-fade.
"""

from __future__ import annotations

import numbers
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from gensep.atomic import atomic_output
from gensep.errors import AudioError

MAX_CHANNELS = 8
FORMATS = {".flac": "FLAC", ".mp3": "MP3", ".ogg": "OGG", ".wav": "WAV"}
# Subtypes that store floats (or a lossy code decoded to floats) keep peaks above 1.0;
# every other subtype is integer-valued and would clip them.
_FLOAT_SUBTYPES = frozenset(
    {"FLOAT", "DOUBLE", "VORBIS", "OPUS", "MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III"}
)
_RESAMPLE_QUALITY = "VHQ"  # ~3e-8 error on a sine away from the edges; HQ is ~4e-7


def load_audio(
    path: str | Path, sample_rate: int | None = None, mono: bool = False
) -> tuple[np.ndarray, int]:
    """Read an audio file as float32 [channels, samples].

    Args:
      path: wav/flac/ogg/mp3 file (anything libsndfile recognises by its header).
      sample_rate: Resample to this rate (Hz) with soxr; None keeps the file's rate.
      mono: Average the channels into one (shape [1, samples]), before resampling.

    Returns:
      (audio, rate): float32 C-contiguous [channels, samples], in [-1, 1] for integer
      files, and its rate (Hz). Resampled length is round(samples * sample_rate / rate).

    Raises:
      AudioError: a missing file, a folder, not audio, 0 samples, NaN/Inf samples, more
        than MAX_CHANNELS channels, or a `sample_rate` that is not a positive integer.
    """
    path = Path(path)
    if sample_rate is not None:
        sample_rate = _positive_rate(sample_rate, path, "requested sample rate")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file — pass a file inside it")
    if not path.exists():
        raise AudioError(f"{path}: no such file — check the path and the working directory")
    try:
        data, rate = sf.read(path, dtype="float32", always_2d=True)  # [N, C]
    except RuntimeError as err:  # sf.LibsndfileError is a RuntimeError
        raise AudioError(
            f"{path}: not a readable audio file ({err}) — is it really audio? "
            f"Convert it to one of {', '.join(FORMATS)}"
        ) from err
    if data.shape[0] == 0:
        raise AudioError(f"{path}: 0 samples — is the file empty?")
    if data.shape[1] > MAX_CHANNELS:
        raise AudioError(
            f"{path}: {data.shape[1]} channels, more than the {MAX_CHANNELS} supported — "
            f"downmix it or split it into files of at most {MAX_CHANNELS} channels"
        )
    _check_finite(data.T, rate, path, "the file is corrupt; re-export it")
    if mono:
        data = data.mean(axis=1, keepdims=True)  # [N, 1]
    if sample_rate is not None and sample_rate != rate:
        if round(data.shape[0] * sample_rate / rate) == 0:
            raise AudioError(
                f"{path}: {data.shape[0]} samples at {rate} Hz is too short to resample to "
                f"{sample_rate} Hz — pad it or keep its rate (sample_rate=None)"
            )
        # soxr takes [samples, channels], which is soundfile's layout: transpose only once.
        data = soxr.resample(data, rate, sample_rate, quality=_RESAMPLE_QUALITY)
        rate = sample_rate
    return np.ascontiguousarray(data.T, dtype=np.float32), int(rate)


def save_audio(
    path: str | Path, audio: np.ndarray, sample_rate: int, subtype: str | None = None
) -> Path:
    """Write audio atomically: to a temporary file beside `path`, fsynced, then renamed
    onto it. On any failure the temporary file is removed and an existing `path` is left
    as it was. Parent folders are created.

    Args:
      path: Output file; its extension picks the format (.wav, .flac, .ogg, .mp3).
      audio: [channels, samples] with 1..MAX_CHANNELS channels (1-D is taken as mono),
        finite; nominally in [-1, 1].
      sample_rate: Rate (Hz), a positive integer.
      subtype: soundfile subtype ("PCM_16", "PCM_24", "FLOAT", ...); None takes the
        format's default (PCM_16 for wav and flac, VORBIS for ogg).

    Returns:
      `path` as a Path.

    Raises:
      AudioError: an unknown extension, a bad shape, 0 samples, NaN/Inf samples, a bad
        rate or subtype, peaks above 1.0 in an integer subtype (they would clip), or
        libsndfile refusing the combination (e.g. MP3 at 12345 Hz).
    """
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise AudioError(
            f"{path}: unknown audio extension {path.suffix!r} — use one of {', '.join(FORMATS)}"
        )
    rate = _positive_rate(sample_rate, path, "sample rate")
    audio = _as_channels_first(audio, path)
    subtype = (subtype or sf.default_subtype(fmt)).upper()
    if not sf.check_format(fmt, subtype):
        raise AudioError(
            f"{path}: subtype {subtype!r} cannot be written as {fmt} — use one of "
            f"{', '.join(sf.available_subtypes(fmt))}"
        )
    peak = float(np.abs(audio).max())
    if subtype not in _FLOAT_SUBTYPES and peak > 1.0:
        if sf.check_format(fmt, "FLOAT"):
            fix = 'save with subtype="FLOAT"'
        else:
            fix = f'write a .wav with subtype="FLOAT" ({fmt} has no float subtype)'
        raise AudioError(
            f"{path}: peak {peak:.3f} > 1.0 would clip in {subtype} — normalise the audio "
            f"(audio / peak) or {fix}"
        )
    try:
        with atomic_output(path) as tmp:
            # The temporary name does not end in the extension: name the format.
            sf.write(tmp, audio.T, rate, format=fmt, subtype=subtype)
    except sf.LibsndfileError as err:
        raise AudioError(
            f"{path}: libsndfile refused to write {fmt}/{subtype} at {rate} Hz ({err}) — "
            "pick another rate, subtype or format"
        ) from err
    return path


def chunk_count(length: int, chunk: int, overlap: int) -> int:
    """Number of chunks `split_chunks` makes of `length` samples: the fewest, at least one,
    whose span (n - 1) * (chunk - overlap) + chunk reaches `length`."""
    _check_chunking(chunk, overlap)
    if length < 0:
        raise ValueError(f"length must be >= 0 samples, got {length}")
    step = chunk - overlap
    return max(1, -(-(length - overlap) // step))  # ceil((length - overlap) / step)


def split_chunks(audio: np.ndarray, chunk: int, overlap: int) -> np.ndarray:
    """Cut a signal into fixed-size overlapping chunks, zero-padding the end.

    Args:
      audio: Signal, shape [..., samples].
      chunk: Samples per chunk (> 0).
      overlap: Samples shared by consecutive chunks (0 <= overlap < chunk).

    Returns:
      A new array [..., n_chunks, chunk] with n_chunks = chunk_count(samples, chunk,
      overlap); chunk i holds samples i * (chunk - overlap) onwards.
    """
    audio = np.asarray(audio)
    if audio.ndim == 0:
        raise ValueError("audio must have a samples axis, got a scalar")
    length = audio.shape[-1]
    count = chunk_count(length, chunk, overlap)
    step = chunk - overlap
    total = (count - 1) * step + chunk
    padded = np.pad(audio, [(0, 0)] * (audio.ndim - 1) + [(0, total - length)])
    windows = np.lib.stride_tricks.sliding_window_view(padded, chunk, axis=-1)
    return np.ascontiguousarray(windows[..., ::step, :])  # [..., count, chunk]


def merge_chunks(chunks: np.ndarray, overlap: int, length: int) -> np.ndarray:
    """Overlap-add chunks with a linear cross-fade over each overlap; the inverse of
    `split_chunks` (merging unprocessed chunks gives the signal back to float rounding).

    Each chunk is weighted by a trapezoid rising as (j + 0.5) / overlap over its first
    `overlap` samples and falling symmetrically over its last; the sum is divided by the
    summed weights. Weights are never 0, so every output sample is a convex combination
    of the chunks covering it: processed chunks blend without clicks.

    Args:
      chunks: [..., n_chunks, chunk].
      overlap: The overlap used by `split_chunks` (samples, 0 <= overlap < chunk).
      length: Output length (samples), at most (n_chunks - 1) * (chunk - overlap) + chunk.

    Returns:
      [..., length], float32 for float32 (or narrower) input.
    """
    chunks = np.asarray(chunks)
    if chunks.ndim < 2:
        raise ValueError(f"chunks must be [..., n_chunks, chunk], got shape {chunks.shape}")
    count, chunk = chunks.shape[-2:]
    _check_chunking(chunk, overlap)
    step = chunk - overlap
    covered = (count - 1) * step + chunk
    if not 0 <= length <= covered:
        raise ValueError(
            f"length {length} is outside [0, {covered}], the samples {count} chunks of "
            f"{chunk} with overlap {overlap} cover — pass the length given to split_chunks"
        )
    lead = chunks.shape[:-2]
    dtype = np.result_type(chunks.dtype, np.float32)
    weight = _fade_weights(chunk, overlap).astype(dtype)
    # Chunks k, k + m, k + 2m, ... are disjoint when m * step >= chunk, so each such set is
    # laid end to end by one reshape and added as one slice: m passes, not one per chunk.
    m = -(-chunk // step)
    span = m * step
    tail = [(0, 0)] * len(lead) + [(0, 0), (0, span - chunk)]
    # Summing more than two chunks per sample in float32 drifts (1.6e-5 relative at 1000).
    acc = dtype if m <= 2 else np.float64
    out = np.zeros((*lead, (count - 1) * step + span), acc)
    norm = np.zeros(out.shape[-1], acc)
    spaced_weight = np.pad(weight, (0, span - chunk))  # [span]
    for k in range(min(m, count)):
        part = np.pad(chunks[..., k::m, :] * weight, tail)  # [..., n_k, span]
        n_k = part.shape[-2]
        window = slice(k * step, k * step + n_k * span)
        out[..., window] += part.reshape(*lead, n_k * span)
        norm[window] += np.tile(spaced_weight, n_k)
    # norm >= the smallest weight wherever a chunk lies; the floor only keeps a future
    # change of weights from dividing by zero.
    norm = np.maximum(norm[:length], np.finfo(acc).tiny)
    return (out[..., :length] / norm).astype(dtype, copy=False)


def _fade_weights(chunk: int, overlap: int) -> np.ndarray:
    """Cross-fade weights of one chunk, shape [chunk]: linear ramps of `overlap` samples
    at both ends (mirror images, so consecutive chunks' ramps sum to 1), 1 in between."""
    if overlap == 0:
        return np.ones(chunk)
    j = np.arange(chunk)
    rise = (j + 0.5) / overlap
    fall = (chunk - j - 0.5) / overlap
    return np.minimum(1.0, np.minimum(rise, fall))


def _check_chunking(chunk: int, overlap: int) -> None:
    for name, value in (("chunk", chunk), ("overlap", overlap)):
        if not isinstance(value, numbers.Integral):
            raise ValueError(f"{name} must be an integer number of samples, got {value!r}")
    if chunk <= 0 or not 0 <= overlap < chunk:
        raise ValueError(
            f"need chunk > 0 and 0 <= overlap < chunk (samples), got {chunk=}, {overlap=}"
        )


def _positive_rate(rate: object, path: Path, what: str) -> int:
    if (
        isinstance(rate, bool)
        or not isinstance(rate, numbers.Real)
        or not float(rate).is_integer()
        or rate <= 0
    ):
        raise AudioError(
            f"{path}: {what} {rate!r} is not a positive integer number of Hz — pass e.g. 44100"
        )
    return int(rate)


def _as_channels_first(audio: np.ndarray, path: Path) -> np.ndarray:
    """Validate audio to be written and return it as float32 [channels, samples]."""
    audio = np.asarray(audio)
    if np.iscomplexobj(audio):
        raise AudioError(f"{path}: complex samples — write the real part or an iSTFT of it")
    audio = audio.astype(np.float32, copy=False)
    if audio.ndim == 1:
        audio = audio[None]  # [1, N]
    if audio.ndim != 2 or not 1 <= audio.shape[0] <= MAX_CHANNELS:
        hint = " (is it [samples, channels]? transpose it)" if audio.ndim == 2 else ""
        raise AudioError(
            f"{path}: audio of shape {audio.shape} is not [channels (1-{MAX_CHANNELS}), "
            f"samples]{hint}"
        )
    if audio.shape[1] == 0:
        raise AudioError(f"{path}: 0 samples to write — is the signal empty?")
    _check_finite(audio, None, path, "nothing was written; check the model's output")
    return audio


def _check_finite(audio: np.ndarray, rate: int | None, path: Path, fix: str) -> None:
    """Raise AudioError if [channels, samples] `audio` holds NaN or Inf, saying where."""
    bad = ~np.isfinite(audio)
    if not bad.any():
        return
    frame = int(np.argmax(bad.any(axis=0)))
    channel = int(np.argmax(bad[:, frame]))
    where = f"{frame / rate:.3f} s" if rate else f"sample {frame}"
    raise AudioError(
        f"{path}: {int(bad.sum())} non-finite (NaN/Inf) samples, the first at {where} "
        f"(channel {channel}) — {fix}"
    )
