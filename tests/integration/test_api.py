"""The HTTP API against real PostgreSQL + Redis: analysis, similar tracks (order and filters), playlists,
on-play (cache hit, queued + SSE event), the Jellyfin webhook, token checks, health, status and metrics."""

from __future__ import annotations

import asyncio
import json
import math
import socket
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from psycopg.conninfo import make_conninfo

from adapters.jellyfin.webhook import AUTH_HEADER, MINIMAL_TEMPLATE
from sidecar.analyzers.registry import CORE_ANALYZERS
from sidecar.analyzers.versions import VERSIONS as ALL_VERSIONS
from sidecar.api.app import create_app
from sidecar.api.probes import ReadinessProbe
from sidecar.domain import AnalyzerOutput, KeyResult, KeySignature, LoudnessResult, TempoResult, TrackKey
from sidecar.services.runtime import Runtime
from sidecar.settings import Settings, get_settings
from sidecar.storage import analyses, status, tracks, vectors
from sidecar.storage.db import Pool, transaction

MODEL = "timbre-v1"
DIM = 16
TOKEN = "test-token-" + "x" * 24
SECRET = "hook-secret"
VERSIONS = {name: ALL_VERSIONS[name] for name in CORE_ANALYZERS}  # what SONANTICA_ANALYSIS__ENABLED selects here


@dataclass(frozen=True)
class Spec:
    name: str
    artist: str
    bpm: float | None
    key: str | None
    angle_rad: float | None  # angle to the seed's vector; None: not analysed at all
    genres: tuple[str, ...] = ()


SPECS = [
    Spec("seed", "S", 120.0, "A minor", 0.0),  # 8A
    Spec("a", "A1", 122.0, "E minor", 0.1),  # 9A
    Spec("b", "A1", 60.0, "D minor", 0.2),  # 7A
    Spec("c", "A1", 240.0, "C major", 0.3),  # 8B
    Spec("d", "A2", 121.0, "F# minor", 0.4),  # 11A
    Spec("e", "A3", 150.0, "A minor", 0.5, genres=("Spoken",)),  # 8A
    Spec("f", "A4", 124.0, "B minor", 0.6),  # 10A
    Spec("g", "A5", 127.0, "F# minor", 0.7),  # 11A
    Spec("new", "A6", None, None, None),  # known to the database, never analysed
]
HOST_IDS = {spec.name: uuid.uuid5(uuid.NAMESPACE_URL, spec.name).hex for spec in SPECS}
NAMES = {host_id: name for name, host_id in HOST_IDS.items()}


