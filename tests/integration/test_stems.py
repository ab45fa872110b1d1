"""Stems on demand against real PostgreSQL and Redis, with a tiny random-weight Demucs model in a local repository
(the real Demucs loading and ``apply_model`` path): request -> 202 -> worker -> StemsReady -> Range requests,
separated once however often asked, a SIGKILL mid-separation, eviction, refused paths, bad models."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import numpy.typing as npt
import psycopg
import pytest
from typer.testing import CliRunner

from sidecar.analyzers.audio import AudioReader
from sidecar.analyzers.executor import AnalysisExecutor
from sidecar.api.app import create_app
from sidecar.cli import app
from sidecar.demo.encode import write_audio
from sidecar.services.enqueue import register_local_files
from sidecar.services.runtime import Runtime
from sidecar.services.stems import evict_stems, request_stems, stems_queue
from sidecar.settings import Settings, get_settings
from sidecar.stems import STEM_NAMES
from sidecar.stems.executor import StemsExecutor
from sidecar.storage import stems, tracks
from sidecar.storage.db import transaction
from sidecar.worker.runner import Worker
from sidecar.worker.stems import StemsLane
from tests.stems_model import TINY_MODEL, build_tiny_repository

TOKEN = "stems-token-" + "y" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RATE_HZ = 44100


def _music(seconds: float, seed: int) -> npt.NDArray[np.float32]:
    """Quiet stereo test audio (far from clipping, so stems and their sum are compared without clipped samples)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    left = 0.05 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.standard_normal(t.size)
    right = 0.05 * np.sin(2 * np.pi * 330 * t) + 0.01 * rng.standard_normal(t.size)
    return np.stack([left, right], axis=1).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_repository(tmp_path_factory.mktemp("demucs") / "repo")


