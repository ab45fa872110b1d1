"""Embedding-index upkeep beside other sessions: a new model registered while a rebuild runs, a model name with
characters that are special in SQL patterns or literals, each model's rebuild tried on its own."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import numpy as np
import pytest
from psycopg import sql

from sidecar.errors import StorageError
from sidecar.services.analysis import ensure_embedding_indexes
from sidecar.services.runtime import Runtime
from sidecar.storage import synthetic, vectors
from sidecar.storage.db import Connection, Pool, connection, transaction
from tests.integration.test_index_swap import own_connection, wait_for_concurrent_build

DIM = 8
REBUILT = "rebuilt-8"
NEW = "new-8"


@pytest.fixture
async def observer(database_url: str) -> AsyncIterator[Connection]:
    """An autocommit connection of its own that watches the other sessions."""
    async with await own_connection(database_url, autocommit=True) as conn:
        yield conn


async def load_model(pool: Pool, model: str, *, rows: int) -> None:
    """``rows`` tracks with a vector of ``model``, registered without indexes (a rebuild gives them)."""
    async with transaction(pool) as conn:
        first, last = await synthetic.insert_tracks(conn, rows, host=model)
        await vectors.register_model(conn, model, dim=DIM, build_index=False)
        data = np.random.default_rng(3).standard_normal((rows, DIM)).astype(np.float32)
        await vectors.copy_embeddings(conn, model, range(first, last + 1), data)


async def valid_indexes(conn: Connection, model: str) -> list[str]:
    """The valid HNSW indexes whose predicate names ``model``'s literal (quotes doubled, as PostgreSQL prints it)."""
    literal = "'" + model.replace("'", "''") + "'::text"
    cur = await conn.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
        " WHERE i.indrelid = 'embeddings'::regclass AND a.amname = 'hnsw' AND i.indisvalid"
        " AND strpos(pg_get_expr(i.indpred, i.indrelid), '(model = ' || %s || ')') > 0",
        (literal,),
    )
    return sorted(str(row[0]) for row in await cur.fetchall())


