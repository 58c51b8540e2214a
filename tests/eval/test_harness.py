"""The evaluation harness (eval/run.py, eval/harness.py, eval/report.py) end to end on tiny
datasets written from the bundled example, cross-checked against museval and metrics."""

import csv
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from gensep import metrics
from gensep.data import Track
from gensep.data.example import example
from gensep.data.layout import read_track, write_track
from gensep.separation import registry

EVAL = Path(__file__).resolve().parents[2] / "eval"
sys.path.insert(0, str(EVAL))

import harness  # noqa: E402
import report  # noqa: E402
import run  # noqa: E402

SECONDS = 3
MUSDB_NAMES = {"soprano": "vocals", "alto": "other", "tenor": "bass", "bass": "drums"}


def _write_dataset(root: Path, names: dict[str, str] | None = None, n: int = 2) -> Path:
    """n tracks of the bundled chorale's first SECONDS s (the second shifted by 0.5 s, so
    the tracks differ), sources renamed by `names`."""
    track = example()
    cut = SECONDS * track.rate
    for i in range(n):
        start = i * track.rate // 2
        sources = {
            (names or {}).get(k, k): v[:, start : start + cut] for k, v in track.sources.items()
        }
        mixture = track.mixture[:, start : start + cut]
        f0 = None if names else {k: (t, hz) for k, (t, hz) in track.f0.items()}
        write_track(root, "test", Track(f"song{i}", track.rate, mixture, sources, f0))
    return root


@pytest.fixture(scope="module")
def choir_results(tmp_path_factory):
    root = _write_dataset(tmp_path_factory.mktemp("choir"))
    out = tmp_path_factory.mktemp("results") / "choir"
    code = run.main(
        [
            "--dataset",
            str(root),
            "--methods",
            "irm,ibm,mixture,f0_harmonic,hpss",
            "--out",
            str(out),
            "--jobs",
            "1",
        ]
    )
    assert code == 0
    return root, out


def _runs(out: Path) -> dict[tuple[str, str, str], dict]:
    found = {}
    for path in (out / "runs").glob("*/*/*.json"):
        record = json.loads(path.read_text())
        found[record["table"], record["row"], record["track"]] = record
    return found


def test_one_json_per_method_and_track(choir_results):
    _, out = choir_results
    runs = _runs(out)
    for row in ("irm", "ibm", "mixture", "f0_harmonic"):
        for track in ("song0", "song1"):
            record = runs["sources", row, track]
            assert record["status"] == "ok", record.get("error")
            assert record["x_real_time"] > 0 and record["seconds"] == SECONDS
    # HPSS splits two ways: it gets its own table, never mapped onto the voices; a choir
    # track has no drums stem, so that table is skipped with the reason recorded.
    assert ("sources", "hpss", "song0") not in runs
    skipped = runs["harmonic-percussive", "hpss", "song0"]
    assert skipped["status"] == "skipped" and "drums" in skipped["error"]
    assert (out / "config.yaml").is_file()


def test_si_sdr_matches_metrics_on_saved_estimates(choir_results, tmp_path):
    root, out = choir_results
    track = read_track(root / "test" / "song0")
    estimates = registry.separate(track.mixture, track.rate, "irm", references=track.sources)
    record = _runs(out)["sources", "irm", "song0"]
    names = record["scores"]["sources"]
    expected = metrics.framewise_si_sdr(
        np.stack([estimates[n] for n in names]),
        np.stack([track.sources[n] for n in names]),
        track.rate,
        zero_mean=False,
    )
    for i, name in enumerate(names):
        got = np.array(record["scores"]["frames"][name]["SI-SDR"], dtype=float)
        mask = np.array(record["scores"]["mask"])
        np.testing.assert_allclose(got[mask], expected[i][mask], atol=1e-6)


def test_oracle_beats_floor(choir_results):
    _, out = choir_results
    tables = report.report(out)
    values = tables["sources"]["values"]
    for source in ("soprano", "alto", "tenor", "bass"):
        irm = np.median(values["irm", source, "SDR"])
        floor = np.median(values["mixture", source, "SDR"])
        assert irm > floor + 3, source


