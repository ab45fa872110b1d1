"""Key accuracy and speed on the rendered ground-truth corpus: the key analyzer with each key profile, and the
librosa-default baseline (``librosa.feature.chroma_stft`` with its defaults, averaged, Krumhansl-Kessler
correlation). The row "fitted key model (opt-in)" is ``KeyAnalyzer(model=DEFAULT_KEY_MODEL)``, whose weights were fitted
on the rhythm corpus (``scripts/bench_key_rhythm.py``), never on this corpus.

Run from the repository root::

    python -m scripts.bench_key                  # 96 + 96 pieces x 30 s, 4 pieces x 4 min, detuned set
    python -m scripts.bench_key --pieces 24 --long 0 --no-detuned   # quick look

Sets: ``dev`` (seed 0) is the corpus the method's settings were chosen on; ``held-out`` (seed 1) was not looked
at while choosing them; ``long`` are 4-minute pieces; ``detuned`` is ``held-out`` pitch-shifted by
``--detune-cents`` (resampled), as a recording made away from A4 = 440 Hz would be. Rendered pieces are cached
as FLAC under ``--cache-dir``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import librosa
import numpy as np
import numpy.typing as npt
import soxr

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioBlock, AudioReader
from sidecar.analyzers.key import (
    KEY_PROFILES,
    KRUMHANSL_KESSLER,
    UPPER_MIN_PITCH,
    ChromaAccumulator,
    KeyAnalyzer,
    KeyDecision,
    decide_key,
    key_correlations,
    key_of_template,
    key_templates,
)
from sidecar.analyzers.key_model import DEFAULT_KEY_MODEL
from sidecar.demo.evaluation import mirex_key_score
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import PieceSpec, tempo_key_corpus
from sidecar.domain import AudioInfo, KeyResult, KeySignature

Mono = npt.NDArray[np.float32]
OUTCOMES = ("exact", "fifth", "relative", "parallel", "other", "none")
CONFIDENCE_BINS = (0.0, 0.25, 0.5, 0.75, 1.0001)


@dataclass
class Tally:
    """Scores and outcome counts of one method on one set."""

    scores: list[float]
    outcomes: Counter[str]
    seconds: list[float]

    def add(self, estimate: KeySignature | None, truth: KeySignature, seconds: float) -> None:
        score = mirex_key_score(estimate, truth)
        self.scores.append(score)
        self.outcomes[_outcome(estimate, score)] += 1
        self.seconds.append(seconds)


def _outcome(estimate: KeySignature | None, score: float) -> str:
    if estimate is None:
        return "none"
    return {1.0: "exact", 0.5: "fifth", 0.3: "relative", 0.2: "parallel"}.get(score, "other")


def _decode(path: Path) -> tuple[AudioInfo, list[AudioBlock]]:
    with AudioReader(path) as reader:
        return reader.info, list(reader.blocks())


def _mono(blocks: Sequence[AudioBlock]) -> Mono:
    return np.concatenate([b.mono for b in blocks])


def _detuned(blocks: Sequence[AudioBlock], cents: float) -> list[AudioBlock]:
    """The signal played ``cents`` higher (faster), as one block per original block, streamed."""
    resampler = soxr.ResampleStream(ANALYSIS_RATE_HZ * 2 ** (cents / 1200), ANALYSIS_RATE_HZ, 1, dtype="float32")
    out = []
    for i, block in enumerate(blocks):
        mono = resampler.resample_chunk(block.mono, last=i == len(blocks) - 1)
        out.append(AudioBlock(native=block.native[:, :0], mono=mono, start_s=block.start_s))
    return out


def _run_analyzer(analyzer: KeyAnalyzer, info: AudioInfo, blocks: Sequence[AudioBlock]) -> tuple[float, KeyResult]:
    start = time.perf_counter()
    session = analyzer.start(info)
    for block in blocks:
        session.feed(block)
    result = session.finish()
    return time.perf_counter() - start, result


def librosa_baseline(mono: Mono) -> KeySignature:
    """The naive approach: librosa's default STFT chroma averaged over the track, Krumhansl-Kessler correlation."""
    chroma = librosa.feature.chroma_stft(y=mono, sr=ANALYSIS_RATE_HZ).mean(axis=1)
    correlations = key_correlations(chroma, key_templates(KRUMHANSL_KESSLER, harmonic_decay=0.0))
    return key_of_template(int(np.argmax(correlations)))


