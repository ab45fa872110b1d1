"""Tracks, analysis status and stored results against a real PostgreSQL."""

from __future__ import annotations

import asyncio
import dataclasses
import typing

import numpy as np
import psycopg
import pytest

from sidecar.domain import AudioInfo, EmbeddingResult, KeyResult, KeySignature, LoudnessResult, TempoResult, TrackKey
from sidecar.errors import NotFoundError, StorageError
from sidecar.storage import analyses, status, stems, tracks, vectors
from sidecar.storage.db import Connection, Pool, transaction

VERSIONS = {"tempo": 1, "key": 1, "loudness": 1}


def _track(host_track_id: str, **fields: typing.Any) -> tracks.TrackUpsert:
    values: dict[str, typing.Any] = {
        "host": "navidrome",
        "host_track_id": host_track_id,
        "title": f"Song {host_track_id}",
        "path": f"/music/{host_track_id}.flac",
        "size_bytes": 1000,
        "mtime_ns": 5,
    }
    values.update(fields)
    return tracks.TrackUpsert(**values)


def _tempo(bpm: float) -> TempoResult:
    return TempoResult(bpm=bpm, bpm_confidence=0.9, beat_times_s=np.zeros(0))


def _loudness() -> LoudnessResult:
    return LoudnessResult(
        loudness_lufs=-14.0,
        loudness_range_lu=6.5,
        true_peak_dbtp=-0.8,
        sample_peak_dbfs=-1.0,
        replaygain_track_gain_db=-4.0,
        replaygain_track_peak=0.89,
        gating_histogram=np.zeros(3),
    )


async def _open_work(conn: Connection, versions: dict[str, int]) -> list[status.TrackWork]:
    return [item async for batch in status.iter_open_work(conn, versions, updated_before=None) for item in batch]


async def _columns(pool: Pool, table: str) -> set[str]:
    async with transaction(pool) as conn:
        cur = await conn.execute("SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))
        return {str(row[0]) for row in await cur.fetchall()}


async def test_schema_has_every_column_the_code_reads(pool: Pool) -> None:
    assert {f.name for f in dataclasses.fields(tracks.TrackRecord)} | {"host_bpm"} <= await _columns(pool, "tracks")
    assert {f.name for f in dataclasses.fields(status.AnalysisStatus)} <= await _columns(pool, "analysis_status")
    feature_keys = set(typing.get_type_hints(analyses.AnalysisSummary)) - {
        "track_id", "host", "host_track_id", "path", "duration_s", "sample_rate_hz", "channels",
        "analyzer_versions", "failures", "embedding_models", "tags", "tags_model", "overridden", "analyzed",
        "host_bpm",
    }  # fmt: skip
    assert feature_keys <= await _columns(pool, "track_features")
    assert {"track_id", "bpm", "key", "analyzed"} <= await _columns(pool, "track_overrides")
    assert {"track_id", "tag", "probability", "model", "version"} <= await _columns(pool, "track_tags")
    stems = {"track_id", "is_separated", "location", "size_bytes", "last_accessed_at"}
    assert stems <= await _columns(pool, "stems")


async def test_schema_openl3_model_is_preregistered_with_its_index(pool: Pool) -> None:
    async with transaction(pool) as conn:
        assert await vectors.register_model(conn, "openl3-music-mel128-512", dim=512) is False
        cur = await conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'embeddings_hnsw_openl3_music_mel128_512'"
        )
        row = await cur.fetchone()
    assert row is not None
    assert "hnsw" in row[0]
    assert "vector_cosine_ops" in row[0]


async def test_upsert_track_creates_then_updates_in_place(pool: Pool) -> None:
    async with transaction(pool) as conn:
        first = await tracks.upsert_track(conn, _track("a", artist="Old"))
        second = await tracks.upsert_track(conn, _track("a", artist="New", genres=("Jazz",)))
        stored = await tracks.get_track(conn, first.track_id)
    assert (first.created, first.file_changed) == (True, False)
    assert (second.track_id, second.created, second.file_changed) == (first.track_id, False, False)
    assert stored is not None
    assert stored.artist == "New"
    assert stored.genres == ["Jazz"]
    assert stored.key == TrackKey("navidrome", "a")


