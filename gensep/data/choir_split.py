"""Which of music21's Bach chorales the rendered choir set uses, and in which split.

Only four-part scores whose parts are named Soprano, Alto, Tenor, Bass are used (365 of
music21 10.5's 433 Bach files; the rest have instrumental parts, two sopranos, unnamed
Humdrum parts, or are Roman-numeral analyses).

No tune in both splits. Bach harmonised many hymn tunes several times, so chorales are
grouped by tune and whole groups go to one split. Two chorales share a group when any of
these links them (single-link: groups are connected components):
  1. the same title in music21's Riemenschneider/Kalmus list (`ChoraleListRKBWV`, which
     names most chorales by their tune; titles are normalised: case, accents, punctuation);
  2. the same tune key: the intervals (semitones) between the first `KEY_NOTES` soprano
     pitches, repeated pitches merged, so it is transposition invariant;
  3. near-identical openings: the first `OPENING_NOTES` soprano pitches (repeats merged),
     each taken relative to the soprano's last note, within `MAX_EDITS` edits
     (Levenshtein). This catches variants that the exact key misses: passing notes, a
     changed upbeat, major/minor versions.
Bach10's ten chorales, and every group linked to them (by BWV number, by title, or by
the openings of the five Bach10 MIDI scores we have), are excluded from both splits.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
import unicodedata
import zipfile
from collections.abc import Sequence
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

PART_NAMES = ("Soprano", "Alto", "Tenor", "Bass")
KEY_NOTES = 8
OPENING_NOTES = 12
MAX_EDITS = 2
TEST_FRACTION = 0.2

# Bach10 piece, its BWV number, and its title as spelled in music21's RKBWV list.
BACH10 = (
    ("01-AchGottundHerr", "255", "Ach Gott und Herr"),
    ("02-AchLiebenChristen", "256", "Ach lieben Christen, seid getrost"),
    ("03-ChristederdubistTagundLicht", "274", "Christe, der du bist Tag und Licht"),
    ("04-ChristeDuBeistand", "275", "Christe, du Beistand deiner Kreuzgemeine"),
    ("05-DieNacht", "296", "Die Nacht ist kommen"),
    ("06 Die Sonne hat sich mit ihrem Glanz", "297", "Die Sonn’ hat sich mit ihrem Glanz"),
    ("07 Herr Gott dich loben alle wir", "326", "Herr Gott, dich loben alle wir"),
    ("08 Vor deinen Thron", "327", "Vor deinen Thron tret’ ich hiermit"),
    ("09 Jesus meine Zuversicht", "365", "Jesus, meine Zuversicht"),
    ("10 Nun bitten wir den heiligen Geist", "385", "Nun bitten wir den heiligen Geist"),
)
# Soprano (top part) of the Bach10 MIDI scores 01-05: first OPENING_NOTES pitches with
# repeats merged, and the last pitch (tests/data/test_choir.py re-derives them from the
# .mid files when they are present).
BACH10_MIDI_OPENINGS = {
    "01-AchGottundHerr": ((72, 71, 69, 67, 69, 71, 72, 74, 72, 71, 69, 71), 72),
    "02-AchLiebenChristen": ((72, 69, 71, 72, 74, 76, 74, 76, 77, 74, 72, 71), 69),
    "03-ChristederdubistTagundLicht": ((67, 70, 67, 65, 67, 69, 70, 69, 67, 70, 65, 67), 67),
    "04-ChristeDuBeistand": ((62, 64, 65, 64, 69, 71, 72, 74, 72, 71, 69, 72), 62),
    "05-DieNacht": ((67, 69, 71, 72, 71, 69, 68, 69, 71, 69, 72, 71), 67),
}


@dataclasses.dataclass(frozen=True)
class Chorale:
    """One usable chorale of the corpus.

    Attributes:
      id: Corpus file stem, e.g. "bwv10.7" (also the track name).
      path: The score file.
      title: Normalised RKBWV title, or None where music21 lists none.
      opening: Soprano MIDI pitches, repeated pitches merged (first OPENING_NOTES).
      final: The soprano's last MIDI pitch.
    """

    id: str
    path: str
    title: str | None
    opening: tuple[int, ...]
    final: int

    @property
    def tune_key(self) -> str:
        return tune_key(self.opening)


@dataclasses.dataclass
class ChoirSplit:
    """The outcome of `split_chorales`.

    Attributes:
      train, test: Chorales in rendering order (round-robin over tune groups, so the first
        tracks of a split cover as many tunes as possible).
      group: {chorale id: tune group name (the smallest id in the group)}.
      excluded: {chorale id: why it is in neither split}.
    """

    train: list[Chorale]
    test: list[Chorale]
    group: dict[str, str]
    excluded: dict[str, str]

    def tunes(self, split: str) -> int:
        return len({self.group[c.id] for c in getattr(self, split)})


def normalise_title(title: str) -> str:
    """Lower case, no accents or punctuation: "Die Sonn’ hat" -> "die sonn hat"."""
    text = unicodedata.normalize("NFKD", title.lower().replace("’", "").replace("'", ""))
    text = "".join(c if c.isalnum() else " " for c in text if not unicodedata.combining(c))
    return " ".join(text.split())


def tune_key(pitches: Sequence[int]) -> str:
    """Intervals between the first KEY_NOTES pitches (repeats merged), e.g. "-2.-2.+5"."""
    merged = _merge_repeats(pitches)[:KEY_NOTES]
    return ".".join(f"{b - a:+d}" for a, b in itertools.pairwise(merged))


@functools.cache
def corpus_index() -> tuple[tuple[Chorale, ...], dict[str, str]]:
    """Scan music21's Bach corpus (about 2 s; cached per process).

    Returns:
      (chorales, skipped): the usable chorales sorted by id, and {file stem: reason} for
      the Bach files that are not four named parts Soprano, Alto, Tenor, Bass.
    """
    from music21 import corpus
    from music21.corpus.chorales import ChoraleListRKBWV

    titles = {bwv: entry["title"] for bwv, entry in ChoraleListRKBWV().byBWV.items()}
    chorales, skipped = [], {}
    for path in sorted(corpus.getComposer("bach"), key=lambda p: p.name):
        stem = path.name.rsplit(".", 1)[0]
        if path.suffix not in (".mxl", ".xml"):
            kind = {".krn": "Humdrum score, parts unnamed", ".rntxt": "Roman-numeral analysis"}
            skipped[stem] = f"{kind.get(path.suffix, path.suffix + ' file')}: no named parts"
            continue
        names, soprano = _scan_musicxml(path)
        if tuple(names) != PART_NAMES:
            skipped[stem] = f"parts {names}, not exactly {list(PART_NAMES)}"
            continue
        merged = _merge_repeats(soprano)
        title = titles.get(stem.removeprefix("bwv"))
        chorales.append(
            Chorale(
                id=stem,
                path=str(path),
                title=normalise_title(title) if title else None,
                opening=tuple(merged[:OPENING_NOTES]),
                final=merged[-1],
            )
        )
    return tuple(chorales), skipped


def split_chorales(
    chorales: Sequence[Chorale], seed: int, test_fraction: float = TEST_FRACTION
) -> ChoirSplit:
    """Exclude Bach10's tunes, then deal whole tune groups to test and train.

    Groups are shuffled with `np.random.default_rng(seed)` and taken into test until it
    holds at least `test_fraction` of the remaining chorales; the rest is train. Pure and
    deterministic given (chorales, seed, test_fraction).
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction {test_fraction!r} must lie strictly between 0 and 1")
    chorales = sorted(chorales, key=lambda c: c.id)
    midi = [(f"bach10:{name}", o, f) for name, (o, f) in BACH10_MIDI_OPENINGS.items()]
    nodes = [(c.id, c.opening, c.final) for c in chorales] + midi
    titles = [c.title for c in chorales] + [None] * len(midi)
    label = _connected_groups(nodes, titles)
    excluded = _bach10_exclusions(chorales, label)
    members: dict[str, list[Chorale]] = {}
    for chorale in chorales:
        if chorale.id not in excluded:
            members.setdefault(label[chorale.id], []).append(chorale)
    names = sorted(members)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    target = test_fraction * sum(len(m) for m in members.values())
    test_groups, count = [], 0
    for name in order:
        if count >= target:
            break
        test_groups.append(name)
        count += len(members[name])
    train_groups = [name for name in order if name not in set(test_groups)]
    group = {c.id: label[c.id] for c in chorales}
    return ChoirSplit(
        _round_robin([members[n] for n in train_groups]),
        _round_robin([members[n] for n in test_groups]),
        group,
        excluded,
    )