class RecordingWriter:
    """A host playlist writer that records what it was asked to write."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    async def upsert(self, name: str, host_track_ids: Sequence[str]) -> str:
        self.calls.append((name, list(host_track_ids)))
        return f"pl-{len(self.calls)}"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str) -> Settings:
    for name, value in {
        "SONANTICA_DATABASE_URL": database_url,
        "SONANTICA_REDIS_URL": redis_url,
        "SONANTICA_REDIS__KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
        "SONANTICA_ANALYSIS__ENABLED": "loudness,tempo,key",
        "SONANTICA_EMBEDDING__MODEL": MODEL,
        "SONANTICA_API__TOKEN": TOKEN,
        "SONANTICA_JELLYFIN__WEBHOOK_SECRET": SECRET,
    }.items():
        monkeypatch.setenv(name, value)
    return get_settings()


def _vector(angle_rad: float) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    vector[0], vector[1] = math.cos(angle_rad), math.sin(angle_rad)
    return vector


async def seed_library(pool: Pool) -> dict[str, int]:
    """Store :data:`SPECS` (tracks, features, ``MODEL`` vectors); return their track ids by name."""
    ids: dict[str, int] = {}
    async with transaction(pool) as conn:
        await vectors.register_model(conn, MODEL, dim=DIM)
        for spec in SPECS:
            track_id = (
                await tracks.upsert_track(
                    conn,
                    tracks.TrackUpsert(
                        host="jellyfin",
                        host_track_id=HOST_IDS[spec.name],
                        title=f"Song {spec.name}",
                        path=f"/music/{spec.name}.flac",
                        artist=spec.artist,
                        album=f"Album {spec.name}",
                        duration_s=200.0,
                        genres=spec.genres,
                        library="music",
                    ),
                )
            ).track_id
            ids[spec.name] = track_id
            if spec.angle_rad is None:
                continue
            key = None if spec.key is None else KeySignature.parse(spec.key)
            await analyses.store_results(
                conn,
                track_id,
                results={
                    "tempo": TempoResult(bpm=spec.bpm, bpm_confidence=0.9, beat_times_s=np.zeros(0)),
                    "key": KeyResult(key=key, key_confidence=0.8),
                    "loudness": LoudnessResult(
                        loudness_lufs=-14.0,
                        loudness_range_lu=6.0,
                        true_peak_dbtp=-1.0,
                        sample_peak_dbfs=-1.2,
                        replaygain_track_gain_db=-4.0,
                        replaygain_track_peak=0.89,
                        gating_histogram=np.zeros(0),
                    ),
                },
                versions=VERSIONS,
            )
            await vectors.upsert_embedding(conn, track_id, MODEL, _vector(spec.angle_rad))
    return ids


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    ids: dict[str, int]
    writer: RecordingWriter

    def names(self, rows: list[dict[str, object]]) -> list[str]:
        return [NAMES[str(row["host_track_id"])] for row in rows]


AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    writer = RecordingWriter()
    app = create_app(settings, playlist_writer=writer)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        ids = await seed_library(runtime.pool)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", headers=AUTH) as client:
            yield Api(app, client, runtime, ids, writer)


async def _similar(api: Api, **params: str | float | list[str]) -> list[str]:
    response = await api.client.get(f"/api/tracks/{api.ids['seed']}/similar", params=params)
    assert response.status_code == 200, response.text
    rows = response.json()["tracks"]
    distances = [row["distance"] for row in rows]
    assert distances == sorted(distances)
    return api.names(rows)


async def test_analysis_by_id_and_by_host_key(api: Api) -> None:
    by_id = await api.client.get(f"/api/tracks/{api.ids['seed']}/analysis")
    by_key = await api.client.get(f"/api/tracks/jellyfin/{HOST_IDS['seed']}/analysis")
    assert by_id.status_code == by_key.status_code == 200
    assert by_id.json() == by_key.json()
    body = by_id.json()
    assert (body["bpm"], body["key"], body["camelot"]) == (120.0, "A minor", "8A")
    assert body["analyzer_versions"] == VERSIONS
    assert body["embedding_models"] == [MODEL]
    assert "path" not in body


async def test_analysis_says_why_the_bpm_or_key_is_missing_and_the_schema_lists_the_reasons(api: Api) -> None:
    seed = (await api.client.get(f"/api/tracks/{api.ids['seed']}/analysis")).json()
    assert (seed["bpm_missing_reason"], seed["key_missing_reason"]) == (None, None)  # both values were found
    nothing: dict[str, AnalyzerOutput] = {
        "tempo": TempoResult(bpm=None, bpm_confidence=0.0, bpm_missing_reason="no_onsets", beat_times_s=np.zeros(0)),
        "key": KeyResult(key=None, key_confidence=0.0, key_missing_reason="weak_tonality"),
    }
    async with transaction(api.runtime.pool) as conn:
        await analyses.store_results(conn, api.ids["seed"], results=nothing, versions=VERSIONS)
    body = (await api.client.get(f"/api/tracks/{api.ids['seed']}/analysis")).json()
    assert (body["bpm"], body["bpm_missing_reason"]) == (None, "no_onsets")
    assert (body["key"], body["key_missing_reason"]) == (None, "weak_tonality")
    properties = api.app.openapi()["components"]["schemas"]["TrackAnalysisPublic"]["properties"]
    for field, reasons in (
        ("bpm_missing_reason", ["too_short", "no_onsets", "no_periodicity"]),
        ("key_missing_reason", ["few_tonal_frames", "weak_tonality"]),
    ):
        assert {"enum": reasons, "type": "string"} in properties[field]["anyOf"]
        assert all(f"`{reason}`" in properties[field]["description"] for reason in reasons)


async def test_analysis_names_what_failed_for_good_and_why(api: Api) -> None:
    assert (await api.client.get(f"/api/tracks/{api.ids['seed']}/analysis")).json()["failures"] == {}
    async with transaction(api.runtime.pool) as conn:
        await status.mark_failed(conn, api.ids["seed"], {"loudness": "failed 3 times: cannot decode: not audio"})
    body = (await api.client.get(f"/api/tracks/{api.ids['seed']}/analysis")).json()
    assert body["failures"] == {"loudness": "failed 3 times: cannot decode: not audio"}
    assert "loudness" not in body["analyzer_versions"]


async def test_analysis_unknown_track_is_404_with_reason(api: Api) -> None:
    missing = await api.client.get("/api/tracks/999999/analysis")
    assert missing.status_code == 404
    assert "999999" in missing.json()["detail"]
    unknown = await api.client.get("/api/tracks/jellyfin/nope/analysis")
    assert unknown.status_code == 404
    assert "sync" in unknown.json()["detail"]


async def test_similar_orders_by_distance_without_filters(api: Api) -> None:
    assert await _similar(api) == ["a", "b", "c", "d", "e", "f", "g"]
    assert await _similar(api, limit=2) == ["a", "b"]


async def test_similar_bpm_window_with_and_without_half_double(api: Api) -> None:
    assert await _similar(api, bpm_window_pct=5) == ["a", "d", "f"]
    assert await _similar(api, bpm_window_pct=5, half_double=True) == ["a", "b", "c", "d", "f"]


async def test_similar_camelot_artist_cap_and_genre_filters(api: Api) -> None:
    assert await _similar(api, camelot_compatible=True) == ["a", "b", "c", "e"]
    assert await _similar(api, max_per_artist=1) == ["a", "d", "e", "f", "g"]
    assert await _similar(api, exclude_genre="spoken") == ["a", "b", "c", "d", "f", "g"]
    assert await _similar(api, exclude_library="music") == []


async def test_similar_rejects_contradictory_filters_and_unknown_seed(api: Api) -> None:
    bad = await api.client.get(f"/api/tracks/{api.ids['seed']}/similar", params={"bpm_min": 130, "bpm_max": 120})
    assert bad.status_code == 422
    assert "bpm_min" in bad.json()["detail"]
    unknown = await api.client.get("/api/tracks/999999/similar")
    assert unknown.status_code == 404
    no_vector = await api.client.get(f"/api/tracks/{api.ids['new']}/similar")
    assert no_vector.status_code == 404
    assert "embedding" in no_vector.json()["detail"]


async def test_similar_route_sends_two_statements_in_one_transaction(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[str] = []
    execute = psycopg.AsyncCursor.execute

    async def counted(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(query if isinstance(query, str) else query.as_string(self.connection))
        return await execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.AsyncCursor, "execute", counted)
    assert await _similar(api, limit=2) == ["a", "b"]
    assert len(sent) == 2  # the seed with its model and hnsw.ef_search, then the search
    assert "set_config('hnsw.ef_search'" in sent[0]
    assert sent[1].lstrip().startswith("WITH query AS")


async def test_playlist_sonic_match_from_two_seeds_writes_to_host(api: Api) -> None:
    body = {"seed_track_ids": [api.ids["seed"], api.ids["a"]], "name": "Like these", "write_to_host": True}
    response = await api.client.post("/api/playlists/sonic-match", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    playlist = response.json()
    assert api.names(playlist["tracks"]) == ["b", "c", "d", "e", "f", "g"]
    assert [t["position"] for t in playlist["tracks"]] == [1, 2, 3, 4, 5, 6]
    first = playlist["tracks"][0]
    assert first["distance"] == pytest.approx(1 - math.cos(0.15), abs=1e-4)
    assert "60.0 BPM" in first["reason"]
    assert "7A" in first["reason"]
    assert playlist["host_playlist_id"] == "pl-1"
    assert api.writer.calls == [("Like these", [t["host_track_id"] for t in playlist["tracks"]])]


async def test_playlist_bpm_range_is_ordered_and_half_double_tolerant(api: Api) -> None:
    strict = {"bpm_min": 118, "bpm_max": 130, "half_double": False}
    response = await api.client.post("/api/playlists/bpm-range", json=strict, headers=AUTH)
    assert response.status_code == 200, response.text
    assert api.names(response.json()["tracks"]) == ["seed", "d", "a", "f", "g"]
    assert response.json()["host_playlist_id"] is None
    tolerant = await api.client.post("/api/playlists/bpm-range", json={**strict, "half_double": True}, headers=AUTH)
    rows = tolerant.json()["tracks"]
    assert api.names(rows) == ["seed", "b", "c", "d", "a", "f", "g"]
    assert "felt as 120.0 BPM" in rows[1]["reason"]
    short = await api.client.post("/api/playlists/bpm-range", json={**strict, "limit": 3}, headers=AUTH)
    bpms = [row["bpm"] for row in short.json()["tracks"]]
    assert len(bpms) == 3
    assert bpms == sorted(bpms)
    async with transaction(api.runtime.pool) as conn:  # the analyzer was unsure of one tempo
        await conn.execute("UPDATE track_features SET bpm_alternative = 61.5 WHERE track_id = %s", (api.ids["d"],))
    rows = (await api.client.post("/api/playlists/bpm-range", json=strict, headers=AUTH)).json()["tracks"]
    reasons = {api.names([row])[0]: row["reason"] for row in rows}
    assert reasons["d"].endswith("(uncertain: may be 61.5 BPM)")
    assert "uncertain" not in reasons["a"]


async def test_playlist_harmonic_mix_walks_compatible_keys_in_small_steps(api: Api) -> None:
    body = {"seed_track_id": api.ids["seed"], "max_bpm_step_pct": 4}
    response = await api.client.post("/api/playlists/harmonic-mix", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    rows = response.json()["tracks"]
    assert api.names(rows) == ["seed", "a", "f", "d"]  # 8A -> 9A -> 10A -> 11A; g (127) is 5 % above d
    assert [row["camelot"] for row in rows] == ["8A", "9A", "10A", "11A"]
    wider = await api.client.post("/api/playlists/harmonic-mix", json={**body, "max_bpm_step_pct": 5}, headers=AUTH)
    assert api.names(wider.json()["tracks"]) == ["seed", "a", "f", "d", "g"]


async def test_playlist_harmonic_mix_can_leave_out_unsure_keys_but_keeps_keys_set_by_hand(api: Api) -> None:
    async with transaction(api.runtime.pool) as conn:  # the analyzer was unsure of the seed's, a's and f's keys
        await conn.execute(
            "UPDATE track_features SET key_confidence = 0.2 WHERE track_id = ANY(%s)",
            ([api.ids["seed"], api.ids["a"], api.ids["f"]],),
        )
    body = {"seed_track_id": api.ids["seed"], "max_bpm_step_pct": 4}

    async def mix(**extra: object) -> list[str]:
        response = await api.client.post("/api/playlists/harmonic-mix", json={**body, **extra})
        assert response.status_code == 200, response.text
        return api.names(response.json()["tracks"])

    assert await mix() == await mix(min_key_confidence=0) == ["seed", "a", "f", "d"]  # off: as before
    assert await mix(min_key_confidence=0.2) == ["seed", "a", "f", "d"]  # at the threshold passes
    assert await mix(min_key_confidence=0.5) == ["seed"]  # a and f left out; d (11A) is no neighbour of 8A
    override = await api.client.patch(f"/api/tracks/{api.ids['a']}/overrides", json={"key": "E minor"})
    assert override.status_code == 200, override.text
    assert await mix(min_key_confidence=1) == ["seed", "a"]  # a's key set by hand; f still unsure
    for bad in (-0.1, 1.5, "high"):
        refused = await api.client.post("/api/playlists/harmonic-mix", json={**body, "min_key_confidence": bad})
        assert refused.status_code == 422, bad
        assert "min_key_confidence" in json.dumps(refused.json()["detail"])


async def test_playlists_validate_their_input(api: Api) -> None:
    inverted = await api.client.post("/api/playlists/bpm-range", json={"bpm_min": 140, "bpm_max": 120}, headers=AUTH)
    assert inverted.status_code == 422
    assert "bpm_min" in json.dumps(inverted.json()["detail"])
    no_seed = await api.client.post("/api/playlists/sonic-match", json={"seed_track_ids": []}, headers=AUTH)
    assert no_seed.status_code == 422
    unknown = await api.client.post("/api/playlists/harmonic-mix", json={"seed_track_id": 999999}, headers=AUTH)
    assert unknown.status_code == 404


async def test_write_endpoints_require_the_token(api: Api) -> None:
    url = f"/api/tracks/jellyfin/{HOST_IDS['seed']}/on-play"
    assert (await api.client.post(url, headers={"Authorization": ""})).status_code == 401
    assert (await api.client.post(url, headers={"Authorization": "Bearer wrong"})).status_code == 401
    body = {"bpm_min": 100, "bpm_max": 120}
    assert (
        await api.client.post("/api/playlists/bpm-range", json=body, headers={"Authorization": ""})
    ).status_code == 401
    assert (await api.client.post(url, headers=AUTH)).status_code == 200


async def test_on_play_cache_hit_returns_the_analysis(api: Api) -> None:
    url = f"/api/tracks/jellyfin/{HOST_IDS['seed']}/on-play"
    first = await api.client.post(url, headers=AUTH)
    assert first.status_code == 200
    assert first.json()["state"] == "ready"
    assert (first.json()["analysis"]["bpm"], first.json()["analysis"]["camelot"]) == (120.0, "8A")
    cached = await api.runtime.cache.get(TrackKey("jellyfin", HOST_IDS["seed"]), required_versions=VERSIONS)
    assert cached is not None
    assert cached.bpm == 120.0
    second = await api.client.post(url, headers=AUTH)
    assert second.json() == first.json()
    assert await api.runtime.queue.depths() == {**await api.runtime.queue.depths(), "on_play": 0}


async def test_on_play_miss_is_queued_with_status_url_and_unknown_is_404(api: Api) -> None:
    response = await api.client.post(f"/api/tracks/jellyfin/{HOST_IDS['new']}/on-play", headers=AUTH)
    assert response.status_code == 202
    body = response.json()
    assert body["state"] == "queued"
    assert sorted(body["analyzers"]) == sorted(VERSIONS)
    assert response.headers["location"] == body["status_url"] == f"/api/tracks/jellyfin/{HOST_IDS['new']}/analysis"
    assert (await api.runtime.queue.depths())["on_play"] == 1
    unknown = await api.client.post("/api/tracks/jellyfin/unknown-id/on-play", headers=AUTH)
    assert unknown.status_code == 404


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_events_stream_analysis_ready_after_a_worker_publishes(settings: Settings) -> None:
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    serving = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:  # noqa: ASYNC110  (uvicorn offers no event to wait on)
                await asyncio.sleep(0.05)
        runtime: Runtime = app.state.runtime
        track = TrackKey("jellyfin", HOST_IDS["new"])
        params = {"host": track.host, "host_track_id": track.host_track_id}
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10, headers=AUTH) as client,
            client.stream("GET", "/api/events", params=params) as stream,
        ):
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert await anext(lines) == ": subscribed"
            await runtime.events.publish(TrackKey("jellyfin", HOST_IDS["seed"]), ["tempo"])  # another track
            await runtime.events.publish(track, ["key", "tempo"])
            received = [line async for line in _until_data(lines)]
        assert received[-2] == "event: AnalysisReady"
        data = json.loads(received[-1].removeprefix("data: "))
        assert data == {"host": "jellyfin", "host_track_id": HOST_IDS["new"], "analyzers": ["key", "tempo"]}
    finally:
        server.should_exit = True
        await serving


async def _until_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    async with asyncio.timeout(10):
        async for line in lines:
            if line:
                yield line
            if line.startswith("data: "):
                return


def _template_body(item_id: str) -> bytes:
    values = {
        "NotificationType": "PlaybackStart",
        "ItemId": str(uuid.UUID(item_id)),  # the template renders dashed ids
        "ItemType": "Audio",
        "UserId": str(uuid.UUID(int=1)),
        "NotificationUsername": "alice",
        "PlaybackPositionTicks": "0",
        "UtcTimestamp": "11/24/2026 17:00:00",
    }
    text = MINIMAL_TEMPLATE
    for name, value in values.items():
        text = text.replace("{{" + name + "}}", value)
    return text.encode()


def _all_properties_body(item_id: str) -> bytes:
    payload = {
        "ServerId": uuid.UUID(int=7).hex,
        "ServerVersion": "10.10.3",
        "NotificationType": "PlaybackStart",
        "ItemId": item_id,
        "ItemType": "Audio",
        "Name": "Song",
        "UserId": uuid.UUID(int=2).hex,
        "NotificationUsername": "bob",
        "PlaybackPositionTicks": 0,
        "UtcTimestamp": "2026-11-24T17:00:00.0000000Z",
    }
    return json.dumps(payload).encode()


async def test_jellyfin_webhook_both_styles(api: Api) -> None:
    headers = {AUTH_HEADER: SECRET, "Content-Type": "text/plain"}
    queued = await api.client.post("/hooks/jellyfin", content=_template_body(HOST_IDS["new"]), headers=headers)
    assert queued.status_code == 202, queued.text
    assert queued.json()["state"] == "queued"
    assert (await api.runtime.queue.depths())["on_play"] == 1
    again = await api.client.post("/hooks/jellyfin", content=_template_body(HOST_IDS["new"]), headers=headers)
    assert (again.status_code, again.json()["state"]) == (202, "ignored")
    assert (await api.runtime.queue.depths())["on_play"] == 1
    ready = await api.client.post("/hooks/jellyfin", content=_all_properties_body(HOST_IDS["seed"]), headers=headers)
    assert (ready.status_code, ready.json()["state"]) == (200, "ready")


async def test_jellyfin_webhook_rejections_never_500(api: Api) -> None:
    body = _template_body(HOST_IDS["new"])
    wrong = await api.client.post("/hooks/jellyfin", content=body, headers={AUTH_HEADER: "nope"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"]
    unknown_track = _all_properties_body(uuid.UUID(int=99).hex)
    unknown = await api.client.post("/hooks/jellyfin", content=unknown_track, headers={AUTH_HEADER: SECRET})
    assert unknown.status_code == 202
    assert unknown.json()["state"] == "ignored"
    assert "sync" in unknown.json()["detail"]
    garbage = await api.client.post("/hooks/jellyfin", content=b"\xff{", headers={AUTH_HEADER: SECRET})
    assert garbage.status_code == 400
    assert (await api.runtime.queue.depths())["on_play"] == 0


async def test_health_status_and_metrics(api: Api) -> None:
    assert (await api.client.get("/health/live")).json() == {"status": "ok"}
    ready = await api.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok", "redis": "ok"}
    status = (await api.client.get("/api/status")).json()
    assert status["analyzers"]["tempo"]["done"] == 8
    assert status["embedding_model"] == MODEL
    await api.client.get(f"/api/tracks/{api.ids['seed']}/similar")
    metrics = await api.client.get("/metrics")
    assert metrics.status_code == 200
    text = metrics.text
    assert 'route="/api/tracks/{track_id}/similar"' in text
    assert 'sonantica_queue_depth{queue="on_play"} 0.0' in text


async def test_readiness_names_the_failed_part(api: Api) -> None:
    probe: ReadinessProbe = api.app.state.readiness
    probe.database_url = make_conninfo(probe.database_url, port=1)  # nothing listens on port 1
    response = await api.client.get("/health/ready")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]


async def test_generated_token_is_stored_private(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.delenv("SONANTICA_API__TOKEN")
    get_settings.cache_clear()
    fresh = get_settings()
    app = create_app(fresh)
    async with app.router.lifespan_context(app):
        token = app.state.api_token
    path = Path(fresh.data_dir) / "api-token"
    assert path.read_text().strip() == token
    assert len(token) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
