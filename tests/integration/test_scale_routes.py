"""The library listing and the BPM-range and harmonic-mix playlists at 10 000 tracks, against full scans in Python."""

from __future__ import annotations

import itertools
import math
from unittest import mock

import pytest
from psycopg import sql

from sidecar.domain import KeySignature
from sidecar.services.playlists import HARMONIC_CANDIDATES, bpm_range_playlist, harmonic_mix_playlist
from sidecar.storage import catalog, library, synthetic, tracks
from sidecar.storage.db import Connection, Pool, transaction
from sidecar.storage.library import LibraryFilters

TRACKS = 10_000
MISSING_EVERY = 97

Features = dict[int, tuple[float, str, float]]  # id -> bpm, camelot, loudness_lufs (present tracks only)


async def _library(conn: Connection) -> tuple[Features, list[int]]:
    """The present tracks' features and their ids in the listing's default order, by a full sort."""
    await synthetic.insert_tracks(conn, TRACKS, missing_every=MISSING_EVERY)
    cur = await conn.execute(
        "SELECT t.id, f.bpm, f.camelot, f.loudness_lufs FROM tracks t JOIN track_features f ON f.track_id = t.id"
        " WHERE NOT t.is_missing"
        " ORDER BY lower(coalesce(t.artist, '')), lower(coalesce(t.album, '')), lower(t.title), t.id"
    )
    rows = await cur.fetchall()
    return {int(r[0]): (float(r[1]), str(r[2]), float(r[3])) for r in rows}, [int(r[0]) for r in rows]


def _in_bpm_range(bpm: float, low: float, high: float, half_double: bool) -> bool:
    return any(low <= b <= high for b in ((bpm, bpm * 2, bpm / 2) if half_double else (bpm,)))


@pytest.mark.parametrize("offset", [0, 1000, None])  # None: the last page
async def test_library_pages_and_totals_match_a_full_scan(pool: Pool, offset: int | None) -> None:
    async with transaction(pool) as conn:
        features, ordered = await _library(conn)
        compatible = KeySignature.parse("8A").compatible_camelot()
        cur = await conn.execute("SELECT id FROM tracks WHERE NOT is_missing AND (artist ILIKE '%%Artist 12%%'"
                                 " OR title ILIKE '%%Artist 12%%' OR album ILIKE '%%Artist 12%%')")  # fmt: skip
        searched = {int(r[0]) for r in await cur.fetchall()}
        assert 50 < len(searched) < 1000
        cases = {
            LibraryFilters(): set(features),
            LibraryFilters(bpm_min=120, bpm_max=124, half_double=True): {
                i for i, (b, _, _) in features.items() if _in_bpm_range(b, 120, 124, True)
            },
            LibraryFilters(bpm_min=120, bpm_max=124): {
                i for i, (b, _, _) in features.items() if _in_bpm_range(b, 120, 124, False)
            },
            LibraryFilters(camelots=compatible, loudness_min_lufs=-10, loudness_max_lufs=-8): {
                i for i, (_, c, lufs) in features.items() if c in compatible and -10 <= lufs <= -8
            },
            LibraryFilters(query="artist 12"): searched,
        }
        for filters, matching in cases.items():
            expected = [i for i in ordered if i in matching]
            start = (len(expected) - 1) // 50 * 50 if offset is None else offset
            page = await library.list_tracks(conn, filters, limit=50, offset=start)
            assert page.total == len(expected), filters
            assert [t.track_id for t in page.tracks] == expected[start : start + 50], filters
        past = await library.list_tracks(conn, LibraryFilters(bpm_min=120, bpm_max=124), offset=TRACKS)
        assert past.tracks == []
        assert past.total == sum(1 for b, _, _ in features.values() if 120 <= b <= 124)


FULL_SCAN_ORDER = {  # the listing's orders as one sort of every matching row (the query before migration 0031)
    "artist": "lower(coalesce(t.artist, '')), lower(coalesce(t.album, '')), lower(t.title)",
    "title": "lower(t.title), lower(coalesce(t.artist, ''))",
    "album": "lower(coalesce(t.album, '')), lower(t.title)",
    "bpm": "f.bpm NULLS LAST",
    "loudness": "f.loudness_lufs NULLS LAST",
}
Values = dict[int, tuple[float | None, str | None, float | None]]  # id -> bpm, camelot, loudness (present tracks)


