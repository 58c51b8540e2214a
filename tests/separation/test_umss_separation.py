"""UMSS separation through the registry and `gensep separate`, on a tiny untrained model
(the shapes, the mask algebra, chunking and the input checks do not need a trained one)."""

import dataclasses

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
from flax import nnx

from gensep.cli import main
from gensep.data.example import example
from gensep.data.layout import write_f0_csv
from gensep.errors import CheckpointError, GensepError
from gensep.models.store import load_umss, save_model
from gensep.models.umss import UMSS, UMSSConfig
from gensep.separation import separate
from gensep.separation.common import map_masks

TINY = UMSSConfig(
    conv_channels=4, encoder_hidden=16, embedding=16, decoder_hidden=16, loss_fft_sizes=(512,)
)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = UMSS(TINY, rngs=nnx.Rngs(0))
    params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    path = tmp_path_factory.mktemp("model") / "tiny"
    save_model(path, params, {"config": {"model": dataclasses.asdict(TINY)}})
    return path


def test_saved_model_round_trip(model_path):
    model, card = load_umss(model_path)
    original = UMSS(TINY, rngs=nnx.Rngs(0))
    a = nnx.to_pure_dict(nnx.state(model, nnx.Param))
    b = nnx.to_pure_dict(nnx.state(original, nnx.Param))
    np.testing.assert_array_equal(a["head"]["kernel"], b["head"]["kernel"])
    assert card["config"]["model"]["decoder_hidden"] == 16


def test_mono_16k_estimates_sum_to_the_mixture(model_path):
    track = example()
    est = separate(
        track.mixture,
        track.rate,
        "umss",
        f0=track.f0,
        model=model_path,
        chunk_seconds=2.0,
        overlap_seconds=0.5,
    )
    assert list(est) == list(track.f0)
    assert {v.shape for v in est.values()} == {track.mixture.shape}
    np.testing.assert_allclose(sum(est.values()), track.mixture, atol=2e-4)


