"""SI-SDR against closed-form values; bss_eval against museval.evaluate called directly."""

import warnings

import numpy as np
import pytest

from gensep.errors import AudioError
from gensep.metrics import (
    bss_eval,
    framewise_si_sdr,
    si_sdr,
    si_sdr_multichannel,
    sources_from_museval,
    sources_to_museval,
)

N = 64  # samples of the closed-form signals: sines at bins 3 and 5 are exactly orthogonal
_t = np.arange(N)
SINE3 = np.sin(2 * np.pi * 3 * _t / N)  # energy N / 2, zero mean
SINE5 = np.sin(2 * np.pi * 5 * _t / N)  # energy N / 2, zero mean, orthogonal to SINE3


# ---------------------------------------------------------------- si_sdr


@pytest.mark.parametrize(
    "zero_mean", [pytest.param(True, id="le-roux"), pytest.param(False, id="umss")]
)
@pytest.mark.parametrize(
    "ratio",
    [pytest.param(1.0, id="0dB"), pytest.param(10.0, id="10dB"), pytest.param(0.01, id="-20dB")],
)
def test_orthogonal_noise_gives_energy_ratio(ratio, zero_mean):
    # Both signals have equal energy, so scaling the noise by 1/sqrt(ratio) sets ||s||²/||n||².
    estimate = SINE3 + SINE5 / np.sqrt(ratio)
    got = si_sdr(estimate, SINE3, zero_mean=zero_mean, eps=0.0)
    assert got == pytest.approx(10 * np.log10(ratio), abs=1e-10)


@pytest.mark.parametrize(
    "scale",
    [
        pytest.param(0.01, id="quiet"),
        pytest.param(3.0, id="loud"),
        pytest.param(-2.0, id="flipped"),
    ],
)
def test_scale_invariance(rng, scale):
    reference = rng.standard_normal(500)
    estimate = reference + 0.5 * rng.standard_normal(500)
    base = si_sdr(estimate, reference)
    assert si_sdr(scale * estimate, reference) == pytest.approx(base, abs=1e-9)
    assert si_sdr(estimate, scale * reference) == pytest.approx(base, abs=1e-9)


def test_constant_offset_separates_the_two_definitions():
    # reference s = SINE3, noise n = SINE5 / 2, offset c: s, n and the constant are mutually
    # orthogonal, so alpha = 1 either way. Le Roux removes c: ratio ||s||²/||n||² = 4.
    # UMSS keeps c as noise: ratio (N/2) / (N/8 + c² N) = 4 / (1 + 8 c²).
    c = 0.25
    estimate = SINE3 + SINE5 / 2 + c
    assert si_sdr(estimate, SINE3, zero_mean=True, eps=0.0) == pytest.approx(10 * np.log10(4))
    expected_umss = 10 * np.log10(4 / (1 + 8 * c**2))
    assert si_sdr(estimate, SINE3, zero_mean=False, eps=0.0) == pytest.approx(expected_umss)


def test_batched_equals_loop(rng):
    reference = rng.standard_normal((3, 2, 300))
    estimate = reference + rng.standard_normal((3, 2, 300))
    batched = si_sdr(estimate, reference)
    assert batched.shape == (3, 2)
    for index in np.ndindex(3, 2):
        assert batched[index] == pytest.approx(si_sdr(estimate[index], reference[index]))


def test_zero_reference_is_nan_without_warnings(rng):
    reference = rng.standard_normal((4, 100))
    reference[1] = 0.0
    reference[2] = 0.1  # constant: ~1e-31 rounding residue after mean removal, not 0
    reference[3] = 5.0  # constant: exactly zero energy once the mean is removed
    estimate = rng.standard_normal((4, 100))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        got = si_sdr(estimate, reference, zero_mean=True)
    np.testing.assert_array_equal(np.isnan(got), [False, True, True, True])


def test_eps_bounds_perfect_and_silent_estimates():
    assert si_sdr(SINE3, SINE3, eps=0.0) == np.inf
    assert si_sdr(SINE3, SINE3) == pytest.approx(10 * np.log10(N / 2 / 1e-12))
    assert si_sdr(np.zeros(N), SINE3) == pytest.approx(-120.0)


