"""The library listing and the BPM-range and harmonic-mix playlists at 10 000 tracks, against full scans in Python."""

from __future__ import annotations

import itertools
import math

import pytest

from sidecar.domain import KeySignature
from sidecar.services.playlists import HARMONIC_CANDIDATES, bpm_range_playlist, harmonic_mix_playlist
from sidecar.storage import catalog, library, synthetic
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
