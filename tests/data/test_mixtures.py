"""Mixture-only training data: stems never read, F0 on the model's frames, resumable."""

import numpy as np
import pytest

from gensep.data.example import example
from gensep.data.layout import write_track
from gensep.data.mixtures import MixtureF0Batches, load_mixtures
from gensep.data.track import f0_on_frames
from gensep.errors import DatasetError

VOICES = ("soprano", "alto", "tenor", "bass")


@pytest.fixture
def root(tmp_path):
    track = example()
    write_track(tmp_path, "train", track)
    return tmp_path


def test_stems_are_never_read(root):
    # Replace every stem file by garbage: reading mixtures + F0 must not notice.
    for voice in VOICES:
        (root / "train" / example().name / f"{voice}.wav").write_bytes(b"not audio")
    (track,) = load_mixtures(root, "train", VOICES)
    assert track.sources == {} and set(track.f0) == set(VOICES)
    with pytest.raises(DatasetError, match="mixtures only"):
        MixtureF0Batches([example()], VOICES, 256, 16000, 2)


def test_batches_carry_the_excerpt_f0(root):
    tracks = load_mixtures(root, "train", VOICES)
    batches = MixtureF0Batches(tracks, VOICES, hop=256, excerpt_samples=16000, batch_size=3)
    before = batches.state_dict()
    batch = next(batches)
    assert batch["mixture"].shape == (3, 16000) and batch["f0"].shape == (3, 4, 63)
    # Recompute the F0 of each row from the sampler's own record of where it cut.
    batches.sampler.load_state_dict(before)
    cut = batches.sampler.next_batch()
    for row in range(3):
        start = int(cut["start"][row])
        np.testing.assert_array_equal(
            batch["mixture"][row], tracks[0].mixture[0, start : start + 16000]
        )
        times = (start + 256 * np.arange(63)) / tracks[0].rate
        want = f0_on_frames(*tracks[0].f0["alto"], times)
        np.testing.assert_allclose(batch["f0"][row, 1], want, rtol=1e-6)


def test_missing_f0_file(root):
    (root / "train" / example().name / "bass.f0.csv").unlink()
    with pytest.raises(DatasetError, match=r"bass\.f0\.csv"):
        load_mixtures(root, "train", VOICES)


def test_resume_gives_the_same_batches(root):
    tracks = load_mixtures(root, "train", VOICES)
    first = MixtureF0Batches(tracks, VOICES, 256, 8000, 2, seed=3)
    next(first)
    state = first.state_dict()
    expected = next(first)
    second = MixtureF0Batches(tracks, VOICES, 256, 8000, 2, seed=3)
    second.load_state_dict(state)
    got = next(second)
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key])