def test_report_files(choir_results):
    _, out = choir_results
    report.report(out)
    with open(out / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["method", "source", "metric", "median", "mean"]
    assert {r["method"] for r in rows} >= {"irm", "mixture", "ibm", "f0_harmonic"}
    assert {r["metric"] for r in rows} == {"SDR", "SIR", "SAR", "ISR", "SI-SDR"}
    text = (out / "report.md").read_text()
    assert "| irm |" in text and "| mixture |" in text
    assert (out / "plots" / "sources_SDR.png").stat().st_size > 1000


def test_bsseval_equals_museval_eval_mus_track(tmp_path):
    musdb = pytest.importorskip("musdb")
    import museval

    root = _write_dataset(tmp_path / "band", MUSDB_NAMES, n=1)
    out = tmp_path / "results"
    assert (
        run.main(
            [
                "--dataset",
                str(root),
                "--methods",
                "irm",
                "--out",
                str(out),
                "--jobs",
                "1",
                "--save-estimates",
                "--instglow",
            ]  # the default, fast scorer
        )
        == 0
    )
    record = _runs(out)["sources", "irm", "song0"]
    track = musdb.DB(root=str(root), is_wav=True, subsets="test").tracks[0]
    folder = out / "estimates" / "sources" / "irm" / "song0"
    estimates = {name: _read_wav(folder / f"{name}.wav") for name in MUSDB_NAMES.values()}
    store = museval.eval_mus_track(track, {k: v.T for k, v in estimates.items()})
    mask = np.array(record["scores"]["mask"])
    for target in store.scores["targets"]:
        name = target["name"]
        for metric in ("SDR", "SIR", "SAR", "ISR"):
            theirs = np.array([float(f["metrics"][metric]) for f in target["frames"]])
            ours = np.array(record["scores"]["frames"][name][metric], dtype=float)
            np.testing.assert_allclose(ours[mask], theirs[mask], atol=0.01, err_msg=name)
    # InstGlow protocol: one SDR per 60 s mono segment (here one segment: the whole track)
    names = list(estimates)
    sources = read_track(root / "test" / "song0").sources
    refs = np.stack([sources[n].mean(axis=0) for n in names])
    ests = np.stack([estimates[n].mean(axis=0) for n in names])
    whole = museval.evaluate(
        refs[..., None], ests[..., None], win=refs.shape[-1], hop=refs.shape[-1]
    )[0][:, 0]
    for name, value in zip(names, whole, strict=True):
        assert record["scores"]["instglow_sdr"][name] == pytest.approx(value, abs=0.01)
    tables = report.report(out)  # one track: the table's InstGlow cell is its value
    for name, value in zip(names, whole, strict=True):
        cell = tables["sources"]["values"]["irm", name, report.INSTGLOW]
        assert cell == [pytest.approx(value, abs=0.01)]
    assert "### InstGlow SDR" in (out / "report.md").read_text()


def _read_wav(path: Path) -> np.ndarray:
    import soundfile as sf

    audio, _ = sf.read(path, dtype="float32", always_2d=True)
    return audio.T


def test_failure_is_recorded_and_the_rest_is_intact(tmp_path, monkeypatch):
    root = _write_dataset(tmp_path / "choir")

    def flaky(mixture, sample_rate, *, references):
        if flaky.calls == 1:
            flaky.calls += 1
            raise RuntimeError("boom on the second track")
        flaky.calls += 1
        return {name: mixture / len(references) for name in references}

    flaky.calls = 0
    module = types.ModuleType("flaky_method")
    module.separate = flaky
    monkeypatch.setitem(sys.modules, "flaky_method", module)
    monkeypatch.setitem(
        registry.METHODS,
        "flaky",
        registry.Method("flaky", "flaky_method", "floor", ("references",)),
    )
    out = tmp_path / "results"
    assert (
        run.main(
            ["--dataset", str(root), "--methods", "irm,flaky", "--out", str(out), "--jobs", "1"]
        )
        == 1
    )  # a failure: exit status 1, everything else kept
    runs = _runs(out)
    assert runs["sources", "flaky", "song0"]["status"] == "ok"
    failed = runs["sources", "flaky", "song1"]
    assert failed["status"] == "failed" and "boom" in failed["error"]
    assert "RuntimeError" in failed["traceback"]
    assert all(runs["sources", "irm", t]["status"] == "ok" for t in ("song0", "song1"))
    tables = report.report(out)
    assert tables["sources"]["status"]["flaky"]["failed"] == 1
    assert "| irm |" in (out / "report.md").read_text()

    # Resuming runs only what failed: the failed row again, nothing else.
    records = harness.run(
        run.resolve_config(
            run.get_parser().parse_args(
                ["--dataset", str(root), "--methods", "irm,flaky", "--out", str(out), "--jobs", "1"]
            )
        ),
        out,
    )
    assert [(r["row"], r["track"], r["status"]) for r in records] == [("flaky", "song1", "ok")]


def test_parallel_jobs_match_serial(tmp_path, choir_results):
    root, serial_out = choir_results
    out = tmp_path / "parallel"
    assert (
        run.main(
            ["--dataset", str(root), "--methods", "irm,mixture", "--out", str(out), "--jobs", "2"]
        )
        == 0
    )
    serial, parallel = _runs(serial_out), _runs(out)
    for key in (("sources", "irm", "song1"), ("sources", "mixture", "song0")):
        for source, values in serial[key]["scores"]["median"].items():
            for metric, value in values.items():
                other = parallel[key]["scores"]["median"][source][metric]
                if value > 100:  # mixture/n lies in the span of the references: SAR is
                    assert other > 100  # infinite, and its finite value rounding noise
                else:  # one BLAS thread per worker sums in another order: ~1e-9 dB apart
                    assert value == pytest.approx(other, abs=1e-6), (key, source, metric)


def test_bad_arguments_exit_2(tmp_path, capsys):
    assert (
        run.main(
            [
                "--dataset",
                str(tmp_path / "nowhere"),
                "--methods",
                "irm",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "no such dataset root" in capsys.readouterr().err
    root = _write_dataset(tmp_path / "choir", n=1)
    assert (
        run.main(["--dataset", str(root), "--methods", "nosuch", "--out", str(tmp_path / "r")]) == 2
    )
    assert "unknown separation method" in capsys.readouterr().err
