"""f0_to_frames against closed-form glides and explicit voicing boundaries."""

import numpy as np
import pytest

from gensep.dsp import f0_to_frames


def test_same_grid_is_identity():
    times = np.arange(100) * 0.01
    hz = np.where(np.arange(100) % 17 < 12, 200 + np.arange(100), 0.0)
    np.testing.assert_allclose(np.asarray(f0_to_frames(times, hz, times)), hz, rtol=1e-6)


def test_log_glide_resampled_exactly():
    # An exponential glide is linear in log-frequency, so interpolation reproduces it.
    times = 0.023 + 0.01 * np.arange(300)  # the Bach10 grid
    glide = lambda t: 110.0 * 2 ** (t / 2.0)  # noqa: E731 - one octave per 2 s
    frame_times = np.arange(180) * 256 / 16000  # 16 ms model frames
    inside = (frame_times >= times[0]) & (frame_times <= times[-1])
    out = np.asarray(f0_to_frames(times, glide(times), frame_times))
    np.testing.assert_allclose(out[inside], glide(frame_times[inside]), rtol=1e-5)


def test_unvoiced_stays_unvoiced_and_edges():
    times = np.arange(10) * 0.01
    hz = np.array([0, 0, 100, 100, 100, 0, 0, 200, 200, 0], float)
    frame_times = np.array([-0.02, 0.0, 0.014, 0.016, 0.035, 0.046, 0.054, 0.07, 0.098, 0.2])
    out = np.asarray(f0_to_frames(times, hz, frame_times))
    expected = [0, 0, 0, 100, 100, 0, 0, 200, 0, 0]  # 0.046 s is nearer 0.05 s (unvoiced)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "batch", [pytest.param((4,), id="4-voices"), pytest.param((2, 3), id="2x3")]
)
def test_batched_equals_loop(batch):
    rng = np.random.default_rng(0)
    times = np.arange(50) * 0.01
    hz = rng.uniform(80, 800, (*batch, 50)) * (rng.uniform(size=(*batch, 50)) > 0.2)
    frame_times = np.linspace(0, 0.5, 33)
    out = np.asarray(f0_to_frames(times, hz, frame_times))
    flat = hz.reshape(-1, 50)
    loop = np.stack([np.asarray(f0_to_frames(times, row, frame_times)) for row in flat])
    np.testing.assert_allclose(out.reshape(-1, 33), loop)
