"""Multi-scale Glow over spectrogram patches: the source prior of DESIGN §3.2.

  patch x [B, T, F, C] (compressed magnitudes, C = 1)
    -> `levels` times: squeeze (2x2 -> channels) -> `steps` x (actnorm, 1x1 conv, coupling)
       -> split (all levels but the last): half the channels leave the flow, whitened by a
          learned conditional Gaussian (`layers.Split`)
    -> z [B, D], D = T * F * C: the factored-out halves and the last level's output,
       flattened and concatenated; a standard normal under the model.

log p(x) = sum_d log N(z_d; 0, 1) + log |det dz/dx|, in nats per patch. Training from a
fresh model: `model.initialize(first_batch)` (data-dependent ActNorm init, eager, once),
then `fit(model, flow_loss, data, ...)`.

Noise conditioning (BASIS-style annealing, Jayaram & Thickstun 2020): with
`noise_levels` set, `flow_loss` adds N(0, sigma^2) noise to each patch, sigma drawn per
example from the set, and — with `condition_on_noise` — every coupling and split net gets
sigma as one more constant input channel, so one flow models p_sigma(x) for every sigma
(log_prob, sample and bits_per_dim then need `sigma`).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
from flax import nnx

from gensep.errors import ConfigError
from gensep.flows.layers import FlowStep, Split, Squeeze


@dataclasses.dataclass(frozen=True)
class FlowConfig:
    """Shape and size of a Glow prior.

    patch_frames, patch_bins: the patch (time frames, frequency bins); both multiples of
      2 ** levels. channels: input channels (1: one magnitude map).
    levels: multi-scale levels (squeeze ... split). steps: flow steps per level.
    hidden: channels of the coupling and split nets.
    noise_levels: the sigmas (units of the input) `flow_loss` draws training noise from;
      () trains on the clean data. condition_on_noise: feed sigma to the nets (only with
      noise_levels).
    """

    patch_frames: int = 64
    patch_bins: int = 128
    channels: int = 1
    levels: int = 3
    steps: int = 8
    hidden: int = 64
    noise_levels: tuple[float, ...] = ()
    condition_on_noise: bool = True

    def __post_init__(self) -> None:
        for name in ("patch_frames", "patch_bins", "channels", "levels", "steps", "hidden"):
            if getattr(self, name) < 1:
                raise ConfigError(f"flow.{name} {getattr(self, name)!r} must be >= 1")
        m = 2**self.levels
        if self.patch_frames % m or self.patch_bins % m:
            raise ConfigError(
                f"flow patch {self.patch_frames} x {self.patch_bins} (frames x bins): both must "
                f"be multiples of 2 ** levels = {m} (each level halves them); change the patch "
                "size or flow.levels"
            )
        if any(s < 0 for s in self.noise_levels):
            raise ConfigError(f"flow.noise_levels {list(self.noise_levels)}: need sigmas >= 0")

    @property
    def patch_shape(self) -> tuple[int, int, int]:
        return (self.patch_frames, self.patch_bins, self.channels)

    @property
    def dims(self) -> int:
        return self.patch_frames * self.patch_bins * self.channels

    @property
    def conditioned(self) -> bool:
        return bool(self.noise_levels) and self.condition_on_noise


class Glow(nnx.Module):
    """The flow of the module docstring; `forward_and_log_det` maps patches to z [B, D]."""

    def __init__(self, config: FlowConfig, *, rngs: nnx.Rngs):
        self.config = config
        cond = int(config.conditioned)
        self.squeeze = Squeeze()
        steps, splits, c = [], [], config.channels
        for level in range(config.levels):
            c *= 4
            level_steps = [
                FlowStep(c, config.hidden, cond_channels=cond, rngs=rngs)
                for _ in range(config.steps)
            ]
            steps.append(nnx.List(level_steps))
            if level < config.levels - 1:
                splits.append(Split(c, config.hidden, cond_channels=cond, rngs=rngs))
                c -= c // 2
        self.steps = nnx.List(steps)
        self.splits = nnx.List(splits)

    def _latent_shapes(self) -> list[tuple[int, int, int]]:
        """[H, W, C] of each piece of z, in the order they are concatenated."""
        h, w, c = self.config.patch_shape
        shapes = []
        for split in self.splits:
            h, w, c = h // 2, w // 2, 4 * c
            shapes.append((h, w, c - split.split_at))
            c = split.split_at
        shapes.append((h // 2, w // 2, 4 * c))
        return shapes

    def _cond(self, sigma, batch: int) -> jnp.ndarray | None:
        if not self.config.conditioned:
            if sigma is not None:
                raise ValueError("this flow is not noise-conditioned: leave sigma out")
            return None
        if sigma is None:
            raise ValueError(
                f"this flow is conditioned on the noise level: pass sigma (trained on "
                f"{list(self.config.noise_levels)})"
            )
        return jnp.broadcast_to(jnp.asarray(sigma, jnp.float32), (batch,))

    def _check(self, x: jnp.ndarray) -> None:
        if x.ndim != 4 or tuple(x.shape[1:]) != self.config.patch_shape:
            raise ValueError(
                f"patches of shape {tuple(x.shape)}: this flow takes [B, "
                f"{', '.join(map(str, self.config.patch_shape))}] (frames, bins, channels)"
            )

    def _forward(self, x, cond, init: bool):
        log_det = jnp.zeros(x.shape[:1], x.dtype)
        pieces, h = [], x
        for level, level_steps in enumerate(self.steps):
            h, _ = self.squeeze.forward_and_log_det(h)
            for step in level_steps:
                if init:
                    step.actnorm.initialize(h)
                h, ld = step.forward_and_log_det(h, cond)
                log_det = log_det + ld
            if level < len(self.splits):
                h, ld = self.splits[level].forward_and_log_det(h, cond)
                log_det = log_det + ld
                h, out = self.splits[level].factor(h)
                pieces.append(out.reshape(x.shape[0], -1))
        pieces.append(h.reshape(x.shape[0], -1))
        return jnp.concatenate(pieces, axis=-1), log_det  # [B, D], [B]

    def initialize(self, x: jnp.ndarray, sigma=None) -> None:
        """Data-dependent init of every ActNorm, in flow order, on a batch [B, T, F, C] (the
        noisy one, with its sigma, for a noise-conditioned flow). Eager; once, before fit."""
        self._check(x)
        self._forward(x, self._cond(sigma, x.shape[0]), init=True)

    def forward_and_log_det(self, x: jnp.ndarray, sigma=None):
        """Patches [B, T, F, C] -> (z [B, D], log |det dz/dx| [B])."""
        self._check(x)
        return self._forward(x, self._cond(sigma, x.shape[0]), init=False)

    def inverse_and_log_det(self, z: jnp.ndarray, sigma=None):
        """z [B, D] -> (patches [B, T, F, C], log |det dx/dz| [B])."""
        b = z.shape[0]
        cond = self._cond(sigma, b)
        shapes = self._latent_shapes()
        sizes = [math.prod(s) for s in shapes]
        pieces = jnp.split(z, [sum(sizes[: i + 1]) for i in range(len(sizes) - 1)], axis=-1)
        log_det = jnp.zeros((b,), z.dtype)
        h = pieces[-1].reshape(b, *shapes[-1])
        for level in reversed(range(len(self.steps))):
            if level < len(self.splits):
                out = pieces[level].reshape(b, *shapes[level])
                h, ld = self.splits[level].inverse_and_log_det(
                    jnp.concatenate([h, out], axis=-1), cond
                )
                log_det = log_det + ld
            for step in reversed(self.steps[level]):
                h, ld = step.inverse_and_log_det(h, cond)
                log_det = log_det + ld
            h, _ = self.squeeze.inverse_and_log_det(h)
        return h, log_det

    def log_prob(self, x: jnp.ndarray, sigma=None) -> jnp.ndarray:
        """log p(x) in nats per patch, [B]: a density of continuous x (see bits_per_dim)."""
        z, log_det = self.forward_and_log_det(x, sigma)
        return jnp.sum(jax.scipy.stats.norm.logpdf(z), axis=-1) + log_det

    def bits_per_dim(self, x: jnp.ndarray, sigma=None) -> jnp.ndarray:
        """-log2 p(x) / D per patch, [B], D = T * F * C.

        x is continuous and taken as given (no dequantisation noise, no 1/256 bins), so this
        is the differential code length of the density, not the discrete bits/dim of 8-bit
        image models: it can be negative, and it depends on the units of x (scaling x by a
        shifts it by -log2(a)). Compare numbers only at the same input compression/scale.
        """
        return -self.log_prob(x, sigma) / (self.config.dims * math.log(2.0))

    def sample(self, key: jax.Array, n: int, temperature: float = 1.0, sigma=None):
        """n patches [n, T, F, C]: z ~ N(0, temperature^2 I) through the inverse flow."""
        z = temperature * jax.random.normal(key, (n, self.config.dims))
        return self.inverse_and_log_det(z, sigma)[0]


def flow_loss(
    model: Glow, batch: dict[str, jnp.ndarray], rng: jax.Array
) -> tuple[jnp.ndarray, dict[str, jnp.ndarray]]:
    """Mean negative log-likelihood in bits/dim, the loss `gensep.training.fit` expects.

    Args:
      model: The flow.
      batch: {"x": patches [B, T, F, C]}, optionally "sigma" [B] (or scalar): the noise
        level of each row. Without "sigma" and with `config.noise_levels`, sigma is drawn
        per row from them; either way x + sigma * N(0, 1) is what the flow models (and
        sigma is its conditioning input if the flow is conditioned).
      rng: Key for the noise level and the noise.

    Returns:
      (mean bits/dim, {"bits_per_dim": the same}).
    """
    x, c = batch["x"], model.config
    k_level, k_noise = jax.random.split(rng)
    sigma = batch.get("sigma")
    if sigma is None and c.noise_levels:
        levels = jnp.asarray(c.noise_levels, jnp.float32)
        sigma = levels[jax.random.randint(k_level, x.shape[:1], 0, len(levels))]
    if sigma is not None:
        sigma = jnp.broadcast_to(jnp.asarray(sigma, x.dtype), x.shape[:1])
        x = x + sigma[:, None, None, None] * jax.random.normal(k_noise, x.shape, x.dtype)
    bpd = jnp.mean(model.bits_per_dim(x, sigma if c.conditioned else None))
    return bpd, {"bits_per_dim": bpd}


__all__ = ["FlowConfig", "Glow", "flow_loss"]
