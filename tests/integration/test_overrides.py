"""A user's BPM and key over the analyzers' readings, on real PostgreSQL + Redis: stored and kept through later
analyses, used by similar tracks and playlists, written to Jellyfin (faked: it cannot run here), removed again."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from psycopg import AsyncConnection
from typer.testing import CliRunner

from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from sidecar.cli import app
from sidecar.domain import AnalyzerOutput, KeyResult, KeySignature, TempoResult
from sidecar.errors import NotFoundError
from sidecar.services.overrides import override_track
from sidecar.services.runtime import Runtime, open_runtime
from sidecar.settings import get_settings
from sidecar.storage import analyses, overrides
from sidecar.storage.db import Pool, transaction
from tests.contract.jellyfin_fake import FakeJellyfin
from tests.integration.library_rows import add_track
from tests.integration.test_api import AUTH, HOST_IDS, Api, api, settings  # noqa: F401  (fixtures)

VERSIONS = {"tempo": 3, "key": 1}


async def _analyse(pool: Pool, track_id: int, bpm: float, key: str | None, *, alternative: float | None = None) -> None:
    results: dict[str, AnalyzerOutput] = {
        "tempo": TempoResult(bpm=bpm, bpm_confidence=0.6, bpm_alternative=alternative, beat_times_s=np.zeros(0)),
        "key": KeyResult(key=None if key is None else KeySignature.parse(key), key_confidence=0.7),
    }
    async with transaction(pool) as conn:
        await analyses.store_results(conn, track_id, results=results, versions=VERSIONS)


async def _summary(pool: Pool, track_id: int) -> analyses.AnalysisSummary:
    async with transaction(pool) as conn:
        summary = await analyses.get_analysis(conn, track_id)
    assert summary is not None
    return summary


async def _update(pool: Pool, track_id: int, **changes: float | KeySignature | None) -> overrides.Overrides:
    async with transaction(pool) as conn:
        return await overrides.update_overrides(conn, track_id, changes)


async def test_an_override_survives_a_new_analysis_and_its_removal_restores_the_latest_reading(pool: Pool) -> None:
    track_id = await add_track(pool, VERSIONS)
    await _analyse(pool, track_id, 120.0, "C major", alternative=60.0)
    await _update(pool, track_id, bpm=60.0)
    summary = await _summary(pool, track_id)
    assert (summary["bpm"], summary["bpm_confidence"], summary["bpm_alternative"]) == (60.0, 1.0, None)
    assert (summary["key"], summary["key_confidence"]) == ("C major", 0.7)  # the key stays the analyzer's
    assert summary["overridden"] == ["bpm"]
    assert summary["analyzed"] == {
        "bpm": 120.0,
        "bpm_confidence": 0.6,
        "bpm_alternative": 60.0,
        "bpm_missing_reason": None,
    }

    await _analyse(pool, track_id, 121.0, "G major")  # a later analysis: the BPM stays the user's, the key moves
    summary = await _summary(pool, track_id)
    assert (summary["bpm"], summary["key"], summary["camelot"]) == (60.0, "G major", "9B")
    assert summary["analyzed"] == {
        "bpm": 121.0,
        "bpm_confidence": 0.6,
        "bpm_alternative": None,
        "bpm_missing_reason": None,
    }

    await _update(pool, track_id, bpm=None)
    summary = await _summary(pool, track_id)
    assert (summary["bpm"], summary["bpm_confidence"], summary["bpm_alternative"]) == (121.0, 0.6, None)
    assert (summary["overridden"], summary["analyzed"]) == ([], {})
    async with transaction(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM track_overrides")
        assert await cur.fetchone() == (0,)


async def test_a_key_override_sets_camelot_and_both_groups_are_independent(pool: Pool) -> None:
    track_id = await add_track(pool, VERSIONS)
    await _analyse(pool, track_id, 100.0, None)  # the analyzer found no key
    after = await _update(pool, track_id, key=KeySignature.parse("F#m"), bpm=50.0)
    assert (after.bpm, after.key, after.groups) == (50.0, "F# minor", ["bpm", "key"])
    summary = await _summary(pool, track_id)
    assert (summary["key"], summary["key_confidence"], summary["camelot"]) == ("F# minor", 1.0, "11A")
    await _update(pool, track_id, bpm=None)
    summary = await _summary(pool, track_id)
    assert (summary["bpm"], summary["key"], summary["overridden"]) == (100.0, "F# minor", ["key"])
    await _update(pool, track_id, key=None)
    summary = await _summary(pool, track_id)
    assert (summary["key"], summary["camelot"], summary["key_confidence"]) == (None, None, 0.7)


async def test_an_override_waits_for_an_analysis_of_the_same_track_in_flight(pool: Pool) -> None:
    track_id = await add_track(pool, VERSIONS)
    reading: dict[str, object] = {"bpm": 121.0, "bpm_confidence": 0.6, "bpm_alternative": None, "tempo_version": 3}
    async with pool.connection() as worker, pool.connection() as user:
        async with worker.transaction():  # an analysis found no override and is about to write its BPM
            assert await overrides.divert_analyzed(worker, track_id, reading) == reading
            setting = asyncio.create_task(_override_on(user, track_id, 60.0))
            await asyncio.sleep(0.3)
            assert not setting.done()  # the user's override waits instead of being overwritten right after
            await worker.execute(
                "INSERT INTO track_features (track_id, bpm, tempo_version) VALUES (%s, 121.0, 3)", (track_id,)
            )
        await setting
    summary = await _summary(pool, track_id)
    assert (summary["bpm"], summary["analyzed"]["bpm"]) == (60.0, 121.0)


async def _override_on(conn: AsyncConnection[Any], track_id: int, bpm: float) -> None:
    async with conn.transaction():
        await overrides.update_overrides(conn, track_id, {"bpm": bpm})


async def test_overriding_a_track_not_analysed_yet_and_an_unknown_one(pool: Pool) -> None:
    track_id = await add_track(pool, VERSIONS)
    await _update(pool, track_id, bpm=90.0)
    summary = await _summary(pool, track_id)
    assert (summary["bpm"], summary["analyzed"]) == (
        90.0,
        {"bpm": None, "bpm_confidence": None, "bpm_alternative": None, "bpm_missing_reason": None},
    )
    await _analyse(pool, track_id, 180.0, "A minor")
    assert (await _summary(pool, track_id))["bpm"] == 90.0
    await _update(pool, track_id, bpm=None)
    assert (await _summary(pool, track_id))["bpm"] == 180.0
    with pytest.raises(NotFoundError):
        await _update(pool, 987654, bpm=90.0)
    with pytest.raises(ValueError, match="bpm must be above 0"):
        await _update(pool, track_id, bpm=0.0)
    with pytest.raises(ValueError, match="cannot override loudness"):
        await _update(pool, track_id, loudness=1.0)


async def test_the_api_sets_and_removes_overrides_and_playlists_follow(api: Api) -> None:  # noqa: F811
    seed, b = api.ids["seed"], api.ids["b"]
    compatible = {"camelot_compatible": "true"}
    before = (await api.client.get(f"/api/tracks/{seed}/similar", params=compatible)).json()["tracks"]
    assert sorted(api.names(before)) == ["a", "b", "c", "e"]  # A minor (8A): 7A, 8A, 9A, 8B
    response = await api.client.patch(f"/api/tracks/{seed}/overrides", json={"key": "F# minor"})
    assert response.status_code == 200, response.text
    record = response.json()
    assert (record["key"], record["camelot"], record["overridden"]) == ("F# minor", "11A", ["key"])
    assert record["analyzed"] == {
        "key": "A minor",
        "key_confidence": 0.8,
        "camelot": "8A",
        "key_missing_reason": None,
    }
    after = (await api.client.get(f"/api/tracks/{seed}/similar", params=compatible)).json()["tracks"]
    assert sorted(api.names(after)) == ["d", "f", "g"]  # 11A: 10A, 11A, 12A, 11B

    strict = {"bpm_min": 118, "bpm_max": 130, "half_double": False}
    assert "b" not in api.names((await api.client.post("/api/playlists/bpm-range", json=strict)).json()["tracks"])
    response = await api.client.patch(f"/api/tracks/{b}/overrides", json={"bpm": 120})
    assert response.status_code == 200, response.text
    assert "b" in api.names((await api.client.post("/api/playlists/bpm-range", json=strict)).json()["tracks"])

    response = await api.client.delete(f"/api/tracks/{seed}/overrides")
    assert response.status_code == 200, response.text
    assert (response.json()["key"], response.json()["overridden"]) == ("A minor", [])
    again = (await api.client.get(f"/api/tracks/{seed}/similar", params=compatible)).json()["tracks"]
    assert sorted(api.names(again)) == ["a", "b", "c", "e"]


async def test_the_api_refuses_bad_overrides_and_needs_the_token(api: Api) -> None:  # noqa: F811
    url = f"/api/tracks/{api.ids['seed']}/overrides"
    cases = [({"key": "H minor"}, "H minor"), ({}, "name bpm and/or key"), ({"bpm": 0}, "greater than 0")]
    for body, reason in cases:
        response = await api.client.patch(url, json=body)
        assert response.status_code == 422, response.text
        assert reason in response.text
    assert (await api.client.patch(url, json={"loudness": -3})).status_code == 422
    assert (await api.client.patch("/api/tracks/999999/overrides", json={"bpm": 90})).status_code == 404
    assert (await api.client.delete("/api/tracks/999999/overrides")).status_code == 404
    refused = await api.client.patch(url, json={"bpm": 90}, headers={"Authorization": ""})
    assert refused.status_code == 401
    record = (await api.client.get(f"/api/tracks/{api.ids['seed']}/analysis")).json()
    assert (record["bpm"], record["overridden"]) == (120.0, [])


async def test_the_on_play_answer_is_not_served_stale_after_an_override(api: Api) -> None:  # noqa: F811
    url = f"/api/tracks/jellyfin/{HOST_IDS['seed']}/on-play"
    assert (await api.client.post(url, headers=AUTH)).json()["analysis"]["bpm"] == 120.0  # now cached
    await api.client.patch(f"/api/tracks/{api.ids['seed']}/overrides", json={"bpm": 60})
    assert (await api.client.post(url, headers=AUTH)).json()["analysis"]["bpm"] == 60.0


async def test_an_override_is_written_to_jellyfin_tags(runtime: Runtime, tmp_path: Path) -> None:
    fake = FakeJellyfin()
    library = fake.add_library("Music", ["/data/music"])
    fake.add_user("admin", "pw", admin=True)
    item_id = fake.add_track(library, "waltz.flac", title="Waltz", tags=["favourite"])
    track_id = await add_track(runtime.pool, VERSIONS, item_id, host="jellyfin")
    await _analyse(runtime.pool, track_id, 180.0, "A minor")
    config = JellyfinConfig(url="http://jellyfin:8096", api_key=fake.add_api_key(), library_dir=tmp_path)
    async with JellyfinAdapter(config, transport=fake.transport()) as adapter:
        await override_track(runtime, track_id, {"bpm": 60.0}, adapter)
        assert fake.tags_of(item_id) == ["favourite", "bpm:60", "key:A minor", "camelot:8A"]
        fake.fail_next(status=503, times=3, path_contains=f"/Items/{item_id}")
        summary = await override_track(runtime, track_id, {"bpm": None}, adapter)  # the host is down: kept anyway
    assert (summary["bpm"], summary["overridden"]) == (180.0, [])
    assert "bpm:60" in (fake.tags_of(item_id) or [])


def test_the_cli_sets_and_clears_an_override(runtime_env: dict[str, str]) -> None:
    async def seed() -> int:
        async with open_runtime(get_settings()) as runtime:
            track_id = await add_track(runtime.pool, VERSIONS, uuid.uuid4().hex)
            await _analyse(runtime.pool, track_id, 140.0, "D minor")
            return track_id

    track_id = asyncio.run(seed())
    result = CliRunner().invoke(app, ["override", str(track_id), "--bpm", "70", "--key", "Dm"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"track {track_id}: 70 BPM (yours), key D minor (yours)"
    result = CliRunner().invoke(app, ["override", str(track_id), "--clear", "bpm"])
    assert result.stdout.strip() == f"track {track_id}: 140 BPM, key D minor (yours)"
    bad = CliRunner().invoke(app, ["override", str(track_id), "--clear", "loudness"])
    assert bad.exit_code == 2
    assert "--clear takes bpm or key" in " ".join(bad.stderr.split())
    unknown = CliRunner().invoke(app, ["override", "999999", "--bpm", "70"])
    assert unknown.exit_code == 2
    assert "error: no track with id 999999" in unknown.stderr
