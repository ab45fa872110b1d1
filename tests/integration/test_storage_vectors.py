"""Embeddings and the similar-tracks query against real pgvector: filters, order, index use and HNSW recall."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
import pytest
from pgvector.psycopg import register_vector_async
from psycopg import sql

from sidecar.demo.vectors import clustered_unit_vectors
from sidecar.domain import KeyResult, KeySignature, TempoResult
from sidecar.errors import NotFoundError
from sidecar.storage import analyses, tracks, vectors
from sidecar.storage.db import Connection, Pool, connection, transaction
from sidecar.storage.vectors import SimilarFilters

MODEL = "openl3-music-mel128-512"
DIM = 512


@dataclass(frozen=True)
class Spec:
    name: str
    artist: str
    title: str
    album: str | None
    bpm: float | None
    key: str | None
    angle_rad: float | None  # angle to the seed vector; None: no embedding
    duration_s: float = 200.0
    genres: tuple[str, ...] = ()
    library: str | None = "music"
    missing: bool = False


SPECS = [
    Spec("seed", "Artist S", "Seed Song", "SA", 120.0, "A minor", 0.0),
    Spec("seed-remaster", "Artist S", "Seed Song (Remastered 2011)", "SB", 120.0, "A minor", 0.01),
    Spec("gone", "A9", "Gone", "G", 120.0, "A minor", 0.05, missing=True),
    Spec("one", "A1", "One", "X", 122.0, "C major", 0.1, duration_s=90.0),
    Spec("two", "A1", "Two", "X", 60.0, "E minor", 0.2),
    Spec("three", "A1", "Three", "Y", 240.0, "D minor", 0.3, duration_s=400.0),
    Spec("four", "A2", "Four", "Z", 121.0, "F# minor", 0.4),
    Spec("five", "A3", "Five", "V", 150.0, "A minor", 0.5),
    Spec("five-live", "A3", "Five - Live at Wembley", "W", 121.0, "G minor", 0.6),
    Spec("six", "A4", "Six", None, None, None, 0.7, genres=("Spoken",), library="audiobooks"),
    Spec("plain", "A5", "No Vector", "N", 120.0, "A minor", None),
]


def _similar_step(record: logging.LogRecord) -> object:
    """The ``similar_step`` that :func:`vectors.similar` logs with each answer (an ``extra`` of the record)."""
    return record.__dict__["similar_step"]


def _direction(angle_rad: float) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    vector[0], vector[1] = math.cos(angle_rad), math.sin(angle_rad)
    return vector


async def _library(conn: Connection) -> dict[str, int]:
    ids: dict[str, int] = {}
    for spec in SPECS:
        track_id = (
            await tracks.upsert_track(
                conn,
                tracks.TrackUpsert(
                    host="navidrome",
                    host_track_id=spec.name,
                    title=spec.title,
                    artist=spec.artist,
                    album=spec.album,
                    duration_s=spec.duration_s,
                    genres=spec.genres,
                    library=spec.library,
                ),
            )
        ).track_id
        ids[spec.name] = track_id
        key = None if spec.key is None else KeySignature.parse(spec.key)
        await analyses.store_results(
            conn,
            track_id,
            results={
                "tempo": TempoResult(bpm=spec.bpm, bpm_confidence=0.9, beat_times_s=np.zeros(0)),
                "key": KeyResult(key=key, key_confidence=0.8 if key else 0.0),
            },
            versions={"tempo": 1, "key": 1},
        )
        if spec.angle_rad is not None:
            await vectors.upsert_embedding(conn, track_id, MODEL, _direction(spec.angle_rad))
    await tracks.mark_missing(conn, "navidrome", present_host_track_ids=[s.name for s in SPECS if not s.missing])
    return ids


async def _similar(pool: Pool, seed: str = "seed", *, limit: int = 20, **filters: Any) -> list[str]:
    async with transaction(pool) as conn:
        ids = await _library(conn)
        rows = await vectors.similar(
            conn,
            [ids[seed]],
            model=MODEL,
            limit=limit,
            filters=SimilarFilters(**filters),
        )
    distances = [row.distance for row in rows]
    assert distances == sorted(distances)
    return [row.host_track_id for row in rows]


async def test_similar_without_filters_orders_by_distance_and_drops_seed_duplicates_missing(pool: Pool) -> None:
    assert await _similar(pool) == ["one", "two", "three", "four", "five", "six"]


async def test_similar_unfiltered_reads_all_its_candidates_only_when_the_first_rows_fall_short(
    pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    # limit 2 reads UNFILTERED_ROWS * 2 = 6 rows first: the seed and five remasters of one song, which collapse to
    # one row; only then all the candidates
    async with transaction(pool) as conn:
        ids = await _library(conn)
        for n in range(1, 9):
            track_id = (
                await tracks.upsert_track(
                    conn,
                    tracks.TrackUpsert(
                        host="navidrome", host_track_id=f"echo-{n}", title=f"Echo (Remastered {2000 + n})", artist="E"
                    ),
                )
            ).track_id
            await vectors.upsert_embedding(conn, track_id, MODEL, _direction(0.005 * n))
        steps = []
        for limit in (2, 1):
            with caplog.at_level(logging.DEBUG, logger="sidecar.storage.vectors"):
                caplog.clear()
                rows = await vectors.similar(conn, [ids["seed"]], model=MODEL, limit=limit)
            steps.append([_similar_step(r) for r in caplog.records])
            assert [row.host_track_id for row in rows] == ["echo-1", "one"][:limit]
    assert vectors.UNFILTERED_ROWS == 3
    assert steps == [["index-all"], ["index"]]


async def test_similar_reports_distance_and_features(pool: Pool) -> None:
    async with transaction(pool) as conn:
        ids = await _library(conn)
        rows = await vectors.similar(conn, [ids["seed"]], model=MODEL, limit=2)
    first = rows[0]
    assert first.host_track_id == "one"
    assert first.distance == pytest.approx(1 - math.cos(0.1), abs=1e-5)
    assert (first.bpm, first.key, first.camelot, first.artist, first.album) == (122.0, "C major", "8B", "A1", "X")
    assert len(rows) == 2


async def test_similar_keeps_duplicates_when_asked(pool: Pool) -> None:
    names = await _similar(pool, exclude_duplicates=False)
    assert names == ["seed-remaster", "one", "two", "three", "four", "five", "five-live", "six"]


async def test_similar_bpm_window_around_the_seed(pool: Pool) -> None:
    # 120 BPM +-5 %: "five" (150) is out, so "five-live" (121) is the nearest version of that song left
    assert await _similar(pool, bpm_window_pct=5.0) == ["one", "four", "five-live"]


async def test_similar_bpm_window_accepts_half_and_double_tempo(pool: Pool) -> None:
    assert await _similar(pool, bpm_window_pct=5.0, half_double=True) == ["one", "two", "three", "four", "five-live"]


async def test_similar_absolute_bpm_bounds(pool: Pool) -> None:
    assert await _similar(pool, bpm_min=140.0, bpm_max=250.0) == ["three", "five"]


async def test_similar_camelot_compatible_keeps_wheel_neighbours(pool: Pool) -> None:
    # seed A minor = 8A: 8A, 7A (D minor), 9A (E minor) and 8B (C major) pass; F# minor (11A), G minor (6A) do not
    assert await _similar(pool, camelot_compatible=True) == ["one", "two", "three", "five"]


async def test_similar_caps_tracks_per_artist_and_per_album(pool: Pool) -> None:
    assert await _similar(pool, max_per_artist=1) == ["one", "four", "five", "six"]
    assert await _similar(pool, max_per_album=1) == ["one", "three", "four", "five", "six"]


async def test_similar_duration_genre_and_library_exclusions(pool: Pool) -> None:
    assert await _similar(pool, duration_min_s=100.0, duration_max_s=300.0) == ["two", "four", "five", "six"]
    assert await _similar(pool, exclude_genres=("spoken",)) == ["one", "two", "three", "four", "five"]
    assert await _similar(pool, exclude_libraries=("audiobooks",)) == ["one", "two", "three", "four", "five"]


async def test_similar_limit_returns_the_nearest(pool: Pool) -> None:
    assert await _similar(pool, limit=2) == ["one", "two"]


async def test_similar_from_several_seeds_excludes_every_seed(pool: Pool) -> None:
    async with transaction(pool) as conn:
        ids = await _library(conn)
        rows = await vectors.similar(conn, [ids["one"], ids["three"]], model=MODEL, limit=3)
    # the mean of angles 0.1 and 0.3 points at 0.2: "two" (0), then "seed-remaster" (0.19) before "four" (0.2)
    assert [row.host_track_id for row in rows] == ["two", "seed-remaster", "four"]


async def test_similar_refuses_a_seed_without_embedding_or_bpm(pool: Pool) -> None:
    async with transaction(pool) as conn:
        ids = await _library(conn)
        with pytest.raises(NotFoundError, match="no 'openl3-music-mel128-512' embedding"):
            await vectors.similar(conn, [ids["plain"]], model=MODEL)
        with pytest.raises(ValueError, match="needs a seed with a BPM"):
            await vectors.similar(conn, [ids["six"]], model=MODEL, filters=SimilarFilters(bpm_window_pct=5.0))
        with pytest.raises(NotFoundError, match="not registered"):
            await vectors.similar(conn, [ids["seed"]], model="no-such-model")


def test_similar_filters_refuse_contradictions() -> None:
    with pytest.raises(ValueError, match="above bpm_max"):
        SimilarFilters(bpm_min=130.0, bpm_max=120.0)
    with pytest.raises(ValueError, match="max_per_artist"):
        SimilarFilters(max_per_artist=0)


async def load_clustered(pool: Pool, model: str, data: np.ndarray) -> list[int]:
    async with transaction(pool) as conn:
        await vectors.register_model(conn, model, dim=data.shape[1], build_index=False)
    async with transaction(pool) as conn:
        cur = await conn.execute(
            "INSERT INTO tracks (host, host_track_id, title, artist)"
            " SELECT 'bench', g::text, 'Song ' || g, 'Artist ' || g FROM generate_series(1, %s) g RETURNING id",
            (data.shape[0],),
        )
        ids = [int(row[0]) for row in await cur.fetchall()]
        await vectors.copy_embeddings(conn, model, ids, data)
    async with connection(pool) as conn:
        await vectors.build_index(conn, model, m=12, ef_construction=48)
        await conn.execute("ANALYZE embeddings")
        await conn.commit()
    return ids


async def _index_scans(pool: Pool, model: str) -> int:
    return await _index_counter(pool, model, "pg_stat_user_indexes", "s.idx_scan")


async def _index_counter(pool: Pool, model: str, view: str, counter: str) -> int:
    """A statistics ``counter`` (an expression over ``s``, a row of ``view``) of ``model``'s main index."""
    async with transaction(pool) as conn:
        await conn.execute("SELECT pg_stat_clear_snapshot()")
        cur = await conn.execute(
            sql.SQL(
                "SELECT {counter} FROM {view} s JOIN embedding_models m ON m.index_name = s.indexrelname"
                " WHERE m.model = %s"
            ).format(counter=sql.SQL(counter), view=sql.Identifier(view)),
            (model,),
        )
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_nearest_hnsw_recall_against_exact_search(pool: Pool) -> None:
    data = clustered_unit_vectors(3040, 64, clusters=40, seed=7)
    await load_clustered(pool, "recall-test", data[:3000])
    hits = total = 0
    async with transaction(pool) as conn:
        for query in data[3000:]:
            exact = await vectors.nearest(conn, "recall-test", query, limit=10, exact=True)
            approx = await vectors.nearest(conn, "recall-test", query, limit=10, ef_search=100)
            hits += len({n.track_id for n in exact} & {n.track_id for n in approx})
            total += len(exact)
            exact_distances = [n.distance for n in exact]
            assert exact_distances == sorted(exact_distances)
    assert total == 400
    assert hits / total >= 0.95