def test_estimates_are_the_masked_mixture_by_librosa(model_path):
    """One chunk: every estimate (the last one is formed as mixture minus the others)
    equals librosa's inverse STFT of the model's mask times librosa's STFT."""
    import jax.numpy as jnp
    import librosa

    from gensep.data.track import f0_on_frames
    from gensep.models.umss import masks

    track = example()
    x = track.mixture[0]
    est = separate(x[None], track.rate, "umss", f0=track.f0, model=model_path, mask_power=1)
    frame_times = 256 * np.arange(1 + x.size // 256) / track.rate
    f0 = np.stack([f0_on_frames(t, hz, frame_times) for t, hz in track.f0.values()])
    model, _ = load_umss(model_path)
    m = np.asarray(masks(model, jnp.asarray(x), jnp.asarray(f0, jnp.float32)))  # [S, T, F]
    spec = librosa.stft(x, n_fft=2048, hop_length=256).T  # [T, F]
    # The chunk (8 s) runs past the 6 s input: STFT frames beyond its end, over the
    # zero padding, still overlap its last n_fft samples there. Compare before them.
    inner = slice(0, x.size - 2048)
    for j, name in enumerate(track.f0):
        ref = librosa.istft((m[j] * spec).T, hop_length=256, length=x.size)
        np.testing.assert_allclose(est[name][0, inner], ref[inner], atol=2e-5)


def test_stereo_44k_keeps_the_band_above_8k(model_path, rng):
    track = example()
    seconds = 3
    mix16 = track.mixture[0, : seconds * 16000]
    import soxr

    mix = soxr.resample(mix16, 16000, 44100).astype(np.float32)
    hiss = 0.05 * rng.standard_normal(mix.shape).astype(np.float32)  # broadband, > 8 kHz
    stereo = np.stack([mix + hiss, mix - hiss])
    est = separate(
        stereo,
        44100,
        "umss",
        f0=track.f0,
        model=model_path,
        chunk_seconds=1.5,
        overlap_seconds=0.25,
    )
    total = sum(est.values())
    assert total.shape == stereo.shape
    np.testing.assert_allclose(total, stereo, atol=2e-4)  # above 8 kHz included


def test_masks_on_the_model_grid_are_not_resampled(rng):
    masks = rng.random((3, 20, 1025)).astype(np.float32)
    assert map_masks(masks, 256 / 16000, 16000, 20, 256 / 16000, 2048, 16000) is masks
    mapped = map_masks(masks, 256 / 16000, 16000, 9, 1024 / 44100, 4096, 44100)
    assert mapped.shape == (3, 9, 2049)
    np.testing.assert_allclose(mapped.sum(axis=0), 1.0, rtol=1e-5)


def test_missing_model_is_a_clear_error(tmp_path):
    track = example()
    with pytest.raises(CheckpointError, match="no such model file"):
        separate(track.mixture, track.rate, "umss", f0=track.f0, model=tmp_path / "nope")


@pytest.fixture
def f0_files(tmp_path):
    track = example()
    paths = []
    for name, (times, hz) in track.f0.items():
        paths.append(str(write_f0_csv(tmp_path / "f0" / f"{name}.f0.csv", times, hz)))
    return paths


def test_cli_separates_a_file(tmp_path, model_path, f0_files):
    track = example()
    wav = tmp_path / "choir.wav"
    sf.write(wav, track.mixture[0], track.rate, subtype="FLOAT")
    out = tmp_path / "stems"
    code = main(
        ["separate", str(wav), "--f0", *f0_files, "--model", str(model_path), "--out", str(out)]
    )
    assert code == 0
    names = {p.stem for p in out.glob("*.wav")}
    assert names == {"soprano", "alto", "tenor", "bass", "residual"}
    total = sum(sf.read(out / f"{n}.wav", dtype="float32")[0] for n in names)
    np.testing.assert_allclose(total, track.mixture[0], atol=1e-3)  # PCM_16 rounding x 5


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: np.zeros((0, 1)), "0 samples"),
        (lambda: np.full((16000, 1), np.nan), "NaN"),
        (lambda: 0.1 * np.ones((160, 1)), "10 ms long"),
        (lambda: 0.1 * np.ones((16000, 6)), "6 channels"),
        (lambda: np.zeros((16000, 1)), "silent"),
    ],
)
def test_cli_bad_inputs(tmp_path, model_path, f0_files, capsys, make, message):
    wav = tmp_path / "bad.wav"
    sf.write(wav, make(), 16000, subtype="FLOAT")
    code = main(
        [
            "separate",
            str(wav),
            "--f0",
            *f0_files,
            "--model",
            str(model_path),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_cli_f0_of_the_wrong_length(tmp_path, model_path, capsys):
    track = example()
    wav = tmp_path / "choir.wav"
    sf.write(wav, track.mixture[0], track.rate)
    short = write_f0_csv(tmp_path / "soprano.f0.csv", np.arange(100) * 0.01, np.full(100, 440.0))
    code = main(
        [
            "separate",
            str(wav),
            "--f0",
            str(short),
            "--model",
            str(model_path),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "ends at 0.99 s but the audio lasts 6.00 s" in err


def score_midi(path, tracks):
    """A MIDI score of F0 tracks {name: (times, hz)}: a note wherever the rounded MIDI pitch
    holds (the score of the bundled example, made from its F0 truth)."""
    midi = pretty_midi.PrettyMIDI()
    for name, (times, hz) in tracks.items():
        inst = pretty_midi.Instrument(52, name=name)
        pitch = np.where(hz > 0, np.round(69 + 12 * np.log2(np.maximum(hz, 1e-9) / 440)), 0)
        edges = np.flatnonzero(np.diff(pitch)) + 1
        for a, b in zip(np.r_[0, edges], np.r_[edges, len(pitch)], strict=True):
            if pitch[a] > 0 and b - a > 5:  # held at least 50 ms: not a glide's passing step
                end = times[b] if b < len(times) else times[-1] + 0.01
                inst.notes.append(pretty_midi.Note(80, int(pitch[a]), times[a], end))
        midi.instruments.append(inst)
    midi.write(str(path))
    return path


def test_cli_separates_with_a_score_aligned_to_the_recording(tmp_path, model_path, capsys):
    track = example()
    wav = tmp_path / "choir.wav"
    # the recording starts 1 s late: the score's own timing would be off by 1 s
    sf.write(wav, np.r_[np.zeros(track.rate), track.mixture[0]], track.rate)
    names = {"soprano": "S", "alto": "A", "tenor": "T", "bass": "B"}
    score = score_midi(tmp_path / "score.mid", {names[k]: v for k, v in track.f0.items()})
    out = tmp_path / "stems"
    args = ["separate", str(wav), "--model", str(model_path), "--out", str(out)]
    assert main([*args, "--score", str(score)]) == 0
    assert {p.stem for p in out.glob("*.wav")} == {"soprano", "alto", "tenor", "bass", "residual"}
    assert "F0: score" in capsys.readouterr().out
    # another piece's score (the voices' pitch classes moved by a tritone) is refused
    other = {names[k]: (t, hz * 2 ** (6 / 12)) for k, (t, hz) in track.f0.items()}
    assert main([*args, "--score", str(score_midi(tmp_path / "other.mid", other))]) == 2
    assert "does not match" in capsys.readouterr().err
    f0 = write_f0_csv(tmp_path / "soprano.f0.csv", np.arange(601) * 0.01, np.full(601, 440.0))
    assert main([*args, "--score", str(score), "--f0", str(f0)]) == 2
    assert "either --f0 files or --score" in capsys.readouterr().err


def test_cli_estimates_f0_when_none_is_given(tmp_path, model_path, capsys):
    track = example()
    wav = tmp_path / "choir.wav"
    sf.write(wav, track.mixture[0], track.rate)
    out = tmp_path / "stems"
    args = ["separate", str(wav), "--model", str(model_path), "--out", str(out)]
    from gensep.f0 import default_f0_method

    assert main(args) == 0  # no F0 argument: the default F0 method (neural)
    assert f"F0: {default_f0_method()}" in capsys.readouterr().out
    assert {p.stem for p in out.glob("*.wav")} == {"soprano", "alto", "tenor", "bass", "residual"}
    f0 = write_f0_csv(tmp_path / "soprano.f0.csv", *track.f0["soprano"])
    for extra, message in [
        (["--f0-method", "file"], "needs the F0 of every source"),
        (["--f0-method", "score"], "--score FILE goes with --f0-method score"),
        (["--f0-method", "salience", "--f0", str(f0)], "--f0 files go with --f0-method file"),
        (["--f0-method", "salience", "--f0-model", "m.npz"], "goes with --f0-method neural"),
    ]:
        assert main([*args, *extra]) == 2
        assert message in capsys.readouterr().err
    from gensep.f0.neural import default_f0_model_path

    neural = [*args, "--f0-method", "neural", "--f0-model"]
    assert main([*neural, str(default_f0_model_path())]) == 0
    assert f"F0 model: {default_f0_model_path()}" in capsys.readouterr().out
    assert main([*neural, str(tmp_path / "missing")]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["separate", str(wav), "--method", "nmf", "--f0-method", "salience"]) == 2
    assert "takes no F0" in capsys.readouterr().err


def test_registry_estimates_f0_under_the_given_names(model_path):
    track = example()
    given = {"s": track.f0["soprano"], "a": track.f0["alto"]}  # names only, two voices
    est = separate(
        track.mixture, track.rate, "umss", f0=given, model=model_path, f0_method="salience"
    )
    assert list(est) == ["s", "a"]
    with pytest.raises(GensepError, match="unknown F0 method"):
        separate(track.mixture, track.rate, "umss", f0=given, model=model_path, f0_method="x")


def test_voice_names_in_any_order_get_the_voice_of_their_name():
    """A dataset's voices may come alphabetically (alto, bass, soprano, tenor): each name
    must still get its own voice's track, checked against the example's true F0s."""
    from gensep.f0 import estimate_f0

    track = example()
    found = estimate_f0(track.mixture, track.rate, "salience", names=sorted(track.f0))
    assert list(found) == sorted(track.f0)
    for name, (times, hz) in found.items():
        true = np.interp(times, *track.f0[name])
        both = (hz > 0) & (true > 0)
        # median within a semitone of the voice's own F0 (its neighbours are further off)
        assert np.median(np.abs(12 * np.log2(hz[both] / true[both]))) < 1.0, name
