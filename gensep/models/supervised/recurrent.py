"""A bidirectional LSTM or GRU layer over time, and the one-linear head shared by the
frame-wise architectures (BLSTM, Transformer, CRNN)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

_GATES = {"lstm": 4, "gru": 3}


class BiRecurrent(nnx.Module):
    """Bidirectional LSTM or GRU: [B, T, in_features] -> [B, T, 2 * hidden].

    Written with one `jax.lax.scan` rather than `nnx.Bidirectional`: the input projection
    of every frame is one matmul outside the loop, and both directions advance in the same
    scan step (the backward one on the time-reversed input, stacked on a leading direction
    axis), so the sequential part is T steps of one small batched matmul. Gate order and
    equations are PyTorch's (LSTM: i, f, g, o; GRU: r, z, n with the reset gate applied to
    the recurrent part of n); the LSTM forget-gate bias starts at 1.
    The output concatenates [forward, backward] on the feature axis.
    """

    def __init__(self, in_features: int, hidden: int, cell: str = "lstm", *, rngs: nnx.Rngs):
        if cell not in _GATES:
            raise ValueError(f"cell {cell!r}: use one of {sorted(_GATES)}")
        self.cell, self.hidden = cell, hidden
        g = _GATES[cell] * hidden
        lecun = nnx.initializers.lecun_normal()
        self.w_in = nnx.Param(lecun(rngs.params(), (2, in_features, g)))
        orthogonal = nnx.initializers.orthogonal()
        w_rec = jnp.stack([orthogonal(rngs.params(), (hidden, g)) for _ in range(2)])
        self.w_rec = nnx.Param(w_rec)  # [2, H, G]
        bias = jnp.zeros((2, g))
        if cell == "lstm":
            bias = bias.at[:, hidden : 2 * hidden].set(1.0)
        self.b_in = nnx.Param(bias)
        self.b_rec = nnx.Param(jnp.zeros((2, g)))

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        """x: [B, T, in_features] -> [B, T, 2 * hidden]."""
        b, _, _ = x.shape
        h_dim = self.hidden
        both = jnp.stack([x, x[:, ::-1]])  # [2, B, T, in]
        proj = jnp.einsum("dbti,dig->tdbg", both, self.w_in[...]) + self.b_in[...][:, None]
        w_rec, b_rec = self.w_rec[...], self.b_rec[...][:, None]  # [2, H, G], [2, 1, G]

        def lstm_step(carry, xp):  # xp: [2, B, 4H]
            c, h = carry
            gates = xp + jnp.einsum("dbh,dhg->dbg", h, w_rec) + b_rec
            i, f, g, o = jnp.split(gates, 4, axis=-1)
            c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
            h = jax.nn.sigmoid(o) * jnp.tanh(c)
            return (c, h), h

        def gru_step(h, xp):  # xp: [2, B, 3H]
            rec = jnp.einsum("dbh,dhg->dbg", h, w_rec) + b_rec
            xr, xz, xn = jnp.split(xp, 3, axis=-1)
            hr, hz, hn = jnp.split(rec, 3, axis=-1)
            r, z = jax.nn.sigmoid(xr + hr), jax.nn.sigmoid(xz + hz)
            n = jnp.tanh(xn + r * hn)
            h = (1.0 - z) * n + z * h
            return h, h

        zeros = jnp.zeros((2, b, h_dim), x.dtype)
        if self.cell == "lstm":
            _, out = jax.lax.scan(lstm_step, (zeros, zeros), proj)  # [T, 2, B, H]
        else:
            _, out = jax.lax.scan(gru_step, zeros, proj)
        forward, backward = out[:, 0], out[::-1, 1]  # [T, B, H] each, in input order
        return jnp.swapaxes(jnp.concatenate([forward, backward], axis=-1), 0, 1)  # [B, T, 2H]


class FrameHead(nnx.Module):
    """Frame features [B, T, D] -> mask logits [B, S, T, F] with one linear layer."""

    def __init__(self, features: int, n_bins: int, n_sources: int, *, rngs: nnx.Rngs):
        self.n_bins, self.n_sources = n_bins, n_sources
        self.linear = nnx.Linear(features, n_sources * n_bins, rngs=rngs)

    def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
        b, t, _ = x.shape
        logits = self.linear(x).reshape(b, t, self.n_sources, self.n_bins)  # [B, T, S, F]
        return jnp.moveaxis(logits, 2, 1)  # [B, S, T, F]
