"""Mood/genre tags end to end on real PostgreSQL (+ Redis for the API): storage, the analysis record, the
``mood``/``style`` filters of similar tracks and Sonic Match playlists, and the write-back to Jellyfin (fake).

The tag probabilities come from a tiny deterministic source built here (what MusiCNN's taggram gives the
embedding analyzer: ``EmbeddingResult.tags``), so the tests do not depend on the model's weights.
"""

from __future__ import annotations

import copy
import math
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi import FastAPI

from adapters.base import WriteBackOutcome
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from sidecar.analyzers.embedding import EmbeddingAnalyzer
from sidecar.analyzers.pipeline import analyze_file
from sidecar.analyzers.tags import TAG_CATEGORIES, TAGS_MODEL
from sidecar.api.app import create_app
from sidecar.demo.encode import write_audio
from sidecar.domain import EmbeddingResult, TempoResult, TrackKey
from sidecar.errors import StorageError
from sidecar.services.runtime import Runtime
from sidecar.services.writeback import write_back_track
from sidecar.settings import Settings, get_settings
from sidecar.storage import analyses, tags, tracks, vectors
from sidecar.storage.db import Connection, Pool, transaction
from tests.contract.jellyfin_fake import FakeJellyfin

MODEL = "timbre-v1"  # the configured model, so the routes search it (any dimension registers in a fresh database)
DIM = 8
TOKEN = "test-token-" + "t" * 24

# name -> (angle to the seed's vector in radians, tag probabilities; None: no tags stored)
LIBRARY: dict[str, tuple[float, dict[str, float] | None]] = {
    "seed": (0.0, {"rock": 0.9, "chill": 0.2}),
    "calm": (0.1, {"chill": 0.8, "mellow": 0.6, "jazz": 0.7}),
    "sad-rock": (0.2, {"rock": 0.85, "sad": 0.5, "chill": 0.1}),
    "untagged": (0.3, None),
    "party": (0.4, {"dance": 0.9, "party": 0.7, "happy": 0.4}),
}


def _vector(angle_rad: float) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    vector[0], vector[1] = math.cos(angle_rad), math.sin(angle_rad)
    return vector


def _taggram(probabilities: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """The model's output spelling (mixed case, as musicnn ships its tag names) for these probabilities."""
    spelled = {"mellow": "Mellow", "hip-hop": "Hip-Hop"}
    return tuple((spelled.get(tag, tag), p) for tag, p in probabilities.items())


async def _store(conn: Connection, track_id: int, angle_rad: float, probabilities: dict[str, float] | None) -> None:
    result = EmbeddingResult(model=MODEL, vector=_vector(angle_rad), tags=_taggram(probabilities or {}))
    await analyses.store_results(conn, track_id, results={"embedding": result}, versions={"embedding": 2})


async def _seed(pool: Pool, host: str = "jellyfin", host_ids: dict[str, str] | None = None) -> dict[str, int]:
    ids: dict[str, int] = {}
    async with transaction(pool) as conn:
        await vectors.register_model(conn, MODEL, dim=DIM)
        for index, (name, (angle, probabilities)) in enumerate(LIBRARY.items()):
            saved = await tracks.upsert_track(
                conn,
                tracks.TrackUpsert(
                    host=host,
                    host_track_id=(host_ids or {}).get(name, uuid.uuid5(uuid.NAMESPACE_URL, name).hex),
                    title=f"Song {name}",
                    path=f"/music/{name}.flac",
                    artist=f"Artist {index}",
                    album=f"Album {index}",
                ),
            )
            ids[name] = saved.track_id
            await _store(conn, saved.track_id, angle, probabilities)
    return ids


# ------------------------------------------------------------------------------------------------------ storage


async def test_tags_are_stored_canonical_and_shown_most_probable_first(pool: Pool) -> None:
    ids = await _seed(pool)
    async with transaction(pool) as conn:
        summary = await analyses.get_analysis(conn, ids["calm"])
        untagged = await analyses.get_analysis(conn, ids["untagged"])
    assert summary is not None
    assert untagged is not None
    assert (summary["tags"], summary["tags_model"]) == ({"chill": 0.8, "jazz": 0.7, "mellow": 0.6}, TAGS_MODEL)
    assert (untagged["tags"], untagged["tags_model"]) == ({}, None)


async def test_tags_of_an_older_analyzer_version_never_replace_newer_ones(pool: Pool) -> None:
    ids = await _seed(pool)
    async with transaction(pool) as conn:
        written = await tags.store_tags(conn, ids["calm"], model=TAGS_MODEL, version=1, tags=[("sad", 0.9)])
        stored = await tags.get_tags(conn, ids["calm"])
    assert stored is not None
    assert (written, stored.version, stored.probabilities) == (False, 2, {"chill": 0.8, "jazz": 0.7, "mellow": 0.6})


async def test_store_tags_refuses_a_probability_outside_zero_to_one(pool: Pool) -> None:
    ids = await _seed(pool)
    with pytest.raises(StorageError, match=r"within 0\.\.1: rock=1\.5"):
        async with transaction(pool) as conn:
            await tags.store_tags(conn, ids["calm"], model=TAGS_MODEL, version=3, tags=[("rock", 1.5)])


# ------------------------------------------------------------------------------------------------------ the API


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    runtime: Runtime
    ids: dict[str, int]

    def names(self, rows: list[dict[str, object]]) -> list[str]:
        by_id = {track_id: name for name, track_id in self.ids.items()}
        return [by_id[int(str(row["track_id"]))] for row in rows]


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str) -> Settings:
    for name, value in {
        "SONANTICA_DATABASE_URL": database_url,
        "SONANTICA_REDIS_URL": redis_url,
        "SONANTICA_REDIS__KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
        "SONANTICA_ANALYSIS__ENABLED": "embedding",
        "SONANTICA_EMBEDDING__MODEL": "timbre-v1",
        "SONANTICA_EMBEDDING__FALLBACK": "false",
        "SONANTICA_API__TOKEN": TOKEN,
        "SONANTICA_TAGS__MIN_PROBABILITY": "0.5",
    }.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        ids = await _seed(runtime.pool)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://api",
            headers={"Authorization": f"Bearer {TOKEN}"},
        ) as client:
            yield Api(app, client, runtime, ids)


