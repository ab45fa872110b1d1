"""Library-scale benchmark (issue 16): status, queue, vectors and host sync at N tracks (default 1 000 000).

One embedded PostgreSQL (pgserver, pgvector) and one embedded Redis run in a temporary directory (``--work-dir``
to keep them elsewhere). Parts, chosen with ``--parts`` (comma-separated, default all, in this order):

* ``status``: N generated tracks with one status row per enabled analyzer (``sidecar.storage.synthetic``); the
  time of the trigger-kept counts (``status.count_by_analyzer``), of the full scan they replace
  (``count_by_analyzer_scan``), of ``status_report`` (what ``sonantica status --json`` prints) and of
  ``GET /api/status`` through the real app under uvicorn.
* ``queue``: the first rebuild of the Redis queue from PostgreSQL (``rebuild_from_database``: every open track
  pushed), the sync path ``enqueue_track_ids`` over every track, Redis memory with N jobs waiting, and the on-play
  latency with that backlog (``scripts.bench_queue``'s two measures).
* ``vectors``: N clustered unit vectors of ``--dim`` (default 753, the MusiCNN pooled embedding) copied in, the
  HNSW index built (time, ``maintenance_work_mem``, size), recall@10 of ``vectors.similar`` against an exact
  numpy scan, and p50/p95 of similar tracks through the API with no filter and with strict filters (BPM +-8 %,
  Camelot-compatible, at most 2 per artist) with the rows returned.
* ``sync``: a generated Subsonic host serving N songs through real ``search3`` pages (``httpx.MockTransport``
  behind the real Navidrome adapter), files hard-linked on a generated mount; full sync time and peak RSS,
  then an incremental sync of ``--changes`` changed songs.

Run: ``python -m scripts.bench_scale --tracks 1000000 --parts status,queue`` (from the repository root).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
from pydantic import SecretStr

from scripts.bench_api import serve
from scripts.bench_queue import latency_blocked, latency_busy, start_redis, summary
from scripts.bench_vectors import fresh_database, percentile
from sidecar.analyzers.registry import enabled_versions
from sidecar.domain import Priority
from sidecar.embedded import embedded_postgres_url
from sidecar.services.enqueue import enqueue_track_ids
from sidecar.services.reconcile import rebuild_from_database
from sidecar.services.runtime import Runtime, open_runtime
from sidecar.services.status import status_report
from sidecar.settings import Settings
from sidecar.storage import status, synthetic
from sidecar.storage.db import transaction
from sidecar.storage.migrate import migrate

TOKEN = "bench-token-0123456789abcdef"
PARTS = ("status", "queue", "vectors", "sync")


def rss_mib() -> float:
    """Peak RSS of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def timed_ms(call: Callable[[], Awaitable[object]], repeats: int) -> list[float]:
    """``repeats`` wall times of ``call()`` in ms."""
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - t0) * 1000)
    return samples


def p50_p95(samples: list[float]) -> str:
    return f"{statistics.median(samples):.1f} / {percentile(samples, 0.95):.1f}"


async def load_library(runtime: Runtime, count: int, versions: dict[str, int]) -> tuple[int, int]:
    started = time.perf_counter()
    async with transaction(runtime.pool) as conn:
        first, last = await synthetic.insert_tracks(conn, count, missing_every=1000, pathless_every=2000)
    tracks_s = time.perf_counter() - started
    started = time.perf_counter()
    async with transaction(runtime.pool) as conn:
        rows = await synthetic.insert_status(conn, versions, first, last, stale_every=50)
        await conn.execute("ANALYZE")
    status_s = time.perf_counter() - started
    print(f"| load {count} tracks + features (INSERT ... SELECT) | {tracks_s:.1f} s |")
    print(f"| load {rows} status rows (triggers keep the counts) | {status_s:.1f} s |")
    return first, last


async def part_status(runtime: Runtime, versions: dict[str, int], args: argparse.Namespace) -> None:
    async def counts() -> None:
        async with transaction(runtime.pool) as conn:
            await status.count_by_analyzer(conn, versions)

    async def scan() -> None:
        async with transaction(runtime.pool) as conn:
            await status.count_by_analyzer_scan(conn, versions)

    async with transaction(runtime.pool) as conn:
        same = await status.count_by_analyzer(conn, versions) == await status.count_by_analyzer_scan(conn, versions)
    scan_ms = await timed_ms(scan, 3)
    counts_ms = await timed_ms(counts, 30)
    report_ms = await timed_ms(lambda: status_report(runtime, versions), 30)
    server, thread, base_url = serve(runtime.settings)
    try:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=base_url, timeout=60, headers=headers) as client:
            api_ms = []
            for _ in range(30):
                t0 = time.perf_counter()
                (await client.get("/api/status")).raise_for_status()
                api_ms.append((time.perf_counter() - t0) * 1000)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    print(f"| counts equal to the full scan | {same} |")
    print(f"| full scan `count_by_analyzer_scan` (before) p50 / p95 | {p50_p95(scan_ms)} ms |")
    print(f"| trigger-kept `count_by_analyzer` p50 / p95 | {p50_p95(counts_ms)} ms |")
    print(f"| `status_report` (`sonantica status --json` minus start-up) p50 / p95 | {p50_p95(report_ms)} ms |")
    print(f"| `GET /api/status` p50 / p95 | {p50_p95(api_ms)} ms |")


