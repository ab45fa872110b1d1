"""The accuracy measures themselves."""

from __future__ import annotations

import pytest

from sidecar.demo.evaluation import mirex_key_score, tempo_within, tempo_within_bpm, tempo_within_octave
from sidecar.domain import KeySignature as K


@pytest.mark.parametrize(
    ("estimate", "truth", "score"),
    [
        (K("C", "major"), K("C", "major"), 1.0),
        (K("G", "major"), K("C", "major"), 0.5),
        (K("F", "major"), K("C", "major"), 0.5),
        (K("A", "minor"), K("C", "major"), 0.3),
        (K("C", "major"), K("A", "minor"), 0.3),
        (K("C", "minor"), K("C", "major"), 0.2),
        (K("E", "minor"), K("A", "minor"), 0.5),
        (K("D", "major"), K("C", "major"), 0.0),
        (K("G", "minor"), K("C", "major"), 0.0),
        (None, K("C", "major"), 0.0),
    ],
)
def test_evaluation_mirex_key_score(estimate: K | None, truth: K, score: float) -> None:
    assert mirex_key_score(estimate, truth) == score


def test_evaluation_tempo_measures() -> None:
    assert tempo_within(124.0, 120.0)
    assert not tempo_within(125.0, 120.0)
    assert tempo_within_octave(60.5, 120.0)
    assert not tempo_within_octave(90.0, 120.0)
    assert tempo_within_bpm(120.4, 120.0)
    assert not tempo_within_bpm(117.45, 120.0)
    assert not tempo_within(None, 120.0)
