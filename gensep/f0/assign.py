"""Assigning per-frame pitch candidates to N voices ordered high to low: one Viterbi over
the voices jointly (the last step of `gensep.f0.salience.salience_f0`).

A state gives each voice one of the frame's candidates or none (unvoiced), voiced voices
strictly ordered high to low, so a state is a choice of voiced voices and of as many
candidates: C(voices + candidates, voices) states (210 for 4 voices and 6 candidates). A
state scores, per voiced voice, its candidate's log salience over the voicing threshold
and a range prior; a move between frames costs, per voice, `jump_cost` per semitone of
pitch jump (capped at an octave) or `switch_cost` per voicing change. Each frame keeps the
`BEAM` states with the best score, so a step costs BEAM x BEAM whatever the state count.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from gensep.errors import GensepError

RANGE_WIDTH_CENTS = 150.0  # range prior: cost ((cents outside the range) / this) ** 2
BEAM = 48  # joint states kept per frame (those with the best emission)
MAX_STATES = 2000  # C(n_voices + n_candidates, n_voices) at most


def joint_states(n_voices: int, n_candidates: int) -> np.ndarray:
    """Every assignment of voices to candidates sorted high to low -> [S, N] candidate
    index per voice, `n_candidates` = unvoiced; voiced indices increase with the voice."""
    states = []
    for n_voiced in range(min(n_voices, n_candidates) + 1):
        for voices in itertools.combinations(range(n_voices), n_voiced):
            for picks in itertools.combinations(range(n_candidates), n_voiced):
                state = [n_candidates] * n_voices
                for voice, pick in zip(voices, picks, strict=True):
                    state[voice] = pick
                states.append(state)
    return np.array(states, np.int64)


def assign_voices(
    cents: np.ndarray,
    strength: np.ndarray,
    ranges_cents: Sequence[tuple[float, float]],
    jump_cost: float,
    switch_cost: float,
) -> np.ndarray:
    """Each voice's pitch per frame by the joint Viterbi of the module doc.

    Args:
      cents: Candidate pitches (cents), NaN = none. Shape [T, K].
      strength: Their salience over the voicing threshold. Shape [T, K].
      ranges_cents: (low, high) cents per voice, highest voice first.
      jump_cost: Cost per semitone of jump (capped at 12 semitones).
      switch_cost: Cost of a voiced <-> unvoiced change.

    Returns:
      Pitch (cents) per voice and frame, NaN = unvoiced. Shape [N, T].
    """
    n_frames, n_cand = cents.shape
    n_voices = len(ranges_cents)
    states = joint_states(n_voices, n_cand)  # [S, N]
    if len(states) > MAX_STATES:
        raise GensepError(
            f"{n_voices} voices and {n_cand} candidates make {len(states)} joint states "
            f"(at most {MAX_STATES}); pass fewer n_candidates"
        )
    order = np.argsort(np.nan_to_num(-cents, nan=np.inf), axis=1, kind="stable")
    cents = np.take_along_axis(cents, order, axis=1)  # high to low, NaN last
    strength = np.take_along_axis(strength, order, axis=1)
    present = ~np.isnan(cents)
    filled = np.where(present, cents, 0.0)
    # Per voice and candidate: log salience over threshold and the range prior; the
    # unvoiced column scores 0.
    emission = np.zeros((n_voices, n_frames, n_cand + 1))
    for v, (lo, hi) in enumerate(ranges_cents):
        outside = np.maximum(lo - filled, 0.0) + np.maximum(filled - hi, 0.0)
        score = np.log(np.maximum(strength, 1e-6)) - (outside / RANGE_WIDTH_CENTS) ** 2
        emission[v, :, :n_cand] = np.where(present, score, -np.inf)
    state_emission = sum(emission[v][:, states[:, v]] for v in range(n_voices))  # [T, S]
    # Per pair of candidates (previous, next): cost of one voice going from one to the
    # other; the same for every voice.
    jump = np.abs(filled[1:, None, :] - filled[:-1, :, None]) / 100.0  # [T-1, K, K]
    step = np.full((n_frames - 1, n_cand + 1, n_cand + 1), -switch_cost)
    step[:, :n_cand, :n_cand] = -jump_cost * np.minimum(jump, 12.0)
    step[:, n_cand, n_cand] = 0.0
    path = _viterbi(state_emission, step, states)
    chosen = states[path]  # [T, N]
    picked = np.take_along_axis(filled, np.minimum(chosen, n_cand - 1), axis=1)
    return np.where(chosen < n_cand, picked, np.nan).T


def _viterbi(emission: np.ndarray, step: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Best state sequence [T] over the `BEAM` states of each frame with the best emission.

    emission [T, S]; step [T-1, K+1, K+1] is one voice's transition score between
    candidate indices; a joint state's is the sum over its voices (states [S, N]).
    """
    n_frames, n_states = emission.shape
    beam = min(BEAM, n_states)
    keep = np.argpartition(-emission, beam - 1, axis=1)[:, :beam]  # [T, B]
    kept = np.take_along_axis(emission, keep, axis=1).astype(np.float32)
    picks = states[keep]  # [T, B, N]
    back = np.zeros((n_frames, beam), np.int32)
    score = kept[0]
    columns = np.arange(beam)
    chunk = max(1, 2**21 // beam**2)
    for start in range(1, n_frames, chunk):
        stop = min(start + chunk, n_frames)
        frames = np.arange(start - 1, stop - 1)[:, None, None]
        moves = sum(  # [C, B_prev, B_next]
            step[frames, picks[start - 1 : stop - 1, :, None, v], picks[start:stop, None, :, v]]
            for v in range(states.shape[1])
        ).astype(np.float32)
        for t in range(start, stop):
            total = score[:, None] + moves[t - start]
            back[t] = np.argmax(total, axis=0)
            score = total[back[t], columns] + kept[t]
    path = np.zeros(n_frames, np.int64)
    path[-1] = np.argmax(score)
    for t in range(n_frames - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return keep[np.arange(n_frames), path]
