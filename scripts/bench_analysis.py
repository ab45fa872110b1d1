"""Analysis core benchmark: speed and memory of decode + loudness + true peak + tempo + key, and accuracy on the
generated ground-truth corpus, beside a librosa-default baseline.

Run: ``.venv/bin/python scripts/bench_analysis.py`` (``--pieces N`` for the accuracy corpus size, ``--quick`` to
skip the 60-minute memory run). Prints Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sidecar.analyzers.pipeline import analyze_file
from sidecar.analyzers.registry import CORE_ANALYZERS, build_analyzers
from sidecar.demo.encode import write_audio
from sidecar.demo.evaluation import mirex_key_score, tempo_within, tempo_within_bpm
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import SAMPLE_RATE_HZ, PieceSpec, render, tempo_key_corpus
from sidecar.domain import KeyResult, KeySignature, Mode, TempoResult
from sidecar.settings import get_settings

CACHE = Path(".bench-cache")
KK_MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
KK_MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])
KK_PROFILES: tuple[tuple[Mode, npt.NDArray[np.float64]], ...] = (("major", KK_MAJOR), ("minor", KK_MINOR))


def long_track(minutes: float) -> Path:
    """A stereo 44.1 kHz FLAC of ``minutes`` minutes (a 5-minute piece repeated), cached."""
    path = CACHE / f"long-{minutes:g}min.flac"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        spec = PieceSpec(
            title="long", bpm=124.0, key=KeySignature("F", "minor"), groove="house", duration_s=300.0, seed=5
        )
        piece = render(spec)
        repeats = int(np.ceil(minutes * 60 / 300.0))
        samples = np.tile(piece, (repeats, 1))[: int(minutes * 60 * SAMPLE_RATE_HZ)]
        write_audio(samples, SAMPLE_RATE_HZ, path.with_suffix(".partial.flac"))
        path.with_suffix(".partial.flac").replace(path)
    return path


def librosa_default(path: Path) -> tuple[float | None, KeySignature | None, float | None]:
    """The naive approach: load everything, librosa's default tempo, mean chroma_cqt + Krumhansl-Kessler,
    pyloudnorm on the whole array."""
    import librosa
    import pyloudnorm

    native, rate = librosa.load(path, sr=None, mono=False)
    loudness = pyloudnorm.Meter(rate).integrated_loudness(np.atleast_2d(native).T)
    y = librosa.resample(librosa.to_mono(native), orig_sr=rate, target_sr=22050)
    tempo, _ = librosa.beat.beat_track(y=y, sr=22050)
    chroma = librosa.feature.chroma_cqt(y=y, sr=22050).mean(axis=1)
    best = max(
        (
            (float(np.corrcoef(np.roll(profile, pc), chroma)[0, 1]), pc, mode)
            for mode, profile in KK_PROFILES
            for pc in range(12)
        ),
    )
    return float(np.atleast_1d(tempo)[0]), KeySignature.from_pitch_class(best[1], best[2]), float(loudness)


def child_peak_rss_mib(path: Path) -> float:
    """Peak RSS (``VmHWM``) of a fresh process that analyses ``path``.

    ``ru_maxrss`` is not used: Linux carries it over ``fork`` + ``exec``, so a child would report the parent's
    peak (this script holds a whole rendered hour of audio while it writes the test file).
    """
    code = (
        "import sys\n"
        "from sidecar.analyzers.pipeline import analyze_file\n"
        "from sidecar.analyzers.registry import CORE_ANALYZERS, build_analyzers\n"
        "from sidecar.settings import get_settings\n"
        "a = analyze_file(sys.argv[1], build_analyzers(get_settings(), CORE_ANALYZERS))\n"
        "assert a.error is None, a.error\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(int(hwm.split()[1]) / 1024)\n"
    )
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def speed(path: Path, repeats: int) -> None:
    analyzers = build_analyzers(get_settings(), CORE_ANALYZERS)
    analyze_file(path, analyzers)  # warm-up: imports, FFT plans
    timings: dict[str, list[float]] = {"decode only": [], "full (decode+loudness+tempo+key)": []}
    for name in CORE_ANALYZERS:
        timings[f"decode + {name}"] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        analyze_file(path, [])
        timings["decode only"].append(time.perf_counter() - t0)
        for analyzer in analyzers:
            t0 = time.perf_counter()
            analyze_file(path, [analyzer])
            timings[f"decode + {analyzer.name}"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        analyze_file(path, analyzers)
        timings["full (decode+loudness+tempo+key)"].append(time.perf_counter() - t0)
    baseline = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        librosa_default(path)
        baseline.append(time.perf_counter() - t0)
    timings["librosa-default baseline (load+tempo+chroma key+pyloudnorm)"] = baseline
    print(f"\n### Speed: 4-minute stereo 44.1 kHz FLAC, single process, median of {repeats}\n")
    print("| what | median s | min s |\n|---|---:|---:|")
    for name, values in timings.items():
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} |")


def memory(four_min: Path, quick: bool) -> None:
    print("\n### Peak RSS of one analysis process (decode + loudness + tempo + key)\n")
    print("| track | peak RSS MiB |\n|---|---:|")
    print(f"| 4 min stereo FLAC | {child_peak_rss_mib(four_min):.0f} |")
    rss = {}
    for minutes in (5.0,) + (() if quick else (60.0,)):
        rss[minutes] = child_peak_rss_mib(long_track(minutes))
        print(f"| {minutes:g} min stereo FLAC | {rss[minutes]:.0f} |")
    if 60.0 in rss:
        print(f"\nratio 60 min / 5 min: **{rss[60.0] / rss[5.0]:.2f}x**")


def accuracy(n_pieces: int, with_baseline: bool) -> None:
    specs = tempo_key_corpus(n_pieces, duration_s=30.0, seed=11)
    paths = cached_corpus(specs, CACHE / "corpus")
    analyzers = build_analyzers(get_settings(), CORE_ANALYZERS)
    rows: dict[str, list[tuple[PieceSpec, float | None, KeySignature | None, float]]] = {
        "sonantica": [],
        "librosa default": [],
    }
    for spec, path in zip(specs, paths, strict=True):
        t0 = time.perf_counter()
        results = analyze_file(path, analyzers).results
        elapsed = time.perf_counter() - t0
        tempo, key = results.get("tempo"), results.get("key")
        bpm = tempo.bpm if isinstance(tempo, TempoResult) else None
        est_key = key.key if isinstance(key, KeyResult) else None
        rows["sonantica"].append((spec, bpm, est_key, elapsed))
        if with_baseline:
            t0 = time.perf_counter()
            b_bpm, b_key, _ = librosa_default(path)
            rows["librosa default"].append((spec, b_bpm, b_key, time.perf_counter() - t0))
    print(f"\n### Accuracy on the generated corpus ({n_pieces} pieces of 30 s, 60-190 BPM, all grooves, 24 keys)\n")
    print("| method | tempo Acc1 (4%) | tempo within 0.5 BPM | key MIREX score | key exact | s per 30 s piece |")
    print("|---|---:|---:|---:|---:|---:|")
    for method, entries in rows.items():
        if not entries:
            continue
        n = len(entries)
        acc1 = sum(tempo_within(b, s.bpm) for s, b, _, _ in entries) / n
        half = sum(tempo_within_bpm(b, s.bpm) for s, b, _, _ in entries) / n
        mirex = sum(mirex_key_score(k, s.key) for s, _, k, _ in entries) / n
        exact = sum(k == s.key for s, _, k, _ in entries) / n
        secs = statistics.median(t for *_, t in entries)
        print(f"| {method} | {acc1:.3f} | {half:.3f} | {mirex:.3f} | {exact:.3f} | {secs:.3f} |")
    misses = [
        (s.title, b, k.name if k else None)
        for s, b, k, _ in rows["sonantica"]
        if not tempo_within_bpm(b, s.bpm) or k != s.key
    ]
    print("\nsonantica misses (title, bpm, key):", json.dumps(misses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pieces", type=int, default=96)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip the 60-minute memory run")
    parser.add_argument("--no-baseline", action="store_true", help="skip librosa-default accuracy (slow)")
    args = parser.parse_args()
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}")
    four_min = CACHE / "four-minutes.flac"
    if not four_min.exists():
        CACHE.mkdir(exist_ok=True)
        spec = PieceSpec(title="4", bpm=128.0, key=KeySignature("G", "major"), groove="house", duration_s=240.0, seed=4)
        write_audio(render(spec), SAMPLE_RATE_HZ, four_min)
    speed(four_min, args.repeats)
    memory(four_min, args.quick)
    accuracy(args.pieces, not args.no_baseline)
    print(f"\npeak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
