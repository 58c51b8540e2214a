"""Config loading: nested dataclasses from YAML, unknown/missing keys are errors."""

import dataclasses

import pytest
import yaml

from gensep.config import from_dict, load_config, save_config
from gensep.demo import DemoConfig
from gensep.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class Inner:
    sizes: tuple[int, ...]
    rate: float = 1.0


@dataclasses.dataclass(frozen=True)
class Outer:
    name: str
    inner: Inner
    by_name: dict[str, Inner]
    optional: int | None = None


def test_nested_round_trip(tmp_path):
    data = {"name": "x", "inner": {"sizes": [1, 2]}, "by_name": {"a": {"sizes": [3], "rate": 2}}}
    cfg = from_dict(Outer, data)
    assert cfg.inner == Inner(sizes=(1, 2), rate=1.0)
    assert cfg.by_name["a"].rate == 2.0 and isinstance(cfg.by_name["a"].rate, float)
    path = save_config(cfg, tmp_path / "run" / "config.yaml")
    assert load_config(path, Outer) == cfg


@pytest.mark.parametrize(
    ("data", "match"),
    [
        pytest.param(
            {"name": "x", "inner": {"sizes": []}, "by_name": {}, "typo": 1},
            r"unknown key\(s\) \['typo'\]",
            id="unknown-key",
        ),
        pytest.param(
            {"inner": {"sizes": []}, "by_name": {}}, "missing required key 'name'", id="missing-key"
        ),
        pytest.param(
            {"name": "x", "inner": {"sizes": ["a"]}, "by_name": {}},
            r"inner.sizes\[0\]: expected int",
            id="wrong-type",
        ),
        pytest.param(
            {"name": "x", "inner": {"sizes": [], "rat": 2}, "by_name": {}},
            r"unknown key.*'rat'",
            id="nested-unknown",
        ),
    ],
)
def test_schema_errors(tmp_path, data, match):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=match):
        load_config(path, Outer)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml", Outer)
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed")
    with pytest.raises(ConfigError, match=r"bad\.yaml: not valid YAML"):
        load_config(bad, Outer)


def test_shipped_demo_config_loads():
    cfg = load_config("configs/demo.yaml", DemoConfig)
    assert set(cfg.voices) == {"soprano", "alto", "tenor", "bass"}
    assert all(len(v.formants_hz) == len(v.bandwidths_hz) for v in cfg.voices.values())