def _bach10_exclusions(chorales: Sequence[Chorale], label: dict[str, str]) -> dict[str, str]:
    """{chorale id: reason} for every chorale whose tune group touches a Bach10 chorale."""
    why: dict[str, list[str]] = {}  # tune group -> what ties it to Bach10
    for piece, bwv, title in BACH10:
        short = normalise_title(title)
        for chorale in chorales:
            if chorale.id == f"bwv{bwv}":
                why.setdefault(label[chorale.id], []).append(f"{chorale.id} is Bach10 {piece}")
            elif chorale.title is not None and chorale.title.startswith(short):
                why.setdefault(label[chorale.id], []).append(
                    f"{chorale.id}'s title starts with Bach10 {piece}'s {title!r}"
                )
        node = f"bach10:{piece}"
        if node in label:
            why.setdefault(label[node], []).append(f"opening of Bach10 {piece}.mid")
    return {
        c.id: f"tune group {label[c.id]}: " + "; ".join(why[label[c.id]])
        for c in chorales
        if label[c.id] in why
    }


def _connected_groups(
    nodes: Sequence[tuple[str, Sequence[int], int]], titles: Sequence[str | None]
) -> dict[str, str]:
    """{node id: group name} linking equal titles, equal tune keys and near openings."""
    parent = list(range(len(nodes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(i: int, j: int) -> None:
        parent[root(i)] = root(j)

    for labels in (titles, [tune_key(opening) for _, opening, _ in nodes]):
        first: dict[str, int] = {}
        for i, value in enumerate(labels):
            if value is not None:
                join(i, first.setdefault(value, i))
    relative = np.full((len(nodes), OPENING_NOTES), -1000, np.int64)
    for i, (_, opening, final) in enumerate(nodes):
        relative[i, : len(opening)] = np.asarray(opening) - final
        relative[i, len(opening) :] -= i  # a short opening matches nothing past its end
    rows, cols = np.triu_indices(len(nodes), 1)
    close = _edit_distance(relative[rows], relative[cols]) <= MAX_EDITS
    for i, j in zip(rows[close], cols[close], strict=True):
        join(int(i), int(j))
    name: dict[int, str] = {}
    # Chorale ids name the groups (MIDI nodes only where a group has no chorale).
    for i in sorted(
        range(len(nodes)), key=lambda i: (nodes[i][0].startswith("bach10:"), nodes[i][0])
    ):
        name.setdefault(root(i), nodes[i][0])
    return {node[0]: name[root(i)] for i, node in enumerate(nodes)}


def _edit_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Levenshtein distance between the rows of a and b, both int [pairs, n] -> [pairs]."""
    pairs, n = a.shape
    previous = np.broadcast_to(np.arange(n + 1), (pairs, n + 1)).copy()
    for i in range(1, n + 1):
        current = np.empty_like(previous)
        current[:, 0] = i
        substitute = previous[:, :-1] + (a[:, i - 1 : i] != b)  # [pairs, n]
        for j in range(1, n + 1):
            current[:, j] = np.minimum(
                np.minimum(previous[:, j], current[:, j - 1]) + 1, substitute[:, j - 1]
            )
        previous = current
    return previous[:, n]


def _round_robin(groups: Sequence[Sequence[Chorale]]) -> list[Chorale]:
    """The first member of every group, then the second members, and so on."""
    longest = max((len(g) for g in groups), default=0)
    return [g[r] for r in range(longest) for g in groups if r < len(g)]


def _merge_repeats(pitches: Sequence[int]) -> list[int]:
    return [p for i, p in enumerate(pitches) if i == 0 or p != pitches[i - 1]]


_STEPS = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def _scan_musicxml(path: Path) -> tuple[list[str], list[int]]:
    """(part names, MIDI pitches of the first part's notes) read straight from MusicXML.

    Rests and grace notes are skipped; of a chord the top note is kept. Parsing every
    score with music21 takes ~35 s, this ~2 s; tests check that both agree.
    """
    if path.suffix == ".mxl":
        with zipfile.ZipFile(path) as archive:
            inner = [n for n in archive.namelist() if re.fullmatch(r"[^/]+\.(xml|musicxml)", n)]
            data = archive.read(inner[0])
    else:
        data = path.read_bytes()
    root = ElementTree.fromstring(data)
    names = [(p.findtext("part-name") or "").strip() for p in root.iter("score-part")]
    pitches: list[int] = []
    first = root.find("part")
    for note in first.iter("note") if first is not None else ():
        pitch = note.find("pitch")
        if pitch is None or note.find("grace") is not None:
            continue  # rests, unpitched and grace notes
        midi = (
            12 * (int(pitch.findtext("octave")) + 1)
            + _STEPS[pitch.findtext("step")]
            + round(float(pitch.findtext("alter") or 0))
        )
        if note.find("chord") is not None and pitches:
            pitches[-1] = max(pitches[-1], midi)
        else:
            pitches.append(midi)
    return names, pitches
