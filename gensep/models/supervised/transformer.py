"""Small Transformer mask estimator: one token per STFT frame, self-attention over time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp
import numpy as np
from flax import nnx

from gensep.models.supervised.recurrent import FrameHead

if TYPE_CHECKING:
    from gensep.models.masknet import MaskNetConfig


def sinusoidal_positions(frames: int, width: int) -> np.ndarray:
    """Vaswani et al.'s fixed encoding: [frames, width], sin on even, cos on odd features,
    wavelengths from 2 pi to 10000 * 2 pi frames. Fixed, so any chunk length works."""
    pos = np.arange(frames, dtype=np.float64)[:, None]
    rate = 1.0 / 10000.0 ** (np.arange(0, width, 2) / width)  # [width / 2]
    out = np.zeros((frames, width), np.float32)
    out[:, 0::2] = np.sin(pos * rate)
    out[:, 1::2] = np.cos(pos * rate[: width // 2])
    return out


class Block(nnx.Module):
    """Pre-LayerNorm encoder block: x + MHA(LN(x)), then x + MLP(LN(x)) (MLP 2x wide, GELU)."""

    def __init__(self, width: int, heads: int, *, rngs: nnx.Rngs):
        self.norm1 = nnx.LayerNorm(width, rngs=rngs)
        self.attention = nnx.MultiHeadAttention(
            heads, width, decode=False, deterministic=True, keep_rngs=False, rngs=rngs
        )
        self.norm2 = nnx.LayerNorm(width, rngs=rngs)
        self.mlp_in = nnx.Linear(width, 2 * width, rngs=rngs)
        self.mlp_out = nnx.Linear(2 * width, width, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp_out(nnx.gelu(self.mlp_in(self.norm2(x))))


class Transformer(nnx.Module):
    """Frames -> `hidden`-wide tokens (linear), + sinusoidal positions, `layers` blocks of
    `heads`-head self-attention over every frame of the excerpt (no mask: offline
    separation sees the whole chunk), a final LayerNorm and a linear head.

    Attention costs T^2 per block: a 10 s chunk at hop 256 / 16 kHz is 626 tokens. Uses
    `config.hidden` (divisible by `config.heads`), `config.layers` and `config.heads`.
    """

    def __init__(self, n_bins: int, n_sources: int, config: MaskNetConfig, *, rngs: nnx.Rngs):
        self.width = config.hidden
        self.embed = nnx.Linear(n_bins, config.hidden, rngs=rngs)
        self.blocks = nnx.List(
            [Block(config.hidden, config.heads, rngs=rngs) for _ in range(config.layers)]
        )
        self.norm = nnx.LayerNorm(config.hidden, rngs=rngs)
        self.head = FrameHead(config.hidden, n_bins, n_sources, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: features [B, T, F] -> mask logits [B, S, T, F]."""
        y = self.embed(x) + sinusoidal_positions(x.shape[1], self.width)  # [B, T, D]
        for block in self.blocks:
            y = block(y)
        return self.head(self.norm(y))
