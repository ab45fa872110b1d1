"""Key accuracy on the rhythm corpus (15 style families x 4 soundfonts): the default key analyzer, the fitted key model
(opt-in) validated leave-one-out, and Essentia KeyExtractor, on the same clips in the same run.

The key model (:mod:`sidecar.analyzers.key_model`) is fitted, never scored on what it was fitted on: for every
family it is fitted on the other families and scores the left-out one (leave-one-family-out), and the same per
soundfont (leave-one-soundfont-out). Its ridge penalty is chosen inside each fold from ``L2_GRID`` by
cross-validation over the fold's own fitting families (dealt into ``INNER_FOLDS`` groups, one left out at a time).
The shipped weights (``DEFAULT_KEY_MODEL``) are fitted on the whole corpus with the penalty chosen the same way:
their row is in-sample and is not a result; the block printed at the end is what ``sidecar/analyzers/key_model.py``
ships. "without upper chroma" fits the model on the whole-register chroma alone (an ablation,
leave-one-family-out). Leave-one-progression-out leaves out every clip of one chord loop of the generator
(``rhythm_corpus.PROGRESSIONS``, per mode): the families share the generator's harmony, so this is the split that
shows how much of the model's gain is harmony it has seen.

Beside it: the default analyzer ``KeyAnalyzer()`` (Krumhansl-Kessler with the harmonic model) and Essentia
``KeyExtractor()`` with its defaults on the 44.1 kHz file (benchmark-only dependency: ``pip install -e '.[bench]'``),
cached in ``<cache>/key-peers.json``. ``--real``: the default analyzer and the shipped model against Essentia on the
real recordings of ``scripts/bench_tempo_real.py``'s first set (no ground truth there: agreement only).

Usage (from the repository root)::

    python -m scripts.bench_tempo --fetch-soundfonts --render-only   # once: soundfonts from Debian, render clips
    python -m scripts.bench_key_rhythm
    python -m scripts.bench_key_rhythm --real    # downloads the first set of scripts/bench_tempo_real.py
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import statistics
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from scripts.bench_key import CONFIDENCE_BINS, OUTCOMES, Tally, print_table
from scripts.bench_tempo import add_corpus_arguments, corpus_clips
from sidecar.analyzers.audio import AudioReader
from sidecar.analyzers.key import (
    KRUMHANSL_KESSLER,
    UPPER_MIN_PITCH,
    ChromaAccumulator,
    ChromaSummary,
    KeyAnalyzer,
    KeyDecision,
    decide_key,
    key_of_template,
    key_templates,
)
from sidecar.analyzers.key_model import DEFAULT_KEY_MODEL, L2_GRID, KeyModel, candidate_features, fit_key_model
from sidecar.demo import rhythm_corpus as rc
from sidecar.demo.evaluation import mirex_key_score
from sidecar.domain import KeySignature

PEER_CACHE_VERSION = 1
ESSENTIA_KEY = "Essentia KeyExtractor (defaults)"
Vector = npt.NDArray[np.float64]


@dataclass(eq=False)
class Item:
    """One clip, its chroma summary and what every method said."""

    clip: rc.RhythmClip
    main: Vector
    upper: Vector
    summary: ChromaSummary
    features: Vector
    features_main_only: Vector
    keys: dict[str, KeySignature | None] = field(default_factory=dict)
    confidence: dict[str, float] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def truth_index(self) -> int:
        return self.clip.key.pitch_class + (0 if self.clip.key.mode == "major" else 12)


def _essentia_key() -> Callable[[Path], str] | None:
    try:
        import essentia  # bench extra
        import essentia.standard as es
    except ImportError:
        return None
    essentia.log.infoActive = False
    essentia.log.warningActive = False
    extractor = es.KeyExtractor()

    def key(path: Path) -> str:
        tonic, scale, _ = extractor(es.MonoLoader(filename=str(path), sampleRate=44100)())
        return f"{tonic} {scale}"

    return key


def _timed_session(analyzer: Any, blocks: Sequence[Any]) -> tuple[float, KeySignature | None, float]:
    start = time.perf_counter()
    session = analyzer.start(None)
    for block in blocks:
        session.feed(block)
    result = session.finish()
    return time.perf_counter() - start, result.key, result.key_confidence


def _fit(items: Sequence[Item], l2: float, *, upper: bool) -> KeyModel:
    features = np.stack([i.features if upper else i.features_main_only for i in items])
    return fit_key_model(features, np.array([i.truth_index for i in items]), l2)


def _predict(model: KeyModel, item: Item, *, upper: bool = True) -> tuple[KeySignature | None, float]:
    summary = item.summary if upper else _without_upper(item.summary)
    choice = decide_key(summary, _TEMPLATES, KeyDecision(), model)
    return choice.key, choice.confidence


def _without_upper(summary: ChromaSummary) -> ChromaSummary:
    return dataclasses.replace(summary, upper_chroma=np.zeros(12))


_TEMPLATES = key_templates(KRUMHANSL_KESSLER, harmonic_decay=0.6)
"""The analyzer's default templates (its tonal evidence)."""


