"""Worker throughput: 100 generated tracks analysed by 1 and by 2 ``sonantica worker --drain`` processes.

Each run uses a fresh data directory (embedded PostgreSQL and Redis), enqueues the folder with
``sonantica enqueue`` and times the workers from start to the last track done (loudness, tempo, key).

Run: ``.venv/bin/python scripts/bench_worker.py [--tracks 100] [--seconds 30]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sidecar.demo.library import cached_corpus
from sidecar.demo.music import tempo_key_corpus

CACHE = Path(".bench-cache")


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args], env=env, capture_output=True, text=True, check=True, timeout=3600
    )


def run(folder: Path, processes: int, n_tracks: int) -> float:
    with tempfile.TemporaryDirectory(prefix="bench-worker-") as data_dir:
        env = {**os.environ, "SONANTICA_DATA_DIR": data_dir, "SONANTICA_ANALYSIS__ENABLED": "loudness,tempo,key"}
        _cli(env, "enqueue", str(folder))
        started = time.perf_counter()
        workers = [
            subprocess.Popen([sys.executable, "-m", "sidecar", "worker", "--drain"], env=env, stderr=subprocess.DEVNULL)
            for _ in range(processes)
        ]
        for worker in workers:
            worker.wait()
        elapsed = time.perf_counter() - started
        report = json.loads(_cli(env, "status", "--json").stdout)
        done = {name: counts["done"] for name, counts in report["analyzers"].items()}
        assert set(done.values()) == {n_tracks}, done
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tracks", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    folder = CACHE / f"worker-{args.tracks}x{args.seconds:g}s"
    cached_corpus(tempo_key_corpus(args.tracks, duration_s=args.seconds, seed=3), folder)
    print(f"| worker processes | wall s for {args.tracks} tracks of {args.seconds:g} s | tracks per minute |")
    print("|---:|---:|---:|")
    for processes in (1, 2):
        elapsed = run(folder, processes, args.tracks)
        print(f"| {processes} | {elapsed:.1f} | {args.tracks / elapsed * 60:.0f} |")


if __name__ == "__main__":
    main()