def evaluate(
    specs: Sequence[PieceSpec],
    paths: Sequence[Path],
    transform: Callable[[list[AudioBlock]], list[AudioBlock]] | None,
    confidences: list[tuple[float, float]],
) -> dict[str, Tally]:
    """Run every method on every piece; ``confidences`` collects (confidence, score) of the default analyzer."""
    decision = KeyDecision()
    variants = {
        f"{name}{'' if decay else ' (no harmonic model)'}": key_templates(profile, harmonic_decay=decay)
        for name, profile in KEY_PROFILES.items()
        for decay in (0.6, 0.0)
    }
    model_row = "fitted key model (opt-in)"
    tallies = {name: Tally([], Counter(), []) for name in (*variants, model_row, "librosa default baseline")}
    default = KeyAnalyzer()
    for spec, path in zip(specs, paths, strict=True):
        info, blocks = _decode(path)
        if transform is not None:
            blocks = transform(blocks)
        seconds, result = _run_analyzer(default, info, blocks)
        accumulator = ChromaAccumulator(upper_min_pitch=UPPER_MIN_PITCH)
        for block in blocks:
            accumulator.feed(block.mono)
        summary = accumulator.summary()
        for name, templates in variants.items():
            choice = decide_key(summary, templates, decision)
            key, confidence = choice.key, choice.confidence
            tallies[name].add(key, spec.key, seconds)
            if name == "krumhansl-kessler":
                if result.key != key:
                    raise RuntimeError(f"analyzer and shared summary disagree on {spec.title}")
                confidences.append((confidence, mirex_key_score(key, spec.key)))
        fitted = decide_key(summary, variants["krumhansl-kessler"], decision, DEFAULT_KEY_MODEL).key
        tallies[model_row].add(fitted, spec.key, seconds)
        start = time.perf_counter()
        baseline = librosa_baseline(_mono(blocks))
        tallies["librosa default baseline"].add(baseline, spec.key, time.perf_counter() - start)
    return tallies


def print_table(title: str, tallies: dict[str, Tally]) -> None:
    n = len(next(iter(tallies.values())).scores)
    print(f"\n### {title} ({n} pieces)\n")
    print("| method | MIREX weighted | exact | " + " | ".join(OUTCOMES[1:]) + " | key time per piece (median) |")
    print("|---" * (len(OUTCOMES) + 3) + "|")
    for name, tally in tallies.items():
        counts = " | ".join(str(tally.outcomes[o]) for o in OUTCOMES[1:])
        print(
            f"| {name} | {np.mean(tally.scores):.3f} | {tally.outcomes['exact'] / n:.3f} | {counts} "
            f"| {statistics.median(tally.seconds) * 1000:.0f} ms |"
        )


def merge(parts: Sequence[dict[str, Tally]]) -> dict[str, Tally]:
    merged = {name: Tally([], Counter(), []) for name in parts[0]}
    for part in parts:
        for name, tally in part.items():
            merged[name].scores += tally.scores
            merged[name].outcomes += tally.outcomes
            merged[name].seconds += tally.seconds
    return merged


