"""CPU time per stage of ``sonantica analyze`` (decode + loudness + true peak + tempo + key) on 4-minute stereo FLACs.

The product path (:func:`sidecar.analyzers.pipeline.analyze_file`'s loop: :meth:`AudioReader.blocks` feeding the
``loudness``, ``tempo`` and ``key`` sessions) is run on the files ``bench_analyze_marginal`` renders, with
``time.process_time`` (CPU time of the process, all threads: the machine is shared, so wall time is noisy) around
each step: the decoder's blocks (decode, downmix, resampling to the analysis rate), and each analyzer's ``feed``
and ``finish``. The decoder and loudness are then split by replaying their parts on the same decoded audio: the
mono resampling to 22050 Hz, the true-peak oversampling with its maximum, and the K-weighting filter with the
energy sums. Each figure is the median over the files of the per-file CPU seconds, after one warm-up file (numba
compilation, caches). ``--worker-set`` runs the worker's analyzers instead (``analysis.enabled``: also the embedding
and the waveform), to show the DSP path's share there.

Usage (from the repository root)::

    python -m scripts.bench_analyze_stages --repeats 3
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import AudioBlock, AudioReader, mono_resampler
from sidecar.analyzers.base import Analyzer, AnalyzerSession
from sidecar.analyzers.loudness import GatedEnergy, TruePeakMeter
from sidecar.analyzers.registry import CORE_ANALYZERS, build_analyzers
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import tempo_key_corpus
from sidecar.domain import AnalyzerOutput
from sidecar.settings import get_settings


def _timed_blocks(blocks: Iterator[AudioBlock], times: dict[str, float]) -> Iterator[AudioBlock]:
    while True:
        start = time.process_time()
        block = next(blocks, None)
        times["decoder blocks (decode + downmix + resample)"] += time.process_time() - start
        if block is None:
            return
        yield block


def _clock(times: dict[str, float], label: str, action: Callable[[], object]) -> None:
    start = time.process_time()
    action()
    times[label] += time.process_time() - start


def _replay(natives: list[npt.NDArray[np.float32]], rate_hz: int, times: dict[str, float]) -> None:
    """Re-run the decoder's mono resampling and loudness' parts on the decoded audio, each timed on its own."""
    resampler = mono_resampler(rate_hz)
    channels = natives[0].shape[0]
    peaks = TruePeakMeter(sample_rate_hz=rate_hz, channels=channels)
    energy = GatedEnergy(sample_rate_hz=rate_hz, channels=channels)
    for native in natives:
        mono = np.ascontiguousarray(native.mean(axis=0, dtype=np.float32))
        _clock(times, "  decoder: of which mono resampling to 22050 Hz", lambda: resampler.resample_chunk(mono))  # noqa: B023
        _clock(times, "  loudness: of which true + sample peak (4x oversampling)", lambda: peaks.feed(native))  # noqa: B023
        _clock(times, "  loudness: of which K-weighting + block energies", lambda: energy.feed(native))  # noqa: B023


def profile_file(path: Path, analyzers: list[Analyzer[AnalyzerOutput]]) -> dict[str, float]:
    """CPU seconds per stage for one file."""
    times: dict[str, float] = defaultdict(float)
    natives: list[npt.NDArray[np.float32]] = []
    with AudioReader(path) as reader:
        sessions: list[tuple[str, AnalyzerSession[AnalyzerOutput]]] = [
            (a.name, a.start(reader.info)) for a in analyzers
        ]
        for block in _timed_blocks(reader.blocks(), times):
            natives.append(block.native)
            for name, session in sessions:
                _clock(times, f"{name} feed", lambda: session.feed(block))  # noqa: B023 (called at once)
        for name, session in sessions:
            _clock(times, f"{name} finish", session.finish)
        rate_hz = reader.info.sample_rate_hz
    times["total (decoder + analyzers)"] = sum(times.values())
    _replay(natives, rate_hz, times)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=1, help="passes over the five files")
    parser.add_argument("--duration-s", type=float, default=240.0)
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache/marginal"))
    parser.add_argument(
        "--worker-set",
        action="store_true",
        help="run the worker's configured analyzers (analysis.enabled: also embedding and waveform), not analyze's",
    )
    args = parser.parse_args()

    files = cached_corpus(tempo_key_corpus(5, duration_s=args.duration_s, seed=7), args.cache_dir)
    settings = get_settings()
    analyzers = build_analyzers(settings, settings.analysis.enabled if args.worker_set else CORE_ANALYZERS)
    load_before = os.getloadavg()
    profile_file(files[0], analyzers)  # warm-up: numba compilation, caches
    runs = [profile_file(path, analyzers) for _ in range(args.repeats) for path in files]
    load_after = os.getloadavg()
    print(f"| stage | CPU s per file (median of {len(runs)}) |\n|---|---|")
    for label in runs[0]:
        print(f"| {label} | {statistics.median(run[label] for run in runs):.3f} |")
    print(f"- load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1-min), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
