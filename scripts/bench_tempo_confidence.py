"""Is ``bpm_confidence`` meaningful on real music? Confidence bins and ``alternative_below`` thresholds, held out.

Reads the excerpts and peer estimates of the real-recordings benchmark (:mod:`scripts.bench_tempo_real`, same
``--cache-dir``, fetched and computed there when missing) and runs the product once per excerpt with every
alternative offered (``alternative_below=1``). A threshold ``t`` is then applied afterwards: the alternative is
shown when the confidence is below ``t``, exactly what the analyzer does with ``alternative_below=t``.

Tempo is scored on the tracks where Essentia and tempo-CNN agree (within 4 %), against Essentia: a *hit* is a BPM
within 4 % of it, a miss is *rescued* when its alternative is within 4 % of it, and a hit is *flagged* when it
gets an (unneeded) alternative. Key is scored on every excerpt against Essentia's ``KeyExtractor``, per
``key_confidence`` bin (no threshold is chosen for key).

Protocol (written before the held-out set was scored): :func:`choose_threshold` picks the threshold on
``--choose-on`` (default the first set) by :data:`RULE`; the other set is held out and scored with it. The product's
default should change only when :func:`held_out_supports` holds on the held-out set.

Usage (from the repository root)::

    python -m scripts.bench_tempo_confidence --cache-dir /work/bench-cache --tempocnn-venv VENV
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench_tempo_real import SETS, agree, analyze, peer_estimates, real_tracks
from sidecar.demo.evaluation import mirex_key_score, tempo_within
from sidecar.domain import KeySignature

CURRENT_THRESHOLD = 0.75
"""The product's ``alternative_below`` today (chosen under tempo version 5, unchanged in 6)."""
THRESHOLDS: tuple[float, ...] = (0.75, 0.8, 0.85, 0.9, 0.95, 0.97)
"""The ``alternative_below`` values compared."""
CONFIDENCE_EDGES: tuple[float, ...] = (0.6, 0.75, 0.9)
"""Edges of the ``bpm_confidence`` bins (each bin holds its lower edge)."""
KEY_CONFIDENCE_EDGES: tuple[float, ...] = (0.25, 0.5, 0.75)
"""Edges of the ``key_confidence`` bins."""
MIN_RESCUED_SHARE = 0.8
MAX_FLAGGED_SHARE = 0.25
RULE = (
    f"the lowest threshold at which at least {MIN_RESCUED_SHARE:.0%} of the misses get the peers' tempo as the "
    f"alternative while at most {MAX_FLAGGED_SHARE:.0%} of the hits get an alternative; when none qualifies, the "
    f"one that rescues most misses within that flagged share (the lowest among ties), {CURRENT_THRESHOLD} if none "
    "rescues more than it"
)
"""How the threshold is chosen on one set, fixed before the held-out set was scored."""


@dataclass(frozen=True)
class Estimate:
    """One excerpt: the product's answer (alternative offered at any confidence below 1) and Essentia's."""

    name: str
    essentia_bpm: float
    bpm: float | None
    confidence: float
    alternative: float | None
    key: KeySignature | None
    key_confidence: float
    essentia_key: KeySignature

    @property
    def hit(self) -> bool:
        """The BPM is within 4 % of Essentia's."""
        return tempo_within(self.bpm, self.essentia_bpm)

    @property
    def right_alternative(self) -> bool:
        """The alternative is within 4 % of Essentia's BPM."""
        return tempo_within(self.alternative, self.essentia_bpm)

    def offered(self, threshold: float) -> bool:
        """The alternative is shown with ``alternative_below=threshold``."""
        return self.alternative is not None and self.confidence < threshold


@dataclass(frozen=True)
class ThresholdRow:
    """Counts at one ``alternative_below``: misses, those rescued, hits, and hits flagged with an alternative."""

    threshold: float
    misses: int
    rescued: int
    hits: int
    flagged: int


def _bin_labels(edges: Sequence[float]) -> list[str]:
    inner = [f"{a:g}-{b:g}" for a, b in itertools.pairwise(edges)]
    return [f"<{edges[0]:g}", *inner, f">={edges[-1]:g}"]


def confidence_bins(estimates: Sequence[Estimate], edges: Sequence[float] = CONFIDENCE_EDGES) -> list[str]:
    """Markdown rows per ``bpm_confidence`` bin: tracks, Acc1 (hits) and misses whose alternative is right."""
    rows = []
    for i, label in enumerate(_bin_labels(edges)):
        group = [e for e in estimates if int(np.searchsorted(edges, e.confidence, side="right")) == i]
        hits = sum(e.hit for e in group)
        acc = f"{hits / len(group):.2f} ({hits})" if group else "-"
        right = sum(not e.hit and e.right_alternative for e in group)
        rows.append(f"| {label} | {len(group)} | {acc} | {len(group) - hits} | {right} |")
    return rows


def key_bins(estimates: Sequence[Estimate], edges: Sequence[float] = KEY_CONFIDENCE_EDGES) -> list[str]:
    """Markdown rows per ``key_confidence`` bin: excerpts, same key as Essentia, MIREX-weighted mean (no key: 0)."""
    rows = []
    for i, label in enumerate(_bin_labels(edges)):
        group = [e for e in estimates if int(np.searchsorted(edges, e.key_confidence, side="right")) == i]
        same = sum(e.key == e.essentia_key for e in group)
        mirex = f"{np.mean([mirex_key_score(e.key, e.essentia_key) for e in group]):.3f}" if group else "-"
        share = f"{same / len(group):.2f} ({same})" if group else "-"
        rows.append(f"| {label} | {len(group)} | {share} | {mirex} | {sum(e.key is None for e in group)} |")
    return rows


