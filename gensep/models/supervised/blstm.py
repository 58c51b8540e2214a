"""BLSTM mask estimator in the style of Open-Unmix (Stöter et al. 2019)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jax.numpy as jnp
from flax import nnx

from gensep.models.supervised.recurrent import BiRecurrent, FrameHead

if TYPE_CHECKING:
    from gensep.models.masknet import MaskNetConfig


class BLSTM(nnx.Module):
    """Per-frame linear bottleneck, a bidirectional LSTM stack, a skip, a linear head.

    As Open-Unmix: bins -> `hidden` (no bias) + norm + tanh; `layers` bidirectional LSTM
    layers of hidden / 2 units per direction; the bottleneck concatenated with the LSTM
    output -> `hidden` + norm + ReLU; a linear map to the bins. Differences: LayerNorm
    instead of BatchNorm (no running statistics to switch between training and inference),
    one head for all sources (S x bins) instead of one network per target, and logits for
    the shared softmax back end instead of a ReLU mask.

    Uses `config.hidden` (even) and `config.layers`.
    """

    def __init__(self, n_bins: int, n_sources: int, config: MaskNetConfig, *, rngs: nnx.Rngs):
        h = config.hidden
        self.fc_in = nnx.Linear(n_bins, h, use_bias=False, rngs=rngs)
        self.norm_in = nnx.LayerNorm(h, rngs=rngs)
        self.rnns = nnx.List(
            [BiRecurrent(h, h // 2, "lstm", rngs=rngs) for _ in range(config.layers)]
        )
        self.fc_mid = nnx.Linear(2 * h, h, use_bias=False, rngs=rngs)
        self.norm_mid = nnx.LayerNorm(h, rngs=rngs)
        self.head = FrameHead(h, n_bins, n_sources, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: features [B, T, F] -> mask logits [B, S, T, F]."""
        z = jnp.tanh(self.norm_in(self.fc_in(x)))  # [B, T, H]
        y = z
        for rnn in self.rnns:
            y = rnn(y)  # [B, T, H]
        y = nnx.relu(self.norm_mid(self.fc_mid(jnp.concatenate([z, y], axis=-1))))
        return self.head(y)
