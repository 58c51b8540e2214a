"""gensep.bsseval.bss_eval_v4 against museval.evaluate(mode="v4") called directly.

museval costs ~1 s per source-second of stereo audio, so the signals are short (1-2.5 s);
every case still has several frames. The references are music-like (harmonic tones, band
noise, a white floor 40 dB down) so that the 512-lag filters are well determined: without a
noise floor, steeply low-passed references make museval's own numbers depend on rounding
(see `test_ill_determined_filters_warn`).
"""

import warnings

import numpy as np
import pytest
import scipy.fft
import scipy.signal

from gensep import bsseval
from gensep.bsseval import bss_eval_v4
from gensep.metrics import METRIC_NAMES, bss_eval

TOLERANCE_DB = 0.01


def _museval(refs: np.ndarray, ests: np.ndarray, window: int, hop: int) -> dict[str, np.ndarray]:
    import museval

    sdr, isr, sir, sar = museval.evaluate(refs, ests, win=window, hop=hop, mode="v4", padding=True)
    return {"SDR": sdr, "ISR": isr, "SIR": sir, "SAR": sar}


def _references(rng: np.random.Generator, n_sources: int, seconds: float, channels: int, rate: int):
    """Music-like sources [sources, samples, channels]: a harmonic tone, band-passed noise and
    a white floor 40 dB down; stereo channels differ in gain and by a few samples' delay."""
    n = round(seconds * rate)
    t = np.arange(n) / rate
    out = np.empty((n_sources, n, channels))
    for j in range(n_sources):
        f0 = 110.0 * 2 ** (j * 7 / 12)  # a fifth apart
        tone = sum(np.sin(2 * np.pi * k * f0 * t + rng.uniform(0, 6)) / k for k in range(1, 6))
        band = scipy.signal.lfilter(
            scipy.signal.firwin(65, [0.05 + 0.1 * j, 0.15 + 0.1 * j]), 1.0, rng.standard_normal(n)
        )
        mono = tone * (1 + 0.5 * np.sin(2 * np.pi * 0.7 * t)) + 2 * band
        for c in range(channels):
            out[j, :, c] = rng.uniform(0.5, 1.0) * np.roll(
                mono, 3 * c
            ) + 0.01 * rng.standard_normal(n)
    return out


def _estimates(rng: np.random.Generator, refs: np.ndarray, kind: str) -> np.ndarray:
    """Estimates [sources, samples, channels] of the kind a separator makes."""
    noise = rng.standard_normal(refs.shape)
    leak = np.roll(refs, 1, axis=0)  # the next source leaks in
    if kind == "leaky":
        return refs + 0.3 * leak + 0.05 * noise
    if kind == "scaled":
        return 0.4 * refs - 0.1 * leak + 0.02 * noise
    if kind == "filtered":
        smeared = scipy.signal.lfilter([0.6, 0.3, -0.1, 0.05], 1.0, refs, axis=1)
        return smeared + 0.2 * leak + 0.05 * noise
    if kind == "noisy":
        return refs + 0.5 * noise
    raise ValueError(kind)


def _assert_matches_museval(ours: dict, theirs: dict) -> float:
    worst = 0.0
    for name in METRIC_NAMES:
        ref = np.asarray(theirs[name])
        assert ours[name].shape == ref.shape, name
        np.testing.assert_array_equal(np.isnan(ours[name]), np.isnan(ref), err_msg=name)
        np.testing.assert_array_equal(np.isinf(ours[name]), np.isinf(ref), err_msg=name)
        finite = np.isfinite(ref)
        if finite.any():
            worst = max(worst, float(np.max(np.abs(ours[name][finite] - ref[finite]))))
    assert worst <= TOLERANCE_DB
    return worst