async def _gapped_library(conn: Connection) -> Values:
    """The synthetic library with gaps and ties: tracks without features, features without BPM or loudness, a
    third of the BPMs rounded (many tracks per value); the present tracks' values."""
    await synthetic.insert_tracks(conn, TRACKS, missing_every=MISSING_EVERY)
    await conn.execute("DELETE FROM track_features WHERE track_id % 13 = 0")
    await conn.execute("UPDATE track_features SET bpm = NULL WHERE track_id % 17 = 0")
    await conn.execute("UPDATE track_features SET loudness_lufs = NULL WHERE track_id % 19 = 0")
    await conn.execute("UPDATE track_features SET bpm = round(bpm) WHERE track_id % 3 = 0")
    await conn.execute("ANALYZE tracks")
    await conn.execute("ANALYZE track_features")
    cur = await conn.execute(
        "SELECT t.id, f.bpm, f.camelot, f.loudness_lufs FROM tracks t LEFT JOIN track_features f"
        " ON f.track_id = t.id WHERE NOT t.is_missing"
    )
    return {int(r[0]): (r[1], r[2], r[3]) for r in await cur.fetchall()}


async def _full_scan(conn: Connection, sort: str, matching: set[int]) -> list[tuple[int, library.SortKey]]:
    """``matching`` in the listing's ``sort`` order (then id), by sorting every present track: each one's id and
    place in the order (its sort values, then its id)."""
    order = FULL_SCAN_ORDER[sort]
    cur = await conn.execute(
        sql.SQL(
            "SELECT {keys}, t.id FROM tracks t LEFT JOIN track_features f ON f.track_id = t.id"
            " WHERE NOT t.is_missing ORDER BY {order}, t.id"
        ).format(keys=sql.SQL(order.removesuffix(" NULLS LAST")), order=sql.SQL(order))
    )
    return [(int(r[-1]), tuple(r)) for r in await cur.fetchall() if int(r[-1]) in matching]


@pytest.mark.parametrize("sort", list(FULL_SCAN_ORDER))
async def test_every_sort_with_and_without_filters_matches_a_full_scan(pool: Pool, sort: library.SortField) -> None:
    async with transaction(pool) as conn:
        values = await _gapped_library(conn)
        compatible = KeySignature.parse("8A").compatible_camelot()
        chosen = tuple(sorted(values)[::7])
        cases = {
            LibraryFilters(): set(values),
            LibraryFilters(bpm_min=120, bpm_max=124, half_double=True): {
                i for i, (b, _, _) in values.items() if b is not None and _in_bpm_range(b, 120, 124, True)
            },
            LibraryFilters(camelots=compatible): {i for i, (_, c, _) in values.items() if c in compatible},
            LibraryFilters(loudness_min_lufs=-10, loudness_max_lufs=-8): {
                i for i, (_, _, lufs) in values.items() if lufs is not None and -10 <= lufs <= -8
            },
            LibraryFilters(track_ids=chosen, camelots=compatible): {
                i for i in chosen if i in values and values[i][1] in compatible
            },
            LibraryFilters(query="artist 12"): {i for i in values if str(i % 5000).startswith("12")},
        }
        for filters, matching in cases.items():
            expected, places = map(list, zip(*await _full_scan(conn, sort, matching), strict=True))
            valued = sum(1 for i in expected if values[i][{"bpm": 0, "loudness": 2}.get(sort, 0)] is not None)
            last = (len(expected) - 1) // 50 * 50
            offsets = {0, 1000, max(0, valued - 10), valued + 3, last, len(expected), len(expected) + 50}
            assert len(expected) > 50 or filters.track_ids, filters
            for offset in sorted(offsets):
                page = await library.list_tracks(conn, filters, limit=50, offset=offset, sort=sort)
                assert [t.track_id for t in page.tracks] == expected[offset : offset + 50], (filters, offset)
                assert page.total == len(expected), (filters, offset)
                full = len(expected) - offset >= 50
                assert page.next_after == (places[offset + 49] if full else None), (filters, offset)
            # keyset: the page after a row (then an offset) is the same page, whatever comes before that row
            for row, skip in {(0, 0), (998, 0), (max(0, valued - 5), 0), (valued + 2, 7), (len(expected) - 3, 0)}:
                if row < len(expected):
                    page = await library.list_tracks(conn, filters, limit=50, offset=skip, sort=sort, after=places[row])
                    start = row + 1 + skip
                    assert [t.track_id for t in page.tracks] == expected[start : start + 50], (filters, row, skip)
                    assert page.total == len(expected), (filters, row, skip)


