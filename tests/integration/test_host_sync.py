"""Library sync, now-playing handling and the scheduler lock, through the Jellyfin adapter on its fake server.

PostgreSQL and Redis are real; only Jellyfin is faked (tests/contract/jellyfin_fake.py refuses unknown requests).
The library is a folder of real FLAC files so the sync's ``os.stat`` of each mapped file is real.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from adapters.base import NowPlaying
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from sidecar.analyzers.executor import AnalysisExecutor
from sidecar.cli import app
from sidecar.demo.encode import write_audio
from sidecar.demo.music import PieceSpec, render
from sidecar.domain import KeySignature, LoudnessResult, TrackKey
from sidecar.jobqueue import TokenLock
from sidecar.scheduler import Scheduler
from sidecar.services.playback import NowPlayingTracker, handle_now_playing, poll_now_playing
from sidecar.services.runtime import Runtime
from sidecar.services.sync import SyncError, sync_library
from sidecar.services.writeback import write_back_all
from sidecar.settings import get_settings
from sidecar.storage import tracks
from sidecar.storage.analyses import store_results
from sidecar.storage.db import transaction
from sidecar.worker.runner import Worker
from tests.contract.jellyfin_fake import FakeJellyfin

HOST_ROOT = "/data/music"


@pytest.fixture
def runtime_env(monkeypatch: pytest.MonkeyPatch, service_env: dict[str, str]) -> dict[str, str]:
    """The test's own services, plus a short scheduler lock and quick sync retries."""
    values = {**service_env, "SONANTICA_SCHEDULER__LOCK_S": "0.6", "SONANTICA_SCHEDULER__SYNC_RETRY_BASE_S": "0.1"}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return values


@pytest.fixture
def library_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "library"
    (folder / "Artist").mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i in range(3):
        noise = (0.1 * rng.standard_normal((22050, 2))).astype(np.float32)
        write_audio(noise, 44100, folder / "Artist" / f"{i:02d}.flac")
    return folder


@pytest.fixture
def fake() -> FakeJellyfin:
    return FakeJellyfin()


@pytest.fixture
def seeded(fake: FakeJellyfin) -> dict[str, str]:
    """Three tracks with files on the mount, one whose file is absent, one whose path escapes the mount."""
    library = fake.add_library("Music", [HOST_ROOT])
    ids = {f"t{i}": fake.add_track(library, f"Artist/{i:02d}.flac", title=f"Song {i}") for i in range(3)}
    ids["absent"] = fake.add_track(library, "Artist/absent.flac", title="Absent")
    ids["evil"] = fake.add_track(library, "../../etc/passwd.flac", title="Evil")
    return {
        "library": library,
        "api_key": fake.add_api_key(),
        "listener": fake.add_user("listener", "pw"),
        **ids,
    }


def _config(seeded: dict[str, str], library_dir: Path) -> JellyfinConfig:
    return JellyfinConfig(
        url="http://jellyfin:8096",
        api_key=seeded["api_key"],
        library_dir=library_dir,
        retry_base_s=0.0,
        retry_max_s=0.0,
    )


@pytest.fixture
async def adapter(fake: FakeJellyfin, seeded: dict[str, str], library_dir: Path) -> AsyncIterator[JellyfinAdapter]:
    async with JellyfinAdapter(_config(seeded, library_dir), transport=fake.transport()) as client:
        yield client


