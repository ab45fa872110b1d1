"""Memory over time (issue 16): RSS of a worker analysing for hours and of the API under a steady request load.

In a fresh temporary data directory (embedded PostgreSQL and Redis, started by this process as the other benchmarks
do): ``--pieces`` distinct rendered FLACs (cached under ``.bench-cache``) hard-linked under ``--tracks`` names, each
a distinct track of the ``local`` host, queued with ``sonantica enqueue``; then one ``sonantica worker`` (the default
analyzers: loudness, tempo, key, embedding, waveform) and ``sonantica serve`` run as real processes while a client
thread sends ``--rate`` requests per second to the API (in turn: ``/api/status``, a track-list page,
``/api/tracks/{id}/similar`` and ``/api/tracks/{id}/analysis`` of analysed tracks).

Every ``--every-s`` seconds it reads from ``/proc`` the RSS and PSS of: the worker's main process, its descendants
(the forkserver and the analysis processes, summed), the API process, PostgreSQL (the postmaster and its backends,
summed; RSS counts shared buffers once per backend, PSS does not) and redis-server; it writes them to
``memory.csv`` (long form: ``t_s, component, processes, rss_mib, pss_mib``) and the progress (tracks analysed,
requests, errors, load) to ``progress.csv`` in ``--out``, and prints a table: the median RSS over the 5 minutes
around 5, 15, 30, 60, 90 and 120 min (as far as the run reached), the peak, and the 60-min / 5-min ratio.

Run: ``timeout 130m .venv/bin/python -m scripts.bench_memory --out bench-memory`` (120 min);
``--duration-min 3 --short`` is a smoke test (fewer tracks, checkpoints at 1 and 2 min).
``--summary DIR`` prints the table of an earlier run's CSV files.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import csv
import itertools
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from scripts.chaos import spawn, start_api
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import tempo_key_corpus
from sidecar.embedded import database_url, pid_in_file, redis_url, supervisor_exited
from sidecar.settings import Settings

CACHE = Path(".bench-cache")
TOKEN = "bench-memory-token-0123456789abcdef"
COMPONENTS = ("worker_main", "worker_children", "worker_total", "api", "postgres", "redis")
CHECKPOINTS_MIN = (5.0, 15.0, 30.0, 60.0, 90.0, 120.0)
SHORT_CHECKPOINTS_MIN = (1.0, 2.0, 3.0)
WINDOW_MIN = 5.0
BAR_RATIO = 1.3


# --- /proc -------------------------------------------------------------------------------------------------------


def children_by_parent() -> dict[int, list[int]]:
    """Every live process's children, from ``/proc/*/stat`` (processes that vanish while read are skipped)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])  # the command name may hold spaces and parentheses
        children.setdefault(ppid, []).append(int(entry.name))
    return children


def descendants(pid: int, children: dict[int, list[int]], exclude: Iterable[int] = ()) -> list[int]:
    """``pid``'s descendants (not ``pid``), without the subtrees rooted at ``exclude``."""
    skip = set(exclude)
    found: list[int] = []
    stack = [c for c in children.get(pid, []) if c not in skip]
    while stack:
        child = stack.pop()
        found.append(child)
        stack.extend(c for c in children.get(child, []) if c not in skip)
    return found


