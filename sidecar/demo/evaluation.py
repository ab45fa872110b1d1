"""Accuracy measures used by the tests and the benchmark scripts (standard MIR definitions)."""

from __future__ import annotations

from sidecar.domain import KeySignature


def tempo_within(estimate_bpm: float | None, truth_bpm: float, *, tolerance: float = 0.04) -> bool:
    """Acc1: the estimate is within ``tolerance`` (a fraction, 4 % by default) of the true tempo."""
    return estimate_bpm is not None and abs(estimate_bpm - truth_bpm) <= tolerance * truth_bpm


def tempo_within_octave(estimate_bpm: float | None, truth_bpm: float, *, tolerance: float = 0.04) -> bool:
    """Acc2: Acc1 for the estimate or for the truth times 1/3, 1/2, 2 or 3 (octave errors forgiven)."""
    return any(tempo_within(estimate_bpm, truth_bpm * f, tolerance=tolerance) for f in (1, 2, 3, 1 / 2, 1 / 3))


def tempo_within_bpm(estimate_bpm: float | None, truth_bpm: float, *, tolerance_bpm: float = 0.5) -> bool:
    """The estimate is within ``tolerance_bpm`` beats per minute of the true tempo."""
    return estimate_bpm is not None and abs(estimate_bpm - truth_bpm) <= tolerance_bpm


def mirex_key_score(estimate: KeySignature | None, truth: KeySignature) -> float:
    """MIREX key score: 1 exact, 0.5 a fifth either way (same mode), 0.3 relative, 0.2 parallel, else 0."""
    if estimate is None:
        return 0.0
    if estimate == truth:
        return 1.0
    interval = (estimate.pitch_class - truth.pitch_class) % 12
    if estimate.mode == truth.mode and interval in (5, 7):
        return 0.5
    if estimate.mode != truth.mode:
        relative = 9 if truth.mode == "major" else 3  # major -> its relative minor is 9 semitones up
        if interval == relative:
            return 0.3
        if interval == 0:
            return 0.2
    return 0.0
