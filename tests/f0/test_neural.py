"""Neural multi-F0: synthetic training data, the network, train/f0.py, export and inference."""

import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import librosa
import mir_eval
import numpy as np
import pytest
import yaml
from flax import nnx

from gensep.errors import CheckpointError, GensepError
from gensep.f0 import neural
from gensep.f0.neural import load_f0_model, neural_f0
from gensep.f0.synthetic import SyntheticConfig, draw_controls, render, synthetic_batch
from gensep.models import f0net
from gensep.models.f0net import F0Net, F0NetConfig, f0_loss, ordered_bins
from gensep.models.store import load_params

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))
import f0 as train_f0

# Two voices, semitone bins, three harmonics: seconds to train on 2 CPU cores.
TINY = dict(
    n_fft=1024, fmin_hz=80.0, bins_per_octave=12, n_bins=40, harmonics=[1.0, 2.0, 3.0],
    n_voices=2, channels=8, squeeze=2, hidden=32,
)  # fmt: skip
SYNTH = dict(seconds=1.0, voice_ranges_hz=[[250.0, 500.0], [100.0, 240.0]], copies=1)


def tiny_model(seed=0, **overrides):
    return F0Net(F0NetConfig(**{**TINY, **overrides}), rngs=nnx.Rngs(seed))


