"""Framing and overlap-add with static shapes, shared by the STFT and the frame-wise filters.

Both avoid gathers: when the hop divides the frame length, a signal is cut into
hop-sized blocks once and a frame is a concatenation of consecutive blocks, which
XLA turns into cheap slices. Otherwise a strided index gather is used.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np


def num_frames(n_samples: int, frame_length: int, hop: int) -> int:
    """Number of full frames of `frame_length` at `hop` in `n_samples` (at least 0)."""
    if n_samples < frame_length:
        return 0
    return 1 + (n_samples - frame_length) // hop


def frame(x: jnp.ndarray, frame_length: int, hop: int) -> jnp.ndarray:
    """Cut a signal into overlapping frames (no padding; trailing samples that fill no frame
    are dropped).

    Args:
      x: Signal. Shape [..., samples].
      frame_length: Samples per frame.
      hop: Samples between frame starts.

    Returns:
      Frames, shape [..., frames, frame_length], frame t = x[..., t*hop : t*hop + frame_length].
    """
    n = x.shape[-1]
    t = num_frames(n, frame_length, hop)
    if t == 0:
        raise ValueError(f"signal of {n} samples is shorter than one frame of {frame_length}")
    if frame_length % hop == 0:
        r = frame_length // hop
        n_blocks = t + r - 1
        blocks = x[..., : n_blocks * hop].reshape(*x.shape[:-1], n_blocks, hop)  # [..., B, hop]
        parts = [blocks[..., i : i + t, :] for i in range(r)]
        return jnp.concatenate(parts, axis=-1)  # [..., T, frame_length]
    idx = np.arange(t)[:, None] * hop + np.arange(frame_length)[None, :]
    return x[..., idx]


def overlap_add(frames: jnp.ndarray, hop: int) -> jnp.ndarray:
    """Sum frames placed `hop` samples apart (the adjoint of `frame`).

    Args:
      frames: Shape [..., frames, frame_length].
      hop: Samples between frame starts.

    Returns:
      Signal of shape [..., (frames - 1) * hop + frame_length].
    """
    *lead, t, length = frames.shape
    n_out = (t - 1) * hop + length
    if length % hop == 0:
        r = length // hop
        parts = frames.reshape(*lead, t, r, hop)  # [..., T, R, hop]
        out = jnp.zeros((*lead, t + r - 1, hop), frames.dtype)
        for i in range(r):
            out = out.at[..., i : i + t, :].add(parts[..., i, :])
        return out.reshape(*lead, n_out)
    idx = np.arange(t)[:, None] * hop + np.arange(length)[None, :]
    out = jnp.zeros((*lead, n_out), frames.dtype)
    return out.at[..., idx].add(frames)


def window_sum(window: np.ndarray, n_frames: int, hop: int) -> np.ndarray:
    """Overlap-added squared or plain window envelope, computed on the host (static).

    Args:
      window: Window (already squared if the caller needs the squared envelope). Shape [L].
      n_frames: Number of frames.
      hop: Samples between frame starts.

    Returns:
      Envelope of shape [(n_frames - 1) * hop + L], float64.
    """
    length = window.shape[0]
    n_out = (n_frames - 1) * hop + length
    if length % hop == 0:
        r = length // hop
        out = np.zeros((n_frames + r - 1, hop))
        for i, part in enumerate(np.asarray(window, np.float64).reshape(r, hop)):
            out[i : i + n_frames] += part
        return out.reshape(n_out)
    out = np.zeros(n_out)
    for t in range(n_frames):
        out[t * hop : t * hop + length] += window
    return out