async def _similar(api: Api, **params: str | float | list[str]) -> list[str]:
    response = await api.client.get(f"/api/tracks/{api.ids['seed']}/similar", params=params)
    assert response.status_code == 200, response.text
    return api.names(response.json()["tracks"])


async def test_analysis_record_lists_tags_with_category_and_probability(api: Api) -> None:
    body = (await api.client.get(f"/api/tracks/{api.ids['sad-rock']}/analysis")).json()
    assert (body["tags_model"], body["tags"]) == (
        TAGS_MODEL,
        [
            {"tag": "rock", "category": "genre", "probability": 0.85},
            {"tag": "sad", "category": "mood", "probability": 0.5},
            {"tag": "chill", "category": "mood", "probability": 0.1},
        ],
    )


async def test_similar_without_tag_filters_returns_every_track(api: Api) -> None:
    assert await _similar(api) == ["calm", "sad-rock", "untagged", "party"]


async def test_similar_mood_keeps_tracks_with_that_mood_above_the_threshold(api: Api) -> None:
    # "sad-rock" has chill at 0.1, below SONANTICA_TAGS__MIN_PROBABILITY=0.5
    assert await _similar(api, mood="chill") == ["calm"]
    assert await _similar(api, mood=["chill", "sad"]) == ["calm", "sad-rock"]


async def test_similar_exclude_mood_and_style_filters(api: Api) -> None:
    assert await _similar(api, exclude_mood="Chill") == ["sad-rock", "untagged", "party"]
    assert await _similar(api, style="rock") == ["sad-rock"]
    assert await _similar(api, exclude_style=["rock", "jazz"]) == ["untagged", "party"]
    assert await _similar(api, mood="party", exclude_style="dance") == []


async def test_similar_unknown_mood_is_422_naming_the_moods(api: Api) -> None:
    response = await api.client.get(f"/api/tracks/{api.ids['seed']}/similar", params={"mood": "rock"})
    assert (response.status_code, "mood tags: beautiful" in response.json()["detail"]) == (422, True)


async def test_the_vocabulary_lists_exactly_the_tags_the_filters_accept(api: Api) -> None:
    vocabulary = (await api.client.get("/api/tags")).json()
    assert vocabulary["min_probability"] == 0.5  # SONANTICA_TAGS__MIN_PROBABILITY of these tests
    categories = vocabulary["categories"]
    assert set(categories) == {"genre", "mood", "instrumentation", "era"}
    assert sum(map(len, categories.values())) == 50  # the MSD taggram's tags, each in one category
    for category, parameter in (("mood", "mood"), ("genre", "style")):
        for tag in categories[category]:
            await _similar(api, **{parameter: tag})  # 200 for each
        other = next(tag for name, tags in categories.items() if name != category for tag in tags)
        refused = await api.client.get(f"/api/tracks/{api.ids['seed']}/similar", params={parameter: other})
        assert refused.status_code == 422
    assert (await api.client.get("/api/tags", headers={"Authorization": ""})).status_code == 401