def _mean_score(model: KeyModel, items: Sequence[Item], *, upper: bool) -> float:
    """MIREX score of the model's best key (the analyzer's no-key gate left out: it does not depend on the model)."""
    weights = np.concatenate([model.main_major, model.main_minor, model.upper_major, model.upper_minor])
    scores = []
    for item in items:
        best = int(np.argmax((item.features if upper else item.features_main_only) @ weights))
        scores.append(mirex_key_score(key_of_template(best), item.clip.key))
    return float(np.mean(scores))


INNER_FOLDS = 5


def fit_nested(train: Sequence[Item], *, upper: bool = True) -> KeyModel:
    """Fit on ``train`` with the ridge penalty chosen inside ``train``: families dealt into ``INNER_FOLDS`` groups,
    each group left out in turn (ties: the larger penalty)."""
    families = sorted({i.clip.family for i in train})
    fold_of = {family: n % INNER_FOLDS for n, family in enumerate(families)}
    best: tuple[float, float] = (-1.0, 0.0)
    for l2 in L2_GRID:
        scores = []
        for fold in range(INNER_FOLDS):
            fit_on = [i for i in train if fold_of[i.clip.family] != fold]
            held = [i for i in train if fold_of[i.clip.family] == fold]
            model = _fit(fit_on, l2, upper=upper)
            scores.extend([_mean_score(model, held, upper=upper)] * len(held))
        best = max(best, (float(np.mean(scores)), l2))
    return _fit(train, best[1], upper=upper)


def leave_one_out(
    items: Sequence[Item], group: Callable[[Item], str], method: str, *, upper: bool = True
) -> dict[str, float]:
    """Fill ``item.keys[method]`` with the model fitted without the item's group; returns the penalty per group."""
    chosen = {}
    for name in sorted({group(i) for i in items}):
        model = fit_nested([i for i in items if group(i) != name], upper=upper)
        chosen[name] = model.l2_penalty
        for item in items:
            if group(item) == name:
                item.keys[method], item.confidence[method] = _predict(model, item, upper=upper)
    return chosen


def _tally(items: Sequence[Item], method: str) -> Tally:
    tally = Tally([], Counter(), [])
    for item in items:
        tally.add(item.keys[method], item.clip.key, item.seconds.get(method, 0.0))
    return tally


