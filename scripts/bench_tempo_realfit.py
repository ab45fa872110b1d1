"""Does an octave model fitted with real recordings read other real recordings better? (issue 11 experiment)

The shipped octave model is fitted on generated music only (the rhythm corpus and 96 demo pieces,
``scripts/fit_tempo_octave.py``). This fits it again with the real excerpts of one of ``bench_tempo_real``'s two
package sets added (label: Essentia's tempo, on the excerpts where Essentia and tempo-CNN agree, the benchmark's own
reference), and scores it on the other set, which it never saw; then the other way round. In the same run: the
shipped model and the same fit without real excerpts (which must reproduce it).

Fits (each with the real-music prior at the shipped weight, 1):

- ``shipped``: :meth:`OctaveModel.default`;
- ``generated``: the generated examples only (the shipped fit, redone);
- ``generated + real``: the generated examples plus the other set's agreed excerpts, each counted once;
- ``real only``: the other set's agreed excerpts alone.

The generated fits are also scored leave-one-family-out on the rhythm corpus (fitted without the family's clips; the
demo pieces stay in, unlike ``bench_tempo``, whose folds fit on rhythm clips only), with and without the real excerpts
of both sets in every fold, so a gain on real music that costs the generated styles shows.

Decision rule, fixed before the first run: the product would take the generated + real fit (refitted on both sets)
only if, held out, it reads at least 2 more agreed excerpts than the shipped model on each set, and its
leave-one-family-out Acc1 is not lower than the generated fit's by more than 0.01.

``--third`` scores, instead of all that, version 5's and version 6's fits on the third package set
(``bench_tempo_real --set third``: run it first), which no fit has seen.

``--nested`` adds a second experiment (its rule fixed after the first run's table above was seen, before this
part was run): the real excerpts counted ``k`` times (k in :data:`REAL_WEIGHTS`; ``0`` is the generated fit, the
largest stands for "real only" in effect), ``k`` chosen inside the fitting set by leave-one-package-out (most hits
over the fitting set's packages, the smallest ``k`` among ties), then the held-out set scored. It would replace the
``k`` = 1 fit only if, held out, it reads at least 2 more agreed excerpts than ``k`` = 1 pooled over both sets and no
fewer on either, and its leave-one-family-out Acc1 is not lower than the generated fit's by more than 0.01.

Usage (needs the rendered rhythm corpus and demo pieces under ``.bench-cache``, and ``bench_tempo_real``'s excerpts
and peer estimates under ``--cache-dir``: run that benchmark first)::

    python -m scripts.bench_tempo_realfit --cache-dir DIR [--nested | --third] [--features /tmp/realfit.pkl]
"""

from __future__ import annotations

import argparse
import pickle
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from scripts.bench_tempo_real import SETS, agreed_tempi, tempo_features
from scripts.fit_tempo_octave import generated_examples
from sidecar.analyzers.tempo import ClipFeatures, TempoAnalyzer, fit_octave
from sidecar.analyzers.tempo_octave import OctaveModel
from sidecar.demo.evaluation import tempo_within

REAL_WEIGHTS = (0, 1, 2, 4, 8, 32)
"""How many times each real excerpt counts in a fit of the nested experiment."""

Example = tuple[ClipFeatures, float]
"""Features of one excerpt or clip and its reference tempo (BPM)."""


@dataclass(frozen=True)
class Labelled:
    """One example and where it comes from: a rhythm-corpus family, ``demo``, or a real package set's name."""

    name: str
    group: str
    example: Example


def accuracy(model: OctaveModel, examples: Sequence[Labelled]) -> tuple[int, int]:
    """(hits within 4 %, examples) of ``model`` with the shipped real-music prior."""
    analyzer = TempoAnalyzer(octave_model=model)
    hits = sum(tempo_within(analyzer.estimate(e.example[0]).bpm, e.example[1]) for e in examples)
    return hits, len(examples)


def leave_one_family_out(
    generated: Sequence[Labelled], extra: Sequence[Labelled], families: Sequence[str]
) -> dict[str, tuple[int, int]]:
    """Per rhythm-corpus family: the hits of a model fitted on the other families, the demo pieces and ``extra``."""
    scores = {}
    for family in families:
        train = [e.example for e in (*generated, *extra) if e.group != family]
        model = fit_octave(train)
        scores[family] = accuracy(model, [e for e in generated if e.group == family])
    return scores


def load_examples(cache_dir: Path, demo_pieces: int) -> tuple[list[Labelled], dict[str, list[Labelled]]]:
    """The generated examples (rhythm corpus by family, demo pieces) and the agreed real excerpts of each set."""
    generated = [
        Labelled(f"{group}-{n}", group, (features, bpm))
        for n, (group, features, bpm) in enumerate(generated_examples(demo_pieces))
    ]
    real = {
        name: [
            Labelled(track.excerpt.stem, name, (tempo_features(track.excerpt), bpm))
            for track, bpm in agreed_tempi(cache_dir, SETS[name])
        ]
        for name in ("first", "more")
    }
    return generated, real


def weighted_fit(generated: Sequence[Labelled], real: Sequence[Labelled], k: int) -> OctaveModel:
    """The octave model fitted on ``generated`` and every real excerpt counted ``k`` times."""
    return fit_octave([e.example for e in generated] + [e.example for e in real] * k)


def package(example: Labelled) -> str:
    """The Debian package a real excerpt comes from (its name is ``package--file``)."""
    return example.name.split("--")[0]


