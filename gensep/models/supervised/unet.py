"""U-Net mask estimator in the style of Spleeter (Hennequin et al. 2020)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp
from flax import nnx

if TYPE_CHECKING:
    from gensep.models.masknet import MaskNetConfig


def depth_to_space(x: jnp.ndarray) -> jnp.ndarray:
    """[B, T, F, 4 C] -> [B, 2 T, 2 F, C]: channel group (i, j) goes to output (2t + i, 2f + j)."""
    b, t, f, c4 = x.shape
    x = x.reshape(b, t, f, 2, 2, c4 // 4)
    return x.transpose(0, 1, 3, 2, 4, 5).reshape(b, 2 * t, 2 * f, c4 // 4)


class UNet(nnx.Module):
    """Strided 5x5 convolutions down, stride-2 upsampling convolutions up, skips between.

    As Spleeter: each encoder level halves time and frequency (stride 2) and doubles the
    channels (channels, 2 channels, ...), with leaky ReLU (0.2); each decoder level
    doubles them back with ReLU and is concatenated with the encoder output of its
    resolution. Differences: `layers` levels (Spleeter: 6 from 16 channels), no
    BatchNorm or dropout (no state to switch at inference), all sources from one network
    (an output 3x3 convolution to S logit maps on [decoder, input]) rather than one U-Net
    per source. The input is zero-padded to a multiple of 2^layers in time and frequency
    and the logits cropped back. Uses `config.channels` and `config.layers`.

    Upsampling is sub-pixel (a 3x3 convolution to 4x the channels, then depth-to-space),
    not `nnx.ConvTranspose`: every output phase of a stride-2 5x5 transposed convolution
    reads at most 3x3 inputs, so the sub-pixel form can represent it exactly, and XLA's
    CPU transposed convolution (an input-dilated convolution) measured ~20x slower per
    layer here (a default-size training step: 22 s against 1.9 s on 2 cores).
    """

    def __init__(self, n_bins: int, n_sources: int, config: MaskNetConfig, *, rngs: nnx.Rngs):
        levels = config.layers
        ch = [config.channels * 2**i for i in range(levels)]
        self.levels = levels
        self.down = nnx.List(
            [
                nnx.Conv(1 if i == 0 else ch[i - 1], ch[i], (5, 5), strides=2, rngs=rngs)
                for i in range(levels)
            ]
        )
        # up[i] brings level i back to the resolution of level i - 1 (i = 0: the input)
        self.up = nnx.List(
            [
                nnx.Conv(
                    ch[i] if i == levels - 1 else 2 * ch[i],
                    4 * ch[max(i - 1, 0)],
                    (3, 3),
                    rngs=rngs,
                )
                for i in range(levels)
            ]
        )
        self.conv_out = nnx.Conv(ch[0] + 1, n_sources, (3, 3), rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: features [B, T, F] -> mask logits [B, S, T, F]."""
        _, t, f = x.shape
        m = 2**self.levels
        y0 = jnp.pad(x, ((0, 0), (0, -t % m), (0, -f % m)))[..., None]  # [B, T', F', 1]
        skips, y = [], y0
        for conv in self.down:
            y = nnx.leaky_relu(conv(y), 0.2)
            skips.append(y)  # level i: [B, T' / 2^(i+1), F' / 2^(i+1), ch_i]
        for i in reversed(range(self.levels)):
            y = nnx.relu(depth_to_space(self.up[i](y)))  # the resolution of level i - 1
            y = jnp.concatenate([y, skips[i - 1] if i > 0 else y0], axis=-1)
        logits = self.conv_out(y)[:, :t, :f]  # [B, T, F, S]
        return jnp.moveaxis(logits, -1, 1)  # [B, S, T, F]