def test_si_sdr_shape_mismatch_raises():
    with pytest.raises(AudioError, match=r"estimate shape \(3,\) != reference shape \(4,\)"):
        si_sdr(np.ones(3), np.ones(4))


def test_multichannel_flattens_channels_and_removes_each_channel_mean(rng):
    reference = rng.standard_normal((2, 200))
    estimate = reference + 0.3 * rng.standard_normal((2, 200))
    np.testing.assert_allclose(
        si_sdr_multichannel(estimate, reference, zero_mean=False),
        si_sdr(estimate.ravel(), reference.ravel(), zero_mean=False),
    )
    offsets = np.array([[1.0], [-3.0]])  # a different DC offset per channel costs nothing
    np.testing.assert_allclose(
        si_sdr_multichannel(estimate + offsets, reference, zero_mean=True),
        si_sdr_multichannel(estimate, reference, zero_mean=True),
    )


# ---------------------------------------------------------------- framewise_si_sdr


@pytest.mark.parametrize(
    ("n_samples", "frame_seconds", "n_frames"),
    [
        pytest.param(350, 1.0, 3, id="partial-frame-dropped"),
        pytest.param(400, 1.0, 4, id="exact"),
        pytest.param(350, 0.5, 7, id="half-second"),
    ],
)
def test_framewise_frame_count(rng, n_samples, frame_seconds, n_frames):
    refs = rng.standard_normal((2, 2, n_samples))
    ests = refs + rng.standard_normal(refs.shape)
    got = framewise_si_sdr(ests, refs, 100, frame_seconds=frame_seconds)
    assert got.shape == (2, n_frames)


@pytest.mark.parametrize(
    "zero_mean", [pytest.param(True, id="le-roux"), pytest.param(False, id="umss")]
)
def test_framewise_equals_si_sdr_on_each_slice(rng, zero_mean):
    rate, frame = 100, 100
    refs = rng.standard_normal((3, 2, 450)) + 0.2
    ests = refs + 0.5 * rng.standard_normal(refs.shape)
    got = framewise_si_sdr(ests, refs, rate, zero_mean=zero_mean)
    for j in range(3):
        for t in range(4):
            est = ests[j, :, t * frame : (t + 1) * frame]
            ref = refs[j, :, t * frame : (t + 1) * frame]
            if zero_mean:  # per channel, as documented
                est = est - est.mean(axis=1, keepdims=True)
                ref = ref - ref.mean(axis=1, keepdims=True)
            assert got[j, t] == pytest.approx(si_sdr(est.ravel(), ref.ravel(), zero_mean=False))


def test_framewise_silent_and_quiet_frames_are_nan(rng):
    refs = rng.standard_normal((2, 1, 400))
    refs[0, :, 100:200] = 0.0  # silent frame 1 of source 0
    refs[1, :, 300:400] *= 1e-3  # quiet frame 3 of source 1: energy ~1e-4
    ests = refs + 0.1 * rng.standard_normal(refs.shape)
    got = framewise_si_sdr(ests, refs, 100)
    np.testing.assert_array_equal(np.isnan(got), [[0, 1, 0, 0], [0, 0, 0, 0]])
    got = framewise_si_sdr(ests, refs, 100, min_reference_energy=1e-2)
    np.testing.assert_array_equal(np.isnan(got), [[0, 1, 0, 0], [0, 0, 0, 1]])


def test_framewise_mono_and_too_short():
    refs = np.stack([SINE3, SINE5])  # [sources, samples]
    assert framewise_si_sdr(refs, refs, 32).shape == (2, 2)
    with pytest.raises(AudioError, match="shorter than one frame of 128 samples"):
        framewise_si_sdr(refs, refs, 32, frame_seconds=4.0)


# ---------------------------------------------------------------- bss_eval

RATE = 8000  # museval costs ~1 s per source-second of audio: keep signals short


def _mixture_like(rng, n_sources, n_channels, seconds=3):
    """References and estimates with leakage and noise, so SDR/SIR/SAR are all finite."""
    refs = rng.standard_normal((n_sources, n_channels, seconds * RATE))
    ests = refs + 0.2 * np.roll(refs, 1, axis=0) + 0.1 * rng.standard_normal(refs.shape)
    return refs, ests