async def redis_used_mib(runtime: Runtime) -> float:
    info = await runtime.redis.info("memory")
    return float(info["used_memory"]) / 2**20


async def part_queue(
    runtime: Runtime, versions: dict[str, int], ids: tuple[int, int], args: argparse.Namespace
) -> None:
    before_mib = await redis_used_mib(runtime)
    started = time.perf_counter()
    outcome = await rebuild_from_database(runtime, versions)
    rebuild_s = time.perf_counter() - started
    depths = await runtime.queue.depths()
    full_mib = await redis_used_mib(runtime)
    print(f"| first queue rebuild from PostgreSQL: {depths['scan']} jobs pushed | {rebuild_s:.1f} s ({outcome}) |")
    print(f"| Redis used memory, empty -> {depths['scan']} scan jobs | {before_mib:.1f} -> {full_mib:.1f} MiB |")
    blocked = await latency_blocked(runtime.redis, runtime.keys, backlog=depths["scan"], samples=args.samples)
    print(f"| on-play latency, worker blocked in BLMOVE, {depths['scan']} queued | {summary(blocked)} |")
    claimed, ready, _ = await latency_busy(runtime.redis, runtime.keys, backlog=depths["scan"], samples=args.samples)
    print(f"| on-play latency, worker busy with the backlog, enqueue -> claimed | {summary(claimed)} |")
    print(f"| same, enqueue -> AnalysisReady received | {summary(ready)} |")
    await runtime.redis.flushdb()
    async with transaction(runtime.pool) as conn:  # the sync path again: everything pending, nothing in Redis
        await conn.execute("UPDATE analysis_status SET state = 'pending' WHERE state IN ('queued', 'running')")
    await rebuild_from_database(runtime, {})  # sets the epoch with nothing to push
    first, last = ids
    sample = min(args.enqueue_sample, last - first + 1)
    started = time.perf_counter()
    queued = await enqueue_track_ids(runtime, range(first, first + sample), versions, priority=Priority.SCAN)
    enqueue_s = time.perf_counter() - started
    pushed = sum(1 for q in queued if q.analyzers)
    print(
        f"| `enqueue_track_ids` (sync path), {sample} tracks, {pushed} jobs | {enqueue_s:.1f} s"
        f" ({sample / enqueue_s:.0f} tracks/s; 1M would take {1_000_000 / (sample / enqueue_s) / 60:.1f} min) |"
    )


async def run(args: argparse.Namespace, work: Path) -> None:
    url = fresh_database(embedded_postgres_url(work / "pg"))
    (work / "redis").mkdir(exist_ok=True)
    redis_server, redis_url = start_redis(work / "redis")  # configured, so the API app in this process shares it
    try:
        await run_parts(args, work, url, redis_url)
    finally:
        redis_server.terminate()
        redis_server.wait(timeout=10)


async def run_parts(args: argparse.Namespace, work: Path, url: str, redis_url: str) -> None:
    settings = Settings(
        data_dir=work / "data",
        database_url=SecretStr(url),
        redis_url=SecretStr(redis_url),
        api={"token": TOKEN},  # type: ignore[arg-type]
    )
    versions = enabled_versions(settings)
    parts = [p for p in PARTS if p in args.parts]
    await migrate(url)
    async with open_runtime(settings) as runtime:
        print(
            f"{platform.machine()}, {os.cpu_count()} CPUs (shared), embedded PostgreSQL + Redis; N={args.tracks};"
            f" analyzers {versions}"
        )
        print()
        print("| step | figure |")
        print("|---|---|")
        ids = await load_library(runtime, args.tracks, versions)
        if "status" in parts:
            await part_status(runtime, versions, args)
        if "queue" in parts:
            await part_queue(runtime, versions, ids, args)
        print(f"| peak RSS of the benchmark process | {rss_mib():.0f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--parts", type=lambda s: s.split(","), default=list(PARTS))
    parser.add_argument("--samples", type=int, default=200, help="on-play latency samples")
    parser.add_argument("--enqueue-sample", type=int, default=1_000_000, help="tracks through enqueue_track_ids")
    parser.add_argument("--work-dir", type=Path, help="where the servers keep their data (default: temporary)")
    args = parser.parse_args()
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if args.work_dir:
        asyncio.run(run(args, args.work_dir))
        return
    with tempfile.TemporaryDirectory(prefix="sonantica-scale-", ignore_cleanup_errors=True) as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
