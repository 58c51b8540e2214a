"""The method registry: every separator found by name, called with one signature.

A method is a function `separate(mixture, sample_rate, **options) -> {source: audio}` in
its own module (or another named function there: the five supervised architectures share
one module, each with an entry point that refuses a model of another architecture). The
table below names it, says where it lives (imported on first use, so
`import gensep.separation` stays cheap) and what it needs: oracle methods need the true
sources (`references=`), F0-informed ones the F0 tracks (`f0=`), trained ones a model
path (`model=`), generative ones a prior registry folder (`priors=`). `separate` checks
the input and the output of every method, so a method cannot hand back audio of the
wrong shape, rate or length, or NaN.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping

import numpy as np

from gensep.audio import MAX_CHANNELS
from gensep.errors import AudioError, GensepError

# What a method needs besides the mixture; `separate` refuses a call that lacks one.
NEEDS = ("references", "f0", "model", "priors")


@dataclasses.dataclass(frozen=True)
class Method:
    """One registered separation method.

    Attributes:
      name: The name users pass (`method="irm"`, `--methods irm,nmf`).
      module: Module holding a function `separate` with the registry's signature.
      kind: "oracle" (uses the true sources: a ceiling), "floor", "learning-free",
        "unsupervised", "supervised" or "generative".
      needs: Keyword options the method cannot run without (a subset of NEEDS).
      stems: The fixed source names a method returns (two-stem methods: e.g.
        ("harmonic", "percussive")), or None when it returns the names it is given
        (the references', the F0s', or the model's).
      summary: One line for `gensep info` and reports.
      function: The function's name in `module`.
    """

    name: str
    module: str
    kind: str
    needs: tuple[str, ...] = ()
    stems: tuple[str, ...] | None = None
    summary: str = ""
    function: str = "separate"

    def load(self) -> Callable[..., dict[str, np.ndarray]]:
        return getattr(importlib.import_module(self.module), self.function)


_PKG = "gensep.separation"
METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            "irm",
            f"{_PKG}.oracle_irm",
            "oracle",
            ("references",),
            summary="ideal ratio mask |S_j|^p / sum_k |S_k|^p (p = mask_power)",
        ),
        Method(
            "ibm",
            f"{_PKG}.oracle_ibm",
            "oracle",
            ("references",),
            summary="ideal binary mask: each bin to the loudest true source",
        ),
        Method(
            "mixture",
            f"{_PKG}.oracle_mixture",
            "floor",
            ("references",),
            summary="the mixture divided by the number of sources, for every source",
        ),
        Method(
            "hpss",
            f"{_PKG}.hpss",
            "learning-free",
            stems=("harmonic", "percussive"),
            summary="harmonic/percussive median-filtering separation (librosa)",
        ),
        Method(
            "repet",
            f"{_PKG}.repet",
            "learning-free",
            stems=("vocals", "accompaniment"),
            summary="REPET-SIM: repeating background by nearest-neighbour filtering",
        ),
        Method(
            "rpca",
            f"{_PKG}.rpca",
            "learning-free",
            stems=("vocals", "accompaniment"),
            summary="robust PCA: low-rank accompaniment, sparse vocals",
        ),
        Method(
            "nmf",
            f"{_PKG}.nmf",
            "learning-free",
            summary="NMF components clustered into as many sources as asked",
        ),
        Method(
            "umss",
            f"{_PKG}.umss",
            "unsupervised",
            ("f0",),
            summary="UMSS: masks from a source-filter model trained on mixtures only",
        ),
        Method(
            "f0_harmonic",
            f"{_PKG}.f0_harmonic",
            "learning-free",
            ("f0",),
            summary="soft harmonic comb per source from its F0 track",
        ),
        Method(
            "flow",
            f"{_PKG}.flow",
            "generative",
            ("priors",),
            summary="source-only Glow priors: masks by annealed denoising under each prior",
        ),
        *(
            Method(
                name,
                f"{_PKG}.supervised",
                "supervised",
                ("model",),
                summary=f"softmax masks on the magnitude STFT from a trained {what}",
                function=f"separate_{name}",
            )
            for name, what in (
                ("blstm", "BLSTM (Open-Unmix-like)"),
                ("unet", "U-Net (Spleeter-like)"),
                ("cnn", "plain dilated CNN"),
                ("transformer", "Transformer over frames"),
                ("crnn", "CNN + BiGRU hybrid"),
            )
        ),
    )
}


def list_methods(kind: str | None = None) -> list[Method]:
    """The registered methods, optionally only those of one `kind`."""
    return [m for m in METHODS.values() if kind is None or m.kind == kind]


def get_method(name: str) -> Method:
    """The registered method `name`; GensepError naming the known ones otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        known = ", ".join(sorted(METHODS))
        raise GensepError(f"unknown separation method {name!r}; known methods: {known}") from None


def separate(
    mixture: np.ndarray, sample_rate: int, method: str = "irm", **options
) -> dict[str, np.ndarray]:
    """Separate `mixture` with the method registered as `method`.

    Args:
      mixture: The mixture. Shape [channels, samples] (1-D is taken as mono), float.
      sample_rate: Its rate (Hz).
      method: A registered name (`list_methods()`).
      **options: Passed to the method: `references={source: [channels, samples]}` for
        oracles, `f0={source: (times_s, hz)}` for F0-informed methods, `model=PATH` for
        trained ones, `priors=DIR` (and `sources=[names]`) for "flow", and the method's
        own settings. F0-informed methods also take
        `f0_method="score"|"salience"|"neural"` (with `score=FILE`, `f0_model=PATH`): the
        F0s are then estimated from the mixture (`gensep.f0.estimate_f0`), and a given
        `f0` only names the voices, highest first.

    Returns:
      {source: float32 [channels, samples]}, the input's channel count, length and rate.

    Raises:
      GensepError: unknown method, or a needed option missing.
      AudioError: a mixture that is empty, silent, non-finite or has too many channels, or
        references whose shape differs from the mixture's.
    """
    spec = get_method(method)
    mixture = check_mixture(mixture, sample_rate)
    f0_method = options.pop("f0_method", None)
    score, f0_model = options.pop("score", None), options.pop("f0_model", None)
    if f0_method not in (None, "file"):
        if "f0" not in spec.needs:
            raise GensepError(f"method {method!r} takes no F0, so no f0_method={f0_method!r}")
        from gensep.f0.estimate import estimate_f0

        # Given F0s (a dataset's truth) only lend their names, highest voice first.
        given = options.get("f0")
        options["f0"] = estimate_f0(
            mixture,
            sample_rate,
            f0_method,
            names=list(given) if given else None,
            score=score,
            model=f0_model,
        )
    missing = [need for need in spec.needs if options.get(need) is None]
    if missing:
        raise GensepError(
            f"method {method!r} needs {', '.join(f'{m}=' for m in missing)} "
            f"({_NEED_HELP[missing[0]]})"
        )
    if options.get("references") is not None:
        options["references"] = check_references(options["references"], mixture.shape)
    estimates = spec.load()(mixture, sample_rate, **options)
    return _check_estimates(estimates, mixture.shape, spec)


_NEED_HELP = {
    "references": "the true sources, {name: [channels, samples]}, as an oracle needs them",
    "f0": "one F0 track per source, {name: (times_s, hz)}, 0 Hz where unvoiced",
    "model": "the path of a trained model",
    "priors": "a prior registry folder, <DIR>/<name>/{weights.npz, card.json} "
    "(gensep priors add NAME --data ... --config ... --priors DIR)",
}


def check_mixture(mixture: np.ndarray, sample_rate: int) -> np.ndarray:
    """The mixture as float32 [channels, samples], or an AudioError saying what is wrong."""
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, int) or sample_rate <= 0:
        raise AudioError(f"sample_rate {sample_rate!r} is not a positive integer number of Hz")
    mixture = np.asarray(mixture)
    if mixture.ndim == 1:
        mixture = mixture[None]
    if mixture.ndim != 2:
        raise AudioError(f"mixture shape {mixture.shape} is not [channels, samples]")
    if not 1 <= mixture.shape[0] <= MAX_CHANNELS:
        raise AudioError(
            f"mixture has {mixture.shape[0]} channels (shape {mixture.shape}); pass "
            f"[channels, samples] with 1 to {MAX_CHANNELS} channels (transposed input?)"
        )
    if mixture.shape[1] == 0:
        raise AudioError("mixture has 0 samples")
    if not np.all(np.isfinite(mixture)):
        raise AudioError("mixture contains NaN or inf samples")
    if not np.any(mixture):
        raise AudioError("mixture is silent (all samples zero): there is nothing to separate")
    return np.ascontiguousarray(mixture, dtype=np.float32)


