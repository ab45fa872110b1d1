"""Status counts at 10 000 tracks: the trigger-kept counts agree with a full scan through every kind of write."""

from __future__ import annotations

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