def render_model(model: KeyModel) -> str:
    """``model`` as the Python source of ``DEFAULT_KEY_MODEL``."""
    lines = ["DEFAULT_KEY_MODEL = KeyModel("]
    for name in ("main_major", "main_minor", "upper_major", "upper_minor"):
        values = ", ".join(f"{v:.4f}" for v in getattr(model, name))
        lines.append(
            f"    {name}=(\n{textwrap.fill(values, 112, initial_indent=' ' * 8, subsequent_indent=' ' * 8)},\n    ),"
        )
    lines += [f"    l2_penalty={model.l2_penalty:g},", ")"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_corpus_arguments(parser)
    parser.add_argument("--no-essentia", action="store_true", help="skip Essentia even when it is installed")
    parser.add_argument("--real", action="store_true", help="only the real recordings of scripts/bench_tempo_real.py")
    args = parser.parse_args()
    if args.real:
        real_recordings(args.cache_dir)
        return

    clips = corpus_clips(args)
    paths = rc.cached_clip_paths(clips, args.cache_dir)
    before = "sonantica key, default analyzer"
    old = KeyAnalyzer()
    shipped = "fitted model, shipped weights (in-sample, not a result)"
    new = KeyAnalyzer(model=DEFAULT_KEY_MODEL)
    essentia = None if args.no_essentia else _essentia_key()
    if essentia is None and not args.no_essentia:
        print("Essentia is not installed (pip install -e '.[bench]'): its columns are left out")
    cache_path = args.cache_dir / "key-peers.json"
    cache: dict[str, Any] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    if cache.get("version") != PEER_CACHE_VERSION:
        cache = {"version": PEER_CACHE_VERSION, "estimates": {}}

    items: list[Item] = []
    for clip, path in zip(clips, paths, strict=True):
        with AudioReader(path) as reader:
            blocks = list(reader.blocks())
        accumulator = ChromaAccumulator(upper_min_pitch=UPPER_MIN_PITCH)
        for block in blocks:
            accumulator.feed(block.mono)
        summary = accumulator.summary()
        item = Item(
            clip,
            summary.chroma,
            summary.upper_chroma,
            summary,
            candidate_features(summary.chroma, summary.upper_chroma),
            candidate_features(summary.chroma, np.zeros(12)),
        )
        for method, analyzer in ((before, old), (shipped, new)):
            item.seconds[method], item.keys[method], item.confidence[method] = _timed_session(analyzer, blocks)
        if essentia is not None:
            estimates = cache["estimates"]
            if clip.digest() not in estimates:
                estimates[clip.digest()] = essentia(path)
            item.keys[ESSENTIA_KEY] = KeySignature.parse(estimates[clip.digest()])
        items.append(item)
    cache_path.write_text(json.dumps(cache))

    lofo, loso = "fitted model (leave-one-family-out)", "fitted model (leave-one-soundfont-out)"
    ablation = "fitted model without upper chroma (leave-one-family-out)"
    start = time.perf_counter()
    penalties = leave_one_out(items, lambda i: i.clip.family, lofo)
    fit_s = time.perf_counter() - start
    font_penalties = leave_one_out(items, lambda i: i.clip.soundfont, loso)
    lopo = "fitted model (leave-one-progression-out)"
    leave_one_out(items, _progression, lopo)
    leave_one_out(items, lambda i: i.clip.family, ablation, upper=False)
    for item in items:
        for method in (lofo, loso, lopo, ablation):
            item.seconds[method] = item.seconds[shipped]
    methods = [lofo, loso, lopo, ablation, before, shipped, *([ESSENTIA_KEY] if essentia else [])]
    print_table(f"Rhythm corpus, all clips (outcomes: {', '.join(OUTCOMES)})", {m: _tally(items, m) for m in methods})
    print("- key time: from decoded blocks; Essentia's is not measured (its 0 ms cell means nothing)")
    print(f"- ridge penalty chosen per left-out family: {dict(Counter(penalties.values()))}")
    print(f"- ridge penalty chosen per left-out soundfont: {font_penalties}")
    print(f"- leave-one-family-out fitting, all 15 folds with inner penalty choice: {fit_s:.1f} s")

    short = [lofo, before, *([ESSENTIA_KEY] if essentia else [])]
    for label, group, first in (
        ("family", lambda i: i.clip.family, lofo),
        ("soundfont", lambda i: i.clip.soundfont, loso),
        ("chord progression", _progression, lopo),
    ):
        columns = [first, *short[1:]] if first != lopo else [lopo, *short]
        print(f"\n### MIREX / exact per {label} ({columns[0]} first)\n")
        print(f"| {label} | n | " + " | ".join(columns) + " |\n|---|---|" + "---|" * len(columns))
        worst: tuple[float, str] = (2.0, "")
        for name in dict.fromkeys(group(i) for i in items):
            members = [i for i in items if group(i) == name]
            cells = []
            for method in columns:
                scores = [mirex_key_score(i.keys[method], i.clip.key) for i in members]
                cells.append(f"{np.mean(scores):.3f} / {np.mean([s == 1.0 for s in scores]):.3f}")
            worst = min(worst, (float(np.mean([mirex_key_score(i.keys[first], i.clip.key) for i in members])), name))
            print(f"| {name} | {len(members)} | " + " | ".join(cells) + " |")
        print(f"- worst left-out {label} ({first}): {worst[1]} {worst[0]:.3f}")

    print(f"\n### {lofo} misses\n")
    for item in items:
        if item.keys[lofo] != item.clip.key:
            key = item.keys[lofo]
            peer = item.keys.get(ESSENTIA_KEY)
            print(
                f"- {item.clip.title}: {key.name if key else None} (confidence {item.confidence[lofo]:.2f};"
                f" default {_name(item.keys[before])}; Essentia {_name(peer)})"
            )

    print(f"\n### Confidence of {lofo} against correctness\n")
    print("| confidence | clips | exact | MIREX weighted |\n|---|---|---|---|")
    for low, high in itertools.pairwise(CONFIDENCE_BINS):
        scores = [mirex_key_score(i.keys[lofo], i.clip.key) for i in items if low <= i.confidence[lofo] < high]
        if scores:
            exact = float(np.mean([s == 1.0 for s in scores]))
            print(f"| {low:.2f}-{min(high, 1.0):.2f} | {len(scores)} | {exact:.3f} | {np.mean(scores):.3f} |")

    print(
        f"\n- key time per {args.duration_s:g} s clip from decoded blocks (median): "
        f"fitted model {statistics.median(i.seconds[shipped] for i in items) * 1000:.1f} ms, "
        f"default {statistics.median(i.seconds[before] for i in items) * 1000:.1f} ms"
    )
    model = fit_nested(items)
    if model != DEFAULT_KEY_MODEL:
        print("\nNOTE: the shipped DEFAULT_KEY_MODEL differs from this corpus's fit:")
    print(f"\n### Model fitted on all {len(items)} clips (the shipped DEFAULT_KEY_MODEL)\n\n{render_model(model)}")


def real_recordings(cache_dir: Path) -> None:
    """The default analyzer and the shipped model against Essentia KeyExtractor on the excerpts that
    ``scripts/bench_tempo_real.py`` cuts from its first set of Debian packages (same packages and excerpts)."""
    from scripts.bench_tempo_real import PACKAGES, real_tracks  # the tempo benchmark's tracks

    essentia = _essentia_key()
    if essentia is None:
        raise SystemExit("Essentia is needed: pip install -e '.[bench]'")
    tracks = real_tracks(cache_dir, PACKAGES)
    cache_path = cache_dir / "real" / "key-peers-60s.json"
    cache: dict[str, str] = json.loads(cache_path.read_text()) if cache_path.exists() else {}
    old, new = KeyAnalyzer(), KeyAnalyzer(model=DEFAULT_KEY_MODEL)
    rows = []
    for track in tracks:
        with AudioReader(track.excerpt) as reader:
            blocks = list(reader.blocks())
        if track.excerpt.name not in cache:
            cache[track.excerpt.name] = essentia(track.excerpt)
        peer = KeySignature.parse(cache[track.excerpt.name])
        rows.append((track.excerpt.name, peer, _timed_session(old, blocks)[1], _timed_session(new, blocks)[1]))
    cache_path.write_text(json.dumps(cache, indent=1))
    print(f"\n### Real recordings: {len(rows)} excerpts of 60 s from {len(PACKAGES)} Debian packages\n")
    print("| method | same key as Essentia | MIREX-weighted vs Essentia | no key |\n|---|---|---|---|")
    columns: tuple[tuple[str, Literal[2, 3]], ...] = (
        ("sonantica key, default analyzer", 2),
        ("fitted model, shipped weights", 3),
    )
    for label, column in columns:
        same = [row[column] == row[1] for row in rows]
        mirex = [mirex_key_score(row[column], row[1]) for row in rows]
        none = sum(row[column] is None for row in rows)
        print(f"| {label} | {sum(same)} of {len(rows)} ({np.mean(same):.3f}) | {np.mean(mirex):.3f} | {none} |")
    print("\nDisagreements with Essentia (track: Essentia / default / fitted model):")
    for name, peer, default, fitted in rows:
        if default != peer or fitted != peer:
            print(f"- {name}: {peer.name} / {_name(default)} / {_name(fitted)}")


def _progression(item: Item) -> str:
    """The clip's mode and chord loop (scale degrees of the chord roots), e.g. ``major 1-4-0-0`` (ii-V-I-I)."""
    return f"{item.clip.key.mode} {'-'.join(map(str, rc.progression(item.clip)))}"


def _name(key: KeySignature | None) -> str:
    return key.name if key else "None"


if __name__ == "__main__":
    main()
