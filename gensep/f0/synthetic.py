"""Synthetic part-song mixtures with their F0 truth: training data for F0 estimators that
no human labelled.

A batch row is `seconds` of mono audio holding one source-filter voice per entry of
`voice_ranges_hz` (high to low: SATB by default) and the F0 of each (Hz, 0 = unvoiced) on
the frame grid t * hop. The score is drawn at random: a rhythm of chord segments shared by
the voices (a chorale's homophony), split into two notes now and then; notes from the
segment's chord or any semitone, near the voice's previous note, at most the pitch of the
voice above (occasional crossings allowed), rests. Performance: glides between notes,
vibrato, slow pitch drift, intonation errors, ensemble copies (a section of singers or
players: the truth is the middle copy), attack/release envelopes, per-voice loudness.
Timbre: one of five harmonic roll-offs (6, 9, 12, 3 dB/octave, odd-heavy as a clarinet)
and noise, through a random all-pole envelope (random LSFs) gliding over the excerpt;
then optional exponential-noise reverb and a noise floor.

Controls are drawn with NumPy (`draw_controls`); the audio is one jit-compiled JAX
function over the whole batch (`render`) built on `gensep.dsp` (phases, filtered noise,
all-pole filter). The harmonic excitation is read from band-limited wavetables (the sum of
K harmonics for every K, the top harmonic faded in as F0 falls): a source-filter voice
has a fixed harmonic roll-off, so this equals `dsp.harmonic_synth` with harmonics up to
`max_harmonic_hz`, at a cost that does not grow with the number of harmonics (the direct
sum took 2.4 s for a batch of 16 x 2 s x 3 copies on 2 CPU cores, this 0.35 s).
"""

from __future__ import annotations

import dataclasses
import itertools
from functools import cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from gensep import dsp

_CHORDS = ((0, 4, 7), (0, 3, 7), (0, 3, 6), (0, 4, 7, 10), (0, 4, 7, 11), (0, 3, 7, 10))
_TABLE_SIZE = 1024  # wavetable points per cycle (linear interpolation: error < -60 dB)
_NOISE_BANDS = 33


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """How synthetic mixtures are drawn. Ranges (low, high) are sampled uniformly.

    voice_ranges_hz: one (lowest, highest) nominal F0 per voice, high voice first.
    note_seconds: chord segment lengths (log-uniform). split_prob: a voice splits a
    segment into two notes. chord_prob: a segment's notes come from one chord (else any
    semitone). cross_prob: a note may lie above the current note of the voice over it.
    spacing_semitones: one scale per voice but the first: the gap below the voice above is
    weighted exp(-gap / scale) (close chords, as in chorales); empty = no such weight.
    unison_weight: the weight of a unison with the voice above (1 = as any other gap).
    rest_prob: a note is a rest. silent_voice_prob: a voice is silent the whole excerpt.
    glide_seconds: portamento between notes. vibrato_*: rate (Hz) and depth (cents, peak).
    intonation_cents: std of each note's offset from equal temperament (a random tuning
    offset of the whole excerpt comes on top). copies / detune_cents: ensemble copies of a
    voice spread evenly over +-detune; solo_prob: only the middle copy sounds.
    lsf_order / lsf_scale: all-pole envelope order and the std of its raw LSF logits
    (larger = peakier formants). noise_db: noise excitation relative to the harmonic one.
    voice_gain_db: per-voice loudness. reverb_prob, rt60_seconds, reverb_wet: room.
    snr_db: white noise floor. max_harmonic_hz: the highest harmonic synthesised.
    """

    sample_rate: int = 16000
    hop: int = 160
    seconds: float = 2.0
    voice_ranges_hz: tuple[tuple[float, float], ...] = (
        (250.0, 900.0),
        (170.0, 620.0),
        (125.0, 460.0),
        (65.0, 330.0),
    )
    note_seconds: tuple[float, float] = (0.12, 1.2)
    split_prob: float = 0.3
    chord_prob: float = 0.7
    cross_prob: float = 0.05
    spacing_semitones: tuple[float, ...] = ()
    unison_weight: float = 1.0
    rest_prob: float = 0.1
    silent_voice_prob: float = 0.05
    glide_seconds: tuple[float, float] = (0.0, 0.08)
    vibrato_prob: float = 0.7
    vibrato_hz: tuple[float, float] = (4.5, 6.5)
    vibrato_cents: tuple[float, float] = (5.0, 50.0)
    intonation_cents: float = 8.0
    copies: int = 3
    detune_cents: tuple[float, float] = (0.0, 25.0)
    solo_prob: float = 0.3
    lsf_order: int = 16
    lsf_scale: tuple[float, float] = (0.3, 1.5)
    noise_db: tuple[float, float] = (-40.0, -15.0)
    voice_gain_db: tuple[float, float] = (-12.0, 0.0)
    reverb_prob: float = 0.5
    rt60_seconds: tuple[float, float] = (0.2, 2.0)
    reverb_wet: tuple[float, float] = (0.1, 0.6)
    snr_db: tuple[float, float] = (20.0, 60.0)
    max_harmonic_hz: float = 7000.0

    def __post_init__(self) -> None:
        from gensep.errors import ConfigError

        # tuples all the way down: the config is a static (hashed) argument of `render`
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list | tuple):
                value = tuple(tuple(v) if isinstance(v, list | tuple) else v for v in value)
                object.__setattr__(self, field.name, value)
        if not self.voice_ranges_hz or any(lo >= hi for lo, hi in self.voice_ranges_hz):
            raise ConfigError(f"synthetic.voice_ranges_hz {self.voice_ranges_hz}: (low, high)")
        if self.spacing_semitones and len(self.spacing_semitones) != self.n_voices - 1:
            raise ConfigError("synthetic.spacing_semitones: one scale per voice but the first")
        if self.copies < 1 or self.n_frames < 2:
            raise ConfigError("synthetic: copies >= 1 and seconds >= 2 frames")

    @property
    def n_voices(self) -> int:
        return len(self.voice_ranges_hz)

    @property
    def n_frames(self) -> int:
        return round(self.seconds * self.sample_rate / self.hop)