async def test_present_count_follows_every_kind_of_write(pool: Pool) -> None:
    async def check(conn: Connection) -> int:
        cur = await conn.execute("SELECT count(*) FROM tracks WHERE NOT is_missing")
        row = await cur.fetchone()
        assert row is not None
        assert await library.present_count(conn) == row[0]
        page = await library.list_tracks(conn, LibraryFilters(), limit=10)
        assert page.total == row[0]
        return int(row[0])

    def upsert(g: int) -> tracks.TrackUpsert:
        return tracks.TrackUpsert(host="bench", host_track_id=str(g), title=f"Song {g}", path=f"/m/{g}.flac")

    async with transaction(pool) as conn:
        assert await check(conn) == 0
        await synthetic.insert_tracks(conn, TRACKS, missing_every=MISSING_EVERY)
        assert await check(conn) == TRACKS - TRACKS // MISSING_EVERY
    async with transaction(pool) as conn:
        await tracks.mark_missing(conn, "bench", present_host_track_ids=[str(g) for g in range(1, TRACKS - 200)])
        before_upserts = await check(conn)
        assert before_upserts == TRACKS - 201 - (TRACKS - 201) // MISSING_EVERY  # 1..TRACKS - 201 present
        # a batch of new tracks, present ones and missing ones coming back (ON CONFLICT: insert and update)
        await tracks.upsert_tracks(conn, [upsert(g) for g in (*range(TRACKS + 1, TRACKS + 31), 5, 97, TRACKS - 3)])
        await tracks.upsert_track(conn, upsert(TRACKS - 5))
        after_upserts = await check(conn)
        assert after_upserts == before_upserts + 30 + 3  # 30 new, 97 and two of the last 200 back
        await conn.execute("DELETE FROM tracks WHERE host_track_id IN ('1', '2', '194', '300')")
        await conn.execute("UPDATE tracks SET title = title || ' (live)' WHERE id % 10 = 0")  # presence unchanged
        assert await check(conn) == after_upserts - 3  # 194 was missing
    async with transaction(pool) as conn:
        cur = await conn.execute("SELECT count(*) FROM present_track_counts")
        deltas = await cur.fetchone()
        await library.fold_present_count(conn)
        cur = await conn.execute("SELECT count(*) FROM present_track_counts")
        folded = await cur.fetchone()
        await check(conn)
        await conn.execute("TRUNCATE tracks CASCADE")
        assert await check(conn) == 0
    assert deltas is not None
    assert deltas[0] > 3
    assert folded == (1,)


@pytest.mark.parametrize(
    ("sort", "index", "deep"),
    [
        ("bpm", "track_features_bpm_idx", False),
        ("loudness", "track_features_loudness_idx", False),
        ("bpm", "track_features_bpm_idx", True),
        ("artist", "tracks_library_order_idx", True),
        ("title", "tracks_title_order_idx", False),
        ("title", "tracks_title_order_idx", True),
        ("album", "tracks_album_order_idx", True),
    ],
)
async def test_pages_walk_their_index(pool: Pool, sort: library.SortField, index: str, deep: bool) -> None:
    async with transaction(pool) as conn:
        await _gapped_library(conn)
        after = (await library.list_tracks(conn, LibraryFilters(), limit=1, offset=5000, sort=sort)).next_after
        with mock.patch.object(conn, "execute", wraps=conn.execute) as execute:
            page = await library.list_tracks(conn, LibraryFilters(), limit=50, sort=sort, after=after if deep else None)
        (query, params), *_ = (c.args for c in execute.call_args_list)
        cur = await conn.execute(sql.SQL("EXPLAIN ") + query, params)
        plan = "\n".join(str(r[0]) for r in await cur.fetchall())
    assert len(page.tracks) == 50
    assert execute.call_count == 2  # the page from the index walk, the total from the kept count
    assert f"Index Scan using {index} on " in plan, plan
    assert "Sort" not in plan, plan
    if deep:  # a cursor starts the walk at its place (an index condition), not after reading the rows before it
        assert after is not None
        assert any("Index Cond:" in line and "ROW(" in line for line in plan.splitlines()), plan


