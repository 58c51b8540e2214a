"""Training-step time of the UMSS model: STFT-domain synthesis against the time-domain path.

Run: `.venv/bin/python bench/bench_umss.py [--batch 16] [--seconds 4] [--voices 4]
[--repeats 3] [--skip-reference] [--json OUT.json]`.

One training step = `jax.value_and_grad` of the loss with respect to every parameter plus
an `optax.adam` update, under one `jax.jit`, timed after compilation (median of
`--repeats` calls, each waited for). The batch is random noise at 16 kHz with fixed F0s
(bass, tenor, alto, soprano around 100, 200, 330, 500 Hz): the cost does not depend on
the values.

Rows:
- reference (time domain): the same model, but its controls go through
  `gensep.dsp.source_filter_synth` (101-harmonic oscillator bank, filtered noise, frame-wise
  all-pole filter), the voices are summed and `gensep.dsp.multi_resolution_stft_loss`
  compares the sum with the mixture at the same FFT sizes (its hop is n_fft / 4).
- ours: `gensep.models.umss_loss` (source magnitudes synthesised directly in the STFT
  domain, all sizes at hop 256), for the default loss sizes and for cheaper sets.
- parts of our step, each timed alone: the network (forward + backward of a sum of its
  controls), the synthesis + loss given the controls (forward + backward), and the
  mixture STFTs (forward only; the loss needs no gradient through them).

speedup = reference step time / our step time, both measured in this run (> 1: ours
faster). The parts do not add up exactly to the step: XLA fuses across them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from gensep import dsp
from gensep.models import UMSS, UMSSConfig, umss_loss
from gensep.models.umss import loss_magnitudes

SR, HOP = 16000, 256
VOICE_F0_HZ = (100.0, 200.0, 330.0, 500.0)
CHEAPER_SIZES = ((1024, 512, 256), (1024, 256))


def median_time(fn: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """(first call incl. compilation, median of `repeats` further calls), seconds."""
    start = time.perf_counter()
    jax.block_until_ready(fn())
    first = time.perf_counter() - start
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return first, statistics.median(times)


def make_batch(batch: int, seconds: float, voices: int, seed: int) -> dict[str, jnp.ndarray]:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    frames = 1 + n // HOP
    f0 = np.asarray([VOICE_F0_HZ[v % len(VOICE_F0_HZ)] for v in range(voices)])
    f0 = f0[None, :, None] * 2 ** (rng.uniform(-1, 1, (batch, voices, 1)) / 12)
    return {
        "mixture": jnp.asarray(rng.normal(0, 0.1, (batch, n)), jnp.float32),
        "f0": jnp.asarray(f0 * np.ones((1, 1, frames)), jnp.float32),
    }


def time_domain_loss(model: UMSS, batch: dict[str, jnp.ndarray]) -> jnp.ndarray:
    """The reference: controls -> source_filter_synth -> sum -> multi_resolution_stft_loss."""
    c = model.config
    mixture, f0 = batch["mixture"], batch["f0"]
    logmag = dsp.log_magnitude(dsp.stft(mixture, c.n_fft_in, c.hop))
    controls = model(logmag, f0)
    t = mixture.shape[-1] // c.hop  # source_filter_synth makes frames * hop samples
    audio = dsp.source_filter_synth(
        f0[..., :t],
        controls["harmonic_gain"][..., :t],
        controls["noise_gains"][..., :t, :],
        controls["lsf"][..., :t, :],
        controls["envelope_gain"][..., :t],
        c.sample_rate,
        c.hop,
        jax.random.PRNGKey(0),
        c.n_harmonics,
        c.rolloff_db_per_octave,
    )
    est = jnp.sum(audio, axis=1)
    return dsp.multi_resolution_stft_loss(est, mixture[..., : est.shape[-1]], c.loss_fft_sizes)


def train_step(config: UMSSConfig, loss_fn: Callable, batch: dict) -> tuple[Callable, int]:
    """A jitted (params, opt_state) -> (params, opt_state, loss) step and the param count."""
    graphdef, params = nnx.split(UMSS(config, rngs=nnx.Rngs(0)))
    tx = optax.adam(1e-4)
    opt_state = tx.init(params)

    @jax.jit
    def step(params, opt_state):
        value, grads = jax.value_and_grad(lambda p: loss_fn(nnx.merge(graphdef, p), batch))(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, value

    n_params = sum(int(x.size) for x in jax.tree.leaves(params))
    return (lambda: step(params, opt_state)), n_params


def parts(config: UMSSConfig, batch: dict, repeats: int) -> dict[str, float]:
    """Steady times of the network, the synthesis + loss, and the mixture STFTs alone."""
    c = config
    graphdef, params = nnx.split(UMSS(c, rngs=nnx.Rngs(0)))
    logmag = dsp.log_magnitude(dsp.stft(batch["mixture"], c.n_fft_in, c.hop))
    f0 = batch["f0"]

    def net(p):
        controls = nnx.merge(graphdef, p)(logmag, f0)
        return sum(jnp.sum(v) for v in controls.values())

    controls = jax.jit(lambda p: nnx.merge(graphdef, p)(logmag, f0))(params)
    targets = [dsp.magnitude(dsp.stft(batch["mixture"], n, c.hop)) for n in c.loss_fft_sizes]

    def synth_loss(ctrl):
        mags = loss_magnitudes(c, ctrl, f0)
        total = 0.0
        for m, target in zip(mags, targets, strict=True):
            pred = jnp.sum(m, axis=1)
            total = total + jnp.mean(jnp.abs(pred - target))
            total = total + jnp.mean(jnp.abs(jnp.log(pred + c.log_eps) - jnp.log(target + 1e-4)))
        return total

    def stfts(x):
        return [dsp.magnitude(dsp.stft(x, n, c.hop)) for n in c.loss_fft_sizes]

    net_grad = jax.jit(jax.grad(net))
    synth_grad = jax.jit(jax.grad(synth_loss))
    stft_fn = jax.jit(stfts)
    return {
        "network fwd+bwd": median_time(lambda: net_grad(params), repeats)[1],
        "synthesis+loss fwd+bwd": median_time(lambda: synth_grad(controls), repeats)[1],
        "mixture STFTs": median_time(lambda: stft_fn(batch["mixture"]), repeats)[1],
    }


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--voices", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-reference", action="store_true", help="skip the slow path")
    parser.add_argument("--json", metavar="OUT.json", help="also write every number here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    env = {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "cpus_usable": len(os.sched_getaffinity(0)),
    }
    print(" | ".join(f"{k} {v}" for k, v in env.items()))
    print(
        f"batch {args.batch} x {args.seconds:g} s x {args.voices} voices at {SR} Hz, hop {HOP}."
        " speedup = reference step / our step (> 1: ours faster)\n"
    )
    batch = make_batch(args.batch, args.seconds, args.voices, args.seed)
    config = UMSSConfig()
    report: dict[str, Any] = {"environment": env, "args": vars(args), "rows": []}
    reference_s = None
    header = f"{'path':<42}{'loss sizes':<24}{'params':>9}{'first s':>9}{'step s':>9}{'speedup':>9}"
    print(header + "\n" + "-" * len(header))

    def row(name: str, sizes: tuple[int, ...], n_params: int, first: float, steady: float):
        speedup = f"{reference_s / steady:8.2f}x" if reference_s else f"{'(ref)':>9}"
        print(f"{name:<42}{sizes!s:<24}{n_params:>9}{first:>9.2f}{steady:>9.3f}{speedup}")
        report["rows"].append(
            {"path": name, "sizes": sizes, "params": n_params, "first_s": first, "step_s": steady}
        )
        sys.stdout.flush()

    if not args.skip_reference:
        step, n_params = train_step(config, time_domain_loss, batch)
        first, reference_s = median_time(step, max(1, args.repeats - 1))
        row("reference (time-domain synth)", config.loss_fft_sizes, n_params, first, reference_s)
    for sizes in (config.loss_fft_sizes, *CHEAPER_SIZES):
        cfg = dataclasses.replace(config, loss_fft_sizes=sizes)
        step, n_params = train_step(cfg, lambda m, b: umss_loss(m, b)[0], batch)
        row("ours (STFT-domain synth)", sizes, n_params, *median_time(step, args.repeats))
    print(f"\nparts of our step, loss sizes {config.loss_fft_sizes}, steady s:")
    breakdown = parts(config, batch, args.repeats)
    for name, seconds in breakdown.items():
        print(f"  {name:<28}{seconds:8.3f}")
    report["parts"] = breakdown
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
