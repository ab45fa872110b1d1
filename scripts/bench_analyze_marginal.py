"""DSP time per file of ``sonantica analyze --json`` without process start-up: 5 four-minute stereo FLACs vs 1.

Runs ``sonantica analyze --json`` (decode + loudness + true peak + tempo + key) on 1 file and on 5 different files,
alternating, ``--repeats`` times each; the marginal time per file is (median of 5 - median of 1) / 4, so the
interpreter start-up, imports and the one-off numba compilation are not counted. The same is reported for the CPU
time of the command (user + system, all its threads and children), which a loaded machine disturbs much less than
the wall time. The files are rendered once
(``sidecar.demo.music``, 44.1 kHz stereo 16-bit FLAC) under ``.bench-cache/marginal``. The load average is printed
before and after, since the machine may be shared.

Usage (from the repository root)::

    python -m scripts.bench_analyze_marginal --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from sidecar.demo.library import cached_corpus
from sidecar.demo.music import tempo_key_corpus


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(command: list[str], n_files: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of ``command``."""
    cpu_start, start = _children_cpu_s(), time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    elapsed, cpu = time.perf_counter() - start, _children_cpu_s() - cpu_start
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if len(rows) != n_files or any("error" in row or "errors" in row for row in rows):
        raise SystemExit(f"unexpected output of {' '.join(command)}:\n{out}")
    return elapsed, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--duration-s", type=float, default=240.0)
    parser.add_argument("--cache-dir", type=Path, default=Path(".bench-cache/marginal"))
    args = parser.parse_args()

    specs = tempo_key_corpus(5, duration_s=args.duration_s, seed=7)
    files = [str(p) for p in cached_corpus(specs, args.cache_dir)]
    sonantica = Path(sys.executable).with_name("sonantica")
    base = (
        [str(sonantica), "analyze", "--json"]
        if sonantica.exists()
        else [sys.executable, "-m", "sidecar", "analyze", "--json"]
    )
    load_before = os.getloadavg()
    one, five = [], []
    _run([*base, files[0]], 1)  # warm the page cache
    for _ in range(args.repeats):
        one.append(_run([*base, files[0]], 1))
        five.append(_run([*base, *files], 5))
    load_after = os.getloadavg()
    t1, t5 = (statistics.median(wall for wall, _ in runs) for runs in (one, five))
    c1, c5 = (statistics.median(cpu for _, cpu in runs) for runs in (one, five))
    print(f"| files | wall time (median of {args.repeats}) | runs | CPU time (median) | runs |\n|---|---|---|---|---|")
    for label, runs, wall, cpu in (
        (f"1 x {args.duration_s:g} s", one, t1, c1),
        (f"5 x {args.duration_s:g} s", five, t5, c5),
    ):
        walls, cpus = (", ".join(f"{run[i]:.2f}" for run in runs) for i in (0, 1))
        print(f"| {label} | {wall:.2f} s | {walls} | {cpu:.2f} s | {cpus} |")
    print(f"- marginal DSP time per {args.duration_s:g} s stereo FLAC: **{(t5 - t1) / 4:.3f} s** wall")
    print(f"- marginal CPU time per {args.duration_s:g} s stereo FLAC: **{(c5 - c1) / 4:.3f} s**")
    print(f"- load average before {load_before[0]:.2f}, after {load_after[0]:.2f} (1-min), {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