def time_long_track(path: Path, repeats: int) -> tuple[float, float, float]:
    """Median seconds over ``repeats`` runs on one track: decode, key analyzer (from decoded blocks), baseline."""
    decode_s, key_s, base_s = [], [], []
    analyzer = KeyAnalyzer()
    for _ in range(repeats):
        start = time.perf_counter()
        info, blocks = _decode(path)
        decode_s.append(time.perf_counter() - start)
        key_s.append(_run_analyzer(analyzer, info, blocks)[0])
        start = time.perf_counter()
        librosa_baseline(_mono(blocks))
        base_s.append(time.perf_counter() - start)
    return statistics.median(decode_s), statistics.median(key_s), statistics.median(base_s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pieces", type=int, default=96, help="pieces per 30 s set (dev and held-out)")
    parser.add_argument("--duration-s", type=float, default=30.0)
    parser.add_argument("--long", type=int, default=4, help="number of 4-minute pieces")
    parser.add_argument("--detune-cents", type=float, default=35.0)
    parser.add_argument("--no-detuned", action="store_true")
    parser.add_argument("--repeats", type=int, default=5, help="timing runs on one 4-minute piece")
    parser.add_argument("--cache-dir", type=Path, default=Path("bench-data/key-corpus"))
    args = parser.parse_args()

    # Warm up imports and FFT plans so the first piece's time is not an outlier.
    # A 440 Hz tone, not silence: librosa warns when it estimates tuning from silence.
    tone = np.sin(2 * np.pi * 440.0 * np.arange(ANALYSIS_RATE_HZ) / ANALYSIS_RATE_HZ).astype(np.float32)
    librosa.feature.chroma_stft(y=tone, sr=ANALYSIS_RATE_HZ)
    ChromaAccumulator().feed(tone)

    sets: dict[str, list[PieceSpec]] = {
        "dev (seed 0)": tempo_key_corpus(args.pieces, duration_s=args.duration_s, seed=0),
        "held-out (seed 1)": tempo_key_corpus(args.pieces, duration_s=args.duration_s, seed=1),
    }
    if args.long:
        sets["long, 4 min (seed 7)"] = tempo_key_corpus(24, duration_s=240.0, seed=7)[:: max(1, 24 // args.long)][
            : args.long
        ]
    results: dict[str, dict[str, Tally]] = {}
    confidences: list[tuple[float, float]] = []
    paths_by_set = {}
    for name, specs in sets.items():
        start = time.perf_counter()
        paths_by_set[name] = cached_corpus(specs, args.cache_dir)
        print(f"rendered/cached {name}: {len(specs)} pieces in {time.perf_counter() - start:.1f} s")
        results[name] = evaluate(specs, paths_by_set[name], None, confidences)
    for name, tallies in results.items():
        print_table(name, tallies)
    print_table("all of the above", merge(list(results.values())))
    if not args.no_detuned:
        held_out = "held-out (seed 1)"
        cents = args.detune_cents
        detuned = evaluate(sets[held_out], paths_by_set[held_out], lambda b: _detuned(b, cents), [])
        print_table(f"held-out detuned by {cents:+.0f} cents", detuned)

    print("\n### Confidence of the default analyzer (Krumhansl-Kessler) against correctness, untransformed sets\n")
    print("| confidence | pieces | exact | MIREX weighted |")
    print("|---|---|---|---|")
    for low, high in itertools.pairwise(CONFIDENCE_BINS):
        scores = [s for c, s in confidences if low <= c < high]
        if scores:
            exact = sum(s == 1.0 for s in scores) / len(scores)
            print(f"| {low:.2f}-{min(high, 1.0):.2f} | {len(scores)} | {exact:.3f} | {np.mean(scores):.3f} |")

    if args.long:
        decode_s, key_s, base_s = time_long_track(paths_by_set["long, 4 min (seed 7)"][0], args.repeats)
        print(f"\n### Speed on one 4-minute 44.1 kHz stereo FLAC, median of {args.repeats}\n")
        print(f"- decode + resample to mono 22050 Hz (context): {decode_s:.3f} s")
        print(f"- key analyzer from the decoded blocks: {key_s:.3f} s")
        print(f"- librosa default baseline (chroma_stft + KK) on the same mono: {base_s:.3f} s")


if __name__ == "__main__":
    main()
