"""The confidence benchmark (scripts/bench_tempo_confidence.py) bins confidences, counts the misses an alternative
rescues and the hits it flags at each threshold, and picks a threshold by its written rule. Nothing is downloaded."""

from __future__ import annotations

from scripts.bench_tempo_confidence import (
    Estimate,
    ThresholdRow,
    choose_threshold,
    confidence_bins,
    held_out_supports,
    key_bins,
    threshold_rows,
)
from sidecar.domain import KeySignature

A_MINOR = KeySignature.parse("A minor")


def _estimate(
    bpm: float | None,
    confidence: float,
    alternative: float | None,
    key: str | None = "A minor",
    key_confidence: float = 0.9,
) -> Estimate:
    return Estimate(
        name="t",
        essentia_bpm=100.0,
        bpm=bpm,
        confidence=confidence,
        alternative=alternative,
        key=KeySignature.parse(key) if key else None,
        key_confidence=key_confidence,
        essentia_key=A_MINOR,
    )


ESTIMATES = [
    _estimate(100.0, 0.95, 50.0),  # hit, confident
    _estimate(101.0, 0.7, 202.0),  # hit, would be flagged at 0.75
    _estimate(200.0, 0.5, 100.0),  # miss rescued at 0.75
    _estimate(200.0, 0.88, 99.0),  # miss rescued only from 0.9
    _estimate(150.0, 0.96, 75.0),  # miss with a wrong alternative
    _estimate(None, 0.0, None),  # no tempo: a miss no alternative rescues
]


def test_confidence_bins_count_hits_and_right_alternatives_per_bin() -> None:
    assert confidence_bins(ESTIMATES) == [
        "| <0.6 | 2 | 0.00 (0) | 2 | 1 |",
        "| 0.6-0.75 | 1 | 1.00 (1) | 0 | 0 |",
        "| 0.75-0.9 | 1 | 0.00 (0) | 1 | 1 |",
        "| >=0.9 | 2 | 0.50 (1) | 1 | 0 |",
    ]


def test_threshold_rows_count_rescued_misses_and_flagged_hits() -> None:
    rows = {r.threshold: r for r in threshold_rows(ESTIMATES)}
    assert rows[0.75] == ThresholdRow(0.75, misses=4, rescued=1, hits=2, flagged=1)
    assert rows[0.85] == ThresholdRow(0.85, misses=4, rescued=1, hits=2, flagged=1)
    assert rows[0.9] == ThresholdRow(0.9, misses=4, rescued=2, hits=2, flagged=1)
    assert rows[0.97] == ThresholdRow(0.97, misses=4, rescued=2, hits=2, flagged=2)


def _row(threshold: float, rescued: int, flagged: int) -> ThresholdRow:
    return ThresholdRow(threshold, misses=5, rescued=rescued, hits=40, flagged=flagged)


def test_the_rule_takes_the_lowest_threshold_rescuing_80_percent_within_the_flagged_share() -> None:
    rows = [_row(0.75, 1, 2), _row(0.8, 3, 4), _row(0.85, 4, 6), _row(0.9, 5, 8), _row(0.95, 5, 20)]
    assert choose_threshold(rows) == 0.85
    too_many_flagged = [_row(0.75, 1, 2), _row(0.8, 3, 11), _row(0.9, 4, 12)]
    assert choose_threshold(too_many_flagged) == 0.75
    short_of_80 = [_row(0.75, 1, 2), _row(0.8, 2, 3), _row(0.85, 3, 4), _row(0.9, 3, 5), _row(0.95, 3, 20)]
    assert choose_threshold(short_of_80) == 0.85
    assert held_out_supports(rows, 0.85)
    assert not held_out_supports(rows, 0.75)
    assert not held_out_supports(rows, 0.95)  # 20 of 40 hits flagged


def test_key_bins_score_against_essentia_with_no_key_as_zero() -> None:
    estimates = [
        _estimate(100.0, 0.9, None, "A minor", 0.9),
        _estimate(100.0, 0.9, None, "C major", 0.8),  # relative: MIREX 0.3
        _estimate(100.0, 0.9, None, None, 0.0),
    ]
    assert key_bins(estimates) == [
        "| <0.25 | 1 | 0.00 (0) | 0.000 | 1 |",
        "| 0.25-0.5 | 0 | - | - | 0 |",
        "| 0.5-0.75 | 0 | - | - | 0 |",
        "| >=0.75 | 2 | 0.50 (1) | 0.650 | 0 |",
    ]