async def test_similar_query_is_answered_by_the_model_hnsw_index(pool: Pool) -> None:
    # 20 000 rows: with a few thousand, pgvector 0.8's cost model rightly prefers sorting them all (exact and cheap)
    ids = await load_clustered(pool, "index-test", clustered_unit_vectors(20_000, 32, clusters=20, seed=3))
    before = await _index_scans(pool, "index-test")
    async with transaction(pool) as conn:
        rows = await vectors.similar(conn, [ids[0]], model="index-test", limit=10)
        await conn.execute("SELECT pg_stat_force_next_flush()")
    assert len(rows) == 10
    assert ids[0] not in {row.track_id for row in rows}
    assert await _index_scans(pool, "index-test") > before
    async with transaction(pool) as conn:
        cur = await conn.execute(
            "SELECT i.indexdef FROM pg_indexes i JOIN embedding_models m ON m.index_name = i.indexname"
            " WHERE m.model = 'index-test'"
        )
        row = await cur.fetchone()
    assert row is not None
    assert "m='12'" in row[0]
    assert "ef_construction='48'" in row[0]
    assert "halfvec(32)) halfvec_cosine_ops" in row[0]  # the embedded server's pgvector (0.8) has halfvec


async def test_similar_on_an_autocommit_connection_applies_its_own_ef_search(pool: Pool, database_url: str) -> None:
    async with transaction(pool) as conn:
        ids = await _library(conn)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        await register_vector_async(conn)
        rows = await vectors.similar(conn, [ids["seed"]], model=MODEL, limit=3, candidates=77)
        cur = await conn.execute("SELECT current_setting('hnsw.ef_search', true)")
        after = await cur.fetchone()
    assert [row.host_track_id for row in rows] == ["one", "two", "three"]
    assert after is not None
    assert after[0] != "77"  # set for the query's own transaction only