async def test_get_track_by_key_and_path_find_the_same_row(pool: Pool) -> None:
    async with transaction(pool) as conn:
        outcome = await tracks.upsert_track(conn, _track("x"))
        await tracks.upsert_track(conn, _track("y"))
        by_key = await tracks.get_track_by_key(conn, TrackKey("navidrome", "x"))
        by_path = await tracks.get_track_by_path(conn, "/music/x.flac")
        unknown = await tracks.get_track_by_key(conn, TrackKey("jellyfin", "x"))
    assert by_key is not None
    assert by_path is not None
    assert by_key.id == by_path.id == outcome.track_id
    assert unknown is None


async def test_list_tracks_pages_by_id_and_hides_missing(pool: Pool) -> None:
    async with transaction(pool) as conn:
        for name in "abcde":
            await tracks.upsert_track(conn, _track(name))
        gone = await tracks.mark_missing(conn, "navidrome", present_host_track_ids=["a", "b", "c", "d"])
        page1 = await tracks.list_tracks(conn, limit=2)
        page2 = await tracks.list_tracks(conn, limit=10, after_id=page1[-1].id)
        everything = await tracks.list_tracks(conn, include_missing=True)
    assert gone == 1
    assert [t.host_track_id for t in page1 + page2] == ["a", "b", "c", "d"]
    assert [t.host_track_id for t in everything if t.is_missing] == ["e"]


async def test_upsert_track_with_a_changed_file_makes_its_analyses_pending(pool: Pool) -> None:
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("a"))).track_id
        await analyses.store_results(conn, track_id, results={"tempo": _tempo(120.0)}, versions=VERSIONS)
        same = await tracks.upsert_track(conn, _track("a", title="Renamed"))
        unchanged = await status.get_status(conn, track_id)
        changed = await tracks.upsert_track(conn, _track("a", mtime_ns=6))
        after = await status.get_status(conn, track_id)
    assert same.file_changed is False
    assert unchanged["tempo"].state == "done"
    assert changed.file_changed is True
    assert after["tempo"].state == "pending"


async def test_record_file_stat_resets_analyses_only_when_the_file_changed(pool: Pool) -> None:
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("a"))).track_id
        record = await tracks.get_track(conn, track_id)
        assert record is not None
        assert record.size_bytes is not None
        assert record.mtime_ns is not None
        await analyses.store_results(conn, track_id, results={"tempo": _tempo(120.0)}, versions=VERSIONS)
        same = await tracks.record_file_stat(conn, track_id, size_bytes=record.size_bytes, mtime_ns=record.mtime_ns)
        unchanged = await status.get_status(conn, track_id)
        changed = await tracks.record_file_stat(conn, track_id, size_bytes=record.size_bytes + 1, mtime_ns=7)
        after = await status.get_status(conn, track_id)
        stored = await tracks.get_track(conn, track_id)
    assert same is False
    assert unchanged["tempo"].state == "done"
    assert changed is True
    assert after["tempo"].state == "pending"
    assert stored is not None
    assert (stored.size_bytes, stored.mtime_ns) == (record.size_bytes + 1, 7)


async def test_upsert_track_without_file_facts_keeps_the_stored_ones(pool: Pool) -> None:
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("a"))).track_id
        outcome = await tracks.upsert_track(conn, _track("a", size_bytes=None, mtime_ns=None))
        stored = await tracks.get_track(conn, track_id)
    assert outcome.file_changed is False
    assert stored is not None
    assert (stored.size_bytes, stored.mtime_ns) == (1000, 5)


async def test_ensure_status_version_bump_makes_only_that_analyzer_stale(pool: Pool) -> None:
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("a"))).track_id
        assert await status.ensure_status(conn, VERSIONS) == 3
        await analyses.store_results(
            conn,
            track_id,
            results={"tempo": _tempo(100.0), "key": KeyResult(key=KeySignature("A", "minor"), key_confidence=0.7),
                     "loudness": _loudness()},
            versions=VERSIONS,
        )  # fmt: skip
        bumped = {**VERSIONS, "key": 2}
        counts_before = await status.count_by_analyzer(conn, bumped)
        work_before = await _open_work(conn, bumped)
        assert await status.ensure_status(conn, bumped) == 1
        rows = await status.get_status(conn, track_id)
        due = await status.list_due_analyzers(conn, track_id, bumped)
    assert counts_before["key"] == status.StatusCounts(stale=1)
    assert counts_before["tempo"] == status.StatusCounts(done=1)
    assert [w.analyzers for w in work_before] == [("key",)]
    assert {name: (row.state, row.version) for name, row in rows.items()} == {
        "tempo": ("done", 1),
        "key": ("pending", 2),
        "loudness": ("done", 1),
    }
    assert due == ["key"]


