"""Pure JAX signal processing: jit-, grad- and vmap-safe, batched over leading axes.

Time-frequency arrays are time-major ([..., frames, bins]); F0 is [..., frames] in Hz
with 0 = unvoiced. No function here holds Flax state.
"""

from gensep.dsp.framing import frame, overlap_add
from gensep.dsp.lpc import (
    allpole_filter,
    allpole_response,
    lpc_to_lsf,
    lsf_activation,
    lsf_frequency_response,
    lsf_to_lpc,
)
from gensep.dsp.masks import apply_masks, ratio_masks, sum_over
from gensep.dsp.spectral import istft, log_magnitude, magnitude, multi_resolution_stft_loss, stft
from gensep.dsp.spectral_synth import (
    envelope_magnitudes,
    harmonic_magnitudes,
    multi_resolution_magnitudes,
    noise_magnitudes,
    source_filter_magnitudes,
)
from gensep.dsp.synth import (
    filtered_noise,
    fir_filter_frames,
    glottal_rolloff,
    harmonic_phases,
    harmonic_synth,
    noise_impulse_response,
    source_filter_synth,
    upsample_linear,
)
from gensep.dsp.timegrid import f0_to_frames

__all__ = [
    "allpole_filter",
    "allpole_response",
    "apply_masks",
    "envelope_magnitudes",
    "f0_to_frames",
    "filtered_noise",
    "fir_filter_frames",
    "frame",
    "glottal_rolloff",
    "harmonic_magnitudes",
    "harmonic_phases",
    "harmonic_synth",
    "istft",
    "log_magnitude",
    "lpc_to_lsf",
    "lsf_activation",
    "lsf_frequency_response",
    "lsf_to_lpc",
    "magnitude",
    "multi_resolution_magnitudes",
    "multi_resolution_stft_loss",
    "noise_impulse_response",
    "noise_magnitudes",
    "overlap_add",
    "ratio_masks",
    "source_filter_magnitudes",
    "source_filter_synth",
    "stft",
    "sum_over",
    "upsample_linear",
]
