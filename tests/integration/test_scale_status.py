"""Status counts at 10 000 tracks: the trigger-kept counts agree with a full scan through every kind of write."""

from __future__ import annotations

import asyncio
import dataclasses

from sidecar.storage import status, synthetic, tracks
from sidecar.storage.db import Pool, transaction

VERSIONS = {"embedding": 1, "key": 2, "loudness": 1, "tags": 1, "tempo": 2}
TRACKS = 10_000


async def test_counts_match_a_full_scan_through_every_kind_of_write(pool: Pool) -> None:
    async with transaction(pool) as conn:
        first, last = await synthetic.insert_tracks(conn, TRACKS, missing_every=50, pathless_every=70)
        await synthetic.insert_status(conn, VERSIONS, first, last, stale_every=9)
    async with transaction(pool) as conn:
        initial = await status.count_by_analyzer(conn, VERSIONS)
        assert initial == await status.count_by_analyzer_scan(conn, VERSIONS)
        await status.mark_queued(conn, first + 3, ["key", "tempo"])
        await status.mark_running(conn, first + 4, {"key": 2, "tags": 1})  # ON CONFLICT update
        await status.mark_failed(conn, first + 5, {"loudness": "not audio"})
        await status.mark_done(conn, first + 6, {"embedding": 1, "key": 2})
        await status.ensure_status(conn, {**VERSIONS, "loudness": 2})  # every loudness row back to pending
        await tracks.upsert_track(  # a changed file resets its analyses
            conn, tracks.TrackUpsert(host="bench", host_track_id="8", title="Song 8", path="/x.flac", size_bytes=1)
        )
        await tracks.mark_missing(conn, "bench", present_host_track_ids=[str(g) for g in range(1, TRACKS - 100)])
        await conn.execute("DELETE FROM tracks WHERE id = %s", (first + 11,))  # cascades to its status rows
        changed = await status.count_by_analyzer(conn, VERSIONS)
        assert changed == await status.count_by_analyzer_scan(conn, VERSIONS)
        assert changed == await status.count_by_analyzer(conn, VERSIONS)  # folded deltas read the same
        groups = await status.fold_counts(conn)
    assert initial["key"].stale > 0
    assert initial["key"].failed > 0
    assert changed["loudness"] == status.StatusCounts(pending=changed["loudness"].pending)  # all back to pending
    assert groups <= 7 * 2 * len(VERSIONS)  # one row per (analyzer, version, state) once folded
    assert changed["tempo"].done < initial["tempo"].done  # 100 tracks went missing


async def test_batch_upsert_writes_only_changed_rows(pool: Pool) -> None:
    batch = [
        tracks.TrackUpsert(host="navidrome", host_track_id=str(i), title=f"Song {i}", path=f"/m/{i}.flac",
                           size_bytes=100 + i, mtime_ns=7)
        for i in range(3)
    ]  # fmt: skip
    async with transaction(pool) as conn:
        created = await tracks.upsert_tracks(conn, [*batch, batch[0]])  # a track named twice
    async with transaction(pool) as conn:
        await tracks.mark_missing(conn, "navidrome", present_host_track_ids=["0", "1"])
        before = {t: await tracks.get_track(conn, o.track_id) for t, o in zip("abc", created, strict=False)}
        changed = [batch[0], batch[1], batch[2], dataclasses.replace(batch[1], size_bytes=1)]
        again = await tracks.upsert_tracks(conn, changed)
        after = {t: await tracks.get_track(conn, o.track_id) for t, o in zip("abc", again, strict=False)}
    assert [(o.created, o.file_changed) for o in created] == [(True, False)] * 3 + [(False, False)]
    assert [o.track_id for o in again[:3]] == [o.track_id for o in created[:3]]
    assert [(o.created, o.file_changed) for o in again] == [(False, False)] * 3 + [(False, True)]
    first_before, first_after, third_after = before["a"], after["a"], after["c"]
    assert first_before is not None
    assert first_after is not None
    assert third_after is not None
    assert first_after.updated_at == first_before.updated_at  # unchanged: not written
    assert not third_after.is_missing  # a missing track that is listed again comes back


async def test_batch_upsert_of_a_track_a_concurrent_upsert_just_committed(pool: Pool) -> None:
    track = tracks.TrackUpsert(host="jellyfin", host_track_id="np", title="Now playing", path="/m/np.flac")
    async with pool.connection() as other, pool.connection() as syncing:
        await other.execute("BEGIN")
        played = await tracks.upsert_track(other, track)  # the now-playing poll stores it first, not committed yet
        batch = asyncio.create_task(tracks.upsert_tracks(syncing, [track]))  # the sync's lock sees no row
        await asyncio.sleep(0.5)  # its insert now waits for the other transaction
        assert not batch.done()
        await other.execute("COMMIT")
        outcomes = await asyncio.wait_for(batch, timeout=10)
    assert outcomes == [
        tracks.UpsertOutcome(track_id=played.track_id, created=False, file_changed=False, written=False)
    ]
