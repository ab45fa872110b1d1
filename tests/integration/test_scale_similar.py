"""Similar tracks under strict filters at 10 000 tracks: ``limit`` rows, every one passing the filters, from the
compatible keys' partial HNSW indexes (and their key column kept equal to the track's key)."""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt
import pytest

from sidecar.demo.vectors import clustered_unit_vector_chunks
from sidecar.domain import EmbeddingResult, KeyResult, KeySignature
from sidecar.storage import analyses, synthetic, vectors
from sidecar.storage.db import Connection, Pool, connection, transaction
from sidecar.storage.vectors import SimilarFilters

TRACKS = 10_000
DIM = 32
MODEL = "scale-test-32"
STRICT = SimilarFilters(bpm_window_pct=8.0, half_double=True, camelot_compatible=True, max_per_artist=2)


def _similar_step(record: logging.LogRecord) -> object:
    """The ``similar_step`` that :func:`vectors.similar` logs with each answer (an ``extra`` of the record)."""
    return record.__dict__["similar_step"]


def passes(bpm: float, key: KeySignature, seed_bpm: float, seed_key: KeySignature) -> bool:
    """The strict filters, written out: BPM +-8 % (half/double too) and a Camelot-compatible key."""
    in_window = any(abs(b - seed_bpm) <= 0.08 * seed_bpm + 1e-9 for b in (bpm, bpm * 2, bpm / 2))
    return in_window and key.camelot in seed_key.compatible_camelot()


async def load_library(pool: Pool, *, key_indexes: bool = True) -> tuple[int, npt.NDArray[np.float32]]:
    """10 000 synthetic tracks (every 97th missing) with 32-dim vectors and the model's indexes; the first id."""
    async with transaction(pool) as conn:
        first, last = await synthetic.insert_tracks(conn, TRACKS, missing_every=97)
        await vectors.register_model(conn, MODEL, dim=DIM, build_index=False)
        data = np.concatenate(list(clustered_unit_vector_chunks(TRACKS, DIM, chunk=4000, seed=5)))
        await vectors.copy_embeddings(conn, MODEL, range(first, last + 1), data)
    async with connection(pool) as conn:
        await vectors.build_index(conn, MODEL, m=8, ef_construction=32, key_indexes=key_indexes)
    return first, data


async def key_columns(conn: Connection) -> dict[int, tuple[str | None, str | None]]:
    """``{track id: (embeddings.camelot, track_features.camelot)}`` for the test model's rows."""
    cur = await conn.execute(
        "SELECT e.track_id, e.camelot, f.camelot FROM embeddings e"
        " LEFT JOIN track_features f ON f.track_id = e.track_id WHERE e.model = %s",
        (MODEL,),
    )
    return {int(i): (mine, theirs) for i, mine, theirs in await cur.fetchall()}


async def test_strict_filters_return_the_exact_nearest_from_the_key_indexes(
    pool: Pool, caplog: pytest.LogCaptureFixture
) -> None:
    first, data = await load_library(pool)
    async with transaction(pool) as conn:
        cur = await conn.execute("SELECT id, bpm, key FROM tracks JOIN track_features ON track_id = id")
        features = {int(i): (float(bpm), KeySignature.parse(str(key))) for i, bpm, key in await cur.fetchall()}
        assert all(mine == theirs for mine, theirs in (await key_columns(conn)).values())
    seeds = [first + 17, first + 4242, first + 9001, first + 123, first + 7777]
    exact_checked = 0
    for seed in seeds:
        with caplog.at_level(logging.DEBUG, logger="sidecar.storage.vectors"):
            caplog.clear()
            async with transaction(pool) as conn:
                rows = await vectors.similar(conn, [seed], model=MODEL, limit=20, filters=STRICT)
        assert [_similar_step(r) for r in caplog.records] == ["keys"]
        seed_bpm, seed_key = features[seed]
        assert len(rows) == 20
        for row in rows:
            assert passes(*features[row.track_id], seed_bpm, seed_key)
            assert (row.track_id - first + 1) % 97 != 0  # never a missing track
            assert row.track_id != seed
        artists = [row.artist for row in rows]
        assert max(artists.count(a) for a in artists) <= 2
        # The exact answer: every present track passing the filters, by cosine distance (the synthetic library has
        # 2 tracks per artist and no duplicate titles, so the caps never bind); compared where the 20th and 21st
        # distances differ.
        index = seed - first
        passing = [
            i
            for i in range(TRACKS)
            if i != index and (i + 1) % 97 != 0 and passes(*features[first + i], seed_bpm, seed_key)
        ]
        distances = 1.0 - data[passing] @ data[index]
        order = np.argsort(distances)
        if distances[order[20]] - distances[order[19]] > 1e-6:
            assert {r.track_id for r in rows} == {first + passing[int(i)] for i in order[:20]}
            exact_checked += 1
    assert exact_checked >= 4