def _tracks(database_url: str) -> dict[str, tuple[str | None, int | None, bool]]:
    """``{host_track_id: (path, size_bytes, is_missing)}`` of the Jellyfin tracks."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT host_track_id, path, size_bytes, is_missing FROM tracks WHERE host = 'jellyfin'"
        ).fetchall()
    return {row[0]: (row[1], row[2], row[3]) for row in rows}


def _status_rows(database_url: str, host_track_id: str) -> int:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM analysis_status s JOIN tracks t ON t.id = s.track_id WHERE t.host_track_id = %s",
            (host_track_id,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def test_sync_full_stores_mapped_tracks_reports_path_problems_and_queues_scan(
    runtime: Runtime,
    adapter: JellyfinAdapter,
    versions: dict[str, int],
    seeded: dict[str, str],
    library_dir: Path,
    database_url: str,
) -> None:
    pages: list[int] = []
    report = await sync_library(runtime, adapter, versions, page_size=2, progress=pages.append)

    assert (report.seen, report.created, report.unmappable, report.queued, report.missing) == (5, 5, 2, 3, 0)
    assert pages == [2, 2, 1]
    assert {p.host_track_id for p in report.path_problems} == {seeded["absent"], seeded["evil"]}
    evil = next(p for p in report.path_problems if p.host_track_id == seeded["evil"])
    assert ".." in evil.problem
    stored = _tracks(database_url)
    for i in range(3):
        file = library_dir / "Artist" / f"{i:02d}.flac"
        assert stored[seeded[f"t{i}"]] == (str(file), file.stat().st_size, False)
    assert stored[seeded["absent"]][0] is None
    assert stored[seeded["evil"]][0] is None
    assert _status_rows(database_url, seeded["evil"]) == 0
    assert _status_rows(database_url, seeded["t0"]) == len(versions)
    assert (await runtime.queue.depths())["scan"] == 3


async def test_sync_repeated_does_not_queue_the_backlog_again(
    runtime: Runtime, adapter: JellyfinAdapter, versions: dict[str, int]
) -> None:
    await sync_library(runtime, adapter, versions)
    again = await sync_library(runtime, adapter, versions)

    assert (again.created, again.updated, again.queued) == (0, 0, 0)
    assert (await runtime.queue.depths())["scan"] == 3


async def test_sync_incremental_skips_missing_marking_full_marks_missing(
    runtime: Runtime,
    adapter: JellyfinAdapter,
    versions: dict[str, int],
    fake: FakeJellyfin,
    seeded: dict[str, str],
    database_url: str,
) -> None:
    await sync_library(runtime, adapter, versions)
    del fake.items[seeded["t2"]]
    fake.advance(60)
    since = fake.now
    fake.touch(seeded["t1"])

    incremental = await sync_library(runtime, adapter, versions, changed_since=since)
    assert (incremental.full, incremental.seen, incremental.missing) == (False, 1, 0)
    assert _tracks(database_url)[seeded["t2"]][2] is False

    full = await sync_library(runtime, adapter, versions)
    assert (full.full, full.seen, full.missing) == (True, 4, 1)
    stored = _tracks(database_url)
    assert stored[seeded["t2"]][2] is True
    assert stored[seeded["t1"]][2] is False


async def test_sync_changed_file_is_updated_and_queued_again(
    runtime: Runtime, adapter: JellyfinAdapter, versions: dict[str, int], library_dir: Path
) -> None:
    await sync_library(runtime, adapter, versions)
    file = library_dir / "Artist" / "01.flac"
    os.utime(file, ns=(file.stat().st_atime_ns, file.stat().st_mtime_ns + 5_000_000_000))

    quick = await sync_library(runtime, adapter, versions, deep=False)
    report = await sync_library(runtime, adapter, versions, deep=True)

    assert (quick.updated, quick.unchanged) == (0, 3)  # Jellyfin reports the same facts: only a deep sync stats
    assert (report.updated, report.queued) == (1, 1)


def _outage_after_first_page(fake: FakeJellyfin) -> Callable[[httpx.Request], httpx.Response]:
    """The fake's handler, but the network fails for every library page after the first one."""
    pages = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal pages
        if request.url.path == "/Items" and "parentId" in request.url.params:
            pages += 1
            if pages > 1:
                raise httpx.ConnectError("connection refused", request=request)
        return fake.handle(request)

    return handle


