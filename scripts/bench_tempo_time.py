"""Time of the tempo analyzer on a decoded four-minute track, with the octave cues of the onset envelopes alone (v2)
and with the BeatNet activations added (v3: the network reads ``network_window_s`` of the middle of the track).

The audio is decoded once (the first of the files ``scripts/bench_analyze_marginal.py`` renders: demo-corpus seed 7,
44.1 kHz stereo FLAC under ``.bench-cache/marginal``), then each variant's session is fed the same blocks and
finished, alternating, ``--repeats`` times; medians are printed. Both variants use a model with zero weights of
their cue set's size: the time does not depend on the weights. The network's weights are loaded (and torch warmed)
before timing. The load average is printed before and after, since the machine may be shared.

Usage (from the repository root)::

    python -m scripts.bench_tempo_time --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from sidecar.analyzers import beatnet
from sidecar.analyzers.audio import AudioBlock, AudioReader
from sidecar.analyzers.tempo import DEFAULT_NETWORK_WINDOW_S, TempoAnalyzer
from sidecar.analyzers.tempo_octave import ENVELOPES, NETWORK_ENVELOPES, OctaveModel, feature_names
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import tempo_key_corpus


def _model(envelopes: tuple[str, ...]) -> OctaveModel:
    n = len(feature_names(envelopes))
    return OctaveModel(weights=(0.0,) * n, means=(0.0,) * n, scales=(1.0,) * n, min_regularity=0.0, envelopes=envelopes)


def _time(analyzer: TempoAnalyzer, info: object, blocks: list[AudioBlock]) -> float:
    start = time.perf_counter()
    session = analyzer.start(info)  # type: ignore[arg-type]  # the AudioInfo of the decoded file
    for block in blocks:
        session.feed(block)
    session.finish()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration-s", type=float, default=240.0)
    parser.add_argument("--network-window-s", type=float, default=DEFAULT_NETWORK_WINDOW_S)
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache/marginal"))
    args = parser.parse_args()

    specs = tempo_key_corpus(5, duration_s=args.duration_s, seed=7)
    path = cached_corpus(specs[:1], args.cache_dir)[0]
    with AudioReader(path) as reader:
        info = reader.info
        blocks = list(reader.blocks())
    variants = {
        "v2 (onset envelopes)": TempoAnalyzer(octave_model=_model(ENVELOPES)),
        f"v3 (+ BeatNet on {args.network_window_s:g} s)": TempoAnalyzer(
            octave_model=_model(ENVELOPES + NETWORK_ENVELOPES), network_window_s=args.network_window_s
        ),
    }
    beatnet.load_network()
    for analyzer in variants.values():
        _time(analyzer, info, blocks)  # warm-up: numba compilation, torch start-up
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(args.repeats):
        for name, analyzer in variants.items():
            times[name].append(_time(analyzer, info, blocks))
    load_after = os.getloadavg()
    print(f"| tempo analyzer, {args.duration_s:g} s track | median of {args.repeats} | runs |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {statistics.median(values):.3f} s | {', '.join(f'{t:.3f}' for t in values)} |")
    print(f"- load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1-min), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