async def test_each_compatible_key_is_searched_through_its_partial_index(pool: Pool) -> None:
    first, _ = await load_library(pool)
    seed = first + 17
    async with transaction(pool) as conn:
        cur = await conn.execute("SELECT key FROM track_features WHERE track_id = %s", (seed,))
        row = await cur.fetchone()
        assert row is not None
        compatible = KeySignature.parse(str(row[0])).compatible_camelot()
        cur = await conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'embeddings' AND indexdef LIKE %s",
            (f"%{MODEL}%camelot%",),
        )
        key_indexes = {name: definition for name, definition in await cur.fetchall()}
        plan = await vectors.similar_plan(conn, [seed], model=MODEL, limit=20, filters=STRICT)
    assert len(key_indexes) == 24
    used = {name for name in key_indexes if f"Index Scan using {name} " in plan}
    assert len(used) == 4
    assert {next(c for c in compatible if f"'{c}'::text" in key_indexes[name]) for name in used} == set(compatible)


async def another_key(conn: Connection, track_id: int) -> KeySignature:
    """A key whose Camelot code is not the track's."""
    cur = await conn.execute("SELECT camelot FROM track_features WHERE track_id = %s", (track_id,))
    row = await cur.fetchone()
    assert row is not None
    return next(key for key in synthetic.KEYS if key.camelot != row[0])


async def embedding_updates(conn: Connection) -> int:
    """Rows of ``embeddings`` updated by this connection and not yet reported to the statistics."""
    cur = await conn.execute("SELECT n_tup_upd FROM pg_stat_xact_user_tables WHERE relname = 'embeddings'")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_the_key_column_follows_the_track_key(pool: Pool) -> None:
    first, data = await load_library(pool)
    track = first + 5
    async with transaction(pool) as conn:
        new_key = await another_key(conn, track)
        await analyses.store_results(  # a re-analysis that finds another key
            conn, track, results={"key": KeyResult(key=new_key, key_confidence=0.9)}, versions={"key": 99}
        )
        assert (await key_columns(conn))[track] == (new_key.camelot, new_key.camelot)
        await analyses.store_results(  # and one that finds none
            conn, track, results={"key": KeyResult(key=None, key_confidence=0.0)}, versions={"key": 100}
        )
        assert (await key_columns(conn))[track] == (None, None)
        await conn.execute("DELETE FROM track_features WHERE track_id = %s", (first + 6,))
        assert (await key_columns(conn))[first + 6] == (None, None)
    track = first + 7
    async with transaction(pool) as conn:  # an analysis of vector and a new key: the row is inserted with the key
        new_key = await another_key(conn, track)
        await conn.execute("DELETE FROM embeddings WHERE track_id = %s", (track,))
        updates_before = await embedding_updates(conn)
        await analyses.store_results(
            conn,
            track,
            results={
                "embedding": EmbeddingResult(model=MODEL, vector=data[7]),
                "key": KeyResult(key=new_key, key_confidence=0.9),
            },
            versions={"embedding": 99, "key": 99},
        )
        updates = await embedding_updates(conn) - updates_before
        columns = await key_columns(conn)
    assert updates == 0  # and never updated (which would insert it into the HNSW indexes again)
    assert columns[track] == (new_key.camelot, new_key.camelot)
    assert all(mine == theirs for mine, theirs in columns.values())