async def test_sonic_match_playlist_takes_the_same_tag_filters(api: Api) -> None:
    body = {"seed_track_ids": [api.ids["seed"]], "moods": ["happy", "party"], "exclude_styles": ["jazz"]}
    response = await api.client.post(
        "/api/playlists/sonic-match", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert response.status_code == 200, response.text
    assert api.names(response.json()["tracks"]) == ["party"]
    bad = await api.client.post(
        "/api/playlists/sonic-match",
        json={**body, "styles": ["sad"]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert (bad.status_code, "'sad' is not a genre tag" in bad.json()["detail"]) == (422, True)


# ---------------------------------------------------------------------------------------- write-back to Jellyfin


@pytest.fixture
def runtime_env(service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("SONANTICA_TAGS__MIN_PROBABILITY", "0.3")
    monkeypatch.setenv("SONANTICA_TAGS__MAX_TAGS", "2")
    get_settings.cache_clear()
    return service_env


async def test_write_back_to_jellyfin_changes_only_the_prefixed_tags(runtime: Runtime, tmp_path: Path) -> None:
    fake = FakeJellyfin()
    library = fake.add_library("Music", ["/data/music"])
    fake.add_user("admin", "pw", admin=True)
    item_id = fake.add_track(
        library,
        "calm.flac",
        title="Calm",
        genres=["Jazz", "Lounge"],
        tags=["favourite", "genre:shoegaze", "mood:sad", "road trip"],
    )
    fake.items[item_id]["LockedFields"] = ["Genres", "Name"]
    before = copy.deepcopy(fake.items[item_id])
    ids = await _seed(runtime.pool, host_ids={"calm": item_id})
    config = JellyfinConfig(url="http://jellyfin:8096", api_key=fake.add_api_key(), library_dir=tmp_path)
    async with JellyfinAdapter(config, transport=fake.transport()) as adapter:
        first = await write_back_track(runtime, adapter, TrackKey("jellyfin", item_id))
        after = copy.deepcopy(fake.items[item_id])
        async with transaction(runtime.pool) as conn:  # the model hears it differently after a re-analysis
            await _store(conn, ids["calm"], 0.1, {"sad": 0.95, "chill": 0.1})
        second = await write_back_track(runtime, adapter, TrackKey("jellyfin", item_id))
        again = await write_back_track(runtime, adapter, TrackKey("jellyfin", item_id))
    assert (first, second, again) == (WriteBackOutcome.WRITTEN, WriteBackOutcome.WRITTEN, WriteBackOutcome.UNCHANGED)
    # "mood:sad" equals a label the sidecar writes, so it counts as ours; "genre:shoegaze" is not one: the user's.
    assert after["Tags"] == ["favourite", "genre:shoegaze", "road trip", "mood:chill", "genre:jazz"]
    assert after["LockedFields"] == ["Genres", "Name", "Tags"]
    unchanged = {k: v for k, v in after.items() if k not in ("Tags", "LockedFields", "DateLastSaved")}
    assert unchanged == {k: v for k, v in before.items() if k not in ("Tags", "LockedFields", "DateLastSaved")}
    assert fake.tags_of(item_id) == ["favourite", "genre:shoegaze", "road trip", "mood:sad"]


async def test_bpm_range_playlist_takes_the_tag_filters(api: Api) -> None:
    async with transaction(api.runtime.pool) as conn:
        for name in ("calm", "party", "untagged"):
            tempo = TempoResult(bpm=120.0, bpm_confidence=0.9, beat_times_s=np.zeros(0))
            await analyses.store_results(conn, api.ids[name], results={"tempo": tempo}, versions={"tempo": 1})
    headers = {"Authorization": f"Bearer {TOKEN}"}
    body = {"bpm_min": 100, "bpm_max": 140}
    every = await api.client.post("/api/playlists/bpm-range", json=body, headers=headers)
    party = await api.client.post("/api/playlists/bpm-range", json={**body, "moods": ["party"]}, headers=headers)
    calm = await api.client.post(
        "/api/playlists/bpm-range", json={**body, "exclude_styles": ["dance"]}, headers=headers
    )
    bad = await api.client.post("/api/playlists/bpm-range", json={**body, "moods": ["rock"]}, headers=headers)
    assert [api.names(r.json()["tracks"]) for r in (every, party, calm)] == [
        ["calm", "untagged", "party"],  # the same BPM: by track id
        ["party"],
        ["calm", "untagged"],
    ]
    assert bad.status_code == 422


async def test_a_musicnn_analysis_stores_all_fifty_tags_under_the_taggram_model(pool: Pool, tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", embedding={"model": "musicnn-msd-pool-753", "device": "cpu"})
    analyzer = EmbeddingAnalyzer(settings)
    t = np.arange(6 * 44100) / 44100
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 2 * t))).astype(np.float32)
    analysis = analyze_file(write_audio(np.stack([tone, tone], axis=1), 44100, tmp_path / "tone.flac"), [analyzer])
    async with transaction(pool) as conn:
        await vectors.register_model(conn, analyzer.model, dim=analyzer.dim)
        saved = await tracks.upsert_track(
            conn, tracks.TrackUpsert(host="local", host_track_id="tone", title="tone", path=str(tmp_path))
        )
        await analyses.store_results(
            conn, saved.track_id, results=analysis.results, versions={"embedding": EmbeddingAnalyzer.version}
        )
        summary = await analyses.get_analysis(conn, saved.track_id)
    assert summary is not None
    probabilities = list(summary["tags"].values())
    assert (len(summary["tags"]), set(summary["tags"]) == set(TAG_CATEGORIES), summary["tags_model"]) == (
        50,
        True,
        TAGS_MODEL,
    )
    assert probabilities == sorted(probabilities, reverse=True)
    assert all(0.0 <= p <= 1.0 for p in probabilities)
