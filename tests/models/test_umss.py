"""UMSS model: shapes, constraints, gradients, and learning to separate one mixture."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from gensep import dsp
from gensep.metrics import si_sdr
from gensep.models import UMSS, UMSSConfig, masks, separate_with_model, umss_loss

SR, HOP = 16000, 256
SMALL = UMSSConfig(
    loss_fft_sizes=(1024, 512, 256), encoder_hidden=64, embedding=64, decoder_hidden=64
)


class _Recording(dict):
    """A batch that remembers which keys were read."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.read = set()

    def __getitem__(self, key):
        self.read.add(key)
        return super().__getitem__(key)


def _batch(b=2, s=3, seconds=0.5, seed=0):
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    frames = 1 + n // HOP
    f0 = rng.uniform(90, 500, (b, s, 1)) * np.ones((1, 1, frames))
    f0[:, 0, :5] = 0.0  # an unvoiced stretch
    return {
        "mixture": jnp.asarray(rng.normal(0, 0.1, (b, n)), jnp.float32),
        "f0": jnp.asarray(f0, jnp.float32),
    }


def test_shapes_and_constraints():
    model = UMSS(SMALL, rngs=nnx.Rngs(0))
    batch = _batch()
    logmag = dsp.log_magnitude(dsp.stft(batch["mixture"], SMALL.n_fft_in, HOP))
    controls = model(logmag, batch["f0"])
    b, s, t = batch["f0"].shape
    assert controls["lsf"].shape == (b, s, t, SMALL.lsf_order)
    assert controls["noise_gains"].shape == (b, s, t, SMALL.noise_bands)
    for name in ("envelope_gain", "harmonic_gain"):
        assert controls[name].shape == (b, s, t)
    lsf = np.asarray(controls["lsf"])
    assert np.all(np.diff(lsf, axis=-1) > 0) and lsf.min() > 0 and lsf.max() < np.pi
    for name in ("envelope_gain", "harmonic_gain", "noise_gains"):
        assert np.all(np.asarray(controls[name]) > 0)
    mags = model.source_magnitudes(controls, batch["f0"], 2048, HOP)
    assert mags.shape == (b, s, t, 1025)
    m = masks(model, batch["mixture"][0], batch["f0"][0])
    assert m.shape == (s, t, 1025)
    np.testing.assert_allclose(np.asarray(m).sum(0), 1.0, atol=1e-5)
    est = separate_with_model(model, batch["mixture"][0], batch["f0"][0])
    assert est.shape == (s, batch["mixture"].shape[1])
    np.testing.assert_allclose(np.asarray(est).sum(0), batch["mixture"][0], atol=1e-4)