def test_forward_and_loss_shapes():
    model = tiny_model()
    audio = jax.random.normal(jax.random.key(0), (3, 8000))
    graphdef, state = nnx.split(model)
    forward = lambda s, a: nnx.merge(graphdef, s)(f0net.features(model.config, a))  # noqa: E731
    logits, voicing = jax.eval_shape(forward, state, audio)
    assert logits.shape == (3, 1 + 8000 // 160, 2, 40)
    assert voicing.shape == (3, 51, 2)
    f0 = jnp.where(jnp.arange(50) < 25, 200.0, 0.0) * jnp.ones((3, 2, 50))
    loss_fn = lambda s, b: f0_loss(nnx.merge(graphdef, s), b)  # noqa: E731
    loss, metrics = jax.eval_shape(loss_fn, state, {"audio": audio, "f0": f0})
    assert loss.shape == () and set(metrics) >= {"pitch_ce", "voicing_bce", "pitch_acc"}


def test_ordered_bins_is_the_best_ordered_choice():
    probs = np.asarray(jax.nn.softmax(jax.random.normal(jax.random.key(1), (6, 3, 10)) * 3))
    got = np.asarray(ordered_bins(jnp.asarray(probs), 2))
    for row, picks in zip(probs, got, strict=True):
        choices = [
            (np.log(row[0, a]) + np.log(row[1, b]) + np.log(row[2, c]), (a, b, c))
            for a in range(10)
            for b in range(a - 1)  # a - b >= 2
            for c in range(b - 1)
        ]
        assert tuple(picks) == max(choices)[1]


def test_synthetic_voice_has_the_f0_it_claims():
    cfg = SyntheticConfig(**{**SYNTH, "voice_ranges_hz": [[150.0, 400.0]], "reverb_prob": 0.0})
    controls = draw_controls(cfg, np.random.default_rng(3), 2)
    controls["timbre"][:] = 0  # a sawtooth-like source: no odd-harmonic octave ambiguity
    inputs = {k: v for k, v in controls.items() if k != "f0"}
    audio = np.asarray(render(cfg, inputs, jax.random.key(0)))
    truth = controls["f0"][:, 0]  # [B, T]
    assert audio.shape == (2, cfg.n_frames * cfg.hop) and (truth > 0).mean() > 0.5
    for row in range(2):
        found, _, _ = librosa.pyin(
            audio[row], fmin=100, fmax=500, sr=16000, frame_length=1024, hop_length=cfg.hop
        )
        found = found[: cfg.n_frames]
        # frames within 60 ms of a voicing change are onsets/releases, judged by neither
        steady = np.convolve(np.abs(np.diff(truth[row] > 0, prepend=0)), np.ones(13), "same") == 0
        both = steady & (truth[row] > 0) & np.isfinite(found)
        cents = 1200 * np.abs(np.log2(found[both] / truth[row][both]))
        assert both.mean() > 0.3 and np.median(cents) < 15 and np.mean(cents < 50) > 0.9


def test_synthetic_batches_are_seeded_and_ordered():
    cfg = SyntheticConfig(**SYNTH)
    a = synthetic_batch(cfg, np.random.default_rng(0), 4)
    b = synthetic_batch(cfg, np.random.default_rng(0), 4)
    np.testing.assert_array_equal(a["audio"], b["audio"])
    f0 = a["f0"]
    assert f0.shape == (4, 2, 100) and np.all(np.isfinite(a["audio"]))
    both = (f0[:, 0] > 0) & (f0[:, 1] > 0)
    assert np.mean(f0[:, 0][both] >= f0[:, 1][both]) > 0.9  # high voice first


def test_missing_model_and_wrong_voice_count(tmp_path, monkeypatch):
    audio = np.zeros(16000, np.float32)
    with pytest.raises(CheckpointError, match="no such model file"):
        neural_f0(audio, 16000, model=tmp_path / "nothing")
    monkeypatch.setattr(neural, "default_f0_model_path", lambda: tmp_path / "f0_choir")
    with pytest.raises(CheckpointError, match=r"train/f0\.py"):
        neural_f0(audio, 16000)
    with pytest.raises(GensepError, match="estimates 2 voices, 4 were asked"):
        neural_f0(audio, 16000, model=tiny_model(), n_voices=4)


def rpa(truth: np.ndarray, tracks, hop_s=0.01) -> float:
    """Mean mir_eval raw pitch accuracy over voices; truth [V, T] on frames t * hop_s."""
    times = np.arange(truth.shape[-1]) * hop_s
    scores = []
    for ref, (est_t, est_hz) in zip(truth, tracks, strict=True):
        v = mir_eval.melody.to_cent_voicing(times, ref.astype(float), est_t, est_hz)
        scores.append(mir_eval.melody.raw_pitch_accuracy(*v))
    return float(np.mean(scores))


def test_short_training_learns_then_exports(tmp_path):
    body = {
        "model": TINY,
        "synthetic": SYNTH,
        "train": dict(steps=150, batch_size=8, learning_rate=3e-3, warmup_steps=20,
                      log_every=25, checkpoint_every=150),
    }  # fmt: skip
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(body))
    run, out = tmp_path / "run", tmp_path / "model"
    args = ["--config", str(tmp_path / "tiny.yaml"), "--workdir", str(run)]
    assert train_f0.main(args) == 0
    assert train_f0.main(["--export", str(run), "--to", str(out)]) == 0
    lines = [yaml.safe_load(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1]["loss"] < 0.7 * lines[0]["loss"]

    held_out = synthetic_batch(SyntheticConfig(**SYNTH), np.random.default_rng(99), 6)
    model, card = load_f0_model(out)
    assert card["config"]["model"]["n_voices"] == 2
    pairs = zip(held_out["audio"], held_out["f0"], strict=True)
    scores = [rpa(f0, neural_f0(audio, 16000, model=out)) for audio, f0 in pairs]
    assert np.mean(scores) > 0.5  # a uniform guess among 40 semitone bins: ~0.03

    # the exported file is the trained model: same parameters, same estimates
    params, _ = load_params(out)
    np.testing.assert_array_equal(params["salience"]["kernel"], model.salience.kernel[...])
    audio = held_out["audio"][0]
    same = zip(neural_f0(audio, 16000, model), neural_f0(audio, 16000, out), strict=True)
    for (t1, a), (t2, b) in same:
        np.testing.assert_array_equal(t1, t2)
        np.testing.assert_allclose(a, b, rtol=1e-5)


@pytest.mark.parametrize("name", ["f0_choir", "f0_choir_rendered"])
def test_shipped_model_hears_a_held_chord(name):
    """Each shipped model (trained on synthetic mixtures only; and on with rendered
    chorales) on a closed-form signal: a C-major chord, four voices of 12 harmonics with a
    1/k roll-off and 5 Hz vibrato."""
    rate, seconds = 16000, 2.0
    t = np.arange(int(rate * seconds)) / rate
    notes_hz = np.array([523.25, 392.0, 329.63, 130.81])  # C5, G4, E4, C3: S, A, T, B
    audio = np.zeros_like(t)
    for hz in notes_hz:
        phase = 2 * np.pi * np.cumsum(hz * (1 + 0.004 * np.sin(2 * np.pi * 5 * t))) / rate
        audio += sum(np.sin(k * phase) / k for k in range(1, 13) if k * hz < rate / 2)
    audio = (0.2 * audio / np.abs(audio).max()).astype(np.float32)
    tracks = neural_f0(audio, rate, neural.default_f0_model_path().with_name(name))
    assert len(tracks) == 4
    hop_s = float(tracks[0][0][1] - tracks[0][0][0])
    n = len(tracks[0][0])
    truth = np.repeat(notes_hz[:, None], n, axis=1)
    truth[:, : int(0.1 / hop_s)] = truth[:, n - int(0.1 / hop_s) :] = 0  # skip the edges
    assert rpa(truth, tracks, hop_s) > 0.9


CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("f0_*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_f0_configs_load_and_start_from_a_run_a_config_makes(path):
    from gensep.config import load_config

    cfg = load_config(path, train_f0.F0RunConfig)
    assert cfg.model.n_voices == 4 and cfg.validation is not None
    if cfg.init_from is not None:  # runs/<name> comes from configs/<name>.yaml
        assert (path.parent / f"{Path(cfg.init_from).name}.yaml").is_file()