async def test_status_transitions_and_counts(pool: Pool) -> None:
    async with transaction(pool) as conn:
        ids = [(await tracks.upsert_track(conn, _track(name))).track_id for name in "abcd"]
        await status.ensure_status(conn, VERSIONS)
        assert await status.mark_queued(conn, ids[0], ["tempo", "key"]) == ["key", "tempo"]
        assert await status.mark_running(conn, ids[1], {"tempo": 1}) == {"tempo": 1}
        assert await status.mark_running(conn, ids[1], {"tempo": 1}) == {"tempo": 2}
        await status.mark_failed(conn, ids[2], {"loudness": "cannot decode: truncated FLAC"})
        await analyses.store_results(conn, ids[3], results={"tempo": _tempo(90.0)}, versions=VERSIONS)
        counts = await status.count_by_analyzer(conn, VERSIONS)
    assert counts["tempo"] == status.StatusCounts(queued=1, running=1, pending=1, done=1)
    assert counts["key"] == status.StatusCounts(queued=1, pending=3)
    assert counts["loudness"] == status.StatusCounts(pending=3, failed=1)


async def test_failed_listing_and_retry(pool: Pool) -> None:
    async with transaction(pool) as conn:
        ids = [(await tracks.upsert_track(conn, _track(name))).track_id for name in "ab"]
        await status.ensure_status(conn, VERSIONS)
        await status.mark_failed(conn, ids[0], {"tempo": "decoder: zero-byte file"})
        await status.mark_failed(conn, ids[1], {"key": "decoder: not audio"})
        failed = await status.list_failed(conn)
        only_tempo = await status.list_failed(conn, analyzer="tempo")
        not_due = await status.list_due_analyzers(conn, ids[0], VERSIONS)
        reset = await status.reset_failed(conn, analyzer="tempo")
        after = await status.list_failed(conn)
        due = await status.list_due_analyzers(conn, ids[0], VERSIONS)
    assert {(f.host_track_id, f.analyzer, f.last_error) for f in failed} == {
        ("a", "tempo", "decoder: zero-byte file"),
        ("b", "key", "decoder: not audio"),
    }
    assert [f.host_track_id for f in only_tempo] == ["a"]
    assert "tempo" not in not_due
    assert reset == 1
    assert [(f.host_track_id, f.analyzer) for f in after] == [("b", "key")]
    assert "tempo" in due


async def test_fail_exhausted_fails_rows_at_the_attempt_limit(pool: Pool) -> None:
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("poison"))).track_id
        await status.ensure_status(conn, VERSIONS)
        for _ in range(3):
            await status.mark_running(conn, track_id, {"tempo": 1, "key": 1})
        await status.mark_running(conn, track_id, {"loudness": 1})
        await status.mark_error(conn, track_id, ["tempo"], "worker killed")
        assert await status.fail_exhausted(conn, track_id, max_attempts=4) == []
        failed = await status.fail_exhausted(conn, track_id, max_attempts=3)
        rows = await status.get_status(conn, track_id)
    assert failed == ["key", "tempo"]
    assert rows["loudness"].state == "running"
    assert rows["tempo"].last_error == "gave up after 3 attempts: worker killed"
    assert rows["key"].last_error == "gave up after 3 attempts: the worker stopped during analysis"


async def test_open_work_groups_pending_queued_running_and_stale_by_track(pool: Pool) -> None:
    async with transaction(pool) as conn:
        ids = [(await tracks.upsert_track(conn, _track(name))).track_id for name in "abcd"]
        await status.ensure_status(conn, VERSIONS)
        await analyses.store_results(
            conn, ids[0], results={"tempo": _tempo(1.0), "loudness": _loudness()}, versions=VERSIONS
        )
        await status.mark_queued(conn, ids[1], ["tempo"])
        await status.mark_running(conn, ids[1], {"key": 1})
        await analyses.store_results(
            conn,
            ids[2],
            results={"tempo": _tempo(1.0), "loudness": _loudness(), "key": KeyResult(key=None, key_confidence=0.0)},
            versions=VERSIONS,
        )
        await status.mark_failed(conn, ids[3], dict.fromkeys(VERSIONS, "bad file"))
        await tracks.mark_missing(conn, "navidrome", present_host_track_ids=["a", "b", "c"])
        work = await _open_work(conn, {**VERSIONS, "loudness": 2})
    assert [(w.host_track_id, w.analyzers) for w in work] == [
        ("a", ("key", "loudness")),
        ("b", ("key", "loudness", "tempo")),
        ("c", ("loudness",)),
    ]