async def test_a_model_without_key_indexes_gets_them_once(pool: Pool, caplog: pytest.LogCaptureFixture) -> None:
    first, _ = await load_library(pool, key_indexes=False)
    async with transaction(pool) as conn:
        assert {mine for mine, _ in (await key_columns(conn)).values()} == {None}
        with caplog.at_level(logging.DEBUG, logger="sidecar.storage.vectors"):
            rows = await vectors.similar(conn, [first + 17], model=MODEL, limit=20, filters=STRICT)
        assert len(rows) == 20
        assert _similar_step(caplog.records[-1]) != "keys"
    async with connection(pool) as conn:
        assert await vectors.ensure_indexes(conn, MODEL) is True
        assert await vectors.ensure_indexes(conn, MODEL) is False
    async with transaction(pool) as conn:
        assert all(mine == theirs for mine, theirs in (await key_columns(conn)).values())
        # the main graph holds each row once: the old versions the key copy left behind are not in it
        cur = await conn.execute(
            "SELECT c.reltuples, (SELECT count(*) FROM embeddings WHERE model = %s) FROM pg_class c"
            " JOIN embedding_models m ON m.index_name = c.relname WHERE m.model = %s",
            (MODEL, MODEL),
        )
        assert await cur.fetchone() == (TRACKS, TRACKS)
        caplog.clear()
        with caplog.at_level(logging.DEBUG, logger="sidecar.storage.vectors"):
            again = await vectors.similar(conn, [first + 17], model=MODEL, limit=20, filters=STRICT)
        assert [_similar_step(r) for r in caplog.records] == ["keys"]
    assert len(again) == 20


async def index_definitions(conn: Connection) -> list[str]:
    """``CREATE INDEX`` of every HNSW index of the test model (main and per key)."""
    cur = await conn.execute(
        "SELECT indexdef FROM pg_indexes WHERE tablename = 'embeddings' AND indexdef LIKE %s",
        (f"%USING hnsw%{MODEL}%",),
    )
    return [str(row[0]) for row in await cur.fetchall()]


async def test_single_precision_indexes_become_half_precision_once(pool: Pool) -> None:
    first, data = await load_library(pool)
    async with connection(pool) as conn:
        await vectors.build_index(conn, MODEL, m=8, ef_construction=32, index_type="vector")
        before = await index_definitions(conn)
        assert len(before) == 25
        assert all("vector(32)) vector_cosine_ops" in d for d in before)
        assert await vectors.ensure_indexes(conn, MODEL) is True
        assert await vectors.ensure_indexes(conn, MODEL) is False
        after = await index_definitions(conn)
        assert len(after) == 25
        assert all("halfvec(32)) halfvec_cosine_ops" in d for d in after)
        cur = await conn.execute("SELECT index_type FROM embedding_models WHERE model = %s", (MODEL,))
        assert await cur.fetchone() == ("halfvec",)
    present = np.array([(i + 1) % 97 != 0 for i in range(TRACKS)])
    hits = total = 0
    for index in range(0, TRACKS, 500):
        scores = data @ data[index]
        scores[~present] = -2.0
        scores[index] = -2.0
        exact = np.argsort(-scores)[:10]
        async with transaction(pool) as conn:
            rows = await vectors.similar(conn, [first + index], model=MODEL, limit=10)
        hits += len({first + int(i) for i in exact} & {r.track_id for r in rows})
        total += 10
        # half-precision distances: within 2e-3 of the exact single-precision ones
        by_id = {first + int(i): 1.0 - float(scores[i]) for i in exact}
        assert all(abs(r.distance - by_id[r.track_id]) < 2e-3 for r in rows if r.track_id in by_id)
    assert hits / total >= 0.95


async def test_unfiltered_similar_searches_with_the_default_candidates(pool: Pool) -> None:
    async with transaction(pool) as conn:
        first, last = await synthetic.insert_tracks(conn, TRACKS, missing_every=97)
        await vectors.register_model(conn, MODEL, dim=DIM, build_index=False)
        data = np.concatenate(list(clustered_unit_vector_chunks(TRACKS, DIM, chunk=4000, seed=5)))
        await vectors.copy_embeddings(conn, MODEL, range(first, last + 1), data)
    async with connection(pool) as conn:
        await vectors.build_index(conn, MODEL)  # the product's parameters: m 16, ef_construction 128
    present = np.array([(i + 1) % 97 != 0 for i in range(TRACKS)])
    hits = 0
    seeds = range(0, TRACKS, 250)
    for index in seeds:
        scores = data @ data[index]
        scores[~present] = -2.0
        scores[index] = -2.0
        exact = {first + int(i) for i in np.argpartition(-scores, 10)[:10]}
        async with transaction(pool) as conn:
            rows = await vectors.similar(conn, [first + index], model=MODEL, limit=10)
            cur = await conn.execute("SELECT current_setting('hnsw.ef_search')")
            ef_search = await cur.fetchone()
        assert ef_search is not None
        assert int(ef_search[0]) == vectors.UNFILTERED_CANDIDATES  # max(UNFILTERED_CANDIDATES, 5 * 10)
        hits += len({r.track_id for r in rows} & exact)
    assert hits / (10 * len(seeds)) >= 0.95
