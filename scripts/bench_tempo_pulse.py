"""The tempo analyzer's pulse check: held chords must get no tempo, music with a beat must keep its tempo.

Tempo version 4 reports no tempo when a track has fewer than ``min_onsets_per_min`` audible onsets a minute in its
densest 15 s (``sidecar.analyzers.tempo.onset_rate_per_min``); version 3 had only the periodicity check, which a
held chord's level ripple passes. Version 3 is the same analyzer with ``min_onsets_per_min=0`` (nothing else
changed in version 4), so both are computed from the same features: "no check" / "with the check" below (with
the current analyzer otherwise, version 5's tempo prior included).

Sets (``sidecar.demo.drones``; ``sidecar.demo.rhythm_corpus``):

- drones, seen: a held C major chord on 19 programs x 4 soundfonts, looked at while the check was designed;
- drones, held out: 20 other programs x 4 soundfonts, an open A minor chord held, and the same moving every 8 s;
- rhythm corpus: the 180 clips of ``scripts/bench_tempo.py`` (every one has a beat);
- real recordings: the 144 excerpts of both sets of ``scripts/bench_tempo_real.py`` (``--real``).

Peers in the same run: librosa ``beat_track`` defaults and Essentia ``RhythmExtractor2013`` (multifeature) when
installed (``pip install -e '.[bench]'``); neither has a no-tempo answer for pulse-less audio other than 0.

Usage::

    python -m scripts.bench_tempo --fetch-soundfonts --render-only   # once: the soundfonts and the rhythm corpus
    python -m scripts.bench_tempo_pulse [--real] [--no-essentia]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from scripts.bench_tempo import ESSENTIA, essentia_peers, librosa_beat_track
from sidecar.analyzers.tempo import TempoAnalyzer, estimate_tempo, mono_features, onset_rate_per_min
from sidecar.demo import drones as dr
from sidecar.demo import rhythm_corpus as rc
from sidecar.demo.evaluation import tempo_within

CONFIDENT = 0.75
"""A tempo at or above this confidence comes without ``bpm_alternative`` (the analyzer's ``alternative_below``)."""


@dataclass(frozen=True, slots=True)
class Row:
    """One clip: its onset rate, both versions' tempo and confidence, the peers' tempi, the truth (None: no beat,
    or unknown for real recordings)."""

    label: str
    rate_per_min: float
    unchecked: tuple[float | None, float]
    checked: tuple[float | None, float]
    peers: dict[str, float | None]
    truth_bpm: float | None


def _score(path: Path, label: str, truth_bpm: float | None, peers: dict[str, Callable[..., Any]]) -> Row:
    mono = rc.load_mono(path)
    features = mono_features(mono)
    unchecked = estimate_tempo(features, TempoAnalyzer(min_onsets_per_min=0.0).settings)
    checked = estimate_tempo(features, TempoAnalyzer().settings)
    return Row(
        label,
        onset_rate_per_min(features.envelopes.full),
        (unchecked.bpm, unchecked.bpm_confidence),
        (checked.bpm, checked.bpm_confidence),
        {name: peer(path, mono) for name, peer in peers.items()},
        truth_bpm,
    )


def _share(rows: Sequence[Row], test: Callable[[Row], bool]) -> str:
    return f"{sum(map(test, rows))}/{len(rows)}"


def _has_peer(peer: str) -> Callable[[Row], bool]:
    """Whether a row has an estimate from ``peer``."""
    return lambda r: r.peers[peer] is not None


def _report(name: str, rows: Sequence[Row], peer_names: Sequence[str]) -> None:
    rates = sorted(r.rate_per_min for r in rows)
    cells = [
        name,
        str(len(rows)),
        f"{rates[0]:.0f} / {statistics.median(rates):.0f} / {rates[-1]:.0f}",
        _share(rows, lambda r: r.unchecked[0] is not None),
        _share(rows, lambda r: r.unchecked[0] is not None and r.unchecked[1] >= CONFIDENT),
        _share(rows, lambda r: r.checked[0] is not None),
        _share(rows, lambda r: r.checked[0] is not None and r.checked[1] >= CONFIDENT),
        *(_share(rows, _has_peer(p)) for p in peer_names),
    ]
    known = [(r, r.truth_bpm) for r in rows if r.truth_bpm is not None]
    if known:
        cells.append(
            f"{np.mean([tempo_within(r.unchecked[0], truth_bpm) for r, truth_bpm in known]):.3f} / "
            f"{np.mean([tempo_within(r.checked[0], truth_bpm) for r, truth_bpm in known]):.3f}"
        )
    else:
        cells.append("-")
    print("| " + " | ".join(cells) + " |")


def _rhythm(cache_dir: Path) -> list[tuple[Path, str, float | None]]:
    clips = rc.rhythm_corpus()
    paths = rc.cached_clip_paths(clips, cache_dir)
    return [
        (p, f"{c.family} / {c.pattern} {c.bpm:g} BPM [{c.soundfont}]", c.bpm) for c, p in zip(clips, paths, strict=True)
    ]


def _drones(drones: Sequence[dr.Drone], cache_dir: Path) -> list[tuple[Path, str, float | None]]:
    paths = dr.cached_drone_paths(drones, cache_dir)
    return [(p, d.label, None) for d, p in zip(drones, paths, strict=True)]


def _real(cache_dir: Path) -> list[tuple[Path, str, float | None]]:
    from scripts.bench_tempo_real import PACKAGES, PACKAGES_MORE, real_tracks

    return [(t.excerpt, t.excerpt.stem, None) for t in real_tracks(cache_dir, (*PACKAGES, *PACKAGES_MORE))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache-dir", type=Path, default=rc.DEFAULT_CACHE_DIR)
    parser.add_argument("--real", action="store_true", help="also the real excerpts of scripts/bench_tempo_real")
    parser.add_argument("--no-essentia", action="store_true", help="skip Essentia even when it is installed")
    args = parser.parse_args()
    _, missing = rc.find_soundfonts(cache_dir=args.cache_dir)
    if missing:
        raise SystemExit("\n".join(missing))
    peers: dict[str, Callable[..., Any]] = {"librosa beat_track": librosa_beat_track}
    if not args.no_essentia:
        tempo_peers = essentia_peers()
        if not tempo_peers:
            print("Essentia is not installed (pip install -e '.[bench]'): its column is left out")
        elif ESSENTIA in tempo_peers:
            peers[ESSENTIA] = tempo_peers[ESSENTIA]
    sets = {
        "drones, seen (held C major)": _drones(dr.drone_set(dr.SEEN_PROGRAMS, held_out=False), args.cache_dir),
        "drones, held out (held and every 8 s)": _drones(
            dr.drone_set(dr.HELD_OUT_PROGRAMS, held_out=True), args.cache_dir
        ),
        "rhythm corpus (every clip has a beat)": _rhythm(args.cache_dir),
    }
    if args.real:
        sets["real recordings"] = _real(args.cache_dir)
    start = time.perf_counter()
    results = {
        name: [_score(path, label, truth, peers) for path, label, truth in items] for name, items in sets.items()
    }
    print(f"scored {sum(map(len, results.values()))} clips in {time.perf_counter() - start:.0f} s\n")
    names = list(peers)
    print(
        "| set | n | onsets/min in the densest 15 s, min / median / max | no check: gives a tempo | no check: "
        f"confident (>= {CONFIDENT}) | with the check: gives a tempo | with the check: confident | "
        + " | ".join(f"{n} gives a tempo" for n in names)
        + " | Acc1 no check / with it |"
    )
    print("|" + "---|" * (8 + len(names)))
    for name, rows in results.items():
        _report(name, rows, names)
    print("\n## Music whose answer the check changed")
    print("| set | clip | onsets/min | no check | with it |\n|---|---|---|---|---|")
    for name, rows in results.items():
        for r in rows if not name.startswith("drones") else ():
            if r.unchecked != r.checked:
                print(f"| {name} | {r.label} | {r.rate_per_min:.0f} | {_fmt(r.unchecked)} | {_fmt(r.checked)} |")
    print("\n## Held-out drones that still get a tempo with the check")
    for r in results["drones, held out (held and every 8 s)"]:
        if r.checked[0] is not None:
            print(f"- {r.label}: {_fmt(r.checked)}, {r.rate_per_min:.0f} onsets/min")


def _fmt(result: tuple[float | None, float]) -> str:
    bpm, confidence = result
    return "none" if bpm is None else f"{bpm:g} BPM ({confidence:.2f})"


if __name__ == "__main__":
    main()