def choose_weight(generated: Sequence[Labelled], real: Sequence[Labelled]) -> tuple[int, dict[int, int]]:
    """The :data:`REAL_WEIGHTS` entry with the most leave-one-package-out hits on ``real`` (smallest among ties),
    and the hits of each."""
    hits = {}
    for k in REAL_WEIGHTS:
        hits[k] = 0
        for left_out in sorted({package(e) for e in real}):
            model = weighted_fit(generated, [e for e in real if package(e) != left_out], k)
            hits[k] += accuracy(model, [e for e in real if package(e) == left_out])[0]
    best = max(hits.values())
    return min(k for k in REAL_WEIGHTS if hits[k] == best), hits


def _cells(scores: Sequence[tuple[int, int]]) -> str:
    return " | ".join(f"{h} of {n} ({h / n:.3f})" for h, n in scores)


def _lofo_row(label: str, generated: Sequence[Labelled], extra: Sequence[Labelled], families: Sequence[str]) -> None:
    scores = leave_one_family_out(generated, extra, families)
    hits = sum(h for h, _ in scores.values())
    total = sum(n for _, n in scores.values())
    worst = min(scores, key=lambda f: scores[f][0] / scores[f][1])
    print(f"| {label} | {hits / total:.3f} ({hits} of {total}) | {worst} {scores[worst][0]} of {scores[worst][1]} |")


def score_third(generated: Sequence[Labelled], fitting_real: Sequence[Labelled], cache_dir: Path) -> None:
    """Version 5's fit, version 6's (the first two sets once each), the shipped model and the first two sets
    counted 8 times, scored on the third set's agreed excerpts, which none of them saw."""
    third = [
        Labelled(track.excerpt.stem, "third", (tempo_features(track.excerpt), bpm))
        for track, bpm in agreed_tempi(cache_dir, SETS["third"])
    ]
    print(f"\n| fit | third set, {len(third)} agreed excerpts (never fitted on) |\n|---|---|")
    rows = {
        "generated (version 5's fit)": weighted_fit(generated, [], 0),
        "generated + first and second sets once (version 6's fit)": weighted_fit(generated, fitting_real, 1),
        "shipped": OctaveModel.default(),
        "generated + first and second sets x 8 (not taken)": weighted_fit(generated, fitting_real, 8),
    }
    for label, model in rows.items():
        print(f"| {label} | {_cells([accuracy(model, third)])} |")
    by_package: dict[str, list[Labelled]] = {}
    for example in third:
        by_package.setdefault(package(example), []).append(example)
    print("\n| package | agreed | version 5's fit | version 6's fit |\n|---|---|---|---|")
    for name, examples in by_package.items():
        hits = [accuracy(rows[label], examples)[0] for label in list(rows)[:2]]
        print(f"| {name} | {len(examples)} | {hits[0]} | {hits[1]} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache"), help="bench_tempo_real's cache")
    parser.add_argument("--demo-pieces", type=int, default=96)
    parser.add_argument("--features", type=Path, help="pickle of the computed examples: written once, then read")
    parser.add_argument("--nested", action="store_true", help="also the nested choice of the real excerpts' weight")
    parser.add_argument(
        "--third", action="store_true", help="only score the fits on the third package set (held out from all of them)"
    )
    args = parser.parse_args()

    if args.features is not None and args.features.exists():
        generated, real = pickle.loads(args.features.read_bytes())
    else:
        generated, real = load_examples(args.cache_dir, args.demo_pieces)
        if args.features is not None:
            args.features.write_bytes(pickle.dumps((generated, real)))
    print(
        f"generated examples: {len(generated)}; real agreed excerpts: first {len(real['first'])}, "
        f"second {len(real['more'])}"
    )
    families = sorted({e.group for e in generated if e.group != "demo"})
    everything_real = [*real["first"], *real["more"]]
    if args.third:
        score_third(generated, everything_real, args.cache_dir)
        return
    fits: dict[str, Callable[[str], OctaveModel]] = {
        "shipped": lambda _: OctaveModel.default(),
        "generated": lambda _: weighted_fit(generated, [], 0),
        "generated + real": lambda other: weighted_fit(generated, real[other], 1),
        "real only": lambda other: fit_octave([e.example for e in real[other]]),
    }
    print("\n| fit | first set (fitted with the second) | second set (fitted with the first) | both |")
    print("|---|---|---|---|")
    for label, fit in fits.items():
        first = accuracy(fit("more"), real["first"])
        second = accuracy(fit("first"), real["more"])
        print(f"| {label} | {_cells([first, second, (first[0] + second[0], first[1] + second[1])])} |")
    print("\n| rhythm corpus, leave-one-family-out | Acc1 | worst family |\n|---|---|---|")
    _lofo_row("generated", generated, [], families)
    _lofo_row("generated + both real sets", generated, everything_real, families)
    if not args.nested:
        return
    print("\n| held-out set | k chosen (inner hits per k) | held out, chosen k | held out, k = 1 |\n|---|---|---|---|")
    chosen = {}
    for held_out, fitting in (("first", "more"), ("more", "first")):
        k, inner = choose_weight(generated, real[fitting])
        chosen[held_out] = k
        scores = [accuracy(weighted_fit(generated, real[fitting], w), real[held_out]) for w in (k, 1)]
        inner_text = ", ".join(f"{w}: {h}" for w, h in inner.items())
        print(f"| {held_out} | {k} ({inner_text}) | {_cells(scores)} |")
    for k in sorted(set(chosen.values())):
        print(f"\nleave-one-family-out with both real sets counted {k} times:")
        _lofo_row(f"generated + both real sets x {k}", generated, everything_real * k, families)


if __name__ == "__main__":
    main()
