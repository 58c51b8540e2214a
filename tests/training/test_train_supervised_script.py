"""train/supervised.py end to end on the bundled chorale: train, resume, export, separate."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from gensep.config import load_config
from gensep.data.example import example
from gensep.data.layout import write_track
from gensep.models.store import load_masknet
from gensep.separation import separate

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "train"))
import supervised as train_sup  # noqa: E402

MODEL = dict(arch="crnn", n_fft=256, hop=64, hidden=16, channels=4, layers=1)
TRAIN = dict(steps=2, batch_size=2, learning_rate=1e-3, log_every=1, checkpoint_every=2)


def config(tmp_path, name, root, steps=2):
    body = {
        "data": dict(root=str(root), split="train", excerpt_seconds=0.5),
        "model": MODEL,
        "train": {**TRAIN, "steps": steps},
    }
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(body))
    return str(path)


def test_train_resume_export_and_separate(tmp_path, capsys):
    track = example()
    root = tmp_path / "data"
    write_track(root, "train", track)
    run = tmp_path / "run"
    assert train_sup.main(["--config", config(tmp_path, "a", root), "--workdir", str(run)]) == 0
    assert (run / "checkpoints" / "2").is_dir() and (run / "config.yaml").is_file()
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["model"]["sources"] == list(track.sources)  # the config's defaults, recorded

    again = config(tmp_path, "a", root)
    assert train_sup.main(["--config", again, "--workdir", str(run)]) == 2
    assert "pass --resume" in capsys.readouterr().err
    longer = config(tmp_path, "b", root, steps=3)
    assert train_sup.main(["--config", longer, "--workdir", str(run), "--resume"]) == 0
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3]

    model = tmp_path / "crnn_choir"
    assert train_sup.main(["--export", str(run), "--to", str(model)]) == 0
    net, card = load_masknet(model)
    assert net.config.arch == "crnn" and card["step"] == 3
    est = separate(track.mixture, track.rate, "crnn", model=model, chunk_seconds=2.0)
    assert list(est) == list(track.sources)
    np.testing.assert_allclose(sum(est.values()), track.mixture, atol=1e-4)


@pytest.mark.parametrize(
    "path", sorted((ROOT / "configs").glob("sup_*.yaml")), ids=lambda p: p.stem
)
def test_shipped_configs_load_and_name_the_dataset_sources(path):
    cfg = load_config(path, train_sup.SupervisedRunConfig)
    arch, data = path.stem.split("_")[1:3]  # sup_<arch>_<data>[_n<tracks>]
    assert cfg.model.arch == arch and cfg.data.root == f"data/{data}"
    expected = {
        "choir": ("soprano", "alto", "tenor", "bass"),
        "band": ("vocals", "drums", "bass", "other"),
    }
    assert cfg.model.sources == expected[data]