def threshold_rows(estimates: Sequence[Estimate], thresholds: Sequence[float] = THRESHOLDS) -> list[ThresholdRow]:
    """Misses rescued and hits flagged at each threshold (``estimates``: the agreed tracks)."""
    misses = [e for e in estimates if not e.hit]
    hits = [e for e in estimates if e.hit]
    return [
        ThresholdRow(
            threshold=t,
            misses=len(misses),
            rescued=sum(e.offered(t) and e.right_alternative for e in misses),
            hits=len(hits),
            flagged=sum(e.offered(t) for e in hits),
        )
        for t in thresholds
    ]


def choose_threshold(rows: Sequence[ThresholdRow]) -> float:
    """The threshold :data:`RULE` picks from ``rows`` (sorted by threshold)."""
    allowed = [r for r in rows if r.flagged <= MAX_FLAGGED_SHARE * r.hits]
    for row in allowed:
        if row.misses and row.rescued >= MIN_RESCUED_SHARE * row.misses:
            return row.threshold
    current = next((r.rescued for r in rows if r.threshold == CURRENT_THRESHOLD), 0)
    best = max(allowed, key=lambda r: r.rescued, default=None)  # max keeps the first (lowest) of ties
    return best.threshold if best is not None and best.rescued > current else CURRENT_THRESHOLD


def held_out_supports(rows: Sequence[ThresholdRow], threshold: float) -> bool:
    """The chosen ``threshold`` rescues more held-out misses than :data:`CURRENT_THRESHOLD` and flags at most
    :data:`MAX_FLAGGED_SHARE` of the held-out hits."""
    by_threshold = {r.threshold: r for r in rows}
    chosen, current = by_threshold[threshold], by_threshold[CURRENT_THRESHOLD]
    return chosen.rescued > current.rescued and chosen.flagged <= MAX_FLAGGED_SHARE * chosen.hits


def _print_threshold_table(rows: Sequence[ThresholdRow]) -> None:
    print("| alternative_below | misses | rescued by the alternative | hits | hits with an alternative |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.threshold:g} | {r.misses} | {r.rescued} | {r.hits} | {r.flagged} ({r.flagged / r.hits:.0%}) |")


def report(name: str, estimates: Sequence[Estimate], agreed: Sequence[Estimate]) -> list[ThresholdRow]:
    """Print one set's tables; return its threshold rows (``agreed``: the tracks where the peers agree)."""
    print(f"\n# Set {name}: {len(agreed)} agreed of {len(estimates)} excerpts")
    print("\n| bpm_confidence | tracks | Acc1 vs Essentia | misses | misses right at the alternative |")
    print("|---|---|---|---|---|")
    print("\n".join(confidence_bins(agreed)))
    print()
    rows = threshold_rows(agreed)
    _print_threshold_table(rows)
    print("\n| key_confidence | excerpts | same key as Essentia | MIREX | no key |\n|---|---|---|---|---|")
    print("\n".join(key_bins(estimates)))
    return rows


def _estimate(name: str, path: Path, entry: dict[str, Any]) -> Estimate:
    tempo, key = analyze(path, alternative_below=1.0)
    return Estimate(
        name=name,
        essentia_bpm=entry["essentia_bpm"],
        bpm=tempo.bpm,
        confidence=tempo.bpm_confidence,
        alternative=tempo.bpm_alternative,
        key=key.key,
        key_confidence=key.key_confidence,
        essentia_key=KeySignature.parse(entry["essentia_key"]),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache"))
    parser.add_argument("--tempocnn-model", default="cnn")
    parser.add_argument("--tempocnn-venv", type=Path, default=Path(".bench-cache/venv-tempocnn"))
    parser.add_argument("--choose-on", choices=("first", "more"), default="first", help="the set the rule reads")
    parser.add_argument(
        "--held-out", choices=("first", "more", "third"), help="the set scored held out (default: the other one)"
    )
    args = parser.parse_args()
    cnn = f"tempocnn_{args.tempocnn_model}"
    held_out_name = args.held_out or ("more" if args.choose_on == "first" else "first")
    if held_out_name == args.choose_on:
        parser.error("--held-out must differ from --choose-on")
    results: dict[str, list[ThresholdRow]] = {}
    everything: list[Estimate] = []
    agreed_all: list[Estimate] = []
    for name in (args.choose_on, held_out_name):
        tracks = real_tracks(args.cache_dir, SETS[name])
        cached = peer_estimates(args.cache_dir, tracks, 60.0, args.tempocnn_venv, args.tempocnn_model)
        estimates = [_estimate(t.excerpt.stem, t.excerpt, cached[t.excerpt.name]) for t in tracks]
        agreed = [
            e for t, e in zip(tracks, estimates, strict=True) if agree(e.essentia_bpm, cached[t.excerpt.name][cnn])
        ]
        results[name] = report(name, estimates, agreed)
        everything += estimates
        agreed_all += agreed
        if name == args.choose_on:
            chosen = choose_threshold(results[name])
            print(f"\nRule: {RULE}.\nChosen on set {name}: alternative_below = {chosen:g}")
    report("all", everything, agreed_all)
    supported = held_out_supports(results[held_out_name], chosen)
    print(f"\nHeld out (set {held_out_name}) supports alternative_below = {chosen:g}: {'yes' if supported else 'no'}")


if __name__ == "__main__":
    main()
