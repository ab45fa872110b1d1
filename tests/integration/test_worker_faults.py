"""Faults around the worker (issue 12): ghost claims after a Redis restore, lost pushes, hung or signalled analysis
processes, bad ``enqueue`` references, and the embedded servers' supervisor. Real PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest

from sidecar.analyzers.executor import AnalysisExecutor
from sidecar.demo.encode import write_audio
from sidecar.domain import Priority
from sidecar.errors import QueueUnavailableError, RetryLaterError
from sidecar.jobqueue import set_epoch
from sidecar.jobqueue.connection import as_text
from sidecar.scheduler import Scheduler
from sidecar.services.enqueue import enqueue_track_ids, register_local_files
from sidecar.services.reconcile import rebuild_from_database, requeue_lost_jobs
from sidecar.services.runtime import Runtime
from sidecar.settings import get_settings
from sidecar.storage import tracks
from sidecar.storage.db import transaction
from sidecar.worker.runner import Worker

VERSIONS = {"loudness": 1, "tempo": 1, "key": 1}


def _tone(seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * 22050)) / 22050
    return np.repeat((0.3 * np.sin(2 * np.pi * 330.0 * t))[:, None], 2, axis=1).astype(np.float32)


@pytest.fixture
def runtime_env(monkeypatch: pytest.MonkeyPatch, service_env: dict[str, str]) -> dict[str, str]:
    env = {
        **service_env,
        "SONANTICA_WORKER__LEASE_S": "0.6",
        "SONANTICA_WORKER__LOCK_S": "10",
        "SONANTICA_WORKER__POLL_S": "0.2",
        "SONANTICA_WORKER__RETRY_BASE_S": "0.2",
        "SONANTICA_WORKER__RETRY_MAX_S": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return env


async def _drain(runtime: Runtime, worker: Worker, timeout_s: float = 120) -> None:
    try:
        await asyncio.wait_for(worker.run(drain=True), timeout=timeout_s)
    finally:
        worker.executor.close()


def _database_url(runtime: Runtime) -> str:
    url = runtime.settings.database_url
    assert url is not None  # the runtime fixture names its test database
    return url.get_secret_value()


async def test_ghost_claim_in_a_live_workers_list_is_requeued_and_drain_returns(
    runtime: Runtime, tmp_path: Path
) -> None:
    path = write_audio(_tone(3.0), 22050, tmp_path / "ghost.flac")
    (track_id,) = await register_local_files(runtime.pool, [path])
    await enqueue_track_ids(runtime, [track_id], VERSIONS, priority=Priority.SCAN)
    worker = Worker(runtime, AnalysisExecutor(runtime.settings, list(VERSIONS), processes=1), VERSIONS)
    # A Redis restored from its AOF after the ack was lost: the claim sits in this (live) worker's list.
    raw = await runtime.redis.rpop(runtime.keys.queue(Priority.SCAN))
    assert isinstance(raw, str)  # one entry (no count), decoded by the client
    await runtime.queue.register_worker(worker.worker_id)
    await runtime.redis.lpush(runtime.keys.processing(worker.worker_id), raw)
    await _drain(runtime, worker)
    assert worker.stats.outcomes == {"analyzed": 1}
    assert await runtime.queue.depths() == {"on_play": 0, "scan": 0, "delayed": 0, "processing": 0, "failed": 0}


async def test_reconciler_requeues_rows_left_queued_by_a_failed_push(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await set_epoch(runtime.redis, runtime.keys)  # Redis has its data: no rebuild will run
    path = write_audio(_tone(3.0), 22050, tmp_path / "lost.flac")
    (track_id,) = await register_local_files(runtime.pool, [path])

    async def refuse(*_args: object, **_kwargs: object) -> int:
        raise QueueUnavailableError("Redis went away during the push")

    with monkeypatch.context() as patch:
        patch.setattr(runtime.queue, "enqueue_many", refuse)
        with pytest.raises(QueueUnavailableError):
            await enqueue_track_ids(runtime, [track_id], VERSIONS, priority=Priority.SCAN)
    with psycopg.connect(_database_url(runtime)) as conn:
        states = {row[0] for row in conn.execute("SELECT state FROM analysis_status").fetchall()}
    assert states == {"queued"}
    assert await runtime.queue.depths() == {"on_play": 0, "scan": 0, "delayed": 0, "processing": 0, "failed": 0}
    await Scheduler(runtime, None, VERSIONS)._reconcile()
    assert (await runtime.queue.depths())["scan"] == 1
    await Scheduler(runtime, None, VERSIONS)._reconcile()
    assert (await runtime.queue.depths())["scan"] == 1
    worker = Worker(runtime, AnalysisExecutor(runtime.settings, list(VERSIONS), processes=1), VERSIONS)
    await _drain(runtime, worker)
    assert worker.stats.outcomes == {"analyzed": 1}


async def test_reconciler_requeues_only_lost_jobs_and_leaves_one_being_enqueued_to_the_next_run(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await set_epoch(runtime.redis, runtime.keys)
    paths = [write_audio(_tone(0.2), 22050, tmp_path / f"t{i}.flac") for i in range(12)]
    track_ids = await register_local_files(runtime.pool, paths)
    await enqueue_track_ids(runtime, track_ids, VERSIONS, priority=Priority.SCAN)
    scan = runtime.keys.queue(Priority.SCAN)
    entries = await runtime.redis.lrange(scan, 0, -1)
    for raw in entries[:4]:  # three lost pushes, and one track whose enqueue is under way during the check
        await runtime.redis.lrem(scan, 1, as_text(raw))
    in_flight = json.loads(entries[3])["host_track_id"]
    read_jobs = runtime.queue.tracks_with_jobs

    async def enqueue_meanwhile(**kwargs: int) -> object:
        with psycopg.connect(_database_url(runtime)) as conn:
            conn.execute(
                "UPDATE analysis_status SET updated_at = now()"
                " WHERE track_id = (SELECT id FROM tracks WHERE host_track_id = %s)",
                (in_flight,),
            )
        return await read_jobs(**kwargs)

    with monkeypatch.context() as patch:
        patch.setattr(runtime.queue, "tracks_with_jobs", enqueue_meanwhile)
        assert await requeue_lost_jobs(runtime, VERSIONS) == 3
    assert await requeue_lost_jobs(runtime, VERSIONS) == 1
    assert await requeue_lost_jobs(runtime, VERSIONS) == 0
    queued = {json.loads(raw)["host_track_id"] for raw in await runtime.redis.lrange(scan, 0, -1)}
    assert len(queued) == 12
    assert await runtime.redis.llen(scan) == 12


async def test_rebuild_after_redis_lost_everything_pushes_each_open_track_once_across_pages(
    runtime: Runtime, tmp_path: Path
) -> None:
    paths = [write_audio(_tone(0.2), 22050, tmp_path / f"r{i}.flac") for i in range(7)]
    track_ids = await register_local_files(runtime.pool, paths[:4])
    await enqueue_track_ids(runtime, track_ids, VERSIONS, priority=Priority.SCAN)
    await runtime.redis.flushdb()  # Redis restarted empty: jobs and epoch gone, PostgreSQL still says queued
    await register_local_files(runtime.pool, paths[4:])  # no status rows yet: the rebuild itself creates them
    paged = dataclasses.replace(
        runtime,
        settings=runtime.settings.model_copy(
            update={"redis": runtime.settings.redis.model_copy(update={"rebuild_batch_size": 3})}
        ),
    )
    outcome = await rebuild_from_database(paged, VERSIONS)
    assert outcome.ran
    assert outcome.jobs_pushed == 7
    queued = [
        json.loads(raw)["host_track_id"] for raw in await runtime.redis.lrange(runtime.keys.queue(Priority.SCAN), 0, -1)
    ]
    assert sorted(queued) == sorted(set(queued))
    assert len(queued) == 7
    assert not (await rebuild_from_database(paged, VERSIONS)).ran  # the epoch is back


async def test_analysis_over_the_wall_clock_limit_is_killed_and_reported(runtime: Runtime, tmp_path: Path) -> None:
    path = write_audio(_tone(60.0), 22050, tmp_path / "slow.flac")
    limited = runtime.settings.model_copy(
        update={"worker": runtime.settings.worker.model_copy(update={"analysis_timeout_s": 0.5})}
    )
    executor = AnalysisExecutor(limited, list(VERSIONS), processes=1)
    await executor.analyze(str(path), ["loudness"])  # warms the pool (or is itself cut off on a loaded machine)
    try:
        started = time.monotonic()
        analysis = await executor.analyze(str(path), list(VERSIONS))
        elapsed_s = time.monotonic() - started
    finally:
        executor.close()
    assert analysis.error == f"analysis took longer than 0.5 s (SONANTICA_WORKER__ANALYSIS_TIMEOUT_S): {path}"
    assert elapsed_s < 30  # it did not wait for the analysis to finish


async def test_analysis_processes_obey_sigterm_despite_the_loops_handler(runtime: Runtime, tmp_path: Path) -> None:
    path = write_audio(_tone(240.0), 22050, tmp_path / "long.flac")
    loop = asyncio.get_running_loop()
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)  # as `sonantica worker` does before its pool starts
    executor = AnalysisExecutor(runtime.settings, list(VERSIONS), processes=1)
    try:
        task = asyncio.ensure_future(executor.analyze(str(path), list(VERSIONS)))
        children: set[int] = set()
        deadline = time.monotonic() + 60
        while not children and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            children = await asyncio.to_thread(_analysis_processes)
        assert children
        await asyncio.sleep(1.0)  # into the analysis
        for pid in children:
            os.kill(pid, signal.SIGTERM)
        with pytest.raises(RetryLaterError, match="the analysis process died"):
            await asyncio.wait_for(task, timeout=60)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        executor.close()
    assert not stopped.is_set()


def _analysis_processes() -> set[int]:
    """The executor's forkserver (a child of this process) and the analysis processes it forked; never this
    process' other children, such as the embedded servers' supervisors."""
    found: set[int] = set()
    parents = [os.getpid()]
    while parents:
        children = {pid for pid in _children(parents.pop()) if _is_multiprocessing(pid)}
        found |= children
        parents += children
    return found


def _children(pid: int) -> set[int]:
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
        return {child for t in tasks for child in map(int, (t / "children").read_text().split())}
    except OSError:  # it exited meanwhile
        return set()


def _is_multiprocessing(pid: int) -> bool:
    try:
        return b"multiprocessing" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


async def test_enqueue_track_references_fail_clearly(runtime: Runtime, runtime_env: dict[str, str]) -> None:
    async with transaction(runtime.pool) as conn:
        await tracks.upsert_track(
            conn, tracks.TrackUpsert(host="jellyfin", host_track_id="unmappable", title="x", host_path="D:\\x.flac")
        )
    bad = await asyncio.to_thread(_cli, runtime_env, "enqueue", "--track", "abc")
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr
    assert "neither HOST:HOST_TRACK_ID" in bad.stderr
    unmappable = await asyncio.to_thread(_cli, runtime_env, "enqueue", "--track", "jellyfin:unmappable")
    assert unmappable.returncode == 1
    assert "queued 1 of 1" not in unmappable.stdout
    assert "queued 0 of 1" in unmappable.stdout
    assert "has no readable file on the library mount" in unmappable.stderr
    assert (await runtime.queue.depths())["scan"] == 0


async def test_worker_logs_as_configured(runtime: Runtime, runtime_env: dict[str, str]) -> None:
    env = {**runtime_env, "SONANTICA_LOG_FORMAT": "json", "SONANTICA_LOG_LEVEL": "DEBUG"}
    done = await asyncio.to_thread(_cli, env, "worker", "--drain")
    assert done.returncode == 0, done.stderr
    records = [json.loads(line) for line in done.stderr.splitlines() if line.startswith('{"time"')]
    assert any(r["level"] == "INFO" and r["message"].startswith("worker ") for r in records), done.stderr
    assert {"time", "level", "logger", "message"} <= set(records[0])
    quiet = await asyncio.to_thread(_cli, {**runtime_env, "SONANTICA_LOG_LEVEL": "ERROR"}, "worker", "--drain")
    assert " INFO " not in quiet.stderr
