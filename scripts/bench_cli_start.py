"""Start-up time of the ``sonantica`` command line: commands that analyse nothing and need no server.

Runs each command ``--repeats`` times as a fresh process (the installed ``sonantica`` script of this
interpreter's environment) and prints the median and range of the wall time; then the import time of
``sidecar.cli`` (the cumulative figure ``python -X importtime`` gives for it, median of the same number of
processes) and which heavy libraries importing ``sidecar.cli`` loads. The load average is printed before and
after, since the machine may be shared.

Usage (from the repository root)::

    python -m scripts.bench_cli_start --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

SONANTICA = Path(sys.executable).with_name("sonantica")
COMMANDS = [["--help"], ["status", "--help"], ["config"], ["--version"]]
HEAVY = ["numpy", "scipy", "librosa", "torch", "sklearn", "fastapi", "starlette", "uvicorn", "sidecar.api.app"]


def _wall_s(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True)
    return time.perf_counter() - started


def _import_s() -> float:
    """Cumulative import time of ``sidecar.cli`` in a fresh interpreter, seconds."""
    err = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import sidecar.cli"], check=True, capture_output=True, text=True
    ).stderr
    line = next(x for x in err.splitlines() if x.rstrip().endswith("| sidecar.cli"))
    return int(line.split("|")[1]) / 1e6


def _heavy_loaded() -> str:
    code = f"import sys, sidecar.cli; print(' '.join(m for m in {HEAVY!r} if m in sys.modules) or 'none')"
    return subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def _line(label: str, times_s: list[float]) -> str:
    return f"{label:34} median {statistics.median(times_s):.3f} s  (min {min(times_s):.3f}, max {max(times_s):.3f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    for command in COMMANDS:
        times_s = [_wall_s([str(SONANTICA), *command]) for _ in range(args.repeats)]
        print(_line(f"sonantica {' '.join(command)}", times_s), flush=True)
    print(_line("import sidecar.cli (-X importtime)", [_import_s() for _ in range(args.repeats)]), flush=True)
    print(f"heavy modules after import sidecar.cli: {_heavy_loaded()}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
