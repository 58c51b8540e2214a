"""Three synthetic "instruments" with very different spectrograms, for the prior tests:
tone (low harmonic notes: horizontal lines below 1.3 kHz), hiss (noise high-passed above
2 kHz: a band at the top), click (decaying broadband clicks: vertical lines)."""

import numpy as np

from gensep.data.layout import write_track
from gensep.data.track import Track

RATE = 8000


def instrument(name: str, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = round(seconds * RATE)
    t = np.arange(n) / RATE
    if name == "tone":
        out = np.zeros(n)
        note = RATE // 2
        for start in range(0, n, note):
            f0 = rng.uniform(150, 260)
            tt = t[start : start + note] - t[start]
            env = np.minimum(1, tt / 0.02) * np.exp(-tt * 2)
            out[start : start + note] = env * sum(
                np.sin(2 * np.pi * k * f0 * tt) / k for k in range(1, 6)
            )
        return 0.25 * out
    if name == "hiss":
        spec = np.fft.rfft(rng.standard_normal(n))
        spec[np.fft.rfftfreq(n, 1 / RATE) < 2000] = 0
        env = 0.6 + 0.4 * np.sin(2 * np.pi * rng.uniform(0.5, 2) * t)
        return 0.15 * env * np.fft.irfft(spec, n)
    if name == "click":
        out = np.zeros(n)
        for start in range(rng.integers(0, 800), n, RATE // 4):
            tt = t[: n - start]
            out[start:] += rng.uniform(0.5, 1) * np.exp(-tt / 0.01) * rng.standard_normal(len(tt))
        return 0.2 * out
    raise ValueError(name)


def write_dataset(root, n_tracks: int = 3, seconds: float = 4.0, seed: int = 0) -> None:
    """`n_tracks` train tracks, each with all three stems (tone, hiss, click)."""
    for i in range(n_tracks):
        sources = {
            name: instrument(name, seconds, seed + 10 * i + k)[None].astype(np.float32)
            for k, name in enumerate(("tone", "hiss", "click"))
        }
        track = Track(f"t{i}", RATE, sum(sources.values()), sources)
        write_track(root, "train", track)
