"""Hostile clients against the API on real PostgreSQL + Redis (issue 12): every route refuses a missing or wrong
token, the token is checked before a body is read, bodies are size-limited, NUL/NaN inputs are 4xx in one
error shape, metric labels stay bounded, the OpenAPI document lists the errors, and the event stream is one
shared subscription with a cap, while readiness keeps answering."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import string
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from redis.exceptions import MaxConnectionsError
from starlette.types import Message

from sidecar.api.app import create_app
from sidecar.api.events_hub import EventsHub, EventStreamResponse
from sidecar.domain import TrackKey
from sidecar.jobqueue import AnalysisReady
from sidecar.jobqueue.stems import StemsKeys, StemsReady
from sidecar.services.runtime import Runtime
from sidecar.settings import Settings, get_settings
from tests.integration.test_api import (  # noqa: F401  (fixtures)
    AUTH,
    HOST_IDS,
    TOKEN,
    Api,
    _free_port,
    api,
    seed_library,
    settings,
)

NO_TOKEN: dict[str, str] = {}
WRONG_TOKEN = {"Authorization": "Bearer " + "w" * len(TOKEN)}
MB = 1024 * 1024


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """``(method, path)`` of every operation under /api in the app's OpenAPI document, path parameters filled
    with values that exist."""
    values = {"track_id": "1", "host": "jellyfin", "host_track_id": HOST_IDS["seed"], "stem": "vocals"}
    return [
        (method.upper(), re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path))
        for path, item in app.openapi()["paths"].items()
        if path.startswith("/api")
        for method in item
    ]


@pytest.mark.parametrize("headers", [NO_TOKEN, WRONG_TOKEN], ids=["no-token", "wrong-token"])
async def test_every_api_route_refuses_a_missing_or_wrong_token(api: Api, headers: dict[str, str]) -> None:  # noqa: F811
    routes = _routes(api.app)
    assert len(routes) >= 9
    assert {m for m, _ in routes} == {"GET", "POST", "PATCH", "DELETE"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=api.app), base_url="http://api") as bare:
        for method, path in routes:
            response = await bare.request(method, path, headers=headers, json={})
            assert response.status_code == 401, f"{method} {path} -> {response.status_code}"
            assert response.headers["www-authenticate"] == "Bearer"
            assert "token" in response.json()["detail"]


async def test_public_read_opens_reads_but_not_writes(
    monkeypatch: pytest.MonkeyPatch,
    settings: Settings,  # noqa: F811
) -> None:
    monkeypatch.setenv("SONANTICA_API__PUBLIC_READ", "true")
    get_settings.cache_clear()
    app = create_app(get_settings())
    async with app.router.lifespan_context(app):
        ids = await seed_library(app.state.runtime.pool)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as bare:
            read = await bare.get(f"/api/tracks/{ids['seed']}/analysis")
            assert read.status_code == 200
            status = await bare.get("/api/status")
            assert status.status_code == 200
            write = await bare.post(f"/api/tracks/jellyfin/{HOST_IDS['seed']}/on-play")
            assert write.status_code == 401
            correction = await bare.patch(f"/api/tracks/{ids['seed']}/overrides", json={"bpm": 60})
            assert correction.status_code == 401
    schema = app.openapi()
    assert "security" not in schema["paths"]["/api/status"]["get"]
    assert schema["paths"]["/api/playlists/bpm-range"]["post"]["security"] == [{"HTTPBearer": []}]


async def _asgi_call(
    app: FastAPI, method: str, path: str, headers: dict[str, str], chunks: int, chunk_bytes: int, *, chunked: bool
) -> tuple[int, int, dict[str, str]]:
    """Call ``app`` with a lazily produced body; return (status, body bytes the app pulled, response headers)."""
    raw_headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    if chunked:
        raw_headers.append((b"transfer-encoding", b"chunked"))
    else:
        raw_headers.append((b"content-length", str(chunks * chunk_bytes).encode()))
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": raw_headers,
        "client": ("127.0.0.1", 1234),
        "server": ("127.0.0.1", 80),
    }
    pulled = 0
    sent = 0
    chunk = b"x" * chunk_bytes

    async def receive() -> dict[str, Any]:
        nonlocal pulled, sent
        if sent < chunks:
            sent += 1
            pulled += len(chunk)
            return {"type": "http.request", "body": chunk, "more_body": sent < chunks}
        await asyncio.sleep(3600)  # no disconnect while the app answers
        raise AssertionError("unreachable")

    status = 0
    response_headers: dict[str, str] = {}

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers.update({k.decode(): v.decode() for k, v in message["headers"]})

    await app(scope, receive, send)
    return status, pulled, response_headers


async def test_a_100_mb_post_without_token_is_refused_before_its_body_is_read(api: Api) -> None:  # noqa: F811
    path = "/api/playlists/bpm-range"
    status, pulled, headers = await _asgi_call(api.app, "POST", path, {}, chunks=100, chunk_bytes=MB, chunked=False)
    assert (status, pulled) == (401, 0)
    assert headers["connection"] == "close"
    status, pulled, _ = await _asgi_call(api.app, "POST", path, {}, chunks=100, chunk_bytes=MB, chunked=True)
    assert (status, pulled) == (401, 0)


async def test_bodies_over_the_limit_are_413_declared_or_chunked(api: Api) -> None:  # noqa: F811
    path = "/api/playlists/bpm-range"
    limit = api.app.state.settings.api.max_body_bytes
    status, pulled, _ = await _asgi_call(api.app, "POST", path, AUTH, chunks=100, chunk_bytes=MB, chunked=False)
    assert (status, pulled) == (413, 0)
    status, pulled, _ = await _asgi_call(api.app, "POST", path, AUTH, chunks=100, chunk_bytes=MB, chunked=True)
    assert status == 413
    assert pulled <= limit + MB  # read up to the limit only
    webhook = await api.client.post("/hooks/jellyfin", content=b"{" * (limit + 1), headers={"X-Sonantica-Token": "x"})
    assert webhook.status_code == 413
    fine = await api.client.post(path, json={"bpm_min": 100, "bpm_max": 120, "name": "n" * 100})
    assert fine.status_code == 200


async def test_webhook_secret_is_checked_before_the_body_is_read(api: Api) -> None:  # noqa: F811
    status, pulled, _ = await _asgi_call(
        api.app, "POST", "/hooks/jellyfin", {"X-Sonantica-Token": "wrong"}, chunks=1, chunk_bytes=1000, chunked=False
    )
    assert (status, pulled) == (401, 0)


async def test_nul_bytes_in_the_url_are_400_not_500(api: Api) -> None:  # noqa: F811
    seed = api.ids["seed"]
    for url in (
        f"/api/tracks/{seed}/similar?exclude_genre=%00",
        f"/api/tracks/{seed}/similar?exclude_library=a%00b",
        "/api/tracks/jellyfin/a%00b/analysis",
        "/api/events?host=jellyfin&host_track_id=%00",
    ):
        response = await api.client.get(url)
        assert response.status_code == 400, (url, response.text)
        assert "NUL" in response.json()["detail"]


async def test_nul_bytes_in_a_body_are_422(api: Api) -> None:  # noqa: F811
    body = {"seed_track_ids": [api.ids["seed"]], "exclude_genres": ["a\x00b"]}
    response = await api.client.post("/api/playlists/sonic-match", json=body)
    assert response.status_code == 422
    assert "NUL" in response.json()["detail"]
    named = await api.client.post("/api/playlists/bpm-range", json={"bpm_min": 100, "bpm_max": 120, "name": "\x00"})
    assert named.status_code == 422


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_422_that_serialise(api: Api, literal: str) -> None:  # noqa: F811
    content = f'{{"bpm_min": {literal}, "bpm_max": 120}}'
    response = await api.client.post(
        "/api/playlists/bpm-range", content=content, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    body = json.loads(response.text)  # strict JSON: no NaN inside
    assert body["errors"][0]["loc"] == ["body", "bpm_min"]
    mix = f'{{"seed_track_id": {api.ids["seed"]}, "max_bpm_step_pct": {literal}}}'
    refused = await api.client.post("/api/playlists/harmonic-mix", content=mix)
    assert refused.status_code == 422
    query = await api.client.get(f"/api/tracks/{api.ids['seed']}/similar", params={"bpm_min": literal.lower()})
    assert query.status_code == 422
    json.loads(query.text)
    listing = await api.client.get("/api/tracks", params={"bpm_min": literal.lower()})
    assert listing.status_code == 422
    assert "finite number" in listing.text  # not "less than or equal to 1000" for a NaN


async def test_every_422_has_one_shape(api: Api) -> None:  # noqa: F811
    seed = api.ids["seed"]
    answers = [
        await api.client.get(f"/api/tracks/{seed}/similar", params={"bpm_min": 130, "bpm_max": 120}),  # the route
        await api.client.get(f"/api/tracks/{seed}/similar", params={"limit": "many"}),  # FastAPI
        await api.client.post("/api/playlists/bpm-range", json={"bpm_min": 140, "bpm_max": 120}),  # a model check
        await api.client.post("/api/playlists/bpm-range", content=b"{not json"),
        await api.client.get("/api/events", params={"host": "jellyfin"}),
    ]
    for response in answers:
        assert response.status_code == 422, response.text
        body = response.json()
        assert set(body) == {"detail", "errors"}
        assert isinstance(body["detail"], str)
        assert body["detail"]
        assert body["errors"]
        for error in body["errors"]:
            assert set(error) == {"loc", "msg", "type"}


async def test_metric_labels_stay_bounded_under_random_methods_and_paths(api: Api) -> None:  # noqa: F811
    rng = random.Random(12)
    methods = {"".join(rng.choices(string.ascii_uppercase, k=8)) for _ in range(60)}
    for method in methods:
        await api.client.request(method, "/health/live")
        await api.client.request(method, f"/nowhere/{rng.randrange(10**9)}")
    text = (await api.client.get("/metrics")).text
    labels = set(re.findall(r'method="([^"]+)"', text))
    assert labels <= {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "OTHER"}
    assert "OTHER" in labels
    routes = set(re.findall(r'route="([^"]+)"', text))
    assert not any(route.startswith("/nowhere") for route in routes)
    assert "unmatched" in routes


async def test_openapi_documents_400_401_413_422_and_503(api: Api) -> None:  # noqa: F811
    schema = (await api.client.get("/openapi.json")).json()
    shapes = schema["components"]["schemas"]
    assert "HTTPValidationError" not in shapes
    assert set(shapes["ValidationErrorPublic"]["required"]) == {"detail", "errors"}
    operations = [(path, method, op) for path, item in schema["paths"].items() for method, op in item.items()]
    assert len(operations) >= 12
    for path, method, operation in operations:
        responses = operation["responses"]
        assert "400" in responses, (method, path)
        if path.startswith("/api"):
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            assert "401" in responses, (method, path)
            assert "503" in responses, (method, path)
        if "requestBody" in operation:
            assert "413" in responses, (method, path)
        if operation.get("parameters") or "requestBody" in operation:
            ref = responses["422"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/ValidationErrorPublic", (method, path)
    assert "503" in schema["paths"]["/api/events"]["get"]["responses"]


async def test_access_log_names_method_path_status(api: Api, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    with caplog.at_level(logging.INFO, logger="sidecar.api.access"):
        await api.client.get(f"/api/tracks/{api.ids['seed']}/analysis")
    lines = [r.getMessage() for r in caplog.records if r.name == "sidecar.api.access"]
    assert any(f"GET /api/tracks/{api.ids['seed']}/analysis 200 " in line for line in lines), lines


async def test_readiness_answers_while_the_shared_pools_are_exhausted(api: Api) -> None:  # noqa: F811
    runtime = api.runtime
    held_db = [await runtime.pool.getconn() for _ in range(runtime.pool.max_size)]
    redis_pool = runtime.redis.connection_pool
    held_redis = []
    while True:  # take every connection left (the hub holds one)
        try:
            held_redis.append(await redis_pool.get_connection())
        except MaxConnectionsError:
            break
    assert len(held_redis) >= redis_pool.max_connections - 1
    try:
        async with asyncio.timeout(10):
            response = await api.client.get("/health/ready")
        assert response.status_code == 200, response.text
        assert response.json()["checks"] == {"database": "ok", "redis": "ok"}
    finally:
        for conn in held_db:
            await runtime.pool.putconn(conn)
        for connection in held_redis:
            await redis_pool.release(connection)


# --- the event stream: one shared subscription, a cap, slow clients dropped ---


def _ready(host_track_id: str) -> AnalysisReady:
    return AnalysisReady(host="jellyfin", host_track_id=host_track_id, analyzers=("tempo",))


def test_hub_filters_by_track_caps_clients_and_drops_a_client_too_far_behind() -> None:
    hub = EventsHub(events=None, max_clients=3, queue_size=2)  # type: ignore[arg-type]  # no Redis needed here
    everything = hub.register(None)
    one = hub.register(TrackKey("jellyfin", "a"))
    slow = hub.register(None)
    assert everything is not None
    assert one is not None
    assert slow is not None
    assert hub.register(None) is None  # the cap
    hub.deliver(_ready("a"))
    hub.deliver(_ready("b"))
    assert [everything.queue.get_nowait(), everything.queue.get_nowait()] == [_ready("a"), _ready("b")]
    assert one.queue.get_nowait() == _ready("a")
    assert one.queue.empty()
    hub.deliver(_ready("c"))  # slow has not read a thing: two are waiting, a third drops it
    assert slow.closed.is_set()
    assert slow.queue.get_nowait() is None  # its stream ends
    assert slow not in hub.clients
    assert hub.dropped_total == 1
    assert everything.queue.get_nowait() == _ready("c")
    assert hub.register(None) is not None  # its place is free again
    stems = StemsReady(track_id=7, files=("vocals", "no_vocals"))
    hub.deliver(stems)  # stems are named by the sidecar's id: every stream gets them, a track filter or not
    assert everything.queue.get_nowait() == stems
    assert one.queue.get_nowait() == stems


async def test_a_stalled_stream_is_cut_when_the_hub_drops_it() -> None:
    hub = EventsHub(events=None, max_clients=2, queue_size=1)  # type: ignore[arg-type]  # no Redis needed here
    hub.subscribed.set()
    response = EventStreamResponse(hub, None, retry_after_s=5)
    stalled = asyncio.Event()

    async def send(message: Message) -> None:
        if message["type"] == "http.response.body":
            stalled.set()
            await asyncio.sleep(3600)  # a reader that never reads: the first body write never completes

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    scope = {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "GET", "path": "/api/events", "headers": []}
    streaming = asyncio.create_task(response(scope, receive, send))
    await asyncio.wait_for(stalled.wait(), 5)
    assert len(hub.clients) == 1
    hub.deliver(_ready("a"))
    hub.deliver(_ready("b"))  # one event already waits: the client is dropped
    await asyncio.wait_for(streaming, 5)  # and its blocked stream is cut, freeing its place
    assert not hub.clients
    assert hub.dropped_total == 1


async def _next_text(lines: AsyncIterator[str]) -> str:
    """The next non-empty line of an event stream."""
    while not (line := await anext(lines)):
        pass
    return line


@pytest.fixture
async def served(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[str, Runtime]]:  # noqa: F811
    monkeypatch.setenv("SONANTICA_API__SSE_MAX_CLIENTS", "150")
    get_settings.cache_clear()
    app = create_app(get_settings())
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110  (uvicorn offers no event to wait on)
                await asyncio.sleep(0.05)
        yield f"http://127.0.0.1:{port}", app.state.runtime
    finally:
        server.should_exit = True
        await serving


async def test_150_streams_share_one_subscription_and_the_api_stays_up(served: tuple[str, Runtime]) -> None:
    base_url, runtime = served
    limits = httpx.Limits(max_connections=400, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=20, headers=AUTH, limits=limits) as client:
        streams = []
        lines = []
        try:
            for i in range(150):
                params = {} if i % 2 else {"host": "jellyfin", "host_track_id": HOST_IDS["new"]}
                stream = await client.send(client.build_request("GET", "/api/events", params=params), stream=True)
                streams.append(stream)
                assert stream.status_code == 200
                lines.append(stream.aiter_lines())
                assert await anext(lines[-1]) == ": subscribed"
            subscribers = await runtime.redis.execute_command(
                "PUBSUB", "NUMSUB", runtime.keys.analysis_ready_all_channel
            )
            assert int(subscribers[1]) == 1  # one subscription for 150 streams
            stems_channel = StemsKeys.of(runtime.keys).ready_all_channel
            stems_subscribers = await runtime.redis.execute_command("PUBSUB", "NUMSUB", stems_channel)
            assert int(stems_subscribers[1]) == 1  # the same connection carries StemsReady
            full = await client.get("/api/events")
            assert full.status_code == 503
            assert full.headers["retry-after"] == "5"
            assert "retry" in full.json()["detail"]
            ready = await client.get("/health/ready")
            assert ready.status_code == 200
            assert (await client.get("/api/status")).status_code == 200
            await runtime.events.publish(TrackKey("jellyfin", HOST_IDS["new"]), ["tempo"])
            for line_iter in (lines[0], lines[1], lines[-1]):
                async with asyncio.timeout(10):
                    assert await _next_text(line_iter) == "event: AnalysisReady"
                    data = json.loads((await _next_text(line_iter)).removeprefix("data: "))
                assert data["host_track_id"] == HOST_IDS["new"]
            await runtime.redis.publish(stems_channel, StemsReady(track_id=3, files=("vocals",)).encode())
            for line_iter in (lines[0], lines[1]):  # a filtered stream and an unfiltered one
                async with asyncio.timeout(10):
                    assert await _next_text(line_iter) == "event: StemsReady"
                    assert json.loads((await _next_text(line_iter)).removeprefix("data: ")) == {
                        "track_id": 3,
                        "stems": ["vocals"],
                    }
        finally:
            for stream in streams:
                await stream.aclose()
        async with asyncio.timeout(10):  # closed streams give their places back
            while True:
                again = await client.send(client.build_request("GET", "/api/events"), stream=True)
                await again.aclose()
                if again.status_code == 200:
                    break
                await asyncio.sleep(0.1)


async def test_hub_resubscribes_after_its_connection_is_killed(served: tuple[str, Runtime]) -> None:
    base_url, runtime = served
    async with httpx.AsyncClient(base_url=base_url, timeout=20, headers=AUTH) as client:
        async with client.stream("GET", "/api/events") as stream:
            lines = stream.aiter_lines()
            assert await anext(lines) == ": subscribed"
            await runtime.redis.execute_command("CLIENT", "KILL", "TYPE", "pubsub")
            async with asyncio.timeout(10):
                rest = [line async for line in lines]  # the stream ends: the client reconnects and re-reads
            assert "event: AnalysisReady" not in rest
        async with asyncio.timeout(15), client.stream("GET", "/api/events") as again:
            assert again.status_code == 200
            lines = again.aiter_lines()
            assert await anext(lines) == ": subscribed"
            await runtime.events.publish(TrackKey("jellyfin", HOST_IDS["seed"]), ["key"])
            assert await _next_text(lines) == "event: AnalysisReady"
