"""The bundled example: a complete, consistent four-voice track from the choir test split."""

import itertools

import numpy as np

from gensep.data.example import example, example_meta


def test_example_is_a_consistent_four_voice_track():
    track = example()
    assert track.rate == 16000 and track.mixture.shape[0] == 1
    assert track.source_names == ["soprano", "alto", "tenor", "bass"]
    # Stems were quantised to 16 bits before summing: the sum is exact.
    np.testing.assert_array_equal(sum(track.sources.values()), track.mixture)
    for voice, (times, hz) in track.f0.items():
        assert times[-1] >= track.seconds - 0.05
        voiced = hz[hz > 0]
        assert voiced.size > 0.5 * hz.size, voice
    # Voices keep their order: mean pitch falls from soprano to bass.
    means = [np.median(track.f0[v][1][track.f0[v][1] > 0]) for v in track.source_names]
    assert all(a > b for a, b in itertools.pairwise(means))


def test_example_comes_from_the_test_split():
    meta = example_meta()
    assert meta["example"]["split"] == "test"
    name = meta["example"]["track"]
    train = {entry["track"] for entry in meta["split"]["train"]}
    assert name not in train


def test_example_resamples():
    track = example(sample_rate=8000)
    assert track.rate == 8000 and track.mixture.shape[-1] == example().mixture.shape[-1] // 2