def _museval_direct(refs, ests, win):
    import museval

    sdr, isr, sir, sar = museval.evaluate(
        refs.swapaxes(1, 2), ests.swapaxes(1, 2), win=win, hop=win, mode="v4", padding=True
    )
    return {"SDR": sdr, "ISR": isr, "SIR": sir, "SAR": sar}


@pytest.mark.parametrize(
    ("n_sources", "n_channels"),
    [pytest.param(2, 2, id="2src-stereo"), pytest.param(3, 2, id="3src-stereo")],
)
def test_bss_eval_equals_museval(rng, n_sources, n_channels):
    refs, ests = _mixture_like(rng, n_sources, n_channels)
    ours = bss_eval(refs, ests, RATE)
    theirs = _museval_direct(refs, ests, win=RATE)
    assert set(ours) == {"SDR", "SIR", "SAR", "ISR"}
    for name, value in ours.items():
        assert value.dtype == np.float64
        assert value.shape == (n_sources, 3)  # 3 one-second frames, not museval's 44100 default
        np.testing.assert_allclose(value, theirs[name], equal_nan=True)


def test_bss_eval_mono_and_silent_frame_trap(rng):
    refs, ests = _mixture_like(rng, 2, 1)
    refs[0, :, RATE : 2 * RATE] = 0.0  # one source silent in frame 1 ...
    ours = bss_eval(refs[:, 0], ests[:, 0], RATE)  # [sources, samples] is mono
    theirs = _museval_direct(refs, ests, win=RATE)
    for name, value in ours.items():
        np.testing.assert_allclose(value, theirs[name], equal_nan=True)
        # ... makes frame 1 NaN for every source, as the docstring warns
        np.testing.assert_array_equal(np.isnan(value), [[False, True, False]] * 2)


def _bad_inputs(case):
    rng = np.random.default_rng(0)
    refs = rng.standard_normal((2, 2, 800))
    ests = refs.copy()
    if case == "shape":
        ests = ests[:, :, :700]
    elif case == "one-source":
        refs, ests = refs[:1], ests[:1]
    elif case == "zero-estimate":
        ests[1] = 0.0
    elif case == "cancelling-channels":
        ests[0, 1] = -ests[0, 0]
    elif case == "nan":
        ests[1, 0, 5] = np.nan
    elif case == "zero-reference":
        refs[0] = 0.0
    return refs, ests


@pytest.mark.parametrize(
    ("case", "message"),
    [
        pytest.param(
            "shape", r"estimates shape \(2, 2, 700\) != references shape \(2, 2, 800\)", id="shape"
        ),
        pytest.param("one-source", "needs at least 2", id="one-source"),
        pytest.param("zero-estimate", r"estimates\[1\] is all zero", id="zero-estimate"),
        pytest.param("cancelling-channels", r"estimates\[0\] is all zero", id="cancelling"),
        pytest.param("nan", r"estimates\[1\] contains NaN", id="nan"),
        pytest.param("zero-reference", r"references\[0\] is all zero", id="zero-reference"),
    ],
)
def test_bss_eval_rejects_bad_inputs(case, message):
    refs, ests = _bad_inputs(case)
    with pytest.raises(ValueError, match=message):
        bss_eval(refs, ests, 400)


def test_bss_eval_rejects_zero_length_window():
    refs = np.random.default_rng(0).standard_normal((2, 1, 100))
    with pytest.raises(AudioError, match=r"window_seconds=0\.0001 at 400 Hz is 0 samples"):
        bss_eval(refs, refs, 400, window_seconds=1e-4)


# ---------------------------------------------------------------- museval layout helpers


def test_sources_to_and_from_museval_round_trip(rng):
    sources = {"vocals": rng.standard_normal((2, 50)), "bass": rng.standard_normal((2, 50))}
    musdb = sources_to_museval(sources)
    assert list(musdb) == ["vocals", "bass"]
    assert musdb["vocals"].shape == (50, 2)
    np.testing.assert_array_equal(musdb["bass"], sources["bass"].T)
    back = sources_from_museval(musdb)
    for name in sources:
        np.testing.assert_array_equal(back[name], sources[name])


def test_sources_to_museval_rejects_1d():
    with pytest.raises(
        AudioError, match=r"source 'vocals': shape \(50,\) is not \[channels, samples\]"
    ):
        sources_to_museval({"vocals": np.zeros(50)})
