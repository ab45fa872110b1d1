"""The cue-set benchmark on real recordings (scripts/bench_tempo_cues_real.py) scores each variant on the excerpts
where the peers agree, lists the excerpts whose answer changed, and applies conditions (1) and (2) of its decision
rule. Nothing is downloaded or fitted here."""

from __future__ import annotations

from scripts.bench_tempo_cues_real import Excerpt, Score, decision, differences, same_answer, score


def _excerpt(name: str, essentia: float, cnn: float, v2: float | None, other: float | None) -> Excerpt:
    return Excerpt(name, "pkg", essentia, cnn, {"v2": (v2, 0.9), "other": (other, 0.6)})


EXCERPTS = [
    _excerpt("gain", 90.0, 90.0, 180.0, 90.5),  # agreed: v2 double, other right
    _excerpt("loss", 120.0, 121.0, 120.2, 60.1),  # agreed: v2 right, other half
    _excerpt("same", 100.0, 100.0, 100.0, 101.0),  # within 4 % of each other: the same answer
    _excerpt("none", 80.0, 80.0, 160.0, None),  # agreed: both miss, other gives no tempo
    _excerpt("peers differ", 100.0, 150.0, 100.0, 200.0),  # not in the reference set
]


def test_score_counts_agreed_hits_octave_hits_and_no_tempo() -> None:
    assert score(EXCERPTS, "v2") == Score(agreed=4, hits=2, octave_hits=4, no_tempo=0)
    assert score(EXCERPTS, "other") == Score(agreed=4, hits=2, octave_hits=3, no_tempo=1)
    assert Score(agreed=4, hits=3, octave_hits=4, no_tempo=1).row("x") == "| x | 4 | 3 | 0.750 | 1.000 | 1 |"


def test_same_answer_is_within_four_percent_or_both_none() -> None:
    assert same_answer(None, None)
    assert same_answer(100.0, 103.9)
    assert not same_answer(100.0, 104.5)
    assert not same_answer(None, 100.0)


def test_differences_list_every_changed_excerpt_with_its_effect() -> None:
    rows = differences(EXCERPTS, "v2", "other")
    assert rows == [
        "| gain | yes | 90.0 | 90.0 | 180.0 | 90.5 | 0.60 | gained |",
        "| loss | yes | 120.0 | 121.0 | 120.2 | 60.1 | 0.60 | lost |",
        "| none | yes | 80.0 | 80.0 | 160.0 | None | 0.60 | both miss |",
        "| peers differ | no | 100.0 | 150.0 | 100.0 | 200.0 | 0.60 | - |",
    ]


def test_decision_needs_four_more_pooled_hits_and_no_worse_set() -> None:
    v2 = {"first": Score(47, 43, 45, 1), "more": Score(56, 43, 54, 1), "all": Score(103, 86, 99, 2)}
    better = {"first": Score(47, 44, 45, 1), "more": Score(56, 46, 54, 1), "all": Score(103, 90, 99, 2)}
    assert decision(better, v2) == (4, True, True)
    uneven = {"first": Score(47, 42, 45, 1), "more": Score(56, 48, 54, 1), "all": Score(103, 90, 99, 2)}
    assert decision(uneven, v2) == (4, True, False)
    small = {"first": Score(47, 43, 45, 1), "more": Score(56, 46, 54, 1), "all": Score(103, 89, 99, 2)}
    assert decision(small, v2) == (3, False, True)