CASES = {
    # id: (sources, channels, rate, seconds, window s, hop s, estimate kind)
    "mono-16k-3src-partial-window": (3, 1, 16000, 2.7, 1.0, 1.0, "filtered"),
    "stereo-44k-2src-overlapping": (2, 2, 44100, 1.2, 0.5, 0.25, "scaled"),
    "stereo-16k-4src": (4, 2, 16000, 2.0, 0.5, 0.5, "leaky"),
    "mono-44k-2src-window-over-length": (2, 1, 44100, 1.1, 2.0, 2.0, "noisy"),
    "stereo-44k-3src-hop-over-window": (3, 2, 44100, 1.0, 0.25, 0.3, "filtered"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_matches_museval(case):
    n_sources, channels, rate, seconds, window_s, hop_s, kind = CASES[case]
    rng = np.random.default_rng(sum(map(ord, case)))
    refs = _references(rng, n_sources, seconds, channels, rate)
    ests = _estimates(rng, refs, kind)
    window, hop = round(window_s * rate), round(hop_s * rate)
    ours = bss_eval_v4(refs, ests, window, hop)
    theirs = _museval(refs, ests, window, hop)
    _assert_matches_museval(ours, theirs)
    # museval's framing: full windows only (a trailing partial one is dropped), or one frame
    # over everything when the window is longer than the signal.
    n = refs.shape[1]
    expected_frames = (n - window) // hop + 1 if window < n else 1
    assert ours["SDR"].shape == (n_sources, expected_frames)


def test_silent_frames_are_nan_where_museval_says():
    rate, window = 16000, 4000
    rng = np.random.default_rng(7)
    refs = _references(rng, 3, 2.0, 2, rate)
    ests = _estimates(rng, refs, "leaky")
    refs[0, 4000:8000] = 0.0  # frame 1: a reference silent on both channels
    refs[1, 12000:16000, 1] = 0.0  # frame 3: one channel silent only, still scored
    ests[2, 20000:24000, 1] = -ests[2, 20000:24000, 0]  # frame 5: channels cancel exactly
    ests[1, 26000:27000] = 0.0  # frame 6: a partly silent estimate, still scored
    ours = bss_eval_v4(refs, ests, window, window)
    _assert_matches_museval(ours, _museval(refs, ests, window, window))
    nan_frames = [1, 5]
    for name in METRIC_NAMES:
        expected = np.zeros(ours[name].shape, dtype=bool)
        expected[:, nan_frames] = True  # every source, not only the silent one
        np.testing.assert_array_equal(np.isnan(ours[name]), expected)


@pytest.mark.parametrize("degeneracy", ["dual-mono", "silent-channel"])
def test_exact_degeneracies_match_without_warning(degeneracy):
    """Singular but structured Gram matrices: museval and ours still agree to ~1e-13 dB."""
    rate = 8000
    rng = np.random.default_rng(3)
    refs = _references(rng, 2, 2.0, 2, rate)
    if degeneracy == "dual-mono":
        refs[0, :, 1] = refs[0, :, 0]
    else:
        refs[0, :, 1] = 0.0
    ests = _estimates(rng, refs, "leaky")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = bss_eval_v4(refs, ests, rate, rate)
    _assert_matches_museval(ours, _museval(refs, ests, rate, rate))


def test_ill_determined_filters_warn(rng):
    # A 4th-order Butterworth low-pass has a spectral zero at Nyquist: the delayed copies of
    # the reference's two channels are nearly dependent and the filters are decided by
    # rounding (museval's results then change by up to dB with its BLAS thread count).
    refs = rng.standard_normal((2, 8000, 2))
    refs[0] = scipy.signal.lfilter(*scipy.signal.butter(4, 0.1), refs[0], axis=0)
    ests = refs + 0.1 * rng.standard_normal(refs.shape)
    with pytest.warns(RuntimeWarning, match="ill-determined"):
        bss_eval_v4(refs, ests, 4000, 4000)


def test_bss_eval_scorers_agree_and_museval_scorer_is_museval():
    rate = 8000
    rng = np.random.default_rng(11)
    refs = _references(rng, 2, 2.0, 2, rate)  # [sources, samples, channels]
    ests = _estimates(rng, refs, "filtered")
    as_gensep = {"references": refs.swapaxes(1, 2), "estimates": ests.swapaxes(1, 2)}
    via_museval = bss_eval(**as_gensep, sample_rate=rate, scorer="museval")
    direct = _museval(refs, ests, rate, rate)
    for name in METRIC_NAMES:
        np.testing.assert_array_equal(via_museval[name], direct[name])
    _assert_matches_museval(bss_eval(**as_gensep, sample_rate=rate), direct)  # "fast"


def test_bss_eval_unknown_scorer_names_both():
    refs = np.random.default_rng(0).standard_normal((2, 1, 800))
    with pytest.raises(ValueError, match=r"unknown scorer 'mir_eval'.*\['fast', 'museval'\]"):
        bss_eval(refs, refs, 400, scorer="mir_eval")


def test_shape_mismatch_names_the_fix():
    refs = np.zeros((2, 100, 1))
    with pytest.raises(ValueError, match="pad or trim the estimates"):
        bss_eval_v4(refs, refs[:, :50], 50, 50)


def test_lagged_correlations_equal_direct_sums(monkeypatch, rng):
    # Small blocks, so that there are several batches and the last one is only partly used.
    monkeypatch.setattr(bsseval, "_CORRELATION_FFT", 256)
    monkeypatch.setattr(bsseval, "_BLOCKS_PER_BATCH", 3)
    taps, n = 16, 1000  # blocks of 256 - 30 samples: 5 blocks, batches of 3 + 2 (+ 1 empty)
    x, y = rng.standard_normal((2, n)), rng.standard_normal((3, n))
    got = bsseval._lagged_correlations(x, y, taps)
    for lag in range(-(taps - 1), taps):
        lo, hi = max(0, -lag), min(n, n - lag)  # n such that 0 <= n + lag < samples
        expected = x[:, lo:hi] @ y[:, lo + lag : hi + lag].T  # sum_n x[a, n] y[b, n + lag]
        np.testing.assert_allclose(got[:, :, lag + taps - 1], expected, rtol=1e-10, atol=1e-10)


def test_batching_does_not_change_scores(monkeypatch):
    rng = np.random.default_rng(5)
    refs = _references(rng, 3, 1.0, 2, 8000)
    ests = _estimates(rng, refs, "leaky")
    default = bss_eval_v4(refs, ests, 1000, 1000)  # all 8 frames in one batch
    n_bins = scipy.fft.next_fast_len(1000 + 511, real=True) // 2 + 1
    monkeypatch.setattr(bsseval, "_SPECTRUM_BUDGET", 3 * 6 * n_bins)  # 3 + 3 + 2 frames
    monkeypatch.setattr(bsseval, "_CORRELATION_FFT", 2048)  # 8 blocks: batches of 3
    monkeypatch.setattr(bsseval, "_BLOCKS_PER_BATCH", 3)
    batched = bss_eval_v4(refs, ests, 1000, 1000)
    for name in METRIC_NAMES:
        np.testing.assert_allclose(batched[name], default[name], rtol=0, atol=1e-9)
