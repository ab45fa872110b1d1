"""HNSW index rebuilds beside the indexes in use (``vectors.build_index`` / ``ensure_indexes``): searches and writes
go on during the build, the switch is atomic, and an interrupted rebuild is cleaned up by the next start."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import numpy as np
import numpy.typing as npt
import psycopg
import pytest
from pgvector.psycopg import register_vector_async

from sidecar.errors import StorageError
from sidecar.storage import synthetic, vectors
from sidecar.storage.db import Connection, Pool, connect, connection, transaction
from tests.integration.test_scale_similar import DIM, MODEL, STRICT, TRACKS, key_columns, load_library


async def model_indexes(conn: Connection) -> dict[str, tuple[bool, str]]:
    """``{name: (valid, definition)}`` of every HNSW index on ``embeddings`` whose predicate names the test model."""
    cur = await conn.execute(
        "SELECT c.relname, i.indisvalid, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'embeddings'::regclass"
        " AND pg_get_indexdef(i.indexrelid) LIKE %s",
        (f"%USING hnsw%{MODEL}%",),
    )
    return {str(name): (bool(valid), str(definition)) for name, valid, definition in await cur.fetchall()}


async def model_row(conn: Connection) -> tuple[str, str, bool, int]:
    """The test model's (index name, index type, key_indexed, index generation)."""
    cur = await conn.execute(
        "SELECT index_name, index_type, key_indexed, index_generation FROM embedding_models WHERE model = %s",
        (MODEL,),
    )
    row = await cur.fetchone()
    assert row is not None
    return str(row[0]), str(row[1]), bool(row[2]), int(row[3])


async def search_plan(conn: Connection, vector: npt.NDArray[np.float32]) -> str:
    """The ``EXPLAIN`` of a nearest-neighbour search of the test model with the cast its ``index_type`` says."""
    cur = await conn.execute("SELECT index_type FROM embedding_models WHERE model = %s", (MODEL,))
    row = await cur.fetchone()
    assert row is not None
    cast = f"{row[0]}({DIM})"
    cur = await conn.execute(
        f"EXPLAIN SELECT track_id FROM embeddings WHERE model = %s ORDER BY embedding::{cast} <=> %s::{cast} LIMIT 10",
        (MODEL, vector),
    )
    return "\n".join(str(r[0]) for r in await cur.fetchall())


async def wait_for_concurrent_build(conn: Connection, pid: int) -> None:
    """Until backend ``pid`` waits on a lock in ``CREATE INDEX CONCURRENTLY`` (polled; fails after 60 s)."""
    for _ in range(600):
        cur = await conn.execute(
            "SELECT query, wait_event_type FROM pg_stat_activity WHERE pid = %s AND state = 'active'", (pid,)
        )
        row = await cur.fetchone()
        if row is not None and str(row[0]).startswith("CREATE INDEX CONCURRENTLY") and row[1] == "Lock":
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"backend {pid} never waited in CREATE INDEX CONCURRENTLY")


async def own_connection(url: str, *, autocommit: bool = False) -> Connection:
    """A connection outside the pool, with the pgvector types."""
    conn = await connect(url, autocommit=autocommit)
    await register_vector_async(conn)
    return conn


@pytest.fixture
async def watcher(database_url: str) -> AsyncIterator[Connection]:
    """An autocommit connection of its own, whose statements give up after 2 s of waiting on a lock."""
    async with await own_connection(database_url, autocommit=True) as conn:
        await conn.execute("SET lock_timeout = '2s'")
        await conn.execute("SET statement_timeout = '20s'")
        yield conn


async def hold_a_write(database_url: str, host: str) -> tuple[Connection, int]:
    """An open transaction that added a track and its vector: a concurrent index build waits for it to end."""
    holder = await own_connection(database_url)
    await holder.commit()
    track, _ = await synthetic.insert_tracks(holder, 1, host=host)
    await vectors.upsert_embedding(holder, track, MODEL, np.ones(DIM, dtype=np.float32))
    return holder, track


