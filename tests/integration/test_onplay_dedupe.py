"""On-play against real PostgreSQL + Redis (issue 12, item 10): repeated plays queue one job, a track without a
readable file is refused (409) instead of queued-then-dropped, and its status URL says why instead of nulls."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest

from sidecar.analyzers.registry import CORE_ANALYZERS
from sidecar.api.app import create_app
from sidecar.domain import Priority, TrackKey
from sidecar.jobqueue import AnalyzeTrack, decode_job
from sidecar.jobqueue.connection import as_text
from sidecar.services.onplay import OnPlayState, request_analysis
from sidecar.services.runtime import Runtime
from sidecar.settings import Settings, get_settings
from sidecar.storage import tracks
from sidecar.storage.db import transaction

TOKEN = "test-token-" + "y" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str) -> Settings:
    for name, value in {
        "SONANTICA_DATABASE_URL": database_url,
        "SONANTICA_REDIS_URL": redis_url,
        "SONANTICA_REDIS__KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
        "SONANTICA_ANALYSIS__ENABLED": ",".join(CORE_ANALYZERS),
        "SONANTICA_API__TOKEN": TOKEN,
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        async with transaction(runtime.pool) as conn:
            for host_track_id, path in (("playable", "/music/playable.flac"), ("unmapped", None)):
                await tracks.upsert_track(
                    conn,
                    tracks.TrackUpsert(
                        host="jellyfin", host_track_id=host_track_id, title=host_track_id, path=path, host_path="/x"
                    ),
                )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as http:
            yield http, runtime


def _analyze_job(raw: bytes | str) -> AnalyzeTrack:
    """The analysis job of a queue entry (on-play queues hold nothing else)."""
    job = decode_job(as_text(raw))
    assert isinstance(job, AnalyzeTrack)
    return job


async def test_five_on_play_posts_push_one_job(client: tuple[httpx.AsyncClient, Runtime]) -> None:
    http, runtime = client
    answers = [await http.post("/api/tracks/jellyfin/playable/on-play", headers=AUTH) for _ in range(5)]
    assert [a.status_code for a in answers] == [202] * 5
    assert {a.json()["state"] for a in answers} == {"queued"}
    waiting = await runtime.redis.lrange(runtime.keys.queue(Priority.ON_PLAY), 0, -1)
    assert [_analyze_job(raw).host_track_id for raw in waiting] == ["playable"]


async def test_on_play_again_once_a_worker_took_the_job(client: tuple[httpx.AsyncClient, Runtime]) -> None:
    http, runtime = client
    assert (await http.post("/api/tracks/jellyfin/playable/on-play", headers=AUTH)).status_code == 202
    claimed = await runtime.queue.claim("w1", queues=(Priority.ON_PLAY,))
    assert claimed is not None
    await runtime.queue.release_on_play(_analyze_job(claimed.raw).track)  # what the worker does when it takes it
    assert (await http.post("/api/tracks/jellyfin/playable/on-play", headers=AUTH)).status_code == 202
    assert (await runtime.queue.depths())["on_play"] == 1


async def test_track_without_a_readable_file_is_409_and_nothing_is_queued(
    client: tuple[httpx.AsyncClient, Runtime],
) -> None:
    http, runtime = client
    for _ in range(2):
        refused = await http.post("/api/tracks/jellyfin/unmapped/on-play", headers=AUTH)
        assert refused.status_code == 409, refused.text
        assert "no readable file on the library mount" in refused.json()["detail"]
    assert (await runtime.queue.depths())["on_play"] == 0
    status_url = await http.get("/api/tracks/jellyfin/unmapped/analysis", headers=AUTH)
    assert status_url.status_code == 409
    assert "cannot be analysed" in status_url.json()["detail"]


async def test_the_service_says_no_file_for_webhooks_and_now_playing_too(
    client: tuple[httpx.AsyncClient, Runtime],
) -> None:
    _, runtime = client
    outcome = await request_analysis(runtime, TrackKey("jellyfin", "unmapped"), {name: 1 for name in CORE_ANALYZERS})
    assert outcome.state is OnPlayState.NO_FILE
    assert (await runtime.queue.depths())["on_play"] == 0
