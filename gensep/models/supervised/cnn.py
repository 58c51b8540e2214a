"""Plain CNN mask estimator: a stack of 3x3 convolutions at full time-frequency resolution."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp
from flax import nnx

if TYPE_CHECKING:
    from gensep.models.masknet import MaskNetConfig


class CNN(nnx.Module):
    """`layers` 3x3 convolutions over (time, frequency), no pooling, no recurrence.

    An input convolution (1 -> channels), layers - 2 residual convolutions whose dilation
    doubles (1, 2, 4, ... in both axes) so the receptive field grows exponentially with
    depth, and an output convolution to one logit map per source. Every layer runs at the
    full T x F resolution: the cheapest in parameters and the dearest in compute per
    parameter of the five. Uses `config.channels` and `config.layers` (>= 2).
    """

    def __init__(self, n_bins: int, n_sources: int, config: MaskNetConfig, *, rngs: nnx.Rngs):
        ch = config.channels
        self.conv_in = nnx.Conv(1, ch, (3, 3), rngs=rngs)
        self.convs = nnx.List(
            [
                nnx.Conv(ch, ch, (3, 3), kernel_dilation=2**i, rngs=rngs)
                for i in range(config.layers - 2)
            ]
        )
        self.conv_out = nnx.Conv(ch, n_sources, (3, 3), rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: features [B, T, F] -> mask logits [B, S, T, F]."""
        y = nnx.relu(self.conv_in(x[..., None]))  # [B, T, F, C]
        for conv in self.convs:
            y = y + nnx.relu(conv(y))
        return jnp.moveaxis(self.conv_out(y), -1, 1)  # [B, S, T, F]