async def test_searches_and_writes_go_on_while_the_indexes_are_rebuilt(
    pool: Pool, database_url: str, watcher: Connection
) -> None:
    first, data = await load_library(pool, key_indexes=False)
    async with connection(pool) as conn:  # what an upgrade finds: single precision, no per-key indexes
        await vectors.build_index(conn, MODEL, m=8, ef_construction=32, key_indexes=False, index_type="vector")
    async with transaction(pool) as conn:
        old = await model_row(conn)
    assert old[1:] == ("vector", False, 2)
    holder, _ = await hold_a_write(database_url, "held")
    async with await own_connection(database_url) as rebuilder:
        rebuild = asyncio.create_task(vectors.ensure_indexes(rebuilder, MODEL))
        await wait_for_concurrent_build(watcher, rebuilder.info.backend_pid)
        # the build waits for the held write; meanwhile searches use the old index and do not wait
        assert await model_row(watcher) == old
        async with watcher.transaction():
            rows = await vectors.similar(watcher, [first + 17], model=MODEL, limit=20)
            strict = await vectors.similar(watcher, [first + 17], model=MODEL, limit=20, filters=STRICT)
            plan = await search_plan(watcher, data[17])
        assert len(rows) == 20
        assert len(strict) == 20
        assert f"Index Scan using {old[0]} " in plan
        # and a new vector is stored (with its key, which the new per-key indexes need)
        async with watcher.transaction():
            written, _ = await synthetic.insert_tracks(watcher, 1, host="written")
            await vectors.upsert_embedding(watcher, written, MODEL, data[17] * -1.0)
        # a second rebuild (another worker starting) leaves it to the first, without waiting for it
        assert await vectors.ensure_indexes(watcher, MODEL) is False
        with pytest.raises(StorageError, match="another session is rebuilding"):
            await vectors.build_index(watcher, MODEL)
        assert not rebuild.done()
        await holder.commit()
        await holder.close()
        assert await asyncio.wait_for(rebuild, timeout=120) is True
    async with transaction(pool) as conn:
        name, index_type, key_indexed, generation = await model_row(conn)
        indexes = await model_indexes(conn)
        columns = await key_columns(conn)
        plan = await search_plan(conn, data[17])
        strict_plan = await vectors.similar_plan(conn, [first + 17], model=MODEL, limit=20, filters=STRICT)
        found = await vectors.nearest(conn, MODEL, data[17] * -1.0, limit=1)
    assert (index_type, key_indexed, generation) == ("halfvec", True, 3)
    assert name == vectors._index_name(MODEL, DIM, 3)
    assert len(indexes) == 25
    assert all(valid and "halfvec(32)) halfvec_cosine_ops" in d for valid, d in indexes.values())
    assert old[0] not in indexes
    assert f"Index Scan using {name} " in plan
    assert sum(f"Index Scan using {n} " in strict_plan for n in indexes if n != name) == 4  # compatible keys
    assert len(columns) == TRACKS + 2
    assert all(mine == theirs and mine is not None for mine, theirs in columns.values())
    assert found[0].track_id == written  # written during the build, and in the new index


async def test_an_interrupted_rebuild_is_cleaned_up_and_done_by_the_next_start(
    pool: Pool, database_url: str, watcher: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    first, _ = await load_library(pool, key_indexes=False)
    async with transaction(pool) as conn:
        old = await model_row(conn)
    holder, _ = await hold_a_write(database_url, "held")
    async with await own_connection(database_url) as rebuilder:
        rebuild = asyncio.create_task(vectors.ensure_indexes(rebuilder, MODEL))
        await wait_for_concurrent_build(watcher, rebuilder.info.backend_pid)
        await watcher.execute("SELECT pg_terminate_backend(%s)", (rebuilder.info.backend_pid,))
        with pytest.raises(psycopg.OperationalError):
            await asyncio.wait_for(rebuild, timeout=60)
    await holder.rollback()
    await holder.close()
    async with transaction(pool) as conn:
        left = await model_indexes(conn)
        assert await model_row(conn) == old  # the queries still use the old index
        rows = await vectors.similar(conn, [first + 17], model=MODEL, limit=20, filters=STRICT)
    assert len(rows) == 20
    new_name = vectors._index_name(MODEL, DIM, old[3] + 1)
    assert left == {old[0]: (True, left[old[0]][1]), new_name: (False, left[new_name][1])}
    async with connection(pool) as conn:
        with caplog.at_level(logging.INFO, logger="sidecar.storage.vectors"):
            assert await vectors.ensure_indexes(conn, MODEL) is True
        assert await vectors.ensure_indexes(conn, MODEL) is False
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith(f"dropping {new_name},") for m in messages)  # the unfinished index, first
    progress = [m for m in messages if m.startswith("building HNSW index ")]
    assert [m.split(" of ")[0] for m in progress] == [f"building HNSW index {n}" for n in range(1, 26)]
    assert all(f" of 25 of {MODEL} " in m for m in progress)
    async with transaction(pool) as conn:
        after = await model_row(conn)
        indexes = await model_indexes(conn)
    assert after == (new_name, "halfvec", True, old[3] + 1)
    assert len(indexes) == 25
    assert all(valid for valid, _ in indexes.values())
    assert old[0] not in indexes


async def test_an_old_generation_left_after_the_switch_is_dropped(pool: Pool) -> None:
    await load_library(pool)
    async with transaction(pool) as conn:
        name, index_type, _, generation = await model_row(conn)
        before = await model_indexes(conn)
        # what a crash between the switch and the drop of the old indexes leaves: a valid index of the last generation
        stale = vectors._key_index_name(MODEL, DIM, "5A", generation - 1)
        await conn.execute(
            vectors._create_index(MODEL, DIM, stale, index_type=index_type, m=8, ef_construction=32, camelot="5A")
        )
    async with connection(pool) as conn:
        assert await vectors.ensure_indexes(conn, MODEL) is False  # nothing to rebuild, but the leftover is gone
    async with transaction(pool) as conn:
        assert await model_row(conn) == (name, index_type, True, generation)
        assert await model_indexes(conn) == before