async def test_iter_open_work_pages_and_leaves_out_rows_changed_after_the_cut(pool: Pool) -> None:
    async with transaction(pool) as conn:
        for name in "abcdefg":
            await tracks.upsert_track(conn, _track(name))
        await status.ensure_status(conn, VERSIONS)
    async with transaction(pool) as conn:
        cut = await status.database_now(conn)
    async with transaction(pool) as conn:
        (track_e,) = [w.track_id for w in await _open_work(conn, VERSIONS) if w.host_track_id == "e"]
        await status.mark_queued(conn, track_e, ["tempo"])  # changed after the cut: being enqueued right now
    async with transaction(pool) as conn:
        everything = await _open_work(conn, VERSIONS)
        batches = [batch async for batch in status.iter_open_work(conn, VERSIONS, updated_before=cut, batch_size=2)]
    assert [len(batch) for batch in batches] == [2, 2, 2]
    assert [w for batch in batches for w in batch] == [w for w in everything if w.host_track_id != "e"]


async def test_store_results_writes_features_and_done_together(pool: Pool) -> None:
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("a", duration_s=201.5))).track_id
        await status.ensure_status(conn, VERSIONS)
        await analyses.store_results(
            conn,
            track_id,
            results={
                "tempo": _tempo(128.0),
                "key": KeyResult(key=KeySignature("A", "minor"), key_confidence=0.8),
                "loudness": _loudness(),
            },
            versions=VERSIONS,
            failures={},
            info=AudioInfo(
                path="/music/a.flac", codec="flac", sample_rate_hz=44100, channels=2, duration_s=200.25,
                size_bytes=1000, mtime_ns=5,
            ),
        )  # fmt: skip
        summary = await analyses.get_analysis(conn, track_id)
        stored = await tracks.get_track(conn, track_id)
        unknown = await analyses.get_analysis(conn, track_id + 1000)
    assert summary is not None
    assert unknown is None
    assert (summary["bpm"], summary["key"], summary["camelot"], summary["key_confidence"]) == (
        128.0,
        "A minor",
        "8A",
        0.8,
    )
    assert (summary["loudness_lufs"], summary["replaygain_track_gain_db"], summary["true_peak_dbtp"]) == (
        -14.0,
        -4.0,
        -0.8,
    )
    assert (summary["duration_s"], summary["sample_rate_hz"], summary["channels"]) == (200.25, 44100, 2)
    assert stored is not None
    assert stored.codec == "flac"
    assert summary["analyzer_versions"] == VERSIONS


async def test_store_results_is_atomic_when_one_result_cannot_be_stored(pool: Pool) -> None:
    wrong_size = EmbeddingResult(model="openl3-music-mel128-512", vector=np.ones(3, np.float32))
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("a"))).track_id
        await status.ensure_status(conn, {**VERSIONS, "embedding": 1})
    with pytest.raises(StorageError, match="has 3 values"):
        async with transaction(pool) as conn:
            await analyses.store_results(
                conn,
                track_id,
                results={"tempo": _tempo(128.0), "embedding": wrong_size},
                versions={**VERSIONS, "embedding": 1},
            )
    async with transaction(pool) as conn:
        summary = await analyses.get_analysis(conn, track_id)
        rows = await status.get_status(conn, track_id)
    assert summary is not None
    assert summary["bpm"] is None
    assert rows["tempo"].state == "pending"


async def test_store_results_records_failures_in_the_same_pass(pool: Pool) -> None:
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("a"))).track_id
        await status.ensure_status(conn, VERSIONS)
        await analyses.store_results(
            conn,
            track_id,
            results={"tempo": _tempo(128.0)},
            versions=VERSIONS,
            failures={"key": "key: no tonal content", "loudness": "loudness: internal error"},
        )
        rows = await status.get_status(conn, track_id)
        summary = await analyses.get_analysis(conn, track_id)
    assert {n: (r.state, r.last_error) for n, r in rows.items()} == {
        "tempo": ("done", None),
        "key": ("failed", "key: no tonal content"),
        "loudness": ("failed", "loudness: internal error"),
    }
    assert summary is not None  # the stored analysis says what failed and why, beside what is done
    assert summary["failures"] == {"key": "key: no tonal content", "loudness": "loudness: internal error"}
    assert summary["analyzer_versions"] == {"tempo": VERSIONS["tempo"]}


