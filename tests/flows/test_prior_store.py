"""The prior registry: atomic folders that round-trip a Glow, names, listing, overwrite,
compatibility checks and damaged files (no training here: see test_add_instrument.py)."""

import dataclasses
import json
import shutil

import jax
import numpy as np
import pytest
from flax import nnx

from gensep.errors import CheckpointError, GensepError
from gensep.flows import FlowConfig, Glow
from gensep.flows.priors import (
    check_name,
    list_priors,
    load_prior,
    load_priors,
    read_card,
    register_prior,
)
from gensep.flows.spectro import SpectroConfig

SPECTRO = SpectroConfig(
    sample_rate=8000, n_fft=64, hop=16, patch_bins=4, patch_frames=4, patch_hop=4
)
FLOW = FlowConfig(patch_frames=4, patch_bins=4, levels=1, steps=1, hidden=4, noise_levels=(0.5,))


@pytest.fixture(scope="module")
def glow():
    model = Glow(FLOW, rngs=nnx.Rngs(0))
    params = nnx.state(model, nnx.Param)
    r = np.random.default_rng(0)  # move the zero-initialised couplings off the identity
    nnx.update(model, jax.tree.map(lambda p: p + 0.1 * r.standard_normal(p.shape), params))
    return model


def card(spectro=SPECTRO, flow=FLOW):
    return {"spectro": dataclasses.asdict(spectro), "flow": dataclasses.asdict(flow)}


def params(model):
    return nnx.to_pure_dict(nnx.state(model, nnx.Param))


def test_register_then_load_gives_the_same_density(tmp_path, glow):
    folder = register_prior(tmp_path, "bass", params(glow), card())
    assert sorted(p.name for p in folder.iterdir()) == ["card.json", "weights.npz"]
    assert [p.name for p in tmp_path.iterdir()] == ["bass"]  # no temporaries left
    prior = load_prior(tmp_path, "bass")
    assert prior.card["instrument"] == "bass" and prior.spectro == SPECTRO
    x = np.random.default_rng(1).standard_normal((3, 4, 4, 1)).astype(np.float32)
    np.testing.assert_allclose(prior.model.log_prob(x, 0.5), glow.log_prob(x, 0.5), rtol=1e-6)


def test_an_existing_name_needs_overwrite_and_others_are_untouched(tmp_path, glow):
    register_prior(tmp_path, "a", params(glow), card())
    register_prior(tmp_path, "b", params(glow), card())
    before = (tmp_path / "b" / "weights.npz").read_bytes()
    with pytest.raises(GensepError, match="exists; pass --overwrite"):
        register_prior(tmp_path, "a", params(glow), card())
    register_prior(tmp_path, "a", params(glow), {**card(), "note": "v2"}, overwrite=True)
    assert read_card(tmp_path / "a")["note"] == "v2"
    assert (tmp_path / "b" / "weights.npz").read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_listing_skips_hidden_and_foreign_folders(tmp_path, glow):
    register_prior(tmp_path, "drums", params(glow), card())
    (tmp_path / ".runs" / "drums").mkdir(parents=True)
    (tmp_path / "notes").mkdir()
    rows = list_priors(tmp_path)
    assert [r["name"] for r in rows] == ["drums"] and rows[0]["bytes"] > 0
    with pytest.raises(GensepError, match="no prior registry"):
        list_priors(tmp_path / "missing")


def test_a_failed_registration_leaves_nothing(tmp_path, glow):
    with pytest.raises(ValueError, match="card\\['flow'\\]"):
        register_prior(tmp_path, "x", params(glow), {"spectro": {}})
    bad_patch = card(flow=dataclasses.replace(FLOW, patch_frames=8))
    with pytest.raises(CheckpointError, match="not the front end's"):
        register_prior(tmp_path, "x", params(glow), bad_patch)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["", ".hidden", "a/b", "-x", "a b", None])
def test_bad_names(name):
    with pytest.raises(GensepError, match="prior name"):
        check_name(name)


def test_unknown_incompatible_and_damaged_priors_are_refused(tmp_path, glow):
    register_prior(tmp_path, "a", params(glow), card())
    register_prior(tmp_path, "b", params(glow), card(dataclasses.replace(SPECTRO, ref_db=-40.0)))
    wider = dataclasses.replace(FLOW, hidden=8)
    register_prior(tmp_path, "c", params(Glow(wider, rngs=nnx.Rngs(1))), card(flow=wider))
    with pytest.raises(GensepError, match=r"no prior 'zz' in .*registered: \['a', 'b', 'c'\]"):
        load_prior(tmp_path, "zz")
    with pytest.raises(GensepError, match=r"differ in spectro\.ref_db"):
        load_priors(tmp_path, ["a", "b"])
    assert len(load_priors(tmp_path, ["a", "c"])) == 2  # sizes may differ, front ends not
    with pytest.raises(GensepError, match="all distinct"):
        load_priors(tmp_path, ["a", "a"])
    # c's card says hidden 8, a's weights are hidden 4: parameters that do not fit
    shutil.copy(tmp_path / "a" / "weights.npz", tmp_path / "c" / "weights.npz")
    with pytest.raises(CheckpointError, match="do not fit the card's flow"):
        load_prior(tmp_path, "c")
    (tmp_path / "a" / "weights.npz").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="unreadable"):
        load_prior(tmp_path, "a")
    path = tmp_path / "b" / "card.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": "other/9"}))
    with pytest.raises(CheckpointError, match="format 'other/9'"):
        load_prior(tmp_path, "b")
