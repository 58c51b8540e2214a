"""Speed of gensep's jitted DSP against straightforward references, measured in the same run.

Run: `.venv/bin/python bench/bench_dsp.py [--seconds 30] [--repeats 5] [--json OUT.json]`.

Two stages, each on `--seconds` of mono float32 audio at 16 kHz and at 44.1 kHz (fixed seed):

1. STFT round trip: `gensep.dsp.istft(gensep.dsp.stft(x))` under one `jax.jit`, against
   `librosa.istft(librosa.stft(x))` with the same settings (n_fft 2048, centred, zero
   padding, periodic Hann; hop 256 at 16 kHz, 512 at 44.1 kHz). The max abs difference
   between the two round trips is printed as a sanity check.
2. Source-filter voices: `gensep.dsp.source_filter_synth` for a batch of 4 voices (bass,
   tenor, alto, soprano around 100, 200, 330, 500 Hz with 5.5 Hz vibrato), 101 harmonics,
   40 noise bands, order-20 LSFs changing every frame; hop 256 at 16 kHz, 512 at 44.1 kHz
   (16 ms rounded to a power of two). The reference, `reference_source_filter_synth` below,
   does the same work with NumPy/SciPy: additive synthesis in float64 (harmonics entirely
   at or above Nyquist skipped, the others masked per sample), noise filtered by
   `scipy.signal.fftconvolve` per frame and overlap-added, and the all-pole envelope by
   `scipy.signal.lfilter` on each Hann-windowed 50 %-overlap frame, overlap-added. Its
   LPC coefficients come from `gensep.dsp.lsf_to_lpc`, computed once outside the timing.
   With the noise off, the SNR between the two outputs is printed (above ~30 dB they do the
   same work). They are not identical: ours filters each frame circularly (FFT), and the
   reference's LPC coefficients are float32-rounded, which matters most for poles near the
   unit circle (one voice at 44.1 kHz: ~65 dB, ~105 dB with float64 LPC coefficients).

How to read the table (every number comes from this run, on this machine):
- first s: the first call, timed alone. For jitted code: tracing + XLA compilation + the
  first execution (which also pays for first-touch page faults of fresh buffers); for the
  references, a plain first call (imports, FFT plan caches).
- compile s: tracing + lowering + XLA compilation alone, timed ahead of time on a fresh
  wrapper after the steady calls (so first s - compile s ~ the first execution).
- steady s: median wall time of `--repeats` further calls (`--ref-repeats` for the slow
  synthesis reference), each waited for with `jax.block_until_ready`.
- x-RT: audio seconds / steady wall seconds. For the synthesis stage the audio seconds are
  the signal duration (30 s), not voices x duration, although 4 voices are produced.
- cpu/wall: process CPU time (user + system) / wall time over the steady calls: how many
  cores were kept busy (XLA uses all of them; NumPy/SciPy mostly one). sys %: the system
  share of that CPU time; a large one means page faults from allocating big buffers.
- maxrss +MB: growth of the process' peak resident memory (ru_maxrss) over the first and
  steady calls. It is a high-water mark, so it only counts memory beyond any earlier peak:
  a lower bound of the stage's own peak, and 0 when an earlier stage used more.
- XLA temp MB: scratch memory of the compiled program (`memory_analysis()`), exact.
- speedup: reference steady time / our steady time; > 1 means ours is faster. Divide by
  cpu/wall to compare per core. A ratio of two measurements, never a threshold.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import librosa
import numpy as np
import scipy
import scipy.signal

from gensep import dsp

RATES = (16000, 44100)
N_FFT = 2048
STFT_HOP = {16000: 256, 44100: 512}
SYNTH_HOP = {16000: 256, 44100: 512}  # round(0.016 * rate) rounded to a power of two
N_VOICES = 4
N_HARMONICS = 101
LPC_ORDER = 20
NOISE_BANDS = 40
VOICE_F0_HZ = (100.0, 200.0, 330.0, 500.0)  # bass, tenor, alto, soprano
ROLLOFF_DB_PER_OCTAVE = 6.0
# Raw LSF values of std 0.5 and gaps >= 0.03 rad keep the poles within radius ~0.99
# (formant bandwidths >= ~40 Hz at 16 kHz). Sharper envelopes (std 1, gap 0.01) make the
# float32 `lsf_to_lpc` coefficients unstable (poles past the unit circle), so the lfilter
# reference would diverge while our product-form filter does not.
LSF_RAW_STD = 0.5
LSF_MIN_GAP = 0.03


@dataclass
class Timing:
    """One implementation at one rate; times in seconds, CPU times summed over steady calls."""

    stage: str
    impl: str
    rate: int
    audio_s: float
    first_call_s: float
    compile_s: float | None
    steady_s: float
    all_steady_s: list[float]
    x_realtime: float
    cpu_per_wall: float
    user_cpu_s: float
    sys_cpu_s: float
    maxrss_growth_mb: float
    xla_temp_mb: float | None


def maxrss_mb() -> float:
    """Peak resident memory of this process so far (MB; Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def time_compile(jitted: Any, *args: Any, **kwargs: Any) -> tuple[float, float | None]:
    """Trace + lower + compile ahead of time: (seconds, XLA temp MB). `jitted` must wrap a
    function object jax has not seen (a new lambda), or its caches answer instantly."""
    start = time.perf_counter()
    compiled = jitted.lower(*args, **kwargs).compile()
    seconds = time.perf_counter() - start
    memory = compiled.memory_analysis()
    return seconds, (memory.temp_size_in_bytes / 2**20 if memory is not None else None)


def time_calls(
    fn: Callable[[], Any],
    repeats: int,
    meta: dict[str, Any],
    compile_fn: Callable[[], tuple[float, float | None]] | None = None,
) -> tuple[Timing, Any]:
    """Time a first call alone, then `repeats` calls; then, for jitted code, `compile_fn`
    (an ahead-of-time compile on a fresh wrapper, so that it misses jit's cache).
    `meta` gives stage, impl, rate and audio_s. Returns the timing and the last output."""
    rss0 = maxrss_mb()
    start = time.perf_counter()
    out = jax.block_until_ready(fn())
    first = time.perf_counter() - start
    walls = []
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    for _ in range(repeats):
        wall0 = time.perf_counter()
        out = jax.block_until_ready(fn())
        walls.append(time.perf_counter() - wall0)
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    rss_growth = maxrss_mb() - rss0
    compile_s, temp_mb = compile_fn() if compile_fn else (None, None)
    user, system = cpu1.ru_utime - cpu0.ru_utime, cpu1.ru_stime - cpu0.ru_stime
    steady = statistics.median(walls)
    timing = Timing(
        **meta,
        first_call_s=first,
        compile_s=compile_s,
        steady_s=steady,
        all_steady_s=walls,
        x_realtime=meta["audio_s"] / steady,
        cpu_per_wall=(user + system) / sum(walls),
        user_cpu_s=user,
        sys_cpu_s=system,
        maxrss_growth_mb=rss_growth,
        xla_temp_mb=temp_mb,
    )
    return timing, out


def bench_stft(audio: np.ndarray, rate: int, repeats: int) -> tuple[list[Timing], dict]:
    """Jitted stft + istft round trip against librosa's, same settings, same signal."""
    hop, length = STFT_HOP[rate], audio.shape[-1]

    def round_trip(x: jnp.ndarray) -> jnp.ndarray:
        return dsp.istft(dsp.stft(x, N_FFT, hop), N_FFT, hop, length=length)

    def reference() -> np.ndarray:
        spec = librosa.stft(audio, n_fft=N_FFT, hop_length=hop, center=True, pad_mode="constant")
        return librosa.istft(spec, hop_length=hop, n_fft=N_FFT, length=length)

    ours = jax.jit(round_trip)
    x = jax.device_put(audio)
    meta = {"stage": "stft+istft", "rate": rate, "audio_s": length / rate}
    ref_t, ref_y = time_calls(reference, repeats, {**meta, "impl": "librosa"})
    our_t, our_y = time_calls(
        lambda: ours(x),
        repeats,
        {**meta, "impl": "gensep"},
        lambda: time_compile(jax.jit(lambda y: round_trip(y)), x),
    )
    check = {
        "max_abs_diff_vs_librosa": float(np.max(np.abs(np.asarray(our_y) - ref_y))),
        "max_abs_error_vs_input": float(np.max(np.abs(np.asarray(our_y) - audio))),
        "n_fft": N_FFT,
        "hop": hop,
    }
    return [ref_t, our_t], check


def smooth_random(rng: np.random.Generator, lead: tuple[int, ...], n: int, step: int) -> np.ndarray:
    """Standard normal knots every `step` frames, linearly interpolated. [*lead, n]."""
    knots = rng.standard_normal((*lead, n // step + 2))
    pos = np.arange(n) / step
    i = pos.astype(int)
    frac = pos - i
    return knots[..., i] * (1 - frac) + knots[..., i + 1] * frac


def voice_controls(n_frames: int, rate: int, hop: int, seed: int) -> dict[str, np.ndarray]:
    """Frame-wise controls of four sung voices (vibrato F0, smooth random envelopes)."""
    rng = np.random.default_rng(seed)
    step = max(1, round(0.1 * rate / hop))  # new random targets every ~100 ms
    t = np.arange(n_frames) * hop / rate
    base = np.asarray(VOICE_F0_HZ)[:, None]
    vibrato_cents = 50 * np.sin(2 * np.pi * 5.5 * t + rng.uniform(0, 2 * np.pi, (N_VOICES, 1)))
    drift_cents = 30 * smooth_random(rng, (N_VOICES,), n_frames, 5 * step)
    f0 = base * 2 ** ((vibrato_cents + drift_cents) / 1200)
    raw_lsf = LSF_RAW_STD * smooth_random(rng, (N_VOICES, LPC_ORDER), n_frames, step)
    raw_lsf = jnp.asarray(raw_lsf.swapaxes(-1, -2), jnp.float32)  # [V, T, P]
    lsf = np.asarray(dsp.lsf_activation(raw_lsf, LSF_MIN_GAP))
    noise = smooth_random(rng, (N_VOICES, NOISE_BANDS), n_frames, step).swapaxes(-1, -2)
    gain = 0.1 * np.exp(0.3 * smooth_random(rng, (N_VOICES,), n_frames, step))
    return {
        "f0_hz": f0.astype(np.float32),
        "harmonic_gain": gain.astype(np.float32),
        "noise_magnitudes": (0.01 * np.exp(noise)).astype(np.float32),
        "lsf": lsf.astype(np.float32),
        "envelope_gain": np.full((N_VOICES, n_frames), 0.05, np.float32),
    }


def overlap_add_np(frames: np.ndarray, hop: int) -> np.ndarray:
    """Sum frames [T, L] placed `hop` apart -> [(T - 1) * hop + L]."""
    n_frames, length = frames.shape
    out = np.zeros((n_frames - 1) * hop + length)
    for t in range(n_frames):
        out[t * hop : t * hop + length] += frames[t]
    return out


def ref_harmonics(f0: np.ndarray, gain: np.ndarray, rate: int, hop: int) -> np.ndarray:
    """Additive synthesis of one voice in float64. f0, gain: [T] -> [T * hop]."""
    n = f0.shape[0] * hop
    grid, knots = np.arange(n), np.arange(f0.shape[0]) * hop
    freq = np.interp(grid, knots, f0.astype(np.float64))  # holds the last frame
    cycles = np.concatenate([[0.0], np.cumsum(freq[:-1])]) / rate  # phase 0 at sample 0
    k = np.arange(1, N_HARMONICS + 1)
    amps = gain[:, None].astype(np.float64) * 10.0 ** (-ROLLOFF_DB_PER_OCTAVE * np.log2(k) / 20)
    nyquist, out = rate / 2, np.zeros(n)
    for i in np.flatnonzero(k * freq.min() < nyquist):
        amp = np.interp(grid, knots, amps[:, i])
        if k[i] * freq.max() >= nyquist:
            amp = np.where(k[i] * freq < nyquist, amp, 0.0)
        out += amp * np.sin(2 * np.pi * k[i] * cycles)
    return out


def ref_noise(magnitudes: np.ndarray, hop: int, rng: np.random.Generator) -> np.ndarray:
    """Uniform noise, block t convolved with its linear-phase FIR. magnitudes [T, B]."""
    n_frames, n_taps = magnitudes.shape[0], 2 * (magnitudes.shape[1] - 1)
    irs = np.roll(np.fft.irfft(magnitudes.astype(np.float64), n=n_taps), n_taps // 2, axis=-1)
    irs *= np.hanning(n_taps + 1)[:n_taps]
    blocks = rng.uniform(-1.0, 1.0, (n_frames, hop))
    filtered = np.stack([scipy.signal.fftconvolve(b, h) for b, h in zip(blocks, irs, strict=True)])
    out = overlap_add_np(filtered, hop)
    return out[n_taps // 2 : n_taps // 2 + n_frames * hop]


def ref_allpole(audio: np.ndarray, lpc: np.ndarray, gain: np.ndarray, hop: int) -> np.ndarray:
    """lfilter(gain_t, a_t) on Hann frames of 2 * hop (50 % overlap), each ringing for
    4 * hop samples, overlap-added. audio [T * hop], lpc [T, P + 1], gain [T]."""
    n_frames, length = lpc.shape[0], 2 * hop
    half, n_out = length // 2, 2 * length
    # The last frame's controls are repeated for one extra frame, which covers the last hop.
    lpc = np.concatenate([lpc, lpc[-1:]])
    gain = np.concatenate([gain, gain[-1:]])
    padded = np.pad(audio, (half, length - half))
    # Periodic Hann at 50 % overlap sums to one wherever the signal is: no normalisation.
    window = np.hanning(length + 1)[:length]
    frames = np.lib.stride_tricks.sliding_window_view(padded, length)[::hop] * window
    ringing = np.zeros((n_frames + 1, n_out))
    for t in range(n_frames + 1):
        ringing[t, :length] = frames[t]
        ringing[t] = scipy.signal.lfilter([gain[t]], lpc[t], ringing[t])
    return overlap_add_np(ringing, hop)[half : half + n_frames * hop]


def reference_source_filter_synth(
    controls: dict[str, np.ndarray], lpc: np.ndarray, rate: int, hop: int, seed: int
) -> np.ndarray:
    """NumPy/SciPy counterpart of `gensep.dsp.source_filter_synth`, voice by voice. [V, N]."""
    rng = np.random.default_rng(seed)
    voices = []
    for v in range(controls["f0_hz"].shape[0]):
        excitation = ref_harmonics(controls["f0_hz"][v], controls["harmonic_gain"][v], rate, hop)
        if np.any(controls["noise_magnitudes"][v]):
            excitation += ref_noise(controls["noise_magnitudes"][v], hop, rng)
        voices.append(ref_allpole(excitation, lpc[v], controls["envelope_gain"][v], hop))
    return np.stack(voices).astype(np.float32)


def max_pole_radius(lpc: np.ndarray) -> float:
    """Largest |root| of A(z) over all frames (companion-matrix eigenvalues). lpc [..., P+1]."""
    order = lpc.shape[-1] - 1
    companion = np.zeros((*lpc.shape[:-1], order, order))
    companion[..., 0, :] = -lpc[..., 1:] / lpc[..., :1]
    companion[..., np.arange(1, order), np.arange(order - 1)] = 1.0
    return float(np.abs(np.linalg.eigvals(companion)).max())


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """10 log10(|reference|^2 / |estimate - reference|^2) over the whole array (dB)."""
    err = np.sum((np.asarray(estimate, np.float64) - reference) ** 2)
    return float(10 * np.log10(np.sum(np.asarray(reference, np.float64) ** 2) / err))


def bench_synth(
    seconds: float, rate: int, repeats: int, ref_repeats: int, seed: int
) -> tuple[list[Timing], dict]:
    """Jitted source_filter_synth for four voices against the NumPy/SciPy reference."""
    hop = SYNTH_HOP[rate]
    n_frames = int(seconds * rate) // hop
    audio_s = n_frames * hop / rate
    controls = voice_controls(n_frames, rate, hop, seed)
    lpc = np.asarray(dsp.lsf_to_lpc(jnp.asarray(controls["lsf"])), np.float64)
    synth_fn = partial(
        dsp.source_filter_synth,
        sample_rate=rate,
        hop=hop,
        n_harmonics=N_HARMONICS,
        rolloff_db_per_octave=ROLLOFF_DB_PER_OCTAVE,
    )
    synth = jax.jit(synth_fn)
    names = ("f0_hz", "harmonic_gain", "noise_magnitudes", "lsf", "envelope_gain")
    key = jax.random.key(seed)

    def ours(ctrl: dict[str, Any]) -> jnp.ndarray:
        return synth(*(ctrl[name] for name in names), key=key)

    def reference(ctrl: dict[str, np.ndarray]) -> np.ndarray:
        return reference_source_filter_synth(ctrl, lpc, rate, hop, seed)

    on_device = {name: jax.device_put(controls[name]) for name in names}
    meta = {"stage": "voices x4", "rate": rate, "audio_s": audio_s}
    ref_t, _ = time_calls(lambda: reference(controls), ref_repeats, {**meta, "impl": "numpy/scipy"})
    our_t, _ = time_calls(
        lambda: ours(on_device),
        repeats,
        {**meta, "impl": "gensep"},
        lambda: time_compile(
            jax.jit(lambda *a, **k: synth_fn(*a, **k)), *(on_device[n] for n in names), key=key
        ),
    )
    quiet = dict(controls, noise_magnitudes=np.zeros_like(controls["noise_magnitudes"]))
    quiet_dev = dict(on_device, noise_magnitudes=jnp.zeros_like(on_device["noise_magnitudes"]))
    check = {
        "snr_db_noise_off": snr_db(reference(quiet), np.asarray(ours(quiet_dev))),
        "max_pole_radius": max_pole_radius(lpc),
        "hop": hop,
        "frames": n_frames,
        "voices": N_VOICES,
        "harmonics": N_HARMONICS,
        "lpc_order": LPC_ORDER,
        "noise_bands": NOISE_BANDS,
    }
    return [ref_t, our_t], check


def environment() -> dict[str, Any]:
    """Versions, backend and core counts, printed at the top and stored in the JSON."""
    return {
        "python": platform.python_version(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "devices": jax.device_count(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "librosa": librosa.__version__,
    }


HEADER = (
    f"{'stage':<11}{'rate':>6}  {'impl':<12}{'first s':>8}{'compile s':>10}{'steady s':>9}"
    f"{'x-RT':>8}{'cpu/wall':>9}{'sys %':>6}{'maxrss +MB':>11}{'XLA temp MB':>12}{'speedup':>9}"
)


def format_row(t: Timing, reference: Timing | None) -> str:
    """One table line; the speedup (reference / ours) goes on our row."""
    speedup = f"{reference.steady_s / t.steady_s:8.2f}x" if reference else f"{'(ref)':>9}"
    compile_s = f"{t.compile_s:10.3f}" if t.compile_s is not None else f"{'-':>10}"
    temp = f"{t.xla_temp_mb:12.0f}" if t.xla_temp_mb is not None else f"{'-':>12}"
    sys_pct = 100 * t.sys_cpu_s / max(t.user_cpu_s + t.sys_cpu_s, 1e-9)
    return (
        f"{t.stage:<11}{t.rate:>6}  {t.impl:<12}{t.first_call_s:>8.3f}{compile_s}"
        f"{t.steady_s:>9.3f}{t.x_realtime:>8.1f}{t.cpu_per_wall:>9.2f}{sys_pct:>6.0f}"
        f"{t.maxrss_growth_mb:>11.0f}{temp}{speedup}"
    )


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="audio length (s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls after the first")
    parser.add_argument(
        "--ref-repeats", type=int, default=2, help="timed calls of the slow synthesis reference"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", metavar="OUT.json", help="also write every number here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = get_parser().parse_args(argv)
    start = time.perf_counter()
    env = environment()
    print(" | ".join(f"{k} {v}" for k, v in env.items()))
    print(f"{args.seconds:g} s mono float32 per signal. speedup = reference time / our time")
    print("(> 1: ours faster); x-RT = audio s / wall s; steady = median of repeated calls.\n")
    print(HEADER)
    print("-" * len(HEADER))
    timings: list[Timing] = []
    checks: dict[str, dict] = {}
    for rate in RATES:
        audio = np.random.default_rng(args.seed).uniform(-0.5, 0.5, int(args.seconds * rate))
        pair, check = bench_stft(audio.astype(np.float32), rate, args.repeats)
        print("\n".join([format_row(pair[0], None), format_row(pair[1], pair[0])]))
        print(
            f"{'':17}n_fft {check['n_fft']}, hop {check['hop']}; max |ours - librosa| "
            f"{check['max_abs_diff_vs_librosa']:.2e}, max |ours - input| "
            f"{check['max_abs_error_vs_input']:.2e}"
        )
        timings += pair
        checks[f"stft_{rate}"] = check
        sys.stdout.flush()
    for rate in RATES:
        pair, check = bench_synth(args.seconds, rate, args.repeats, args.ref_repeats, args.seed)
        print("\n".join([format_row(pair[0], None), format_row(pair[1], pair[0])]))
        print(
            f"{'':17}hop {check['hop']}, {check['frames']} frames, {N_HARMONICS} harmonics, "
            f"LSF order {LPC_ORDER}, {NOISE_BANDS} noise bands\n{'':17}max pole radius "
            f"{check['max_pole_radius']:.4f}; SNR ours vs reference (noise off) "
            f"{check['snr_db_noise_off']:.1f} dB"
        )
        timings += pair
        checks[f"synth_{rate}"] = check
        sys.stdout.flush()
    total = time.perf_counter() - start
    print(f"\ntotal {total:.1f} s (maxrss is the process high-water mark; see the docstring)")
    if args.json:
        report = {
            "environment": env,
            "args": vars(args),
            "timings": [asdict(t) for t in timings],
            "checks": checks,
            "total_s": total,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