def test_loss_reads_only_mixture_and_f0_and_gradients_are_finite():
    model = UMSS(SMALL, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    batch = _Recording(_batch(), stems=None)

    def loss(p):
        return umss_loss(nnx.merge(graphdef, p), batch, jax.random.PRNGKey(0))

    (value, metrics), grads = jax.value_and_grad(loss, has_aux=True)(params)
    assert batch.read == {"mixture", "f0"}
    assert np.isfinite(float(value)) and set(metrics) == {"loss_1024", "loss_512", "loss_256"}
    leaves = jax.tree.leaves(grads)
    assert all(np.all(np.isfinite(np.asarray(g))) for g in leaves)
    assert sum(float(jnp.abs(g).sum()) for g in leaves) > 0


def test_wrong_frame_count_is_an_error():
    model = UMSS(SMALL, rngs=nnx.Rngs(0))
    batch = _batch()
    batch["f0"] = batch["f0"][..., :-1]
    with pytest.raises(ValueError, match=r"dsp\.f0_to_frames"):
        umss_loss(model, batch)
    with pytest.raises(ValueError, match="hop"):
        model.source_magnitudes({}, batch["f0"], 1024, 128)


def _two_voice_mixture():
    """~1 s of two source-filter voices (a slow vibrato around G3, a glide up from E4)."""
    frames = 63
    t = np.arange(frames) * HOP / SR
    f0 = np.stack([196 * 2 ** (0.3 * np.sin(2 * np.pi * 0.7 * t) / 12), 330 * 2 ** (t / 12)])
    rng = np.random.default_rng(0)
    stems = []
    for i, gain in enumerate((0.5, 0.4)):
        raw = np.repeat(rng.normal(0, 0.6, 20)[None], frames, 0)
        stems.append(
            dsp.source_filter_synth(
                jnp.asarray(f0[i], jnp.float32),
                jnp.full(frames, gain),
                jnp.full((frames, 40), 0.002),
                dsp.lsf_activation(jnp.asarray(raw, jnp.float32)),
                jnp.full(frames, 0.1),
                SR,
                HOP,
                jax.random.PRNGKey(i),
            )
        )
    stems = np.stack([np.asarray(s) for s in stems])
    stems = stems / np.abs(stems).max() * 0.3
    # The model's grid has 1 + samples // hop frames: hold the last F0 one frame longer.
    f0_frames = np.concatenate([f0, f0[:, -1:]], axis=1).astype(np.float32)
    return stems, f0_frames


@pytest.mark.slow
def test_learns_to_separate_one_mixture():
    stems, f0 = _two_voice_mixture()
    mixture = stems.sum(0)
    model = UMSS(SMALL, rngs=nnx.Rngs(0))
    graphdef, params = nnx.split(model)
    batch = {"mixture": jnp.asarray(mixture[None]), "f0": jnp.asarray(f0[None])}
    tx = optax.adam(3e-3)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
        def loss(p):
            return umss_loss(nnx.merge(graphdef, p), batch)[0]

        value, grads = jax.value_and_grad(loss)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    losses = []
    for _ in range(300):
        params, opt_state, value = step(params, opt_state)
        losses.append(float(value))
    # Measured: 7.7 -> 1.15.
    assert losses[-1] < losses[0] / 4

    estimates = jax.jit(
        lambda p: separate_with_model(nnx.merge(graphdef, p), jnp.asarray(mixture), jnp.asarray(f0))
    )(params)
    ours = si_sdr(np.asarray(estimates), stems)
    floor = si_sdr(np.stack([mixture / 2] * 2), stems)
    # Measured: ~22 dB for both voices against a floor of ~0 dB.
    assert np.all(ours > floor + 10.0), (ours, floor)


def test_refine_f0_pulls_detuned_f0s_back_to_the_truth():
    """The shipped model, frozen; the bundled chorale's true F0s detuned by ±35 cents
    (opposite signs for neighbouring voices): 30 refinement steps must bring the median
    error under a third of that (measured: about 5 cents). A refinement whose gradient
    does not reach the F0, or pushes it the wrong way, stays at 35 or grows."""
    from gensep.data.example import example
    from gensep.data.track import f0_on_frames
    from gensep.models.store import load_umss
    from gensep.models.umss import refine_f0
    from gensep.separation.umss import default_model_path

    track = example()
    model, _ = load_umss(default_model_path())
    c = model.config
    n = track.mixture.shape[-1] // c.hop * c.hop
    times = np.arange(1 + n // c.hop) * c.hop / c.sample_rate
    true = np.stack([f0_on_frames(*track.f0[k], times) for k in track.f0])[None]  # [1, S, T]
    detune = np.array([35.0, -35.0, 35.0, -35.0])[None, :, None]
    given = np.where(true > 0, true * 2 ** (detune / 1200), 0).astype(np.float32)
    graphdef, params = nnx.split(model)
    refined = jax.jit(lambda p, m, f: refine_f0(nnx.merge(graphdef, p), m, f, 30))(
        params, track.mixture[:, :n], given
    )
    refined = np.asarray(refined)
    voiced = true > 0
    assert np.array_equal(refined > 0, voiced)  # voicing untouched
    cents = np.abs(1200 * np.log2(refined[voiced] / true[voiced]))
    assert np.median(cents) < 35.0 / 3, np.median(cents)
    assert np.max(np.abs(1200 * np.log2(refined[voiced] / given[voiced]))) <= 50.0 + 1e-3
