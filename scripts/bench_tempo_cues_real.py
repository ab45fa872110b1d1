"""Which octave cue set reads real music best (issue 11): every cue set's octave model fitted on the generated
corpora, scored in one run on the real recordings of ``scripts/bench_tempo_real.py``.

Cue sets (:data:`CUE_SETS`): ``v2``, the onset envelopes (the default analyzer's cues), ``harmony``, those plus the
chroma and bass change envelopes, and ``v3``, the onset envelopes plus the activations of BeatNet model 1 (chosen
before the rhythm-corpus measurement), 2 or 3 (information only, not chosen before any measurement).

Each cue set is fitted twice (:data:`FITS`): the way the shipped weights were fitted (``scripts/fit_tempo_octave.py``:
the 180 rhythm-corpus clips and 96 demo pieces) and on the 180 rhythm-corpus clips alone. The real recordings are
never fitted on, so they are a held-out test. The fitted ``v2`` of the first recipe is compared with the shipped
weights (``OctaveModel.default()``), which are scored too.

Features are computed as the product computes them: the excerpt decoded by the product's decoder to mono at 22050 Hz
(the blocks ``sonantica analyze`` feeds, concatenated), the onset envelopes of the whole signal, and BeatNet on the
product's network window (30 s in the middle). The run checks this against the product path itself
(``bench_tempo_real.analyze``: decoder blocks into a tempo session) for the shipped weights and for ``v3`` model 1,
and prints how many excerpts differ. Every model is scored with the real-music prior at weight 1 (as shipped) and 0.

Peer estimates (Essentia, tempo-CNN ``cnn``) are read from ``<cache>/real/peers-60s.json`` and never recomputed: run
``scripts/bench_tempo_real.py`` first. The reference set is the excerpts where the two agree within 4 %.

Usage (from the repository root; the rhythm corpus rendered by ``python -m scripts.bench_tempo --fetch-soundfonts
--render-only``, the BeatNet wheel installed)::

    python -m scripts.bench_tempo_cues_real                        # real excerpts and peers in .bench-cache
    python -m scripts.bench_tempo_cues_real --cache-dir DIR        # ... or in DIR
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from scripts.bench_tempo_real import SETS, agree, analyze, real_tracks
from scripts.fit_tempo_octave import fitting_set
from sidecar.analyzers.audio import read_mono
from sidecar.analyzers.tempo import (
    DEFAULT_NETWORK_WINDOW_S,
    ClipFeatures,
    TempoAnalyzer,
    clip_features,
    fit_octave,
    mono_envelopes,
)
from sidecar.analyzers.tempo_octave import OctaveModel
from sidecar.demo.evaluation import tempo_within, tempo_within_octave


@dataclass(frozen=True, slots=True)
class CueSet:
    """An octave cue set: the onset envelopes, plus the harmony envelopes or the activations of ``beatnet_model``
    (None: no network); ``chosen``: a candidate chosen before any measurement (False: information only)."""

    name: str
    harmony: bool = False
    beatnet_model: int | None = None
    chosen: bool = True


CUE_SETS = (
    CueSet("v2"),
    CueSet("harmony", harmony=True),
    CueSet("v3 model 1", beatnet_model=1),
    CueSet("v3 model 2", beatnet_model=2, chosen=False),
    CueSet("v3 model 3", beatnet_model=3, chosen=False),
)
FITS = ("rhythm+demo", "rhythm")
"""Fitting sets: the shipped recipe (180 rhythm-corpus clips and the demo pieces) and the rhythm corpus alone."""
PRIOR_WEIGHTS = (1.0, 0.0)
SHIPPED = "v2, shipped weights"
REAL_SETS = ("first", "more", "all")


def features(mono: npt.NDArray[np.float32], cues: CueSet) -> ClipFeatures:
    """The candidates and cues of ``cues`` for a whole mono 22050 Hz signal (BeatNet on the product's window)."""
    network = cues.beatnet_model is not None
    envelopes = mono_envelopes(
        mono,
        network_window_s=DEFAULT_NETWORK_WINDOW_S if network else None,
        beatnet_model=cues.beatnet_model or 1,
        harmony=cues.harmony,
    )
    return clip_features(envelopes, network=network, harmony=cues.harmony)


def method(cues: str, fit: str, weight: float) -> str:
    """The name of one scored variant: a cue set, its fitting set and the real prior's weight."""
    return f"{cues} ({fit}, prior {weight:g})"


@dataclass
class Excerpt:
    """One real excerpt: the peers' tempi and each variant's (bpm, confidence) by :func:`method` name."""

    name: str
    package: str
    essentia_bpm: float
    cnn_bpm: float
    estimates: dict[str, tuple[float | None, float]] = field(default_factory=dict)

    @property
    def agreed(self) -> bool:
        """Essentia and tempo-CNN agree within 4 %: the excerpt is in the reference set."""
        return agree(self.essentia_bpm, self.cnn_bpm)


@dataclass(frozen=True, slots=True)
class Score:
    """A variant on the agreed excerpts of a set: how many, Acc1 and Acc2 hits against Essentia, no tempo."""

    agreed: int
    hits: int
    octave_hits: int
    no_tempo: int

    def row(self, label: str) -> str:
        acc1 = self.hits / self.agreed if self.agreed else float("nan")
        acc2 = self.octave_hits / self.agreed if self.agreed else float("nan")
        return f"| {label} | {self.agreed} | {self.hits} | {acc1:.3f} | {acc2:.3f} | {self.no_tempo} |"


def score(excerpts: Sequence[Excerpt], variant: str) -> Score:
    """``variant``'s :class:`Score` on the agreed ones of ``excerpts``."""
    agreed = [e for e in excerpts if e.agreed]
    bpms = [(e.estimates[variant][0], e.essentia_bpm) for e in agreed]
    return Score(
        agreed=len(agreed),
        hits=sum(tempo_within(bpm, ref) for bpm, ref in bpms),
        octave_hits=sum(tempo_within_octave(bpm, ref) for bpm, ref in bpms),
        no_tempo=sum(bpm is None for bpm, _ in bpms),
    )


def same_answer(a: float | None, b: float | None) -> bool:
    """Two tempi are the same answer: both None, or within 4 % of each other."""
    return (a is None and b is None) or agree(a, b)


def differences(excerpts: Sequence[Excerpt], reference: str, other: str) -> list[str]:
    """Table rows (track, agreed, Essentia, tempo-CNN, ``reference``, ``other`` and its confidence, the change
    against Essentia on agreed excerpts) of every excerpt whose answer differs between the two variants."""
    rows = []
    for e in excerpts:
        (ref_bpm, _), (bpm, confidence) = e.estimates[reference], e.estimates[other]
        if same_answer(ref_bpm, bpm):
            continue
        change = "-"
        if e.agreed:
            before, after = tempo_within(ref_bpm, e.essentia_bpm), tempo_within(bpm, e.essentia_bpm)
            change = "gained" if after and not before else "lost" if before and not after else "both miss"
        rows.append(
            f"| {e.name} | {'yes' if e.agreed else 'no'} | {e.essentia_bpm:.1f} | {e.cnn_bpm:.1f} | {ref_bpm} "
            f"| {bpm} | {confidence:.2f} | {change} |"
        )
    return rows


def decision(scores: dict[str, Score], reference: dict[str, Score]) -> tuple[int, bool, bool]:
    """Conditions (1) and (2) of the decision rule for a variant with ``scores`` by set (``first``, ``more``,
    ``all``) against v2's ``reference``: the pooled gain in agreed hits, whether it is at least 4, and whether it is
    no worse than v2 on either set."""
    gain = scores["all"].hits - reference["all"].hits
    return gain, gain >= 4, all(scores[s].hits >= reference[s].hits for s in ("first", "more"))


def _fit_all(demo_pieces: int) -> dict[tuple[str, str], OctaveModel]:
    """Every cue set fitted on every fitting set, by (cue set name, fit)."""
    clips, pieces = fitting_set(demo_pieces)
    start = time.perf_counter()
    examples: dict[str, list[tuple[ClipFeatures, float]]] = {c.name: [] for c in CUE_SETS}
    is_clip: list[bool] = []
    for n, (path, bpm) in enumerate(clips + pieces):
        mono = read_mono(path)
        for cues in CUE_SETS:
            examples[cues.name].append((features(mono, cues), bpm))
        is_clip.append(n < len(clips))
        if (n + 1) % 60 == 0:
            print(f"  fitting set: {n + 1}/{len(clips) + len(pieces)} files", flush=True)
    print(f"fitting features: {len(clips)} clips + {len(pieces)} demo pieces, {time.perf_counter() - start:.0f} s")
    models = {}
    for cues in CUE_SETS:
        models[cues.name, "rhythm+demo"] = fit_octave(examples[cues.name])
        models[cues.name, "rhythm"] = fit_octave([x for x, c in zip(examples[cues.name], is_clip, strict=True) if c])
    return models


def _shipped_check(refit: OctaveModel) -> None:
    shipped = OctaveModel.default()
    fields = ("weights", "means", "scales")
    worst = max(
        float(
            np.max(
                np.abs(np.subtract(getattr(refit, f), getattr(shipped, f)))
                / np.maximum(np.abs(getattr(shipped, f)), 1e-12)
            )
        )
        for f in fields
    )
    same = all(
        f"{a:.4g}" == f"{b:.4g}" for f in fields for a, b in zip(getattr(refit, f), getattr(shipped, f), strict=True)
    )
    same = same and f"{refit.min_regularity:.4g}" == f"{shipped.min_regularity:.4g}"
    print(
        f"- refitted v2 (rhythm+demo) against the shipped DEFAULT_MODEL: every value the same to 4 significant digits "
        f"(as fit_tempo_octave prints them): {same}; largest relative difference {worst:.2e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache"), help="real excerpts and peers")
    parser.add_argument("--demo-pieces", type=int, default=96, help="demo pieces in the shipped recipe's fit")
    args = parser.parse_args()
    print(f"start {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, load average {os.getloadavg()[0]:.2f} (1-min)")

    models = _fit_all(args.demo_pieces)
    _shipped_check(models["v2", "rhythm+demo"])

    tracks = real_tracks(args.cache_dir, SETS["all"])
    peers = json.loads((args.cache_dir / "real" / "peers-60s.json").read_text())
    start = time.perf_counter()
    excerpts: list[Excerpt] = []
    product_mismatch = {SHIPPED: 0, "v3 model 1": 0}
    for track in tracks:
        entry = peers[track.excerpt.name]
        excerpt = Excerpt(track.excerpt.stem, track.package, entry["essentia_bpm"], entry["tempocnn_cnn"])
        mono = read_mono(track.excerpt)
        for cues in CUE_SETS:
            found = features(mono, cues)
            for weight in PRIOR_WEIGHTS:
                if cues.name == "v2":
                    shipped = TempoAnalyzer(real_prior_weight=weight).estimate(found)
                    excerpt.estimates[method(SHIPPED, "-", weight)] = (shipped.bpm, shipped.bpm_confidence)
                for fit in FITS:
                    analyzer = TempoAnalyzer(octave_model=models[cues.name, fit], real_prior_weight=weight)
                    result = analyzer.estimate(found)
                    excerpt.estimates[method(cues.name, fit, weight)] = (result.bpm, result.bpm_confidence)
        product_shipped = analyze(track.excerpt)[0].bpm
        product_mismatch[SHIPPED] += product_shipped != excerpt.estimates[method(SHIPPED, "-", 1.0)][0]
        product_v3 = analyze(track.excerpt, octave_model=models["v3 model 1", "rhythm+demo"])[0].bpm
        product_mismatch["v3 model 1"] += product_v3 != excerpt.estimates[method("v3 model 1", "rhythm+demo", 1.0)][0]
        excerpts.append(excerpt)
    print(f"real excerpts: {len(excerpts)}, {time.perf_counter() - start:.0f} s")
    for name, count in product_mismatch.items():
        print(f"- {name} (prior 1): BPM differs from the product path (decoder blocks, tempo session) on {count}")

    by_set = {s: [e for e in excerpts if e.package in SETS[s]] for s in REAL_SETS}
    variants = [(SHIPPED, "-", True)] + [(c.name, fit, c.chosen) for fit in FITS for c in CUE_SETS]
    for weight in PRIOR_WEIGHTS:
        for set_name in REAL_SETS:
            print(f"\n## Real set {set_name}, prior weight {weight:g}: agreed excerpts (Essentia = tempo-CNN)")
            print("| cue set (fit) | agreed | hits | Acc1 | Acc2 | no tempo |\n|---|---|---|---|---|---|")
            for name, fit, chosen in variants:
                label = f"{name} ({fit})" + ("" if chosen else ", not pre-chosen")
                print(score(by_set[set_name], method(name, fit, weight)).row(label))
        for fit in FITS:
            reference = method("v2", fit, weight)
            ref_scores = {s: score(by_set[s], reference) for s in REAL_SETS}
            print(f"\n## Decision rule (1) and (2) against v2 ({fit}, prior {weight:g})")
            print(
                "| cue set | pooled gain in agreed hits | (1) gain >= 4 | (2) not worse on either set |\n"
                "|---|---|---|---|"
            )
            for cues in CUE_SETS[1:]:
                variant = method(cues.name, fit, weight)
                gain, enough, not_worse = decision({s: score(by_set[s], variant) for s in REAL_SETS}, ref_scores)
                print(f"| {cues.name} | {gain:+d} | {enough} | {not_worse} |")
            for cues in CUE_SETS[1:]:
                rows = differences(excerpts, reference, method(cues.name, fit, weight))
                print(f"\n### Answers that differ: v2 against {cues.name} ({fit}, prior {weight:g}): {len(rows)}")
                print(
                    f"| track | agreed | Essentia | tempo-CNN | v2 | {cues.name} | its confidence | on agreed |\n"
                    "|---|---|---|---|---|---|---|---|"
                )
                print("\n".join(rows))
    print(f"\nend {datetime.now(UTC):%Y-%m-%d %H:%M:%S} UTC, load average {os.getloadavg()[0]:.2f} (1-min)")


if __name__ == "__main__":
    main()