async def hnsw_count(conn: Connection) -> int:
    """How many HNSW indexes ``embeddings`` has, of every model."""
    cur = await conn.execute(
        "SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam"
        " WHERE i.indrelid = 'embeddings'::regclass AND a.amname = 'hnsw'"
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def blocked_or_done(observer: Connection, pid: int, task: asyncio.Task[bool]) -> None:
    """Until ``task`` is done or backend ``pid`` waits on a lock in a plain ``CREATE INDEX`` (polled; fails after
    60 s)."""
    for _ in range(600):
        if task.done():
            return
        cur = await observer.execute(
            "SELECT query, wait_event_type FROM pg_stat_activity WHERE pid = %s AND state = 'active'", (pid,)
        )
        row = await cur.fetchone()
        if row is not None and str(row[0]).startswith("CREATE INDEX ") and row[1] == "Lock":
            return
        await asyncio.sleep(0.1)
    pytest.fail(f"backend {pid} neither finished nor waited on a lock")


async def test_a_model_registered_while_another_session_rebuilds_is_registered_and_indexed_later(
    pool: Pool, database_url: str, observer: Connection
) -> None:
    await load_model(pool, REBUILT, rows=200)
    holder = await own_connection(database_url)  # a write the concurrent build waits for, held open
    track, _ = await synthetic.insert_tracks(holder, 1, host="held")
    await vectors.upsert_embedding(holder, track, REBUILT, np.ones(DIM, dtype=np.float32))
    async with await own_connection(database_url) as rebuilder, await own_connection(database_url) as registrar:
        rebuild = asyncio.create_task(vectors.ensure_indexes(rebuilder, REBUILT, m=4, ef_construction=16))
        await wait_for_concurrent_build(observer, rebuilder.info.backend_pid)
        register = asyncio.create_task(vectors.register_model(registrar, NEW, dim=DIM))
        await blocked_or_done(observer, registrar.info.backend_pid, register)
        await holder.commit()
        await holder.close()
        outcomes = await asyncio.wait_for(asyncio.gather(rebuild, register, return_exceptions=True), timeout=120)
    assert list(outcomes) == [True, True]  # neither was cancelled as a deadlock
    async with transaction(pool) as conn:
        assert len(await valid_indexes(conn, REBUILT)) == 25
        assert await valid_indexes(conn, NEW) == []  # left to the next ensure_indexes
    async with connection(pool) as conn:
        assert await vectors.ensure_indexes(conn, NEW) is True
    async with transaction(pool) as conn:
        assert len(await valid_indexes(conn, NEW)) == 25
        found = await vectors.nearest(conn, NEW, np.ones(DIM, dtype=np.float32))
    assert found == []


async def test_a_registration_holds_off_a_rebuild_until_it_commits(pool: Pool, database_url: str) -> None:
    await load_model(pool, REBUILT, rows=50)
    async with await own_connection(database_url) as registrar, connection(pool) as rebuilder:
        async with registrar.transaction():
            assert await vectors.register_model(registrar, NEW, dim=DIM) is True
            assert await vectors.ensure_indexes(rebuilder, REBUILT) is False  # busy: not started, nothing waits
            assert await valid_indexes(rebuilder, REBUILT) == []
        assert await vectors.ensure_indexes(rebuilder, REBUILT) is True
    async with transaction(pool) as conn:
        assert len(await valid_indexes(conn, NEW)) == 25
        assert len(await valid_indexes(conn, REBUILT)) == 25


NAMES = ("a_b", "a%b", "a\\b", "aXb", "a'b", "a\\_b")
"""Model names with characters that are special in LIKE patterns (``_``, ``%``, ``\\``) or in SQL literals."""


async def test_model_names_with_pattern_or_quote_characters_find_only_their_own_indexes(pool: Pool) -> None:
    async with transaction(pool) as conn:
        before = await hnsw_count(conn)
        for name in NAMES:
            await vectors.register_model(conn, name, dim=DIM)
    async with transaction(pool) as conn:
        for name in NAMES:
            own = vectors._generation(name, DIM, vectors._index_name(name, DIM), 0, key_indexes=True)
            assert set(await vectors._hnsw_indexes(conn, name)) == {index for index, _ in own}, name
    async with transaction(pool) as conn:  # a session whose literals double backslashes, as pg_get_expr then does
        await conn.execute("SET LOCAL standard_conforming_strings = off")
        own = vectors._generation("a\\b", DIM, vectors._index_name("a\\b", DIM), 0, key_indexes=True)
        assert set(await vectors._hnsw_indexes(conn, "a\\b")) == {index for index, _ in own}
    async with connection(pool) as conn:
        for name in NAMES:
            assert await vectors.ensure_indexes(conn, name) is False, name  # each finds its 25 and needs nothing
            await vectors.build_index(conn, name, m=4, ef_construction=16)  # and a rebuild switches and drops
    async with transaction(pool) as conn:
        for name in NAMES:
            own = vectors._generation(name, DIM, vectors._index_name(name, DIM, 1), 1, key_indexes=True)
            assert await valid_indexes(conn, name) == sorted(index for index, _ in own), name
        for name in NAMES:
            await vectors.drop_index(conn, name)
            assert await valid_indexes(conn, name) == [], name
        assert await hnsw_count(conn) == before  # no index of another generation or model is left behind


@dataclass(frozen=True)
class Embedder:
    """What :func:`ensure_embedding_indexes` reads of an embedding analyzer."""

    model: str
    dim: int = DIM


async def test_every_model_is_rebuilt_even_when_an_earlier_one_fails(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    broken, fine = "broken-8", "fine-8"
    for model in (broken, fine):
        await load_model(runtime.pool, model, rows=30)
    async with transaction(runtime.pool) as conn:  # the name the broken model's next index needs, already taken
        taken = vectors._index_name(broken, DIM, 1)
        await conn.execute(sql.SQL("CREATE INDEX {} ON tracks (id)").format(sql.Identifier(taken)))
    with (
        caplog.at_level(logging.WARNING, logger="sidecar.services.analysis"),
        pytest.raises(StorageError, match="the HNSW indexes of 1 model") as raised,
    ):
        await ensure_embedding_indexes(runtime, [Embedder(broken), Embedder(fine)])
    assert f"{broken} (" in str(raised.value)
    assert f"{fine} (" not in str(raised.value)
    assert "already exists" in str(raised.value)
    failures = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(failures) == 1
    assert failures[0].startswith(f"rebuilding the HNSW indexes of {broken} failed: ")
    async with transaction(runtime.pool) as conn:
        assert len(await valid_indexes(conn, fine)) == 25
        assert await valid_indexes(conn, broken) == []


async def test_a_model_registered_during_another_rebuild_gets_its_indexes_when_that_is_done(
    runtime: Runtime, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with await own_connection(database_url, autocommit=True) as other:  # another session's rebuild
        await other.execute("SELECT pg_advisory_lock(hashtext('sonantica:embedding_index_rebuild'))")
        with caplog.at_level(logging.INFO):
            async with transaction(runtime.pool) as conn:
                assert await vectors.register_model(conn, NEW, dim=DIM) is True
            assert "new-8 is registered without its HNSW indexes" in caplog.text
            ensure = asyncio.create_task(ensure_embedding_indexes(runtime, [Embedder(NEW)], retry_s=0.05))
            for _ in range(600):
                if "the HNSW indexes of new-8 wait for another session's rebuild" in caplog.text:
                    break
                await asyncio.sleep(0.1)
            assert not ensure.done()
            async with transaction(runtime.pool) as conn:
                assert await valid_indexes(conn, NEW) == []
                track, _ = await synthetic.insert_tracks(conn, 1, host="new")
                await vectors.upsert_embedding(conn, track, NEW, np.ones(DIM, dtype=np.float32))
            await other.execute("SELECT pg_advisory_unlock(hashtext('sonantica:embedding_index_rebuild'))")
            await asyncio.wait_for(ensure, timeout=60)
    async with transaction(runtime.pool) as conn:
        assert len(await valid_indexes(conn, NEW)) == 25
        assert [n.track_id for n in await vectors.nearest(conn, NEW, np.ones(DIM, dtype=np.float32))] == [track]


async def test_the_warm_up_reads_the_generation_in_use_and_skips_a_model_without_its_index(pool: Pool) -> None:
    await load_model(pool, REBUILT, rows=200)
    async with transaction(pool) as conn:  # registered without indexes: nothing to warm, and no error
        assert await vectors.warm_index(conn, REBUILT) is None
    async with connection(pool) as conn:
        assert await vectors.ensure_indexes(conn, REBUILT, m=4, ef_construction=16) is True
    async with transaction(pool) as conn:
        first = await vectors.warm_index(conn, REBUILT)
    async with connection(pool) as conn:
        await vectors.build_index(conn, REBUILT, m=4, ef_construction=16)
    async with transaction(pool) as conn:
        second = await vectors.warm_index(conn, REBUILT)
    assert first is not None
    assert second is not None
    assert (first.index, first.rows_visited) == (vectors._index_name(REBUILT, DIM, 1), 200)
    assert (second.index, second.rows_visited) == (vectors._index_name(REBUILT, DIM, 2), 200)