async def test_sync_host_down_mid_sync_retries_then_clear_error_nothing_marked_missing(
    runtime: Runtime,
    adapter: JellyfinAdapter,
    versions: dict[str, int],
    fake: FakeJellyfin,
    seeded: dict[str, str],
    library_dir: Path,
    database_url: str,
) -> None:
    await sync_library(runtime, adapter, versions)
    del fake.items[seeded["t2"]]
    transport = httpx.MockTransport(_outage_after_first_page(fake))
    async with JellyfinAdapter(_config(seeded, library_dir), transport=transport) as failing:
        with pytest.raises(SyncError, match=r"jellyfin is unavailable after 2 attempts.*nothing was marked missing"):
            await sync_library(runtime, failing, versions, page_size=2, attempts=2, retry_base_s=0.0)

    assert not any(missing for _, _, missing in _tracks(database_url).values())
    recovered = await sync_library(runtime, adapter, versions, page_size=2)
    assert recovered.missing == 1


async def test_now_playing_repeated_poll_queues_on_play_once(
    runtime: Runtime, adapter: JellyfinAdapter, versions: dict[str, int], fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    await sync_library(runtime, adapter, versions)
    tracker = NowPlayingTracker()
    fake.start_playing(seeded["listener"], seeded["t0"], position_s=12.0)

    first = await poll_now_playing(runtime, adapter, versions, tracker)
    fake.advance(10)
    for session in fake.sessions:
        session.position_ticks += 10 * 10_000_000
        session.last_activity = fake.now
    second = await poll_now_playing(runtime, adapter, versions, tracker)

    assert [item.host_track_id for item in first] == [seeded["t0"]]
    assert second == []
    assert (await runtime.queue.depths())["on_play"] == 1


async def test_now_playing_tracker_new_play_after_stop_counts_again() -> None:
    tracker = NowPlayingTracker(same_play_s=30)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    play = NowPlaying(user="ann", host_track_id="a", started_at=start)
    moved = NowPlaying(user="ann", host_track_id="a", started_at=start.replace(second=20))
    other_user = NowPlaying(user="bob", host_track_id="a", started_at=start)

    assert tracker.new_plays([play]) == [play]
    assert tracker.new_plays([moved, other_user]) == [other_user]
    assert tracker.new_plays([]) == []
    assert tracker.new_plays([play]) == [play]


async def test_now_playing_unknown_track_is_stored_then_queued_on_play(
    runtime: Runtime,
    adapter: JellyfinAdapter,
    versions: dict[str, int],
    seeded: dict[str, str],
    library_dir: Path,
    database_url: str,
) -> None:
    entry = NowPlaying(user="listener", host_track_id=seeded["t1"], started_at=FakeJellyfin().now)
    queued = await handle_now_playing(runtime, adapter, versions, [entry])

    assert [(item.host_track_id, len(item.analyzers)) for item in queued] == [(seeded["t1"], len(versions))]
    assert _tracks(database_url)[seeded["t1"]][0] == str(library_dir / "Artist" / "01.flac")
    assert (await runtime.queue.depths())["on_play"] == 1


async def test_now_playing_unmappable_track_is_stored_not_queued(
    runtime: Runtime, adapter: JellyfinAdapter, versions: dict[str, int], seeded: dict[str, str], database_url: str
) -> None:
    entry = NowPlaying(user="listener", host_track_id=seeded["evil"], started_at=FakeJellyfin().now)

    assert await handle_now_playing(runtime, adapter, versions, [entry]) == []
    assert _tracks(database_url)[seeded["evil"]][0] is None
    assert (await runtime.queue.depths())["on_play"] == 0


async def _until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


@pytest.fixture
def stops() -> Iterator[list[asyncio.Event]]:
    events: list[asyncio.Event] = []
    yield events
    for event in events:
        event.set()


async def test_scheduler_two_instances_one_active_second_takes_over(
    runtime: Runtime, versions: dict[str, int], stops: list[asyncio.Event], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.scheduler")
    first, second = Scheduler(runtime, None, versions), Scheduler(runtime, None, versions)
    stop_first, stop_second = asyncio.Event(), asyncio.Event()
    stops += [stop_first, stop_second]
    run_first = asyncio.create_task(first.run(stop_first))
    await _until(lambda: first.is_active)
    run_second = asyncio.create_task(second.run(stop_second))
    for _ in range(20):  # 2 s: several lock periods of 0.6 s
        await asyncio.sleep(0.1)
        assert first.is_active
        assert not second.is_active
    assert "another scheduler is active" in caplog.text

    stop_first.set()
    await run_first
    await _until(lambda: second.is_active)
    stop_second.set()
    await run_second
    assert await TokenLock(runtime.redis, runtime.keys.scheduler_lock, ttl_s=1).holder() is None


async def test_scheduler_takes_over_from_a_dead_holder_after_expiry(
    runtime: Runtime, versions: dict[str, int], stops: list[asyncio.Event]
) -> None:
    dead = TokenLock(runtime.redis, runtime.keys.scheduler_lock, ttl_s=1.0)
    assert await dead.acquire()  # held and never renewed: a scheduler killed with SIGKILL
    scheduler = Scheduler(runtime, None, versions)
    stop = asyncio.Event()
    stops.append(stop)
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(0.4)
    assert not scheduler.is_active
    await _until(lambda: scheduler.is_active, timeout_s=5)
    stop.set()
    await task


async def test_scheduler_jobs_are_logged_by_their_names(
    runtime: Runtime, versions: dict[str, int], stops: list[asyncio.Event], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="apscheduler")
    scheduler = Scheduler(runtime, None, versions)
    stop = asyncio.Event()
    stops.append(stop)
    task = asyncio.create_task(scheduler.run(stop))
    await _until(lambda: scheduler.is_active, timeout_s=5)
    stop.set()
    await task
    added = sorted(r.getMessage() for r in caplog.records if r.getMessage().startswith("Added job"))
    assert added == [
        'Added job "reconcile" to job store "default"',
        'Added job "stems eviction" to job store "default"',
    ]


async def test_scheduler_active_syncs_and_polls_now_playing(
    runtime: Runtime,
    adapter: JellyfinAdapter,
    versions: dict[str, int],
    fake: FakeJellyfin,
    seeded: dict[str, str],
    database_url: str,
    stops: list[asyncio.Event],
) -> None:
    fake.start_playing(seeded["listener"], seeded["t2"])
    # the module's 0.6 s lock (for the take-over tests) expires whenever a loaded machine stalls this loop for as
    # long, and a scheduler that lost its lock stops its jobs: this test is about the jobs, so it holds it longer
    settings = runtime.settings.model_copy(
        update={"scheduler": runtime.settings.scheduler.model_copy(update={"lock_s": 30.0})}
    )
    scheduler = Scheduler(replace(runtime, settings=settings), adapter, versions)
    stop = asyncio.Event()
    stops.append(stop)
    task = asyncio.create_task(scheduler.run(stop))
    await _until(lambda: len(_tracks(database_url)) == 5, timeout_s=60.0)
    deadline = asyncio.get_running_loop().time() + 60.0  # a bound for a loaded machine; it takes well under 1 s
    on_play = 0
    while not on_play and asyncio.get_running_loop().time() < deadline:
        on_play = (await runtime.queue.depths())["on_play"]
        await asyncio.sleep(0.05)
    stop.set()
    await task
    assert on_play == 1


async def test_scheduler_runs_its_start_jobs_late_rather_than_never(
    runtime: Runtime, versions: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    scheduler = Scheduler(runtime, None, versions)
    ran = asyncio.Event()

    async def reconcile() -> None:
        ran.set()

    monkeypatch.setattr(scheduler, "_reconcile", reconcile)
    scheduler._start_jobs()
    try:
        time.sleep(1.5)  # noqa: ASYNC251  # a loaded machine: the loop reaches the first runs 1.5 s late
        await asyncio.wait_for(ran.wait(), 10)  # apscheduler's default (1 s of grace) skipped it: next in 5 min
    finally:
        scheduler._stop_jobs()


def test_sync_cli_host_down_exits_with_clear_error(
    runtime_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SONANTICA_HOST", "jellyfin")
    monkeypatch.setenv("SONANTICA_JELLYFIN__URL", "http://127.0.0.1:9")
    monkeypatch.setenv("SONANTICA_JELLYFIN__API_KEY", "key")
    get_settings.cache_clear()

    result = CliRunner().invoke(app, ["host", "sync"])

    assert result.exit_code == 2
    assert "jellyfin is unavailable after 3 attempts" in result.output


def test_sync_cli_without_host_says_what_to_set(runtime_env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["host", "sync"])

    assert result.exit_code == 2
    assert "SONANTICA_HOST" in result.output


def _start_scheduler(env: dict[str, str], log_file: Path) -> subprocess.Popen[bytes]:
    with log_file.open("wb") as sink:
        return subprocess.Popen(
            [sys.executable, "-m", "sidecar", "scheduler"], env={**os.environ, **env}, stdout=sink, stderr=sink
        )


async def _log_says(log_file: Path, text: str, timeout_s: float = 60.0) -> None:
    await _until(lambda: text in log_file.read_text(), timeout_s=timeout_s)


async def test_scheduler_cli_second_process_idles_then_takes_over(runtime_env: dict[str, str], tmp_path: Path) -> None:
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    first = _start_scheduler(runtime_env, first_log)
    second: subprocess.Popen[bytes] | None = None
    try:
        await _log_says(first_log, "scheduler active")
        second = _start_scheduler(runtime_env, second_log)
        await _log_says(second_log, "another scheduler is active")
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=30) == 0
        await _log_says(second_log, "scheduler active")
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=30) == 0
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()


async def test_sync_reports_host_replaygain_that_disagrees_with_ours(
    runtime: Runtime, adapter: JellyfinAdapter, versions: dict[str, int], fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    await sync_library(runtime, adapter, versions)
    ours = LoudnessResult(
        loudness_lufs=-13.0,
        loudness_range_lu=4.0,
        true_peak_dbtp=-1.0,
        sample_peak_dbfs=-1.2,
        replaygain_track_gain_db=-5.0,
        replaygain_track_peak=0.89,
        gating_histogram=np.zeros(10_000),
    )
    async with transaction(runtime.pool) as conn:
        for name in ("t0", "t1"):
            record = await tracks.get_track_by_key(conn, TrackKey("jellyfin", seeded[name]))
            assert record is not None
            await store_results(conn, record.id, results={"loudness": ours}, versions={"loudness": 1})
    fake.items[seeded["t0"]]["NormalizationGain"] = -2.0  # 3 dB louder than ours: reported
    fake.items[seeded["t1"]]["NormalizationGain"] = -5.4  # within 1 dB: agrees

    report = await sync_library(runtime, adapter, versions)

    assert report.replaygain_disagreements == 1
    assert [(d.host_track_id, d.difference) for d in report.replaygain_examples] == [(seeded["t0"], 3.0)]
    assert report.bpm_disagreements == 0


async def test_worker_writes_tags_back_to_jellyfin_and_write_back_skips_unchanged(
    runtime: Runtime,
    adapter: JellyfinAdapter,
    fake: FakeJellyfin,
    seeded: dict[str, str],
    library_dir: Path,
    versions: dict[str, int],
) -> None:
    fake.add_user("admin", "pw", admin=True)  # an API key writes items as the first administrator
    spec = PieceSpec(title="t", bpm=120.0, key=KeySignature("A", "minor"), groove="rock", duration_s=8.0, seed=1)
    write_audio(render(spec), 44100, library_dir / "Artist" / "00.flac")
    await sync_library(runtime, adapter, versions)
    executor = AnalysisExecutor(get_settings(), list(versions), processes=1)
    try:
        await asyncio.wait_for(Worker(runtime, executor, versions, adapter=adapter).run(drain=True), timeout=180)
    finally:
        executor.close()
    tags = fake.tags_of(seeded["t0"]) or []
    assert {"bpm:120", "key:A minor", "camelot:8A"} <= set(tags)
    assert any(tag.startswith("replaygain:") for tag in tags)
    assert all(any(tag.startswith("replaygain:") for tag in fake.tags_of(seeded[t]) or []) for t in ("t1", "t2"))
    writes = len(fake.requests_to("POST", r"/Items/\w+"))
    report = await write_back_all(runtime, adapter)
    assert report.outcomes == {"unchanged": 3}
    assert len(fake.requests_to("POST", r"/Items/\w+")) == writes