def _midi(hz):
    return 69.0 + 12.0 * np.log2(np.asarray(hz, np.float64) / 440.0)


def _score(cfg: SyntheticConfig, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """One row's notes on the frame grid: MIDI pitch [V, T] (held through rests), voiced
    [V, T] and note onsets [V, T]."""
    n_t, fps = cfg.n_frames, cfg.sample_rate / cfg.hop
    lo, hi = np.log(cfg.note_seconds[0]), np.log(cfg.note_seconds[1])
    edges = [-int(rng.uniform(0, np.exp(rng.uniform(lo, hi))) * fps)]
    while edges[-1] < n_t:
        edges.append(edges[-1] + max(1, round(np.exp(rng.uniform(lo, hi)) * fps)))
    chords = [
        (rng.integers(12), _CHORDS[rng.integers(len(_CHORDS))])
        if rng.random() < cfg.chord_prob
        else None
        for _ in edges[:-1]
    ]
    pitch, voiced = np.zeros((cfg.n_voices, n_t)), np.zeros((cfg.n_voices, n_t), bool)
    onsets = np.zeros((cfg.n_voices, n_t), bool)
    for v, (f_lo, f_hi) in enumerate(cfg.voice_ranges_hz):
        semis = np.arange(np.ceil(_midi(f_lo)), np.floor(_midi(f_hi)) + 1)
        previous, held = None, np.full(n_t, np.nan)
        for (start, end), chord in zip(itertools.pairwise(edges), chords, strict=True):
            cuts = [start, end]
            if end - start > 4 and rng.random() < cfg.split_prob:
                cuts.insert(1, int(rng.integers(start + 2, end - 1)))
            for a, b in itertools.pairwise(cuts):
                a_in, b_in = max(a, 0), min(b, n_t)
                if b_in <= a_in:
                    continue
                pool = semis
                if chord is not None:
                    root, intervals = chord
                    tones = semis[np.isin((semis - root) % 12, intervals)]
                    pool = tones if tones.size else semis
                gap = 0.0
                if v > 0 and rng.random() >= cfg.cross_prob:
                    upper = np.min(pitch[v - 1, a_in:b_in])
                    under = pool[pool <= upper]
                    pool = under if under.size else pool[:1]
                    if cfg.spacing_semitones:
                        gap = np.maximum(upper - pool, 0) / cfg.spacing_semitones[v - 1]
                    gap = gap - np.log(np.where(upper - pool < 0.5, cfg.unison_weight, 1.0))
                step = np.zeros(pool.size) if previous is None else np.abs(pool - previous)
                weights = np.exp(-step / 3 - gap)  # small steps are likelier (voice leading)
                previous = rng.choice(pool, p=weights / weights.sum())
                held[a_in:b_in] = previous + rng.normal(0.0, cfg.intonation_cents / 100)
                voiced[v, a_in:b_in] = rng.random() >= cfg.rest_prob
                onsets[v, a_in] = a >= 0
        pitch[v] = held
    return pitch, voiced, onsets


def _smooth_rows(x: np.ndarray, widths: np.ndarray) -> np.ndarray:
    """Moving average of each row of x [R, T] over widths[r] frames (edges held)."""
    out = x.copy()
    for r, w in enumerate(widths):
        if w > 1:
            padded = np.pad(x[r], (w // 2, w - 1 - w // 2), mode="edge")
            out[r] = np.convolve(padded, np.ones(w) / w, mode="valid")
    return out


def _held(values: np.ndarray, onsets: np.ndarray) -> np.ndarray:
    """values [..., T] at each onset, held until the next one (values[..., 0] before the
    first)."""
    index = np.maximum.accumulate(np.where(onsets, np.arange(onsets.shape[-1]), 0), axis=-1)
    return np.take_along_axis(values, index, axis=-1)


def draw_controls(cfg: SyntheticConfig, rng: np.random.Generator, batch: int) -> dict:
    """Random controls of `batch` rows (NumPy). "f0" is the truth, [B, V, T] Hz, 0 = unvoiced;
    the rest feed `render`."""
    b, v, t, c = batch, cfg.n_voices, cfg.n_frames, cfg.copies
    fps = cfg.sample_rate / cfg.hop
    scores = [_score(cfg, rng) for _ in range(b)]
    pitch = np.stack([s[0] for s in scores])  # [B, V, T] MIDI
    voiced = np.stack([s[1] for s in scores])  # [B, V, T]
    onsets = np.stack([s[2] for s in scores])  # [B, V, T]
    voiced &= (rng.random((b, v)) >= cfg.silent_voice_prob)[..., None]
    glide = np.maximum(1, np.round(rng.uniform(*cfg.glide_seconds, b * v) * fps)).astype(int)
    cents = 100 * _smooth_rows(pitch.reshape(b * v, t), glide).reshape(b, v, t)
    cents += rng.uniform(-50, 50, (b, 1, 1))  # the excerpt's tuning
    secs = np.arange(t) / fps
    rate = rng.uniform(*cfg.vibrato_hz, (b, v, 1))
    depth = rng.uniform(*cfg.vibrato_cents, (b, v, 1)) * (rng.random((b, v, 1)) < cfg.vibrato_prob)
    cents += depth * np.sin(2 * np.pi * rate * secs + rng.uniform(0, 2 * np.pi, (b, v, 1)))
    f0 = 440.0 * 2.0 ** ((cents - 6900.0) / 1200.0)  # [B, V, T], MIDI 69 = 440 Hz
    # Ensemble copies: even detune spread, each with its own slow drift (two sines < 1 Hz).
    spread = np.linspace(-1.0, 1.0, c) if c > 1 else np.zeros(1)
    solo = rng.random((b, v, 1)) < cfg.solo_prob
    detune = rng.uniform(*cfg.detune_cents, (b, v, 1)) * spread * ~solo  # [B, V, C]
    drift_rate = rng.uniform(0.1, 1.0, (b, v, c, 2, 1))
    drift = rng.uniform(0, 6, (b, v, c, 2, 1)) * np.sin(
        2 * np.pi * drift_rate * secs + rng.uniform(0, 2 * np.pi, (b, v, c, 2, 1))
    )
    f0_copies = f0[:, :, None] * 2.0 ** ((detune[..., None] + drift.sum(3)) / 1200.0)
    middle = np.arange(c) == c // 2
    copy_gain = np.where(solo | middle, middle, rng.uniform(0.3, 1.0, (b, v, c)))
    # Loudness: each note +-3 dB, a dip at each onset, attack/release smoothing.
    note_db = np.where(onsets, rng.uniform(-3, 3, (b, v, t)), 0.0)
    target = voiced * 10 ** (_held(note_db, onsets) / 20)
    target = np.where(onsets & voiced, target * rng.uniform(0.2, 1.0, (b, v, 1)), target)
    attack = 1 - np.exp(-1 / rng.uniform(1, 8, (b, v)))
    release = 1 - np.exp(-1 / rng.uniform(2, 15, (b, v)))
    env = np.zeros((b, v, t))
    level = np.where(rng.random((b, v)) < 0.5, target[..., 0], 0.0)
    for i in range(t):
        rate_i = np.where(target[..., i] > level, attack, release)
        level = level + rate_i * (target[..., i] - level)
        env[..., i] = level
    return {
        "f0": np.where(voiced, f0, 0.0).astype(np.float32),
        "f0_copies": f0_copies.astype(np.float32),
        "amp_copies": (env[:, :, None] * copy_gain[..., None]).astype(np.float32),
        "timbre": rng.integers(0, 5, (b, v)).astype(np.int32),
        "lsf_raw": (
            rng.normal(size=(b, v, 2, cfg.lsf_order)) * rng.uniform(*cfg.lsf_scale, (b, v, 1, 1))
        ).astype(np.float32),
        "noise_gain": (env * 10 ** (rng.uniform(*cfg.noise_db, (b, v, 1)) / 20)).astype(np.float32),
        "noise_tilt_db": rng.uniform(-30, 0, (b, v)).astype(np.float32),
        "voice_gain": 10 ** (rng.uniform(*cfg.voice_gain_db, (b, v)) / 20).astype(np.float32),
        "rt60": rng.uniform(*cfg.rt60_seconds, b).astype(np.float32),
        "wet": (rng.uniform(*cfg.reverb_wet, b) * (rng.random(b) < cfg.reverb_prob)).astype(
            np.float32
        ),
        "noise_floor": (10 ** (-rng.uniform(*cfg.snr_db, b) / 20)).astype(np.float32),
    }


@cache
def _wavetables(n_harmonics: int) -> np.ndarray:
    """[5, K, size + 1]: table [r, k] is one cycle of harmonics 1..k+1 with roll-off r
    (6, 9, 12 dB/octave; odd-heavy 6 dB/octave; 3 dB/octave); the last point repeats the first."""
    k = np.arange(1, n_harmonics + 1)
    odd = np.where(k % 2, 1.0, 0.15) / k
    amps = np.stack([1 / k, k**-1.5, k**-2.0, odd, k**-0.5])  # [5, K]
    phase = np.arange(_TABLE_SIZE + 1) / _TABLE_SIZE
    sines = np.sin(2 * np.pi * k[:, None] * phase)  # [K, size + 1]
    return np.cumsum(amps[:, :, None] * sines, axis=1).astype(np.float32)


def _excitation(cfg: SyntheticConfig, f0: jnp.ndarray, timbre: jnp.ndarray) -> jnp.ndarray:
    """Band-limited harmonic excitation. f0 [B, V, C, T] Hz, timbre [B, V] -> [B, V, C, N]."""
    lowest = min(lo for lo, _ in cfg.voice_ranges_hz) * 2 ** (-150 / 1200)
    n_harm = int(np.ceil(cfg.max_harmonic_hz / lowest))
    tables = jnp.asarray(_wavetables(n_harm).reshape(-1))
    phase = dsp.harmonic_phases(f0, 1, cfg.sample_rate, cfg.hop)  # [B, V, C, T, hop, 1]
    phase = phase.reshape(*f0.shape[:-1], -1)  # [B, V, C, N] cycles
    hz = dsp.upsample_linear(f0, cfg.hop)
    # Harmonics below max_harmonic_hz in full, the next one faded in as F0 falls.
    top = jnp.clip(cfg.max_harmonic_hz / jnp.maximum(hz, 1.0) - 1.0, 1.0, n_harm) - 1.0
    k0 = jnp.floor(top).astype(jnp.int32)
    k_frac = top - k0
    pos = phase * _TABLE_SIZE
    i0 = jnp.minimum(jnp.floor(pos).astype(jnp.int32), _TABLE_SIZE - 1)
    p_frac = pos - i0
    base = timbre[:, :, None, None] * n_harm  # [B, V, 1, 1]

    def read(k):
        row = (base + k) * (_TABLE_SIZE + 1) + i0
        return tables[row] + p_frac * (tables[row + 1] - tables[row])

    return read(k0) + k_frac * (read(jnp.minimum(k0 + 1, n_harm - 1)) - read(k0))


@partial(jax.jit, static_argnums=0)
def render(cfg: SyntheticConfig, controls: dict, key: jax.Array) -> jnp.ndarray:
    """Mixtures [B, N] (N = n_frames * hop, peak 0.5) from `draw_controls` output."""
    k_noise, k_room, k_floor = jax.random.split(key, 3)
    t = cfg.n_frames
    wave = _excitation(cfg, controls["f0_copies"], controls["timbre"])
    amp = dsp.upsample_linear(controls["amp_copies"], cfg.hop)
    # A dot product, not jnp.sum: XLA fuses the wavetable gathers into a sum's reduction
    # loop and runs it 5x slower (measured).
    harmonic = jnp.einsum("bvcn,c->bvn", wave * amp, jnp.ones(cfg.copies))  # [B, V, N]
    bands = jnp.linspace(0.0, 1.0, _NOISE_BANDS)
    tilt = 10 ** (controls["noise_tilt_db"][..., None] * bands / 20)  # [B, V, bands]
    mags = controls["noise_gain"][..., None] * tilt[:, :, None]  # [B, V, T, bands]
    noise = dsp.filtered_noise(mags, cfg.hop, k_noise)
    ramp = jnp.linspace(0.0, 1.0, t)[:, None]
    raw = controls["lsf_raw"]  # [B, V, 2, P]: the envelope glides from the first to the second
    lsf = dsp.lsf_activation(raw[:, :, :1] + ramp * (raw[:, :, 1:] - raw[:, :, :1]))
    voices = dsp.allpole_filter(harmonic + noise, lsf, jnp.ones(lsf.shape[:-1]), cfg.hop)
    rms = jnp.sqrt(jnp.mean(voices**2, axis=-1, keepdims=True))
    mix = jnp.sum(voices / jnp.maximum(rms, 1e-6) * controls["voice_gain"][..., None], axis=1)
    # Room: exponentially decaying noise, unit energy, mixed in at the row's wet level.
    n_ir = cfg.sample_rate
    decay = jnp.exp(-6.91 * jnp.arange(n_ir) / cfg.sample_rate / controls["rt60"][:, None])
    ir = jax.random.normal(k_room, (mix.shape[0], n_ir)) * decay
    ir = ir / jnp.sqrt(jnp.sum(ir**2, axis=-1, keepdims=True))
    n_fft = int(2 ** np.ceil(np.log2(mix.shape[-1] + n_ir)))
    wet = jnp.fft.irfft(jnp.fft.rfft(mix, n_fft) * jnp.fft.rfft(ir, n_fft), n_fft)
    w = controls["wet"][:, None]
    mix = (1 - w) * mix + w * wet[:, : mix.shape[-1]]
    level = jnp.sqrt(jnp.mean(mix**2, axis=-1, keepdims=True))
    floor = jax.random.normal(k_floor, mix.shape) * level * controls["noise_floor"][:, None]
    mix = mix + floor
    return 0.5 * mix / jnp.maximum(jnp.max(jnp.abs(mix), axis=-1, keepdims=True), 1e-6)


class SyntheticMixtures:
    """Endless training batches {"audio": [B, N] float32, "f0": [B, V, T] Hz, 0 = unvoiced}.

    Batch j depends only on (seed, shard_index, j), so a resumed run (`state_dict` /
    `load_state_dict`, checkpointed by `gensep.training.fit`) draws the same batches.
    """

    def __init__(self, cfg: SyntheticConfig, batch_size: int, seed: int = 0, shard_index: int = 0):
        self.cfg, self.batch_size, self.seed, self.shard_index = cfg, batch_size, seed, shard_index
        self.batches_drawn = 0

    def __iter__(self) -> SyntheticMixtures:
        return self

    def __next__(self) -> dict[str, np.ndarray]:
        rng = np.random.default_rng([self.seed, self.shard_index, self.batches_drawn])
        self.batches_drawn += 1
        return synthetic_batch(self.cfg, rng, self.batch_size)

    def state_dict(self) -> dict:
        return {"seed": self.seed, "batches_drawn": self.batches_drawn}

    def load_state_dict(self, state: dict) -> None:
        if state.get("seed") != self.seed:
            raise ValueError(f"synthetic data state has seed {state.get('seed')}, not {self.seed}")
        self.batches_drawn = int(state["batches_drawn"])


def synthetic_batch(cfg: SyntheticConfig, rng: np.random.Generator, batch: int) -> dict:
    """One batch {"audio": [B, N], "f0": [B, V, T]} drawn with `rng`."""
    controls = draw_controls(cfg, rng, batch)
    key = jax.random.key(int(rng.integers(2**31)))
    inputs = {k: v for k, v in controls.items() if k != "f0"}
    return {"audio": np.asarray(render(cfg, inputs, key)), "f0": controls["f0"]}


__all__ = ["SyntheticConfig", "SyntheticMixtures", "draw_controls", "render", "synthetic_batch"]
