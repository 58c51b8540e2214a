"""Glow flow layers and model: invertibility, log-dets against autodiff Jacobians, ActNorm's
data-dependent init, sampling and gradients, and learning a Gaussian of known density."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy.stats import multivariate_normal

from gensep.errors import ConfigError
from gensep.flows import (
    ActNorm,
    AffineCoupling,
    FlowConfig,
    FlowStep,
    Glow,
    InvConv1x1,
    Split,
    Squeeze,
    flow_loss,
)
from gensep.training import TrainConfig, make_mesh, shard_batch, train_step_for

# One noise-conditioned config for every whole-model test: the conditioned flow runs every
# code path (the plain one only lacks the sigma input channel), and each new set of
# parameter shapes costs seconds of eager-op compilation on CPU.
TINY = FlowConfig(
    patch_frames=4, patch_bins=4, levels=2, steps=2, hidden=8, noise_levels=(0.0, 1.0)
)


@pytest.fixture(scope="module")
def tiny_glow():
    return Glow(TINY, rngs=nnx.Rngs(0))


def perturbed(module, seed=0, scale=0.3):
    """Add noise to every parameter, so zero-initialised outputs (identity couplings, the
    split's N(0, 1)) and ActNorm's identity start do not make the checks trivial."""
    r = np.random.default_rng(seed)  # numpy: a jax draw per parameter shape compiles each
    params = nnx.state(module, nnx.Param)
    nnx.update(module, jax.tree.map(lambda p: p + scale * r.standard_normal(p.shape), params))
    return module


def layer_cases():
    """name -> (layer, x [B, 4, 4, C], cond [B] or None)."""
    x = jax.random.normal(jax.random.key(1), (2, 4, 4, 4)) * 2.0 + 1.0
    sigma = jnp.array([0.1, 0.5])
    rngs = nnx.Rngs(0)
    return {
        "actnorm": (perturbed(ActNorm(4)), x, None),
        "invconv": (perturbed(InvConv1x1(4, rngs=rngs)), x, None),
        "coupling": (perturbed(AffineCoupling(4, 8, rngs=rngs)), x, None),
        "coupling_odd": (perturbed(AffineCoupling(3, 8, rngs=rngs)), x[..., :3], None),
        "coupling_cond": (perturbed(AffineCoupling(4, 8, cond_channels=1, rngs=rngs)), x, sigma),
        "split": (perturbed(Split(4, 8, rngs=rngs)), x, None),
        "squeeze": (Squeeze(), x[..., :1], None),
        "step": (perturbed(FlowStep(4, 8, cond_channels=1, rngs=rngs)), x, sigma),
    }


CASES = layer_cases()


def jacobian_log_dets(forward, x, cond):
    """log |det J| per example of forward(x[i:i+1]) by `slogdet(jax.jacfwd(...))` (jitted:
    eager op-by-op dispatch of a whole Glow's Jacobian takes seconds)."""

    def log_det(v, c):
        def flat(v):
            return forward(v.reshape(1, *x.shape[1:]), c)[0].reshape(-1)

        return jnp.linalg.slogdet(jax.jacfwd(flat)(v))[1]

    flat_x = x.reshape(x.shape[0], -1)
    if cond is None:
        return np.asarray(jax.jit(jax.vmap(lambda v: log_det(v, None)))(flat_x))
    return np.asarray(jax.jit(jax.vmap(lambda v, c: log_det(v, c[None])))(flat_x, cond))


@pytest.mark.parametrize("name", sorted(CASES))
def test_layer_inverts_and_log_det_matches_the_jacobian(name):
    layer, x, cond = CASES[name]
    y, log_det = layer.forward_and_log_det(x, cond)
    assert y.shape[0] == x.shape[0] and y.size == x.size and log_det.shape == (x.shape[0],)
    x_back, inv_log_det = layer.inverse_and_log_det(y, cond)
    np.testing.assert_allclose(x_back, x, atol=1e-4)
    np.testing.assert_allclose(inv_log_det, -log_det, atol=1e-4)
    expected = jacobian_log_dets(layer.forward_and_log_det, x, cond)
    np.testing.assert_allclose(log_det, expected, rtol=1e-4, atol=1e-3)
    if name == "squeeze":  # block (0, 1) of the first 2x2 block lands in channel 1
        assert y[0, 0, 0, 1] == x[0, 0, 1, 0] and y[0, 0, 0, 2] == x[0, 1, 0, 0]


def test_glow_inverts_and_log_det_matches_the_jacobian(tiny_glow):
    model = perturbed(nnx.clone(tiny_glow), scale=0.2)
    x = jax.random.normal(jax.random.key(2), (2, 4, 4, 1))
    sigma = jnp.array([0.0, 0.3])
    z, log_det = nnx.jit(lambda m, x, s: m.forward_and_log_det(x, s))(model, x, sigma)
    assert z.shape == (2, 16)
    x_back, inv_log_det = nnx.jit(lambda m, z, s: m.inverse_and_log_det(z, s))(model, z, sigma)
    np.testing.assert_allclose(x_back, x, atol=1e-4)
    np.testing.assert_allclose(inv_log_det, -log_det, atol=1e-4)
    expected = jacobian_log_dets(model.forward_and_log_det, x, sigma)
    np.testing.assert_allclose(log_det, expected, rtol=1e-4, atol=1e-3)


def test_actnorm_init_whitens_the_init_batch_per_channel(rng):
    x = rng.normal([1.0, -3.0, 10.0], [0.5, 2.0, 7.0], (8, 4, 5, 3)).astype(np.float32)
    layer = ActNorm(3)
    layer.initialize(jnp.asarray(x))
    y, _ = layer.forward_and_log_det(jnp.asarray(x))
    np.testing.assert_allclose(np.mean(y, axis=(0, 1, 2)), 0.0, atol=1e-5)
    np.testing.assert_allclose(np.std(y, axis=(0, 1, 2)), 1.0, atol=1e-4)


def test_glow_initialize_whitens_every_actnorm_input(tiny_glow, rng):
    model = nnx.clone(tiny_glow)
    x = jnp.asarray(rng.normal(5.0, 3.0, (64, 4, 4, 1)), jnp.float32)
    nnx.jit(lambda m, x: m.initialize(x, sigma=0.5))(model, x)
    h, _ = model.squeeze.forward_and_log_det(x)
    y, _ = model.steps[0][0].actnorm.forward_and_log_det(h)
    np.testing.assert_allclose(np.mean(y, axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(np.std(y, axis=(0, 1, 2)), 1.0, atol=1e-3)


def test_sample_log_prob_grad_and_vmap_are_finite_and_consistent(tiny_glow):
    model = perturbed(nnx.clone(tiny_glow), scale=0.1)
    sample = nnx.jit(lambda m, k: m.sample(k, 5, temperature=0.7, sigma=0.5))
    samples = sample(model, jax.random.key(3))
    assert samples.shape == (5, 4, 4, 1) and bool(jnp.all(jnp.isfinite(samples)))
    log_p = nnx.jit(lambda m, x: m.log_prob(x, 0.5))(model, samples)
    assert log_p.shape == (5,) and bool(jnp.all(jnp.isfinite(log_p)))
    grad = jax.jit(jax.grad(lambda x: jnp.sum(model.log_prob(x, 0.5))))(samples)
    assert grad.shape == samples.shape and bool(jnp.all(jnp.isfinite(grad)))
    one_at_a_time = jax.jit(jax.vmap(lambda x: model.log_prob(x[None], 0.5)[0]))(samples)
    np.testing.assert_allclose(one_at_a_time, log_p, rtol=1e-5, atol=1e-4)
    bpd = nnx.jit(lambda m, x: m.bits_per_dim(x, 0.5))(model, samples)
    np.testing.assert_allclose(bpd, -log_p / (16 * np.log(2.0)), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [dict(patch_frames=6, patch_bins=8, levels=2), dict(patch_frames=8, patch_bins=12, levels=3)],
    ids=["frames", "bins"],
)
def test_patch_not_divisible_by_two_to_the_levels_is_a_config_error(kwargs):
    with pytest.raises(ConfigError, match="multiples of 2 \\*\\* levels"):
        FlowConfig(**kwargs)


def test_wrong_patch_or_missing_sigma_is_a_clear_error(tiny_glow):
    with pytest.raises(ValueError, match=r"takes \[B, 4, 4, 1\]"):
        tiny_glow.log_prob(jnp.zeros((2, 8, 4, 1)), 0.0)
    with pytest.raises(ValueError, match="pass sigma"):
        tiny_glow.log_prob(jnp.zeros((2, 4, 4, 1)))


def correlated_gaussian(seed=0):
    """A Gaussian over 4 x 4 patches: smooth (length scale 1.5 pixels) correlations, unequal
    per-pixel scales and a non-zero mean — far from anything the untrained flow models."""
    r = np.random.default_rng(seed)
    t, f = np.meshgrid(np.arange(4), np.arange(4), indexing="ij")
    pos = np.stack([t.ravel(), f.ravel()], 1).astype(float)
    d2 = ((pos[:, None] - pos[None]) ** 2).sum(-1)
    scale = r.uniform(0.5, 2.0, 16)
    cov = (np.exp(-d2 / (2 * 1.5**2)) + 0.05 * np.eye(16)) * np.outer(scale, scale)
    return r.normal(0, 1, 16), cov


def train(model, draw, steps=300):
    mesh = make_mesh(jax.devices()[:1])
    cfg = TrainConfig(steps=steps, batch_size=256, learning_rate=1e-2, warmup_steps=20)
    graphdef, state, step = train_step_for(model, flow_loss, cfg, mesh)
    for _ in range(steps):
        state, metrics = step(state, shard_batch(mesh, {"x": draw(256)}))
    assert np.isfinite(float(metrics["bits_per_dim"]))
    return nnx.merge(graphdef, state.params, state.model_state)


@pytest.mark.slow
def test_flow_learns_the_log_density_of_a_correlated_gaussian(tiny_glow, rng):
    """Held-out mean log-likelihood within 0.05 nats/dim of the closed form (~0.015 after
    300 steps), from ~0.7 nats/dim away after the ActNorm init. Noise-conditioned: the one
    flow must match N(mean, cov + sigma^2 I) at each training sigma, sigma = 0 being the
    clean density (an unconditioned flow is the same network less one input channel)."""
    mean, cov = correlated_gaussian()

    def draw(n, sigma=0.0):
        x = rng.multivariate_normal(mean, cov + sigma**2 * np.eye(16), n)
        return x.reshape(n, 4, 4, 1).astype(np.float32)

    model = nnx.clone(tiny_glow)
    nnx.jit(lambda m, x: m.initialize(x, sigma=0.0))(model, jnp.asarray(draw(1000)))
    log_prob = nnx.jit(lambda m, x, s: m.log_prob(x, s))

    def gap(model, sigma):
        """True minus model mean log-density on held-out samples, nats/dim."""
        held_out = draw(4000, sigma)
        true = multivariate_normal(mean, cov + sigma**2 * np.eye(16))
        true_ll = true.logpdf(held_out.reshape(len(held_out), -1)).mean() / 16
        return true_ll - float(jnp.mean(log_prob(model, jnp.asarray(held_out), sigma))) / 16

    assert gap(model, 0.0) > 0.3
    model = train(model, draw)
    gaps = [gap(model, sigma) for sigma in TINY.noise_levels]
    assert max(abs(g) for g in gaps) < 0.05, gaps
