"""MIDI -> audio with FluidSynth and a General MIDI soundfont (Debian packages, installed
by scripts/setup.sh). Chorus and reverb are off: FluidSynth enables both by default, and
they would smear the stems and their F0 truth.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from gensep.errors import GensepError

SOUNDFONT_DIRS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/soundfonts"))
# Training sets are rendered with one soundfont and test sets with another.
TRAIN_SOUNDFONT = "FluidR3_GM.sf2"  # Debian fluid-soundfont-gm
TEST_SOUNDFONT = "TimGM6mb.sf2"  # Debian timgm6mb-soundfont
_PACKAGES = {TRAIN_SOUNDFONT: "fluid-soundfont-gm", TEST_SOUNDFONT: "timgm6mb-soundfont"}


class RenderError(GensepError):
    """The synthesiser or a soundfont is missing, or rendering failed."""


def find_soundfont(name_or_path: str) -> Path:
    """A soundfont file by path or by file name in the system soundfont folders."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    for folder in SOUNDFONT_DIRS:
        if (folder / name_or_path).is_file():
            return folder / name_or_path
    package = _PACKAGES.get(path.name, "a General MIDI soundfont package")
    raise RenderError(
        f"soundfont {name_or_path!r} not found in {[str(d) for d in SOUNDFONT_DIRS]}: "
        f"install Debian's {package} (scripts/setup.sh does) or pass a path to an .sf2 file"
    )


def soundfont_sha256(path: str | Path) -> str:
    """SHA-256 of a soundfont file (recorded in dataset metadata)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fluidsynth_binary() -> str:
    binary = shutil.which("fluidsynth")
    if binary is None:
        raise RenderError(
            "the fluidsynth program is not installed: install Debian's fluidsynth "
            "(scripts/setup.sh does)"
        )
    return binary


def fluidsynth_version() -> str:
    """The installed FluidSynth's version ("2.3.1"), or its first output line."""
    result = subprocess.run(
        [fluidsynth_binary(), "--version"], capture_output=True, text=True, check=False
    )
    found = re.search(r"version\s+(\S+)", result.stdout)
    return found.group(1) if found else result.stdout.strip().split("\n")[0]


def render_midi_file(
    midi_path: str | Path, soundfont: str | Path, sample_rate: int, gain: float = 0.5
) -> np.ndarray:
    """Render a MIDI file offline with FluidSynth (chorus and reverb off).

    Args:
      midi_path: A standard MIDI file.
      soundfont: Soundfont path or name (see `find_soundfont`).
      sample_rate: Output rate (Hz).
      gain: FluidSynth master gain (its default 0.2 is quiet; > 1 risks clipping).

    Returns:
      float32 [2, samples] (FluidSynth renders stereo), including the release tails.
    """
    soundfont = find_soundfont(str(soundfont))
    with tempfile.TemporaryDirectory(prefix="gensep-render-") as tmp:
        out = Path(tmp) / "out.wav"
        command = [
            fluidsynth_binary(), "-n", "-i", "-q", "-C", "0", "-R", "0",
            "-g", str(gain), "-r", str(int(sample_rate)), "-O", "float", "-F", str(out),
            str(soundfont), str(midi_path),
        ]  # fmt: skip
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 or not out.is_file():
            raise RenderError(
                f"fluidsynth failed on {midi_path} (exit {result.returncode}): "
                f"{result.stderr.strip()[:500]}"
            )
        audio, rate = sf.read(str(out), dtype="float32", always_2d=True)
    if rate != sample_rate:
        raise RenderError(f"fluidsynth wrote {rate} Hz instead of {sample_rate} Hz")
    return np.ascontiguousarray(audio.T)


def render_pretty_midi(midi, soundfont: str | Path, sample_rate: int, gain: float = 0.5):
    """Render a `pretty_midi.PrettyMIDI` object; see `render_midi_file`. float32 [2, samples]."""
    with tempfile.TemporaryDirectory(prefix="gensep-midi-") as tmp:
        path = Path(tmp) / "in.mid"
        midi.write(str(path))
        return render_midi_file(path, soundfont, sample_rate, gain)
