"""Invertible layers of a Glow flow (Kingma & Dhariwal 2018), NHWC = [batch, time, freq, ch].

Every layer maps data towards the latent with `forward_and_log_det(x, cond) -> (y, log_det)`
and back with `inverse_and_log_det(y, cond) -> (x, log_det)`; log_det is
log |det dy/dx| per example, shape [B], and the inverse's is its negative. `cond` is an
optional per-example conditioning value [B] (the noise level sigma of a noise-conditioned
prior); only the layers with a network (coupling, split) read it, as one extra constant
input channel. No layer holds anything but `nnx.Param`s, and none draws random numbers
after construction, so a model rebuilt from its config and saved parameters is the same
bijection.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from flax import nnx

Cond = jnp.ndarray | None


def _zeros(x: jnp.ndarray) -> jnp.ndarray:
    return jnp.zeros(x.shape[:1], x.dtype)


class ActNorm(nnx.Module):
    """y = (x + bias_c) * exp(log_scale_c), per channel; log_det = H * W * sum(log_scale).

    Starts as the identity; `initialize(x)` sets bias and scale from a batch so that batch
    comes out with zero mean and unit variance per channel (Glow's data-dependent init).
    Call it eagerly, once, before training (`Glow.initialize` does every ActNorm in order):
    a jitted training step cannot branch on an "initialised yet?" flag.
    """

    def __init__(self, channels: int):
        self.bias = nnx.Param(jnp.zeros((channels,), jnp.float32))
        self.log_scale = nnx.Param(jnp.zeros((channels,), jnp.float32))

    def initialize(self, x: jnp.ndarray) -> None:
        """Set bias = -mean_c and log_scale = -log(std_c + 1e-6) over a batch [B, H, W, C]."""
        mean = jnp.mean(x, axis=(0, 1, 2))
        std = jnp.std(x, axis=(0, 1, 2))
        self.bias[...] = -mean
        self.log_scale[...] = -jnp.log(std + 1e-6)

    def _log_det(self, x: jnp.ndarray) -> jnp.ndarray:
        hw = x.shape[1] * x.shape[2]
        return jnp.full(x.shape[:1], hw * jnp.sum(self.log_scale[...]), x.dtype)

    def forward_and_log_det(self, x: jnp.ndarray, cond: Cond = None):
        return (x + self.bias[...]) * jnp.exp(self.log_scale[...]), self._log_det(x)

    def inverse_and_log_det(self, y: jnp.ndarray, cond: Cond = None):
        return y * jnp.exp(-self.log_scale[...]) - self.bias[...], -self._log_det(y)


class InvConv1x1(nnx.Module):
    """Invertible 1x1 convolution y = W x per pixel, W in LU form: W = P L (U + diag(s)).

    P is a fixed channel reversal (no state to save), L unit lower triangular, U strictly
    upper, s = exp(log_s) > 0: log_det = H * W * sum(log_s), and the inverse is two
    triangular solves. Initialised to a random rotation: the LU factors of a random
    orthogonal Q, with Q's columns sign-flipped so that diag(U) > 0 (P times that is still
    orthogonal).
    """

    def __init__(self, channels: int, *, rngs: nnx.Rngs):
        q, _ = jnp.linalg.qr(jax.random.normal(rngs.params(), (channels, channels)))
        _, lower, upper = jsl.lu(q)  # q = P' L U; P' only shuffles the starting rotation
        diag = jnp.diag(upper)
        upper = upper * jnp.sign(diag)[None, :]
        self.lower = nnx.Param(jnp.tril(lower, -1))
        self.upper = nnx.Param(jnp.triu(upper, 1))
        self.log_s = nnx.Param(jnp.log(jnp.abs(diag)))

    def _factors(self) -> tuple[jnp.ndarray, jnp.ndarray]:
        c = self.log_s.shape[0]
        lower = jnp.tril(self.lower[...], -1) + jnp.eye(c)
        upper = jnp.triu(self.upper[...], 1) + jnp.diag(jnp.exp(self.log_s[...]))
        return lower, upper

    def weight(self) -> jnp.ndarray:
        """W [C_out, C_in]."""
        lower, upper = self._factors()
        return jnp.flip(lower @ upper, axis=0)  # P = reversal: flips the rows

    def _log_det(self, x: jnp.ndarray) -> jnp.ndarray:
        hw = x.shape[1] * x.shape[2]
        return jnp.full(x.shape[:1], hw * jnp.sum(self.log_s[...]), x.dtype)

    def forward_and_log_det(self, x: jnp.ndarray, cond: Cond = None):
        return jnp.einsum("bhwd,cd->bhwc", x, self.weight()), self._log_det(x)

    def inverse_and_log_det(self, y: jnp.ndarray, cond: Cond = None):
        lower, upper = self._factors()
        eye = jnp.eye(lower.shape[0])
        l_inv = jsl.solve_triangular(lower, eye, lower=True, unit_diagonal=True)
        u_inv = jsl.solve_triangular(upper, eye, lower=False)
        w_inv = u_inv @ jnp.flip(l_inv, axis=1)  # (P L U)^-1 = U^-1 L^-1 P^T, P^T = P
        return jnp.einsum("bhwd,cd->bhwc", y, w_inv), -self._log_det(y)


class AffineCoupling(nnx.Module):
    """x = [x_a, x_b] on channels (x_a the first C // 2); y = [x_a, (x_b + t) * exp(s)].

    (t, s_raw) = net(x_a, cond): 3x3 conv -> ReLU -> 1x1 conv -> ReLU -> 3x3 conv, the
    last zero-initialised so the layer starts as the identity. s = bound * tanh(s_raw /
    bound): exp(s) stays within exp(+-bound) (a bounded, smooth alternative to Glow's
    sigmoid(h + 2), which is not the identity at zero). log_det = sum over H, W, C_b of s.
    `cond_channels` = 1 adds cond [B] as a constant input channel of the net.
    """

    def __init__(
        self,
        channels: int,
        hidden: int,
        *,
        cond_channels: int = 0,
        log_scale_bound: float = 2.0,
        rngs: nnx.Rngs,
    ):
        self.split_at = channels // 2
        c_in, c_out = self.split_at + cond_channels, channels - self.split_at
        self.cond_channels = cond_channels
        self.bound = log_scale_bound
        self.conv_in = nnx.Conv(c_in, hidden, (3, 3), rngs=rngs)
        self.conv_mid = nnx.Conv(hidden, hidden, (1, 1), rngs=rngs)
        zeros = nnx.initializers.zeros_init()
        self.conv_out = nnx.Conv(
            hidden, 2 * c_out, (3, 3), kernel_init=zeros, bias_init=zeros, rngs=rngs
        )

    def _shift_log_scale(self, x_a: jnp.ndarray, cond: Cond):
        h = x_a
        if self.cond_channels:
            if cond is None:
                raise ValueError("this layer is noise-conditioned: pass cond (sigma) [B]")
            plane = jnp.broadcast_to(cond[:, None, None, None], (*x_a.shape[:3], 1))
            h = jnp.concatenate([h, plane.astype(x_a.dtype)], axis=-1)
        h = nnx.relu(self.conv_mid(nnx.relu(self.conv_in(h))))
        out = self.conv_out(h)  # [B, H, W, 2 * C_b]
        shift, raw = jnp.split(out, 2, axis=-1)
        return shift, self.bound * jnp.tanh(raw / self.bound)

    def forward_and_log_det(self, x: jnp.ndarray, cond: Cond = None):
        x_a, x_b = x[..., : self.split_at], x[..., self.split_at :]
        shift, log_s = self._shift_log_scale(x_a, cond)
        y_b = (x_b + shift) * jnp.exp(log_s)
        return jnp.concatenate([x_a, y_b], axis=-1), jnp.sum(log_s, axis=(1, 2, 3))

    def inverse_and_log_det(self, y: jnp.ndarray, cond: Cond = None):
        y_a, y_b = y[..., : self.split_at], y[..., self.split_at :]
        shift, log_s = self._shift_log_scale(y_a, cond)
        x_b = y_b * jnp.exp(-log_s) - shift
        return jnp.concatenate([y_a, x_b], axis=-1), -jnp.sum(log_s, axis=(1, 2, 3))


class Split(AffineCoupling):
    """Multi-scale split with a learned conditional Gaussian prior, written as a bijection.

    Of x = [x_a, x_b], x_b is to be factored out with the prior N(mu(x_a), sigma(x_a)^2)
    (Glow's split prior; mu, log sigma from a zero-initialised net, so it starts as N(0, 1)).
    Instead of a density term, the layer whitens x_b: y = [x_a, (x_b - mu) / sigma], with
    log_det = -sum log sigma, and the model gives that half a standard normal. This is an
    affine coupling with shift -mu and log-scale -log sigma, hence the subclass; its wider
    scale bound (exp(+-4)) lets it express a well-predicted x_b. `factor(y)` returns
    (y_a, y_b): what the next level transforms and what leaves the flow here.
    """

    def __init__(self, channels: int, hidden: int, *, cond_channels: int = 0, rngs: nnx.Rngs):
        super().__init__(
            channels, hidden, cond_channels=cond_channels, log_scale_bound=4.0, rngs=rngs
        )

    def factor(self, y: jnp.ndarray) -> tuple[jnp.ndarray, jnp.ndarray]:
        return y[..., : self.split_at], y[..., self.split_at :]


class Squeeze(nnx.Module):
    """Space-to-depth: [B, H, W, C] -> [B, H/2, W/2, 4C], each 2x2 block into channels.

    Channel order of the output: (row in block, column in block, input channel). A volume-
    preserving permutation: log_det = 0. H and W must be even.
    """

    def forward_and_log_det(self, x: jnp.ndarray, cond: Cond = None):
        b, h, w, c = x.shape
        y = x.reshape(b, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 2, 4, 5)
        return y.reshape(b, h // 2, w // 2, 4 * c), _zeros(x)  # [B, H/2, W/2, 4C]

    def inverse_and_log_det(self, y: jnp.ndarray, cond: Cond = None):
        b, h, w, c4 = y.shape
        x = y.reshape(b, h, w, 2, 2, c4 // 4).transpose(0, 1, 3, 2, 4, 5)
        return x.reshape(b, 2 * h, 2 * w, c4 // 4), _zeros(y)  # [B, 2H, 2W, C]


class FlowStep(nnx.Module):
    """One Glow step: ActNorm -> invertible 1x1 conv -> affine coupling."""

    def __init__(self, channels: int, hidden: int, *, cond_channels: int = 0, rngs: nnx.Rngs):
        self.actnorm = ActNorm(channels)
        self.conv = InvConv1x1(channels, rngs=rngs)
        self.coupling = AffineCoupling(channels, hidden, cond_channels=cond_channels, rngs=rngs)

    def initialize(self, x: jnp.ndarray, cond: Cond = None) -> jnp.ndarray:
        """Data-dependent ActNorm init on x; returns the step's output for the next layer."""
        self.actnorm.initialize(x)
        return self.forward_and_log_det(x, cond)[0]

    def forward_and_log_det(self, x: jnp.ndarray, cond: Cond = None):
        log_det = _zeros(x)
        for layer in (self.actnorm, self.conv, self.coupling):
            x, ld = layer.forward_and_log_det(x, cond)
            log_det = log_det + ld
        return x, log_det

    def inverse_and_log_det(self, y: jnp.ndarray, cond: Cond = None):
        log_det = _zeros(y)
        for layer in (self.coupling, self.conv, self.actnorm):
            y, ld = layer.inverse_and_log_det(y, cond)
            log_det = log_det + ld
        return y, log_det


__all__ = ["ActNorm", "AffineCoupling", "FlowStep", "InvConv1x1", "Split", "Squeeze"]
