"""Time of the tempo analyzer on a decoded four-minute track, with the octave cues of the onset envelopes alone (v2),
with the harmony envelopes added (``harmony``: chroma and bass change) and with the BeatNet activations added (v3:
the network reads ``network_window_s`` of the middle of the track); ``--variants`` picks them (default v2,harmony).

The audio is decoded once (the first of the files ``scripts/bench_analyze_marginal.py`` renders: demo-corpus seed 7,
44.1 kHz stereo FLAC under ``.bench-cache/marginal``), then each variant's session is fed the same blocks and
finished, alternating, ``--repeats`` times; medians of wall and CPU time (``time.process_time``: all threads of the
process) are printed. Every variant uses a model with zero weights of its cue set's size: the time does not depend
on the weights. The network's weights are loaded (and torch warmed) before timing. The load average is printed
before and after, since the machine may be shared.

Usage (from the repository root)::

    python -m scripts.bench_tempo_time --repeats 5
    python -m scripts.bench_tempo_time --repeats 5 --variants v2,v3   # needs the pinned BeatNet wheel
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from sidecar.analyzers.audio import AudioBlock, AudioReader
from sidecar.analyzers.tempo import DEFAULT_NETWORK_WINDOW_S, TempoAnalyzer
from sidecar.analyzers.tempo_octave import (
    ENVELOPES,
    HARMONY_ENVELOPES,
    NETWORK_ENVELOPES,
    OctaveModel,
    feature_names,
)
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import tempo_key_corpus
from sidecar.domain import AudioInfo


def _model(envelopes: tuple[str, ...]) -> OctaveModel:
    n = len(feature_names(envelopes))
    return OctaveModel(weights=(0.0,) * n, means=(0.0,) * n, scales=(1.0,) * n, min_regularity=0.0, envelopes=envelopes)


def _time(analyzer: TempoAnalyzer, info: AudioInfo, blocks: list[AudioBlock]) -> tuple[float, float]:
    """(wall, CPU) seconds of one analysis."""
    start, start_cpu = time.perf_counter(), time.process_time()
    session = analyzer.start(info)
    for block in blocks:
        session.feed(block)
    session.finish()
    return time.perf_counter() - start, time.process_time() - start_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration-s", type=float, default=240.0)
    parser.add_argument("--network-window-s", type=float, default=DEFAULT_NETWORK_WINDOW_S)
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache/marginal"))
    parser.add_argument("--variants", default="v2,harmony", help="comma-separated: v2, harmony, v3")
    args = parser.parse_args()

    specs = tempo_key_corpus(5, duration_s=args.duration_s, seed=7)
    path = cached_corpus(specs[:1], args.cache_dir)[0]
    with AudioReader(path) as reader:
        info = reader.info
        blocks = list(reader.blocks())
    known = {
        "v2": ("v2 (onset envelopes)", ENVELOPES),
        "harmony": ("harmony (+ chroma and bass change)", ENVELOPES + HARMONY_ENVELOPES),
        "v3": (f"v3 (+ BeatNet on {args.network_window_s:g} s)", ENVELOPES + NETWORK_ENVELOPES),
    }
    chosen = [v for v in args.variants.split(",") if v]
    if unknown := set(chosen) - set(known):
        raise SystemExit(f"unknown variants: {sorted(unknown)}")
    variants = {
        known[v][0]: TempoAnalyzer(octave_model=_model(known[v][1]), network_window_s=args.network_window_s)
        for v in chosen
    }
    if "v3" in chosen:
        from sidecar.analyzers import beatnet

        beatnet.load_network()
    for analyzer in variants.values():
        _time(analyzer, info, blocks)  # warm-up: numba compilation, torch start-up
    load_before = os.getloadavg()
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, analyzer in variants.items():
            times[name].append(_time(analyzer, info, blocks))
    load_after = os.getloadavg()
    print(
        f"| tempo analyzer, {args.duration_s:g} s track | wall, median of {args.repeats} | CPU, median | "
        "wall runs | CPU runs |\n|---|---|---|---|---|"
    )
    for name, values in times.items():
        wall, cpu = [t for t, _ in values], [c for _, c in values]
        print(
            f"| {name} | {statistics.median(wall):.3f} s | {statistics.median(cpu):.3f} s "
            f"| {', '.join(f'{t:.3f}' for t in wall)} | {', '.join(f'{c:.3f}' for c in cpu)} |"
        )
    print(f"- load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1-min), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
