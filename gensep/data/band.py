"""Rendered band set: procedurally composed 4-stem songs named like MUSDB18's targets
(vocals, drums, bass, other), a stand-in where MUSDB18 is absent. Rendered, not recorded:
label results on it as such.

On disk (MUSDB layout, PCM_16 stereo WAV at `sample_rate`):
`<out>/{train,test}/band_<split>_<NNN>/{mixture,vocals,drums,bass,other}.wav`, the vocal F0
truth `vocals.f0.csv` beside them, and `<out>/meta.json`. The train split is rendered with
TRAIN_SOUNDFONT, the test split with TEST_SOUNDFONT (see `gensep.data.midi`).

Mixing: FluidSynth renders each stem alone (chorus and reverb off), cut to the song length
with a 30 ms fade-out, and placed by a seeded constant-power balance of its stereo channels
(`pan_gains`; MIDI CC10 is not used: on the soundfonts' stereo samples its effect is weak
and differs between soundfonts). The vocals pass a gate (`vocal_gate`) that fades each note
out within GATE_RELEASE_S of its note-off, so the rests between phrases are silent as a
singer's are, not filled by the voice patches' long releases. Each stem is set to a seeded
level relative to the vocals (measured as the RMS of its louder half of 100 ms frames); then
one gain per track scales all four and each is rounded to the int16 grid. The mixture is the sum
of the rounded stems, so `sum(stems) == mixture` holds exactly in the files, and its peak is
at most MIX_PEAK.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from tqdm import tqdm

from gensep import atomic
from gensep.data.band_compose import BEND_RANGE_CENTS, STEMS, Song, compose_song
from gensep.data.layout import sum_error, write_track
from gensep.data.midi import (
    TEST_SOUNDFONT,
    TRAIN_SOUNDFONT,
    RenderError,
    find_soundfont,
    fluidsynth_version,
    render_pretty_midi,
    soundfont_sha256,
)
from gensep.data.track import F0Track, Track

SPLITS = {"train": TRAIN_SOUNDFONT, "test": TEST_SOUNDFONT}
MIX_PEAK = 0.9
FADE_S = 0.03
# Stem levels (dB) relative to the vocals, drawn uniformly per track.
LEVELS_DB = {
    "vocals": (0.0, 0.0),
    "drums": (-3.0, 0.0),
    "bass": (-5.0, -1.0),
    "other": (-7.0, -2.0),
}
GATE_RELEASE_S = 0.3
F0_HOP_S = 0.01
F0_WINDOW_S = 0.02
RELEASE_DB = 30.0
F0_RULE = (
    "Frames at t = 0, 0.01, ... s. A frame is voiced with a note's pitch (MIDI note plus the "
    "pitch bend in force at t, +-2 semitone range) from its note-on up to its note-off, and "
    "after the note-off for as long as, frame after frame without a gap and before the next "
    f"note-on, the vocals stem's RMS in a {F0_WINDOW_S * 1000:.0f} ms window centred on t "
    f"stays within {RELEASE_DB:.0f} dB of that note's loudest frame (its ringing release). "
    "Every other frame is 0 Hz. (The vocals are gated to silence within "
    f"{GATE_RELEASE_S} s of each note-off, so releases are short.)"
)


def render_band(
    out: str | Path,
    n_train: int,
    n_test: int,
    seed: int = 0,
    sample_rate: int = 44100,
    min_seconds: float = 10,
    max_seconds: float = 30,
    progress: bool = True,
    overwrite: bool = False,
) -> dict:
    """Compose and render the band set into `out` (see the module docstring).

    Args:
      out: Output root folder (created).
      n_train, n_test: Number of songs per split (>= 0, not both 0).
      seed: Seed (>= 0); song i of a split depends only on (seed, split, i).
      sample_rate: Rate of every file (Hz), 8000..96000.
      min_seconds, max_seconds: Song lengths (s) are uniform in [min, max], 2 <= min <= max
        <= 600.
      progress: Show a tqdm bar counted in audio seconds.
      overwrite: Re-render tracks whose folder already holds mixture.wav (these are
        otherwise kept) and replace a meta.json written with other settings.

    Returns:
      The metadata written to `<out>/meta.json`: settings, soundfonts with SHA-256,
      FluidSynth version, F0 rule, and per track its plan, gain, levels and the max abs
      difference between the sum of the stems and the mixture as read back from disk.

    Raises:
      ValueError: bad arguments, or `out` holds a meta.json with other settings.
      RenderError: FluidSynth or a soundfont is missing, or a render failed.
    """
    _check_args(n_train, n_test, seed, sample_rate, min_seconds, max_seconds)
    out = Path(out)
    settings = {"seed": int(seed), "sample_rate": int(sample_rate),
                "min_seconds": float(min_seconds), "max_seconds": float(max_seconds)}  # fmt: skip
    previous = _previous_tracks(out, settings, overwrite)
    fonts = {split: find_soundfont(name) for split, name in SPLITS.items()}
    jobs = []
    for split_index, (split, count) in enumerate((("train", n_train), ("test", n_test))):
        width = max(3, len(str(count - 1)))
        for index in range(count):
            rng = np.random.default_rng([seed, split_index, index])
            song = compose_song(rng, float(rng.uniform(min_seconds, max_seconds)))
            levels = {stem: round(float(rng.uniform(*LEVELS_DB[stem])), 2) for stem in STEMS}
            jobs.append((split, f"band_{split}_{index:0{width}d}", song, levels))
    tracks = {}
    total = sum(job[2].seconds for job in jobs)
    with tqdm(total=total, unit="s", unit_scale=True, desc="band", disable=not progress) as bar:
        for split, name, song, levels in jobs:
            folder = out / split / name
            mix = {"levels_db": levels, "gain": previous.get(name, {}).get("gain")}
            if overwrite or not (folder / "mixture.wav").is_file():
                track, mix["gain"] = render_song(song, name, fonts[split], sample_rate, levels)
                write_track(out, split, track)
            tracks[name] = {
                "split": split,
                **song.plan,
                **mix,
                "max_abs_error": sum_error(folder, STEMS),
            }
            bar.update(song.seconds)
    for name, entry in previous.items():  # tracks of earlier calls still on disk
        if name not in tracks and (out / entry.get("split", "?") / name / "mixture.wav").is_file():
            tracks[name] = entry
    meta = {
        "generator": "gensep.data.band.render_band", **settings, "stems": list(STEMS),
        "fluidsynth": fluidsynth_version(),
        "soundfonts": {split: {"file": path.name, "sha256": soundfont_sha256(path)}
                       for split, path in fonts.items()},
        "mix_peak": MIX_PEAK, "f0": {"file": "vocals.f0.csv", "hop_s": F0_HOP_S, "rule": F0_RULE},
        "max_abs_error": max(t["max_abs_error"] for t in tracks.values()),
        "tracks": dict(sorted(tracks.items())),
    }  # fmt: skip
    atomic.write_json(out / "meta.json", meta)
    return meta


def render_song(
    song: Song, name: str, soundfont: str | Path, sample_rate: int, levels_db: dict[str, float]
) -> tuple[Track, float]:
    """Render a song's stems and mix them (see the module docstring).

    Returns:
      (track, gain): stems and mixture float32 [2, round(seconds * sample_rate)] on the
      int16 grid, vocal F0 truth; and the common gain applied to the leveled stems.
    """
    length = round(song.seconds * sample_rate)
    with ThreadPoolExecutor(len(STEMS)) as pool:  # one FluidSynth process per stem
        rendered = pool.map(
            lambda s: render_pretty_midi(song.midi[s], soundfont, sample_rate), STEMS
        )
        audio = dict(zip(STEMS, rendered, strict=True))
    fade = np.ones(length)
    fade_n = min(length, round(FADE_S * sample_rate))
    fade[length - fade_n :] = np.cos(np.linspace(0, np.pi / 2, fade_n)) ** 2
    leveled = {}
    for stem, x in audio.items():
        x = np.pad(x[:, :length], ((0, 0), (0, max(0, length - x.shape[1])))) * fade  # [2, N]
        if stem == "vocals":
            x = x * vocal_gate(song.vocal_notes, length, sample_rate)
        x = x * pan_gains(song.plan["pans"][stem])[:, None]
        level = active_rms(x, sample_rate)
        if not level > 0:
            raise RenderError(f"{name}: the {stem} stem rendered silent with {soundfont}")
        leveled[stem] = x.astype(np.float64) * (10 ** (levels_db[stem] / 20) / level)
    # Rounding 4 stems moves the sum by at most 2 LSB: leave that headroom below MIX_PEAK.
    mix_peak = np.abs(sum(leveled.values())).max()
    stem_peak = max(np.abs(x).max() for x in leveled.values())
    gain = float(min((MIX_PEAK - 2 / 32768) / mix_peak, (32767 / 32768) / stem_peak))
    stems = {s: (np.round(x * gain * 32768) / 32768).astype(np.float32) for s, x in leveled.items()}
    mixture = np.sum([stems[s].astype(np.float64) for s in STEMS], axis=0).astype(np.float32)
    f0 = vocal_f0(song.vocal_notes, song.vocal_bends, stems["vocals"], sample_rate)
    return Track(name, sample_rate, mixture, stems, {"vocals": f0}), gain


def vocal_gate(notes: np.ndarray, length: int, rate: int) -> np.ndarray:
    """Gain [length] that is 1 while a note sounds, rises over 5 ms before its onset and
    falls (cos^2) to 0 over GATE_RELEASE_S after its offset: the max over the notes.

    Args:
      notes: [notes, 3]: onset (s), offset (s), MIDI pitch.
      length: Samples.
      rate: Sample rate (Hz).
    """
    gate = np.zeros(length)
    for onset, offset, _ in notes:
        low = min(length, max(0, math.floor((onset - 0.005) * rate)))
        high = min(length, math.ceil((offset + GATE_RELEASE_S) * rate) + 1)
        t = np.arange(low, high) / rate  # the note's own envelope is 0 outside
        rise = np.clip((t - onset) / 0.005 + 1, 0, 1)
        fall = np.cos(np.pi / 2 * np.clip((t - offset) / GATE_RELEASE_S, 0, 1)) ** 2
        np.maximum(gate[low:high], np.minimum(rise, fall), out=gate[low:high])
    return gate


def pan_gains(pan: float) -> np.ndarray:
    """Constant-power left/right gains [2] for pan -1 (left) .. 1 (right); (1, 1) at 0, so
    a centred mono source keeps its power anywhere."""
    angle = np.pi / 4 * (1 + float(np.clip(pan, -1, 1)))
    return np.sqrt(2) * np.array([np.cos(angle), np.sin(angle)])


def active_rms(x: np.ndarray, sample_rate: int, frame_s: float = 0.1) -> float:
    """RMS of the louder half of the 100 ms frames of x [channels, samples]: a level that
    rests and the fade-out do not pull down."""
    frame = max(1, round(frame_s * sample_rate))
    count = max(1, x.shape[-1] // frame)
    power = np.mean(x[:, : count * frame].reshape(x.shape[0], count, -1) ** 2, axis=(0, 2))
    return float(np.sqrt(np.mean(np.sort(power)[count // 2 :])))


def vocal_f0(notes: np.ndarray, bends: np.ndarray, vocals: np.ndarray, rate: int) -> F0Track:
    """F0 truth of the vocals at a 10 ms hop by F0_RULE.

    Args:
      notes: [notes, 3]: onset (s), offset (s), MIDI pitch; monophonic, sorted.
      bends: [events, 2]: time (s), pitch-bend value (-8192..8191 = -+2 semitones).
      vocals: The rendered vocals stem [channels, samples].
      rate: Its sample rate (Hz).

    Returns:
      (times_s [frames], hz [frames]) with times 0, 0.01, ... below the stem's duration.
    """
    length = vocals.shape[-1]
    times = np.arange(math.ceil(length / (rate * F0_HOP_S))) * F0_HOP_S
    power = np.concatenate([[0.0], np.cumsum(np.mean(vocals.astype(np.float64) ** 2, axis=0))])
    centre, half = np.round(times * rate).astype(int), round(F0_WINDOW_S * rate / 2)
    low, high = np.maximum(centre - half, 0), np.minimum(centre + half, length)
    rms = np.sqrt((power[high] - power[low]) / np.maximum(high - low, 1))
    index = np.searchsorted(bends[:, 0], times, side="right") - 1
    cents = np.where(index >= 0, bends[np.maximum(index, 0), 1], 0.0) * BEND_RANGE_CENTS / 8192
    hz = np.zeros_like(times)
    for i, (onset, offset, pitch) in enumerate(notes):
        next_onset = notes[i + 1, 0] if i + 1 < len(notes) else np.inf
        voiced = (times >= onset) & (times < offset)
        first = int(np.searchsorted(times, offset))
        level = rms[voiced].max() if voiced.any() else rms[min(first, len(times) - 1)]
        frame = first
        while frame < len(times) and times[frame] < next_onset:
            if rms[frame] < level * 10 ** (-RELEASE_DB / 20):
                break
            voiced[frame], frame = True, frame + 1
        hz[voiced] = 440.0 * 2 ** ((pitch - 69 + cents[voiced] / 100) / 12)
    return times, hz


def _previous_tracks(out: Path, settings: dict, overwrite: bool) -> dict:
    """Track entries of an existing meta.json, checked to come from the same settings."""
    path = out / "meta.json"
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
        old = {key: meta[key] for key in settings}
        tracks = dict(meta["tracks"])
    except (ValueError, KeyError, TypeError) as err:
        if overwrite:
            return {}
        raise ValueError(f"{path}: unreadable ({err}); delete it or pass overwrite=True") from err
    if old != settings:
        if overwrite:
            return {}
        raise ValueError(
            f"{path}: written with {old}, not {settings}: use the same settings, another "
            "folder, or overwrite=True"
        )
    return tracks


def _check_args(
    n_train: int, n_test: int, seed: int, sample_rate: int, min_seconds: float, max_seconds: float
) -> None:
    def is_int(value: object) -> bool:
        return isinstance(value, int | np.integer) and not isinstance(value, bool)

    for label, value in (("n_train", n_train), ("n_test", n_test), ("seed", seed)):
        if not is_int(value) or value < 0:
            raise ValueError(f"{label}={value!r}: must be an integer >= 0")
    if n_train + n_test == 0:
        raise ValueError("n_train=0 and n_test=0: nothing to render; ask for at least one song")
    if not is_int(sample_rate) or not 8000 <= sample_rate <= 96000:
        raise ValueError(f"sample_rate={sample_rate!r}: must be an integer in 8000..96000 Hz")
    for label, value in (("min_seconds", min_seconds), ("max_seconds", max_seconds)):
        if not isinstance(value, int | float) or not 2 <= value <= 600:
            raise ValueError(f"{label}={value!r}: must be a number of seconds in 2..600")
    if min_seconds > max_seconds:
        raise ValueError(f"min_seconds={min_seconds} > max_seconds={max_seconds}: swap them")