def check_references(
    references: Mapping[str, np.ndarray], shape: tuple[int, int]
) -> dict[str, np.ndarray]:
    """References as {name: float32 [channels, samples]} of the mixture's shape."""
    if not references:
        raise AudioError("references is empty: pass {source name: [channels, samples]}")
    out = {}
    for name, audio in references.items():
        audio = np.asarray(audio, dtype=np.float32)
        if audio.ndim == 1:
            audio = audio[None]
        if audio.shape != tuple(shape):
            raise AudioError(
                f"reference {name!r} has shape {audio.shape}, the mixture {tuple(shape)}; "
                "pass references at the mixture's rate, channel count and length"
            )
        out[name] = audio
    return out


def _check_estimates(
    estimates: Mapping[str, np.ndarray], shape: tuple[int, int], spec: Method
) -> dict[str, np.ndarray]:
    out = {}
    for name, audio in estimates.items():
        audio = np.asarray(audio, dtype=np.float32)
        if audio.shape != tuple(shape):
            raise GensepError(
                f"method {spec.name!r} returned {name!r} of shape {audio.shape}, expected the "
                f"mixture's {tuple(shape)} (a bug in the method)"
            )
        if not np.all(np.isfinite(audio)):
            raise GensepError(f"method {spec.name!r} returned NaN or inf in {name!r}")
        out[name] = audio
    if spec.stems is not None and tuple(out) != spec.stems:
        raise GensepError(f"method {spec.name!r} returned {tuple(out)}, declared {spec.stems}")
    return out
