"""eval/efficiency.py: minutes of the first N tracks and the mean over sources per row."""

import csv
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gensep.data.example import example
from gensep.data.layout import write_track

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "eval"))
import efficiency


def test_curve_table_and_plot(tmp_path):
    track = example()  # 6 s
    for i, seconds in enumerate([6.0, 3.0, 1.5]):
        n = int(seconds * track.rate)
        cut = {k: v[:, :n] for k, v in track.sources.items()}
        mix = track.mixture[:, :n]
        short = replace(track, name=f"t{i}", sources=cut, mixture=mix, f0=None)
        write_track(tmp_path / "data", "train", short)
    results = tmp_path / "results"
    results.mkdir()
    rows = [
        ("sources", f"umss_n{n}", s, m, v)
        for n in (1, 2)
        for s in "ab"
        for m, v in (("SDR", n + (s == "b")), ("SI-SDR", 2 * n + (s == "b")))
    ]
    with open(results / "tables.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["table", "method", "source", "metric", "median", "mean", "tracks"])
        writer.writerows([(*r, v, 0, 1) for *r, v in [(*row[:4], row[4]) for row in rows]])
    assert (
        efficiency.main(
            [str(results), "--data", str(tmp_path / "data"), "--methods", "umss", "--sizes", "1,2"]
        )
        == 0
    )
    with open(results / "efficiency.csv") as handle:
        got = list(csv.DictReader(handle))
    assert [float(r["minutes"]) for r in got] == pytest.approx([0.1, 0.15], abs=0.005)
    # sources a, b: SDR n and n + 1, SI-SDR 2n and 2n + 1 -> means n + 0.5, 2n + 0.5
    np.testing.assert_allclose([float(r["SDR"]) for r in got], [1.5, 2.5])
    np.testing.assert_allclose([float(r["SI-SDR"]) for r in got], [2.5, 4.5])
    assert (results / "efficiency.png").stat().st_size > 0