def memory_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of ``pid`` in KiB; (0, 0) when it is gone."""
    rss = pss = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                pss = int(line.split()[1])
    return rss, pss


@dataclass(frozen=True, slots=True)
class Sample:
    """The memory of one component at one time (sums over its processes)."""

    t_s: float
    component: str
    processes: int
    rss_mib: float
    pss_mib: float


def measure(t_s: float, component: str, pids: Sequence[int]) -> Sample:
    sizes = [memory_kib(pid) for pid in pids]
    live = [s for s in sizes if s[0] > 0]
    return Sample(t_s, component, len(live), sum(s[0] for s in live) / 1024, sum(s[1] for s in live) / 1024)


def sample_all(t_s: float, worker_pid: int, api_pid: int, data_dir: Path) -> list[Sample]:
    """One sample of every component (the embedded servers' supervisor is never counted as a worker child)."""
    children = children_by_parent()
    supervisor = pid_in_file(data_dir / "supervisor.pid")
    postmaster = pid_in_file(data_dir / "postgres" / "postmaster.pid")
    redis_pid = pid_in_file(data_dir / "redis" / "redis.pid")
    servers = [p for p in (supervisor, postmaster, redis_pid) if p is not None]
    worker_children = descendants(worker_pid, children, exclude=servers)
    postgres = [] if postmaster is None else [postmaster, *descendants(postmaster, children)]
    return [
        measure(t_s, "worker_main", [worker_pid]),
        measure(t_s, "worker_children", worker_children),
        measure(t_s, "worker_total", [worker_pid, *worker_children]),
        measure(t_s, "api", [api_pid, *descendants(api_pid, children, exclude=servers)]),
        measure(t_s, "postgres", postgres),
        measure(t_s, "redis", [] if redis_pid is None else [redis_pid]),
    ]


# --- summary (pure: unit-tested in tests/test_bench_memory.py) ----------------------------------------------------


def write_samples(path: Path, samples: Iterable[Sample], *, header: bool) -> None:
    with path.open("a", newline="") as out:
        writer = csv.writer(out)
        if header:
            writer.writerow(["t_s", "component", "processes", "rss_mib", "pss_mib"])
        for s in samples:
            writer.writerow([f"{s.t_s:.1f}", s.component, s.processes, f"{s.rss_mib:.1f}", f"{s.pss_mib:.1f}"])


def read_samples(path: Path) -> list[Sample]:
    with path.open(newline="") as source:
        return [
            Sample(float(r["t_s"]), r["component"], int(r["processes"]), float(r["rss_mib"]), float(r["pss_mib"]))
            for r in csv.DictReader(source)
        ]


def level_mib(samples: Sequence[Sample], component: str, minute: float, window_min: float = WINDOW_MIN) -> float | None:
    """Median RSS (MiB) of ``component`` over the ``window_min`` minutes centred on ``minute``; ``None`` when the run
    ended before ``minute`` or no sample falls in the window."""
    mine = [s for s in samples if s.component == component]
    if not mine or max(s.t_s for s in mine) < minute * 60:
        return None
    low, high = (minute - window_min / 2) * 60, (minute + window_min / 2) * 60
    inside = [s.rss_mib for s in mine if low <= s.t_s <= high]
    return statistics.median(inside) if inside else None


def ratio(samples: Sequence[Sample], component: str, late_min: float, early_min: float) -> float | None:
    """``level_mib`` at ``late_min`` over that at ``early_min``; ``None`` when either is missing or zero."""
    late, early = level_mib(samples, component, late_min), level_mib(samples, component, early_min)
    if late is None or not early:
        return None
    return late / early


def summary_table(
    samples: Sequence[Sample], checkpoints_min: Sequence[float] = CHECKPOINTS_MIN, *, late_min: float = 60.0
) -> str:
    """Markdown: RSS (MiB) per component at each checkpoint, the peak, and the ``late_min`` / first-checkpoint
    ratio with whether it is within :data:`BAR_RATIO` (``-`` where the run did not reach a checkpoint)."""
    early = checkpoints_min[0]
    head = [f"{m:g} min" for m in checkpoints_min]
    lines = [
        "| RSS MiB | " + " | ".join(head) + f" | peak | {late_min:g} / {early:g} min | within {BAR_RATIO}x |",
        "|---|" + "---:|" * (len(head) + 3),
    ]
    for component in COMPONENTS:
        mine = [s for s in samples if s.component == component]
        if not mine:
            continue
        levels = [level_mib(samples, component, m) for m in checkpoints_min]
        cells = ["-" if v is None else f"{v:.0f}" for v in levels]
        peak = max(s.rss_mib for s in mine)
        r = ratio(samples, component, late_min, early)
        verdict = "-" if r is None else ("yes" if r <= BAR_RATIO else "NO")
        lines.append(
            f"| {component} | "
            + " | ".join(cells)
            + f" | {peak:.0f} | {'-' if r is None else f'{r:.2f}'} | {verdict} |"
        )
    return "\n".join(lines)


# --- the run ------------------------------------------------------------------------------------------------------


@dataclass
class Load:
    """Requests sent by the client thread, by route and outcome."""

    sent: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # 5xx, unexpected 4xx, connection errors
    seeds: list[int] = field(default_factory=list)  # analysed track ids (embedding done), refreshed by the sampler


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _client(base: str, load: Load, rate_per_s: float, stop: threading.Event) -> None:
    """``rate_per_s`` requests per second (fixed schedule; a late request is not made up for), routes in turn."""
    rng = random.Random(16)
    routes = itertools.cycle(("status", "list", "similar", "analysis"))
    period_s = 1.0 / rate_per_s
    next_at = time.monotonic()
    with httpx.Client(base_url=base, timeout=30.0, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        while not stop.is_set():
            route = next(routes)
            params: dict[str, str | int]
            seeds = load.seeds
            if route in ("similar", "analysis") and not seeds:
                route = "status"
            if route == "status":
                path, params = "/api/status", {}
            elif route == "list":
                path, params = "/api/tracks", {"limit": 50, "offset": rng.randrange(0, 500), "sort": "artist"}
            elif route == "similar":
                path, params = f"/api/tracks/{rng.choice(seeds)}/similar", {"limit": 10}
            else:
                path, params = f"/api/tracks/{rng.choice(seeds)}/analysis", {}
            try:
                response = client.get(path, params=params)
                load.statuses[(route, response.status_code)] += 1
                if response.status_code != 200:
                    load.errors[f"{route} {response.status_code}"] += 1
            except httpx.HTTPError as exc:
                load.errors[f"{route} {type(exc).__name__}"] += 1
            load.sent += 1
            next_at = max(next_at + period_s, time.monotonic())
            stop.wait(max(0.0, next_at - time.monotonic()))


def _progress(db_url: str) -> tuple[int, int, list[int]]:
    """(tracks with every analyzer done, failed analyses, analysed track ids for the client's seeds)."""
    with psycopg.connect(db_url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT count(*) FROM (SELECT track_id FROM analysis_status GROUP BY track_id"
            " HAVING bool_and(state = 'done')) done"
        ).fetchone()
        failed = conn.execute("SELECT count(*) FROM analysis_status WHERE state = 'failed'").fetchone()
        seeds = conn.execute(
            "SELECT track_id FROM analysis_status WHERE analyzer = 'embedding' AND state = 'done'"
            " ORDER BY track_id DESC LIMIT 500"
        ).fetchall()
    return int((row or (0,))[0]), int((failed or (0,))[0]), [int(r[0]) for r in seeds]


def _library(library: Path, pieces: int, tracks: int, seconds: float) -> None:
    """``tracks`` hard links named ``NNNNN.flac`` over ``pieces`` rendered files (each name a distinct track)."""
    rendered = cached_corpus(tempo_key_corpus(pieces, duration_s=seconds, seed=16), CACHE / f"memory-{seconds:g}s")
    for i in range(tracks):
        os.link(rendered[i % len(rendered)], library / f"{i:05d}.flac")


def _remove(root: Path, data: Path) -> None:
    """Remove the run's directory once the supervisor has stopped the embedded servers (at most 60 s)."""
    supervisor_exited(data, timeout_s=60)
    shutil.rmtree(root, ignore_errors=True)


def run(args: argparse.Namespace, out_dir: Path) -> int:
    root = Path(tempfile.mkdtemp(prefix="bench-memory-"))
    library, data, logs = root / "library", root / "data", out_dir / "logs"
    for folder in (library, data, logs):
        folder.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SONANTICA_")},
        "SONANTICA_DATA_DIR": str(data),
        "SONANTICA_API__TOKEN": TOKEN,
        "SONANTICA_API__PORT": str(port),
        "SONANTICA_API__ACCESS_LOG": "false",
        "SONANTICA_LOG_LEVEL": "WARNING",
    }
    load_start = os.getloadavg()
    print(f"bench-memory in {root}, out {out_dir} (load {load_start[0]:.2f})", file=sys.stderr)
    _library(library, args.pieces, args.tracks, args.seconds)
    atexit.register(_remove, root, data)  # registered first, so it runs after the embedded servers are released
    # This process is the embedded servers' first user: their supervisor is its child, not the worker's.
    settings = Settings(data_dir=data)
    db_url = database_url(settings)
    redis_url(settings)
    subprocess.run([sys.executable, "-m", "sidecar", "enqueue", str(library)], env=env, check=True, capture_output=True)
    api = start_api(env, logs / "serve.log", port, new_session=False)
    base = f"http://127.0.0.1:{port}"
    worker = spawn(env, logs / "worker.log", "worker", new_session=False)
    started = time.monotonic()
    load, stop = Load(), threading.Event()
    client = threading.Thread(target=_client, args=(base, load, args.rate, stop), daemon=True)
    client.start()
    memory_csv, progress_csv = out_dir / "memory.csv", out_dir / "progress.csv"
    memory_csv.unlink(missing_ok=True)
    with progress_csv.open("w", newline="") as out:
        csv.writer(out).writerow(["t_s", "tracks_done", "failed", "requests", "errors", "load_1min"])
    samples: list[Sample] = []
    interrupted = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: interrupted.set())
    done = failed = 0
    try:
        while not interrupted.is_set():
            t_s = time.monotonic() - started
            if worker.poll() is not None or api.poll() is not None:
                print(f"a process exited at {t_s:.0f} s: worker {worker.returncode}, api {api.returncode}")
                break
            batch = sample_all(t_s, worker.pid, api.pid, data)
            write_samples(memory_csv, batch, header=not samples)
            samples.extend(batch)
            with contextlib.suppress(psycopg.Error):
                done, failed, seeds = _progress(db_url)
                if seeds:
                    load.seeds = seeds
            with progress_csv.open("a", newline="") as out:
                row = [f"{t_s:.1f}", done, failed, load.sent, sum(load.errors.values()), f"{os.getloadavg()[0]:.2f}"]
                csv.writer(out).writerow(row)
            if done >= args.tracks:
                print(f"the worker ran dry at {t_s:.0f} s ({done} tracks): raise --tracks", file=sys.stderr)
            if t_s >= args.duration_min * 60:
                break
            interrupted.wait(args.every_s)
    finally:
        elapsed_s = time.monotonic() - started
        stop.set()
        client.join(timeout=60)
        for process in (worker, api):
            process.send_signal(signal.SIGTERM)
        for process in (worker, api):
            try:
                process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    checkpoints = SHORT_CHECKPOINTS_MIN if args.short else CHECKPOINTS_MIN
    late = 60.0 if not args.short else checkpoints[-1]
    print(summary_table(samples, checkpoints, late_min=late))
    print(
        f"\n{elapsed_s / 60:.1f} min; {done} tracks analysed (every analyzer done), {failed} analyses failed;"
        f" {load.sent} requests at {args.rate:g}/s target ({load.sent / max(elapsed_s, 1):.1f}/s achieved),"
        f" {sum(load.errors.values())} errors {dict(load.errors)}; load average (1 min) {load_start[0]:.2f} at"
        f" start, {os.getloadavg()[0]:.2f} at end; {os.cpu_count()} CPUs"
    )
    print("statuses: " + ", ".join(f"{r} {c}: {n}" for (r, c), n in sorted(load.statuses.items())))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration-min", type=float, default=120.0)
    parser.add_argument("--short", action="store_true", help="smoke test: fewer tracks, checkpoints at 1-3 min")
    parser.add_argument("--pieces", type=int, default=12, help="distinct rendered files")
    parser.add_argument("--tracks", type=int, default=None, help="hard-linked names (default: 1 per 2 s of run)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each piece")
    parser.add_argument("--rate", type=float, default=20.0, help="API requests per second")
    parser.add_argument("--every-s", type=float, default=15.0, help="sampling period")
    parser.add_argument("--out", type=Path, default=Path("bench-memory"))
    parser.add_argument("--summary", type=Path, default=None, help="print the table of DIR/memory.csv and stop")
    args = parser.parse_args()
    if args.summary is not None:
        print(summary_table(read_samples(args.summary / "memory.csv")))
        return 0
    if args.tracks is None:
        args.tracks = 20 if args.short else int(args.duration_min * 30)
    args.out.mkdir(parents=True, exist_ok=True)
    return run(args, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