async def test_store_results_never_downgrades_to_an_older_version(pool: Pool) -> None:
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("a"))).track_id
        await analyses.store_results(conn, track_id, results={"tempo": _tempo(128.0)}, versions={"tempo": 2})
        await analyses.store_results(conn, track_id, results={"tempo": _tempo(64.0)}, versions={"tempo": 1})
        summary = await analyses.get_analysis(conn, track_id)
    assert summary is not None
    assert summary["bpm"] == 128.0


async def test_embedding_model_registration_enforces_dimension(pool: Pool) -> None:
    async with transaction(pool) as conn:
        track_id = (await tracks.upsert_track(conn, _track("a"))).track_id
    async with transaction(pool) as conn:
        assert await vectors.register_model(conn, "timbre-v1", dim=48) is True
        assert await vectors.register_model(conn, "timbre-v1", dim=48) is False
    with pytest.raises(StorageError, match="dim 48"):
        async with transaction(pool) as conn:
            await vectors.register_model(conn, "timbre-v1", dim=64)
    with pytest.raises(NotFoundError, match="not registered"):
        async with transaction(pool) as conn:
            await vectors.upsert_embedding(conn, track_id, "unknown-model", np.ones(4, np.float32))
    vector = np.linspace(-1, 1, 48, dtype=np.float32)
    async with transaction(pool) as conn:
        await vectors.upsert_embedding(conn, track_id, "timbre-v1", vector)
        query = "SELECT embedding FROM embeddings WHERE track_id = %s AND model = 'timbre-v1'"
        cur = await conn.execute(query, (track_id,))
        stored = await cur.fetchone()
        summary = await analyses.get_analysis(conn, track_id)
    assert stored is not None
    np.testing.assert_allclose(stored[0].to_numpy(), vector)
    assert summary is not None
    assert summary["embedding_models"] == ["timbre-v1"]


async def test_tracks_unique_per_host_and_id(pool: Pool) -> None:
    async with transaction(pool) as conn:
        a = await tracks.upsert_track(conn, _track("same"))
        b = await tracks.upsert_track(conn, _track("same", host="jellyfin"))
    assert a.track_id != b.track_id
    with pytest.raises(psycopg.errors.UniqueViolation):
        async with transaction(pool) as conn:
            await conn.execute("INSERT INTO tracks (host, host_track_id) VALUES ('navidrome', 'same')")


async def test_stems_bookkeeping_lists_unused_and_forgets(pool: Pool) -> None:
    async with transaction(pool) as conn:
        old_id = (await tracks.upsert_track(conn, _track("old"))).track_id
        new_id = (await tracks.upsert_track(conn, _track("new"))).track_id
        await stems.record_stems(conn, old_id, location="/data/stems/old", size_bytes=4_000_000)
        await stems.record_stems(conn, new_id, location="/data/stems/new", size_bytes=5_000_000)
        await conn.execute(
            "UPDATE stems SET last_accessed_at = now() - interval '40 days' WHERE track_id = %s", (old_id,)
        )
        unused = await stems.list_unused_stems(conn, unused_days=30)
        touched = await stems.touch_stems(conn, old_id)
        after_touch = await stems.list_unused_stems(conn, unused_days=30)
        await stems.forget_stems(conn, new_id)
        forgotten = await stems.get_stems(conn, new_id)
        touch_forgotten = await stems.touch_stems(conn, new_id)
    assert [s.track_id for s in unused] == [old_id]
    assert touched is True
    assert after_touch == []
    assert forgotten is not None
    assert (forgotten.is_separated, forgotten.location, forgotten.size_bytes) == (False, None, None)
    assert touch_forgotten is False


async def test_upsert_track_concurrent_calls_report_one_creation_and_one_change(pool: Pool) -> None:
    async def upsert(mtime_ns: int) -> tracks.UpsertOutcome:
        async with transaction(pool) as conn:
            return await tracks.upsert_track(conn, _track("race", mtime_ns=mtime_ns))

    created = await asyncio.gather(*(upsert(5) for _ in range(8)))
    changed = await asyncio.gather(*(upsert(6) for _ in range(8)))
    async with transaction(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM tracks WHERE host_track_id = 'race'")
        count = await cur.fetchone()
    assert count == (1,)
    assert len({o.track_id for o in created + changed}) == 1
    assert sum(o.created for o in created + changed) == 1
    assert sum(o.file_changed for o in created + changed) == 1