async def test_warm_index_visits_every_row_of_the_model_once(pool: Pool) -> None:
    ids = await load_clustered(pool, "warm-test", clustered_unit_vectors(3000, 32, clusters=20, seed=5))
    async with transaction(pool) as conn:  # another model's vectors for some of the same tracks
        await vectors.register_model(conn, "warm-other", dim=32)
        await vectors.copy_embeddings(
            conn, "warm-other", ids[:500], clustered_unit_vectors(500, 32, clusters=5, seed=6)
        )
    async with transaction(pool) as conn:
        cur = await conn.execute(
            "SELECT pg_relation_size(index_name::regclass) / current_setting('block_size')::int"
            " FROM embedding_models WHERE model = 'warm-test'"
        )
        row = await cur.fetchone()
    assert row is not None
    pages = int(row[0])
    before = await _index_blocks(pool, "warm-test")
    async with transaction(pool) as conn:
        warmed = await vectors.warm_index(conn, "warm-test")
        await conn.execute("SELECT pg_stat_force_next_flush()")
    assert warmed is not None
    assert (warmed.rows, warmed.rows_visited) == (3000, 3000)  # the other model's rows are not in this index
    assert await _index_blocks(pool, "warm-test") - before >= pages
    async with transaction(pool) as conn:  # its settings held for its own transaction only
        cur = await conn.execute("SELECT current_setting('enable_sort'), current_setting('hnsw.iterative_scan')")
        assert await cur.fetchone() == ("on", "off")


async def test_warm_index_of_a_model_without_vectors_reads_nothing(pool: Pool) -> None:
    async with transaction(pool) as conn:
        await vectors.register_model(conn, "warm-empty", dim=8)
    async with transaction(pool) as conn:
        assert await vectors.warm_index(conn, "warm-empty") is None
        with pytest.raises(NotFoundError, match="not registered"):
            await vectors.warm_index(conn, "no-such-model")


def test_iterative_scans_from_pgvector_0_8() -> None:
    assert [vectors.has_iterative_scans(v) for v in ("0.6.2", "0.7.4", "0.8.0", "0.8.5", "1.0.0")] == [
        False,
        False,
        True,
        True,
        True,
    ]


async def _index_blocks(pool: Pool, model: str) -> int:
    return await _index_counter(pool, model, "pg_statio_user_indexes", "s.idx_blks_read + s.idx_blks_hit")
