"""Separate an audio file into stem files: what `gensep separate` does.

Reads the file (any rate libsndfile knows, mono or stereo), reads one F0 file per source
for F0-informed methods, separates, and writes `<out>/<source>.wav` plus `residual.wav`
(the mixture minus the sum of the estimates) atomically, at the input's rate and channel
count. The input is never written to. Every problem is a `GensepError` or `AudioError`
naming the file and the fix.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gensep.audio import load_audio, save_audio
from gensep.data.layout import read_f0_csv
from gensep.errors import AudioError, GensepError
from gensep.separation.registry import get_method, separate

MIN_SECONDS = 0.25  # shorter than one mask STFT window at any rate we support
F0_SLACK_S = 1.0  # an F0 file may end this much before or after the audio


def read_f0_files(
    paths: Sequence[str | Path], seconds: float
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{source: (times, hz)} from `name=path.csv` or `<name>.f0.csv` arguments.

    Raises:
      GensepError: a repeated source, or an F0 file that does not span the audio
        (it ends more than F0_SLACK_S before or after it: the wrong file, or another take).
    """
    tracks = {}
    for arg in paths:
        arg = str(arg)
        name, path = arg.split("=", 1) if "=" in arg else (Path(arg).name.split(".")[0], arg)
        if name in tracks:
            raise GensepError(f"F0 for {name!r} given twice ({arg}); pass one file per source")
        times, hz = read_f0_csv(path)
        end = float(times[-1]) if len(times) else 0.0
        if abs(end - seconds) > F0_SLACK_S:
            raise GensepError(
                f"{path}: F0 track ends at {end:.2f} s but the audio lasts {seconds:.2f} s — "
                "is it the F0 of this recording? (header time_s,f0_hz, 0 Hz = unvoiced)"
            )
        tracks[name] = (times, hz)
    return tracks


def _f0_options(spec, f0_files, score, f0_method, seconds: float, log, f0_model=None) -> dict:
    """The registry options that give an F0-informed method its F0s (see separate_file)."""
    from gensep.f0.estimate import F0_METHODS, default_f0_method

    if "f0" not in spec.needs:
        if f0_files or score is not None or f0_method is not None or f0_model is not None:
            raise GensepError(
                f"method {spec.name!r} takes no F0 (--f0, --score, --f0-method, --f0-model)"
            )
        return {}
    if f0_files and score is not None:
        raise GensepError("pass either --f0 files or --score, not both")
    if f0_method is None:
        f0_method = "file" if f0_files else "score" if score is not None else default_f0_method()
    if f0_method not in F0_METHODS:
        raise GensepError(f"unknown F0 method {f0_method!r}; known: {', '.join(F0_METHODS)}")
    if f0_method == "file":
        if not f0_files:
            raise GensepError(
                "--f0-method file needs the F0 of every source: pass --f0 soprano.f0.csv "
                "alto.f0.csv ... (or name=path.csv)"
            )
        return {"f0": read_f0_files(f0_files, seconds)}
    if f0_files:
        raise GensepError(f"--f0 files go with --f0-method file, not {f0_method}")
    if (f0_method == "score") != (score is not None):
        raise GensepError("--score FILE goes with --f0-method score (and that method needs it)")
    if f0_model is not None and f0_method != "neural":
        raise GensepError(f"--f0-model goes with --f0-method neural, not {f0_method}")
    log(f"F0: {f0_method}" + (f" ({score}, aligned to the recording)" if score else ""))
    options = {"f0_method": f0_method, "score": score}
    if f0_model is not None:
        log(f"F0 model: {f0_model}")
        options["f0_model"] = f0_model
    return options


def separate_file(
    path: str | Path,
    out_dir: str | Path,
    method: str = "umss",
    f0_files: Sequence[str | Path] = (),
    model: str | Path | None = None,
    log=print,
    score: str | Path | None = None,
    f0_method: str | None = None,
    priors: str | Path | None = None,
    sources: Sequence[str] | str | None = None,
    f0_model: str | Path | None = None,
) -> dict[str, Path]:
    """Separate `path` into `<out_dir>/<source>.wav` + `residual.wav`; returns the paths.

    F0-informed methods take the sources' F0 by `f0_method` (`gensep.f0.F0_METHODS`):
    "file" reads `f0_files` (one CSV per source), "score" aligns a `score` (MIDI or
    MusicXML, one source per part) to the recording, "salience" and "neural" estimate four
    voices (soprano, alto, tenor, bass) from the mixture. None picks "file" when F0 files
    are given, "score" when a score is, and `default_f0_method()` otherwise; `f0_model` is
    the network of "neural" (default: `default_f0_model_path()`). Generative
    methods ("flow") take a prior registry folder `priors` (default: the shipped band
    priors, `gensep.flows.priors.shipped_registry`) and optionally the prior names
    `sources` (default: every registered prior).

    Raises:
      AudioError: unreadable, empty, NaN, too short, silent, or not mono/stereo input.
      GensepError: an F0 method without what it reads (files, a score), F0 files and a
        score at once, a bad F0 file, F0 options for a method that takes no F0, or
        priors for a method that takes none.
      ScoreError: an unreadable score, or one that does not match the recording.
    """
    path, out_dir = Path(path), Path(out_dir)
    spec = get_method(method)
    if "references" in spec.needs:
        raise GensepError(f"method {method!r} is an oracle: it needs the true stems")
    mixture, rate = load_audio(path)
    seconds = mixture.shape[-1] / rate
    if mixture.shape[0] > 2:
        raise AudioError(
            f"{path}: {mixture.shape[0]} channels — gensep separate takes mono or stereo; "
            "downmix it first (e.g. sox in.wav -c 2 out.wav)"
        )
    if seconds < MIN_SECONDS:
        raise AudioError(
            f"{path}: {seconds * 1000:.0f} ms long, too short to separate "
            f"(at least {MIN_SECONDS} s)"
        )
    if not np.any(mixture):
        raise AudioError(f"{path}: silent (all samples zero): nothing to separate")
    options = _f0_options(spec, f0_files, score, f0_method, seconds, log, f0_model)
    if model is not None:
        options["model"] = model
    if "priors" in spec.needs:
        if priors is None:
            from gensep.flows.priors import shipped_registry

            priors = shipped_registry("band")
            log(f"priors: the shipped band priors ({priors})")
        options.update(priors=priors, sources=sources)
    elif priors is not None or sources is not None:
        raise GensepError(f"method {method!r} takes no priors (--priors, --sources)")
    if method in ("umss", "flow"):
        options["progress"] = True
    start = time.perf_counter()
    estimates = separate(mixture, rate, method, **options)
    elapsed = time.perf_counter() - start
    estimates["residual"] = mixture - sum(estimates.values())
    written = {}
    for name, audio in estimates.items():
        target = out_dir / f"{name}.wav"
        if target.resolve() == path.resolve():
            raise GensepError(f"{target}: would overwrite the input; choose another --out")
        peak = float(np.max(np.abs(audio)))
        written[name] = save_audio(target, audio, rate, "FLOAT" if peak > 1 else "PCM_16")
    log(
        f"{path.name}: {seconds:.1f} s separated by {method} in {elapsed:.2f} s "
        f"({seconds / max(elapsed, 1e-9):.0f}x real time) -> {out_dir}/"
    )
    return written