async def test_bpm_range_playlist_spreads_over_every_match(pool: Pool) -> None:
    async with transaction(pool) as conn:
        features, _ = await _library(conn)

        def effective(bpm: float) -> float:
            return next(b for b in (bpm, bpm * 2, bpm / 2) if 80 <= b <= 160)

        matches = sorted((effective(b), i) for i, (b, _, _) in features.items() if _in_bpm_range(b, 80, 160, True))
        playlist = await bpm_range_playlist(conn, bpm_min=80, bpm_max=160, half_double=True, limit=30)
        few = await catalog.tempo_spread(conn, bpm_min=120, bpm_max=120.05, half_double=False, limit=30)
    n = len(matches)
    assert n > 5000  # more matches than the 5 000 the playlist used to pick from (the slowest by BPM)
    assert [e.track_id for e in playlist] == [matches[i * n // 30][1] for i in range(30)]
    felt = [effective(features[e.track_id][0]) for e in playlist]
    assert felt[0] < 81  # the whole range, not its lowest BPM only
    assert felt[-1] > 155  # rank 29 n / 30 of n
    assert [t.track_id for t in few] == sorted(
        (i for i, (b, _, _) in features.items() if 120 <= b <= 120.05), key=lambda i: (features[i][0], i)
    )


async def test_harmonic_mix_walks_from_the_seed_through_a_crowded_window(pool: Pool) -> None:
    async with transaction(pool) as conn:
        features, _ = await _library(conn)
        seed = max(features, key=lambda i: (features[i][0], i))  # the fastest track: its window holds every track
        seed_bpm = features[seed][0]
        nearest = await catalog.tempo_neighbours(conn, bpm=seed_bpm, bpm_min=0, bpm_max=2 * seed_bpm, limit=50)
        path = await harmonic_mix_playlist(conn, seed, limit=30, max_bpm_step_pct=4, max_bpm_drift_pct=100)
        with mock.patch.object(conn, "execute", wraps=conn.execute) as execute:  # a key-confidence threshold
            await catalog.tempo_neighbours(
                conn, bpm=seed_bpm, bpm_min=0, bpm_max=2 * seed_bpm, limit=50, min_key_confidence=0.5
            )
        (query, params), *_ = (c.args for c in execute.call_args_list)
        cur = await conn.execute(sql.SQL("EXPLAIN ") + query, params)
        plan = "\n".join(str(r[0]) for r in await cur.fetchall())
    assert plan.count("track_features_bpm_idx") == 2, plan  # both sides still read the BPM index, the threshold
    assert "Seq Scan on track_features" not in plan, plan  # a filter on what it finds
    assert len(features) > HARMONIC_CANDIDATES  # more keyed tracks in the window than the walk takes
    brute = sorted(features, key=lambda i: (abs(features[i][0] - seed_bpm), i))[:50]
    assert [t.track_id for t in nearest] == brute
    assert len(path) == 30  # before: the first 5 000 tracks by BPM (the slowest), none near this seed
    assert path[0].track_id == seed
    for previous, entry in itertools.pairwise(path):
        assert previous.bpm is not None
        assert entry.bpm is not None
        assert math.fabs(entry.bpm - previous.bpm) <= previous.bpm * 0.04
        assert entry.camelot in KeySignature.parse(str(previous.camelot)).compatible_camelot()
