"""CNN + RNN hybrid mask estimator: a convolutional front over frequency, a BiGRU over time."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import jax.numpy as jnp
from flax import nnx

from gensep.models.supervised.recurrent import BiRecurrent, FrameHead

if TYPE_CHECKING:
    from gensep.models.masknet import MaskNetConfig


class CRNN(nnx.Module):
    """Two 3x3 convolutions striding frequency by 2 (local time-frequency patterns, bins
    pooled 4x), a linear map of each frame to `hidden`, `layers` bidirectional GRU layers
    (hidden / 2 units per direction) for the temporal context, and a linear head.

    The convolutions see what a frame-wise bottleneck cannot (harmonic and onset shapes
    across neighbouring bins and frames); the GRU carries context along the whole excerpt
    that a convolution stack reaches only with depth. Uses `config.channels`,
    `config.hidden` (even) and `config.layers`.
    """

    def __init__(self, n_bins: int, n_sources: int, config: MaskNetConfig, *, rngs: nnx.Rngs):
        ch, h = config.channels, config.hidden
        self.conv1 = nnx.Conv(1, ch, (3, 3), strides=(1, 2), rngs=rngs)
        self.conv2 = nnx.Conv(ch, ch, (3, 3), strides=(1, 2), rngs=rngs)
        pooled = math.ceil(math.ceil(n_bins / 2) / 2)  # two stride-2 'SAME' convolutions
        self.fc_in = nnx.Linear(pooled * ch, h, rngs=rngs)
        self.norm_in = nnx.LayerNorm(h, rngs=rngs)
        self.rnns = nnx.List(
            [BiRecurrent(h, h // 2, "gru", rngs=rngs) for _ in range(config.layers)]
        )
        self.head = FrameHead(h, n_bins, n_sources, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: features [B, T, F] -> mask logits [B, S, T, F]."""
        y = nnx.relu(self.conv1(x[..., None]))  # [B, T, F/2, C]
        y = nnx.relu(self.conv2(y))  # [B, T, F/4, C]
        y = y.reshape(*y.shape[:2], -1)  # [B, T, F/4 * C]
        y = jnp.tanh(self.norm_in(self.fc_in(y)))  # [B, T, H]
        for rnn in self.rnns:
            y = y + rnn(y)  # residual: deeper stacks train as easily as one layer
        return self.head(y)
