"""train/umss.py end to end on the bundled chorale: train, fine-tune from it, export."""

import sys
from pathlib import Path

import numpy as np
import yaml

from gensep.checkpoint import load_for_inference
from gensep.data.example import example
from gensep.data.layout import write_track
from gensep.models.store import load_params

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train"))
import umss as train_umss

MODEL = dict(conv_channels=4, encoder_hidden=16, embedding=16, decoder_hidden=16)
MODEL["loss_fft_sizes"] = [512]
TRAIN = dict(steps=2, batch_size=2, learning_rate=1e-3, log_every=1, checkpoint_every=2)


def config(tmp_path, name, root, model=MODEL, **extra):
    data = dict(root=str(root), split="train", excerpt_seconds=1.0)
    body = {"data": data, "model": model, "train": {**TRAIN, **extra.pop("train", {})}}
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**body, **extra}))
    return str(path)


def test_train_fine_tune_and_export(tmp_path, capsys):
    root = tmp_path / "data"
    write_track(root, "train", example())
    run = tmp_path / "run"
    assert train_umss.main(["--config", config(tmp_path, "a", root), "--workdir", str(run)]) == 0
    assert (run / "checkpoints" / "2").is_dir() and (run / "config.yaml").is_file()
    trained, _ = load_for_inference(run)

    # stage 2 from the first run's weights; learning rate 0 keeps them, so they must be equal
    stage2 = config(tmp_path, "b", root, init_from=str(run), train=dict(learning_rate=0.0))
    assert train_umss.main(["--config", stage2, "--workdir", str(tmp_path / "ft")]) == 0
    model = tmp_path / "model"
    assert train_umss.main(["--export", str(tmp_path / "ft"), "--to", str(model)]) == 0
    exported, card = load_params(model)
    np.testing.assert_array_equal(exported["head"]["kernel"], trained["head"]["kernel"])
    assert card["config"]["init_from"] == str(run)

    # fine-tuning another architecture, and a second run into a used workdir, are errors
    other = config(tmp_path, "c", root, model={**MODEL, "decoder_hidden": 8}, init_from=str(run))
    assert train_umss.main(["--config", other, "--workdir", str(tmp_path / "x")]) == 2
    assert "same architecture" in capsys.readouterr().err
    again = config(tmp_path, "a", root)
    assert train_umss.main(["--config", again, "--workdir", str(run)]) == 2
    assert "pass --resume" in capsys.readouterr().err
