"""Start-up time of the ``sonantica`` command line: commands that analyse nothing and need no server.

Runs each command ``--repeats`` times as a fresh process (the installed ``sonantica`` script of this
interpreter's environment) and prints the median and range of the wall time; then the import time of
``sidecar.cli`` (the cumulative figure ``python -X importtime`` gives for it, median of the same number of
processes) and which heavy libraries importing ``sidecar.cli`` loads. With ``--status`` it also times
``sonantica status --json`` against running servers: an embedded PostgreSQL and Redis started by this script in a
temporary data directory (migrated once), their URLs passed as ``SONANTICA_DATABASE_URL`` / ``SONANTICA_REDIS_URL``
as a deployment with its own servers does, so server start-up is not counted. The load average is printed before
and after, since the machine may be shared.

Usage (from the repository root)::

    python -m scripts.bench_cli_start --repeats 5 [--status]
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sidecar.embedded import EmbeddedRedis, database_url, release_embedded_postgres
from sidecar.settings import Settings

SONANTICA = Path(sys.executable).with_name("sonantica")
COMMANDS = [["--help"], ["status", "--help"], ["config"], ["--version"]]
HEAVY = ["numpy", "scipy", "librosa", "torch", "sklearn", "fastapi", "starlette", "uvicorn", "sidecar.api.app"]


def _wall_s(argv: list[str], env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, capture_output=True, env=env)
    return time.perf_counter() - started


def _remove(data_dir: Path) -> None:
    for _ in range(20):  # a stopping server's supervisor may still write for a moment
        shutil.rmtree(data_dir, ignore_errors=True)
        if not data_dir.exists():
            return
        time.sleep(0.5)


def _status_times_s(repeats: int) -> list[float]:
    """Wall times of ``sonantica status --json`` against embedded servers this process keeps running."""
    data_dir = Path(tempfile.mkdtemp(prefix="bench-cli-"))
    atexit.register(_remove, data_dir)  # registered first, so it runs after the servers' own exit handlers
    settings = Settings(data_dir=data_dir)
    redis = EmbeddedRedis(data_dir)
    env = {
        **os.environ,
        "SONANTICA_DATA_DIR": str(data_dir),
        "SONANTICA_DATABASE_URL": database_url(settings),
        "SONANTICA_REDIS_URL": redis.acquire(),
    }
    try:
        subprocess.run([str(SONANTICA), "migrate"], check=True, capture_output=True, env=env)
        _wall_s([str(SONANTICA), "status", "--json"], env)  # the first connection warms the server's caches
        return [_wall_s([str(SONANTICA), "status", "--json"], env) for _ in range(repeats)]
    finally:  # this process is their only user: the servers stop now
        redis.release()
        release_embedded_postgres(data_dir)


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
    parser.add_argument("--status", action="store_true", help="also time `sonantica status --json` (see above)")
    args = parser.parse_args()
    print(f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    for command in COMMANDS:
        times_s = [_wall_s([str(SONANTICA), *command]) for _ in range(args.repeats)]
        print(_line(f"sonantica {' '.join(command)}", times_s), flush=True)
    if args.status:
        print(_line("sonantica status --json", _status_times_s(args.repeats)), flush=True)
    print(_line("import sidecar.cli (-X importtime)", [_import_s() for _ in range(args.repeats)]), flush=True)
    print(f"heavy modules after import sidecar.cli: {_heavy_loaded()}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
