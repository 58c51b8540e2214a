"""Moving F0 tracks between time grids (10 ms files, model frames, Bach10's 23 ms + 10 ms k)."""

from __future__ import annotations

import jax.numpy as jnp


def f0_to_frames(times: jnp.ndarray, hz: jnp.ndarray, frame_times: jnp.ndarray) -> jnp.ndarray:
    """Resample an F0 track to new frame times, keeping unvoiced frames unvoiced.

    Between two voiced samples the F0 is interpolated linearly in log-frequency (cents);
    if either neighbour is unvoiced (0 Hz) the nearer one is taken, so voicing boundaries
    move by at most half a source step. Times before the first or after the last sample
    by more than half the first/last step are unvoiced.

    Args:
      times: Sample times (s), strictly increasing. Shape [n].
      hz: F0 (Hz), 0 = unvoiced. Shape [..., n].
      frame_times: Target times (s). Shape [m].

    Returns:
      F0 (Hz) at `frame_times`, 0 = unvoiced. Shape [..., m].
    """
    times = jnp.asarray(times, jnp.float32)
    hz = jnp.asarray(hz, jnp.float32)
    frame_times = jnp.asarray(frame_times, jnp.float32)
    n = times.shape[0]
    if n == 1:
        return jnp.broadcast_to(hz[..., :1], (*hz.shape[:-1], frame_times.shape[0]))
    right = jnp.clip(jnp.searchsorted(times, frame_times, side="right"), 1, n - 1)
    left = right - 1
    t_left, t_right = times[left], times[right]
    frac = jnp.clip((frame_times - t_left) / (t_right - t_left), 0.0, 1.0)
    f_left, f_right = hz[..., left], hz[..., right]
    voiced_both = (f_left > 0) & (f_right > 0)
    log_left = jnp.log2(jnp.where(f_left > 0, f_left, 1.0))
    log_right = jnp.log2(jnp.where(f_right > 0, f_right, 1.0))
    smooth = jnp.exp2(log_left + frac * (log_right - log_left))
    nearest = jnp.where(frac < 0.5, f_left, f_right)
    out = jnp.where(voiced_both, smooth, nearest)
    first_step = times[1] - times[0]
    last_step = times[-1] - times[-2]
    inside = (frame_times >= times[0] - first_step / 2) & (frame_times <= times[-1] + last_step / 2)
    return jnp.where(inside, out, 0.0)