@pytest.fixture
def stems_env(
    monkeypatch: pytest.MonkeyPatch, service_env: dict[str, str], tmp_path: Path, tiny_repo: Path
) -> dict[str, str]:
    env = {
        **service_env,
        "SONANTICA_DATA_DIR": str(tmp_path / "data"),
        "SONANTICA_API__TOKEN": TOKEN,
        "SONANTICA_STEMS__MODEL": TINY_MODEL,
        "SONANTICA_STEMS__REPO": str(tiny_repo),
        "SONANTICA_STEMS__THREADS": "1",
        "SONANTICA_STEMS__BLOCK_S": "10",
        "SONANTICA_WORKER__LEASE_S": "2",
        "SONANTICA_WORKER__LOCK_S": "6",
        "SONANTICA_WORKER__POLL_S": "0.2",
        "SONANTICA_WORKER__RETRY_BASE_S": "0.2",
        "SONANTICA_WORKER__RETRY_MAX_S": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return env


@dataclass
class Api:
    client: httpx.AsyncClient
    runtime: Runtime
    settings: Settings


@pytest.fixture
async def api(stems_env: dict[str, str]) -> AsyncIterator[Api]:
    settings = get_settings()
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield Api(client, app.state.runtime, settings)


def _write_track(folder: Path, seconds: float, seed: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = write_audio(_music(seconds, seed), RATE_HZ, folder / f"song-{seed}.flac")
    os.chmod(path, 0o444)  # the original is read-only: a separation that tried to write to it would fail
    return path


async def _track(runtime: Runtime, folder: Path, seconds: float, seed: int = 0) -> int:
    path = _write_track(folder, seconds, seed)
    [track_id] = await register_local_files(runtime.pool, [path])
    return track_id


async def _drain(runtime: Runtime) -> StemsLane:
    """A stems-only worker run until no separation is left."""
    executor = StemsExecutor(runtime.settings)
    lane = StemsLane(runtime, executor)
    worker = Worker(runtime, AnalysisExecutor(runtime.settings, [], processes=1), {}, queues=(), stems=lane)
    try:
        await asyncio.wait_for(worker.run(drain=True), timeout=240)
    finally:
        executor.close()
    return lane


def _decode(path: Path) -> npt.NDArray[np.float32]:
    with AudioReader(path) as reader:
        return np.concatenate([block.native for block in reader.blocks()], axis=1)


async def test_request_worker_stems_ready_and_range_requests(api: Api, tmp_path: Path) -> None:
    track_id = await _track(api.runtime, tmp_path / "library", 8.0)
    async with stems_queue(api.runtime).subscribe(track_id) as subscription:
        first = await api.client.post(f"/api/tracks/{track_id}/stems", json={"purpose": "karaoke"}, headers=AUTH)
        assert first.status_code == 202, first.text
        assert first.headers["location"] == f"/api/tracks/{track_id}/stems"
        assert first.json()["state"] == "queued"
        unauthorised = await api.client.post(f"/api/tracks/{track_id}/stems", json={"purpose": "studio"})
        assert unauthorised.status_code == 401
        lane = await _drain(api.runtime)
        ready = await subscription.get(timeout_s=10)
    assert lane.outcomes == {"separated": 1}
    assert ready is not None
    assert ready.track_id == track_id
    assert set(ready.files) == set(STEM_NAMES)

    anonymous = await api.client.get(f"/api/tracks/{track_id}/stems")
    assert anonymous.status_code == 401  # every /api route needs the token, reads included
    status = (await api.client.get(f"/api/tracks/{track_id}/stems", headers=AUTH)).json()
    assert status["state"] == "ready"
    assert status["is_separated"]
    assert status["purpose"] == "karaoke"
    assert status["model"] == TINY_MODEL
    assert status["model_version"].startswith("demucs 4.1.0 tiny")
    assert [f["name"] for f in status["files"]] == list(STEM_NAMES)
    root = api.settings.stems_root
    folder = root / str(track_id)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.flac" for name in STEM_NAMES)
    assert status["size_bytes"] == sum(p.stat().st_size for p in folder.iterdir())
    assert not any((root / ".partial").iterdir())

    for entry in status["files"]:
        content = (folder / f"{entry['name']}.flac").read_bytes()
        whole = await api.client.get(entry["url"], headers=AUTH)
        assert whole.status_code == 200
        assert whole.content == content
        assert whole.headers["content-type"] == "audio/flac"
        assert whole.headers["accept-ranges"] == "bytes"
        part = await api.client.get(entry["url"], headers=AUTH | {"Range": "bytes=100-1099"})
        assert part.status_code == 206
        assert part.content == content[100:1100]
        assert part.headers["content-range"] == f"bytes 100-1099/{len(content)}"
        tail = await api.client.get(entry["url"], headers=AUTH | {"Range": "bytes=-10"})
        assert tail.status_code == 206
        assert tail.content == content[-10:]

    # each access refreshes last-used
    async with transaction(api.runtime.pool) as conn:
        await conn.execute(
            "UPDATE stems SET last_accessed_at = now() - interval '20 days' WHERE track_id = %s", (track_id,)
        )
    assert (await api.client.get(f"/api/tracks/{track_id}/stems/vocals", headers=AUTH)).status_code == 200
    async with transaction(api.runtime.pool) as conn:
        row = await stems.get_stems(conn, track_id)
    assert row is not None
    assert row.last_accessed_at is not None
    assert dt.datetime.now(dt.UTC) - row.last_accessed_at < dt.timedelta(minutes=1)

    # karaoke: the instrumental is the sum of the three non-vocal stems (each rounded to 16 bits on its own)
    decoded = {name: _decode(folder / f"{name}.flac") for name in STEM_NAMES}
    assert decoded["vocals"].shape == (2, 8 * RATE_HZ)
    summed = decoded["drums"] + decoded["bass"] + decoded["other"]
    assert np.abs(decoded["instrumental"]).max() < 0.99  # nothing clipped, so the sum must hold
    assert np.abs(decoded["instrumental"] - summed).max() <= 2.5 / 32768
    assert np.abs(decoded["instrumental"] - decoded["vocals"]).max() > 100 / 32768  # not trivially equal

    again = await api.client.post(f"/api/tracks/{track_id}/stems", json={"purpose": "studio"}, headers=AUTH)
    assert again.status_code == 200
    assert again.json()["state"] == "ready"

    deleted = await api.client.delete(f"/api/tracks/{track_id}/stems", headers=AUTH)
    assert deleted.status_code == 200
    assert deleted.json()["deleted_bytes"] == status["size_bytes"]
    assert not folder.exists()
    gone = await api.client.get(f"/api/tracks/{track_id}/stems/vocals", headers=AUTH)
    assert gone.status_code == 404
    assert (await api.client.get(f"/api/tracks/{track_id}/stems", headers=AUTH)).json()["state"] == "none"
    assert (await api.client.get(f"/api/tracks/{track_id}/stems/piano", headers=AUTH)).status_code == 422
    assert (await api.client.get("/api/tracks/999999/stems", headers=AUTH)).status_code == 404


async def test_concurrent_requests_separate_once(api: Api, tmp_path: Path) -> None:
    track_id = await _track(api.runtime, tmp_path / "library", 6.0)
    answers = await asyncio.gather(
        *(api.client.post(f"/api/tracks/{track_id}/stems", json={"purpose": "studio"}, headers=AUTH) for _ in range(8))
    )
    assert [a.status_code for a in answers] == [202] * 8
    assert (await stems_queue(api.runtime).depths())["stems"] == 1
    lane = await _drain(api.runtime)
    assert lane.outcomes == {"separated": 1}
    again = await api.client.post(f"/api/tracks/{track_id}/stems", json={"purpose": "studio"}, headers=AUTH)
    assert again.status_code == 200


@pytest.fixture
def worker_process_env(stems_env: dict[str, str]) -> dict[str, str]:
    return {**os.environ, **stems_env}


async def test_sigkill_mid_separation_redelivers_and_leaves_one_complete_set(
    api: Api, tmp_path: Path, worker_process_env: dict[str, str]
) -> None:
    track_id = await _track(api.runtime, tmp_path / "library", 40.0)
    await request_stems(api.runtime, track_id)
    root = api.settings.stems_root
    process = subprocess.Popen(  # noqa: ASYNC220 - a real worker process, killed below
        [sys.executable, "-m", "sidecar", "worker", "--queues", "stems"],
        env=worker_process_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        partial: list[Path] = []
        while not partial:
            assert time.monotonic() < deadline, "the worker never started separating"
            assert process.poll() is None, "the worker exited"
            await asyncio.sleep(0.05)
            partial = (
                [d for d in (root / ".partial").glob(f"{track_id}-*") if any(d.iterdir())] if root.exists() else []
            )
        async with transaction(api.runtime.pool) as conn:
            row = await stems.get_stems(conn, track_id)
        assert row is not None
        assert row.state == "running"
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    assert not (root / str(track_id)).exists()  # a half set never looks done

    lane = await _drain(api.runtime)  # takes the job back once the dead worker's lease and lock expire
    assert lane.outcomes.get("separated") == 1
    folder = root / str(track_id)
    assert sorted(p.name for p in folder.iterdir()) == sorted(f"{name}.flac" for name in STEM_NAMES)
    assert list((root / ".partial").iterdir()) == []
    async with transaction(api.runtime.pool) as conn:
        row = await stems.get_stems(conn, track_id)
    assert row is not None
    assert row.state == "ready"
    assert row.attempts == 2
    assert _decode(folder / "vocals.flac").shape == (2, 40 * RATE_HZ)


async def _ready_row(runtime: Runtime, name: str, size_bytes: int, *, location: Path | None = None) -> int:
    """A track with a stems folder of ``size_bytes`` bytes (or recorded at ``location``)."""
    async with transaction(runtime.pool) as conn:
        track_id = (
            await tracks.upsert_track(
                conn, tracks.TrackUpsert(host="local", host_track_id=name, title=name, path=f"/music/{name}.flac")
            )
        ).track_id
    folder = location or runtime.settings.stems_root / str(track_id)
    folder.mkdir(parents=True, exist_ok=True)
    for stem in STEM_NAMES:
        (folder / f"{stem}.flac").write_bytes(b"\0" * (size_bytes // len(STEM_NAMES)))
    async with transaction(runtime.pool) as conn:
        await stems.record_stems(
            conn,
            track_id,
            location=str(folder),
            size_bytes=size_bytes,
            format="flac",
            files=dict.fromkeys(STEM_NAMES, size_bytes // len(STEM_NAMES)),
        )
    return track_id


async def _used_days_ago(runtime: Runtime, track_id: int, days: float) -> None:
    async with transaction(runtime.pool) as conn:
        await conn.execute(
            "UPDATE stems SET last_accessed_at = now() - make_interval(secs => %s) WHERE track_id = %s",
            (days * 86400, track_id),
        )


async def _separated(runtime: Runtime) -> set[int]:
    async with transaction(runtime.pool) as conn:
        return {row.track_id for row in await stems.list_stems(conn, states=("ready",))}


async def test_eviction_by_age_with_an_injected_clock(api: Api) -> None:
    runtime = api.runtime
    old = await _ready_row(runtime, "old", 500)
    recent = await _ready_row(runtime, "recent", 500)
    await _used_days_ago(runtime, old, 31)
    await _used_days_ago(runtime, recent, 29)
    report = await evict_stems(runtime)
    assert report.expired == [old]
    assert report.freed_bytes == 500
    assert not (runtime.settings.stems_root / str(old)).exists()
    assert (runtime.settings.stems_root / str(recent)).is_dir()
    assert await _separated(runtime) == {recent}
    # two days later by the injected clock, the other one has been unused for 31 days too
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    assert (await evict_stems(runtime, now=later)).expired == [recent]
    assert await _separated(runtime) == set()
    async with transaction(runtime.pool) as conn:
        row = await stems.get_stems(conn, recent)
    assert row is not None
    assert not row.is_separated
    assert row.location is None
    assert row.state == "none"


async def test_eviction_by_quota_least_recently_used_first(api: Api) -> None:
    runtime = api.runtime
    ids = [await _ready_row(runtime, f"q{i}", 1000) for i in range(4)]
    for index, track_id in enumerate(ids):
        await _used_days_ago(runtime, track_id, 10 - index)  # ids[0] least recently used
    quota = runtime.settings.model_copy(update={"stems": runtime.settings.stems.model_copy(update={"max_bytes": 2500})})
    report = await evict_stems(_with(runtime, quota))
    assert report.expired == []
    assert report.over_quota == ids[:2]
    assert await _separated(runtime) == set(ids[2:])
    assert [(runtime.settings.stems_root / str(i)).exists() for i in ids] == [False, False, True, True]


def _with(runtime: Runtime, settings: Settings) -> Runtime:
    return Runtime(
        settings=settings,
        pool=runtime.pool,
        redis=runtime.redis,
        keys=runtime.keys,
        queue=runtime.queue,
        cache=runtime.cache,
        events=runtime.events,
    )


async def test_a_location_outside_the_stems_folder_is_refused(api: Api, tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    track_id = await _ready_row(api.runtime, "tampered", 500, location=outside)
    answer = await api.client.get(f"/api/tracks/{track_id}/stems/vocals", headers=AUTH)
    assert answer.status_code == 403
    assert "not inside the stems folder" in answer.json()["detail"]
    delete = await api.client.delete(f"/api/tracks/{track_id}/stems", headers=AUTH)
    assert delete.status_code == 403
    assert (outside / "vocals.flac").is_file()
    await _used_days_ago(api.runtime, track_id, 40)
    report = await evict_stems(api.runtime)
    assert report.refused == [track_id]
    assert report.freed_bytes == 0
    assert sorted(p.name for p in outside.iterdir()) == sorted(f"{name}.flac" for name in STEM_NAMES)
    link = api.settings.stems_root / "999"
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(outside)
    escaped = await _ready_row(api.runtime, "linked", 500, location=link)
    assert (await api.client.get(f"/api/tracks/{escaped}/stems/vocals", headers=AUTH)).status_code == 403


def _corrupt_copy(repo: Path, target: Path) -> Path:
    """A copy of ``repo`` whose weights file no longer matches the checksum in its name."""
    target.mkdir()
    for file in repo.iterdir():
        data = file.read_bytes()
        (target / file.name).write_bytes(data[:-100] + b"x" * 100 if file.suffix == ".th" else data)
    return target


async def test_bad_or_missing_model_is_recorded_and_the_worker_goes_on(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_repo: Path
) -> None:
    broken = _corrupt_copy(tiny_repo, tmp_path / "broken-repo")
    first = await _track(api.runtime, tmp_path / "library", 3.0, seed=1)
    second = await _track(api.runtime, tmp_path / "library", 3.0, seed=2)
    await request_stems(api.runtime, first)
    await request_stems(api.runtime, second)
    monkeypatch.setenv("SONANTICA_STEMS__REPO", str(broken))
    lane = await _drain(_with(api.runtime, Settings()))
    assert lane.outcomes == {"failed": 2}
    async with transaction(api.runtime.pool) as conn:
        rows = [await stems.get_stems(conn, t) for t in (first, second)]
    for row in rows:
        assert row is not None
        assert row.state == "failed"
        assert not row.is_separated
        assert row.last_error is not None
        assert "Invalid checksum" in row.last_error

    # the published model, offline, with an empty cache: the error names the file and how to get it
    monkeypatch.delenv("SONANTICA_STEMS__REPO")
    monkeypatch.setenv("SONANTICA_STEMS__MODEL", "htdemucs")
    monkeypatch.setenv("SONANTICA_STEMS__OFFLINE", "true")
    await request_stems(api.runtime, first)
    lane = await _drain(_with(api.runtime, Settings()))
    assert lane.outcomes == {"failed": 1}
    async with transaction(api.runtime.pool) as conn:
        row = await stems.get_stems(conn, first)
    assert row is not None
    assert row.state == "failed"
    assert row.last_error is not None
    assert "955717e8-8726e21a.th" in row.last_error
    assert "sonantica models fetch --stems" in row.last_error
    status = (await api.client.get(f"/api/tracks/{first}/stems", headers=AUTH)).json()
    assert status["state"] == "failed"
    assert "955717e8-8726e21a.th" in status["error"]


async def test_separations_lost_by_redis_are_queued_again(api: Api, tmp_path: Path) -> None:
    track_id = await _track(api.runtime, tmp_path / "library", 3.0)
    await request_stems(api.runtime, track_id)
    queue = stems_queue(api.runtime)
    await api.runtime.redis.delete(queue.keys.queue)  # Redis lost its data
    assert not any((await queue.depths()).values())
    lane = await _drain(api.runtime)
    assert lane.outcomes == {"separated": 1}
    async with transaction(api.runtime.pool) as conn:
        row = await stems.get_stems(conn, track_id)
    assert row is not None
    assert row.state == "ready"


def test_cli_request_list_evict_and_status(stems_env: dict[str, str], database_url: str, tmp_path: Path) -> None:
    path = _write_track(tmp_path / "library", 3.0, 0)
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO tracks (host, host_track_id, title, path) VALUES ('local', %s, 'cli', %s) RETURNING id",
            (str(path), str(path)),
        ).fetchone()
    assert row is not None
    track_id = int(row[0])
    runner = CliRunner()
    requested = runner.invoke(app, ["stems", "request", str(track_id), "--purpose", "karaoke"])
    assert requested.exit_code == 0, requested.output
    assert f"track {track_id}: stems queued" in requested.output
    again = runner.invoke(app, ["stems", "request", str(track_id)])
    assert f"track {track_id}: stems queued" in again.output  # queued already: nothing more is queued
    listed = runner.invoke(app, ["stems", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    assert f'"track_id": {track_id}, "state": "queued"' in listed.output
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    assert "stems: 0 tracks, 0.0 MB on disk; queued 1, running 0" in status.output
    evicted = runner.invoke(app, ["stems", "evict", "--track", str(track_id)])
    assert evicted.exit_code == 0, evicted.output
    assert "deleted stems of 1 tracks (0 bytes)" in evicted.output
    nothing = runner.invoke(app, ["stems", "evict", "--track", str(track_id), "--track", "999999"])
    assert nothing.exit_code == 0, nothing.output
    assert f"deleted stems of 0 tracks (0 bytes); no stems for track {track_id}, 999999" in nothing.output
    unknown = runner.invoke(app, ["stems", "request", "999999"])
    assert unknown.exit_code == 2
    assert "no track with id 999999" in unknown.output


async def test_a_stems_only_worker_logs_the_queue_it_takes(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="sidecar.worker.runner")
    await _drain(api.runtime)
    started = [r.getMessage() for r in caplog.records if " started (queues: " in r.getMessage()]
    assert len(started) == 1
    assert started[0].endswith(" started (queues: stems)")
