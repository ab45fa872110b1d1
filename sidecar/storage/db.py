"""The PostgreSQL connection pool and the transaction helper every repository function is used with.

Repository functions take an open :data:`Connection`; callers group them in one transaction with
:func:`transaction`, so results and status change together or not at all.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import psycopg_pool
from pgvector.psycopg import register_vector_async
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from sidecar.errors import StorageError, StorageUnavailableError

Connection = psycopg.AsyncConnection[TupleRow]
Pool = AsyncConnectionPool[Connection]


async def _configure(conn: Connection) -> None:
    await register_vector_async(conn)
    await conn.commit()


async def connect(url: str, *, connect_timeout_s: float | None = None, autocommit: bool = False) -> Connection:
    """Open one connection of its own to ``url``.

    Raises :class:`StorageUnavailableError` when the server cannot be reached or refuses the login, and
    :class:`StorageError` when ``url`` is not a connection string (the message never repeats the URL).
    """
    timeout = None if connect_timeout_s is None else max(1, round(connect_timeout_s))
    try:
        return await psycopg.AsyncConnection.connect(url, connect_timeout=timeout, autocommit=autocommit)
    except psycopg.ProgrammingError as exc:
        reason = " ".join(str(exc).split())
        raise StorageError(f"the database URL is not a PostgreSQL connection string ({reason})") from None
    except psycopg.OperationalError as exc:
        reason = " ".join(str(exc).split())  # libpq's reasons span lines
        raise StorageUnavailableError(f"PostgreSQL is unavailable: {reason}") from exc


async def _check_migrated(url: str, *, connect_timeout_s: float) -> None:
    from sidecar.storage.migrate import pending_migrations  # the migrator imports this module

    async with await connect(url, connect_timeout_s=connect_timeout_s) as conn:
        missing = await pending_migrations(conn)
    if missing:
        names = ", ".join(m.name for m in missing)
        raise StorageError(f"the database schema is not up to date (missing {names}): run `sonantica migrate`")


async def open_pool(
    url: str, *, min_size: int = 1, max_size: int = 8, connect_timeout_s: float = 10.0, check_schema: bool = True
) -> Pool:
    """Open a connection pool with the pgvector types registered on every connection.

    Parameters
    ----------
    url
        A ``postgresql://`` URL (see :func:`sidecar.embedded.database_url`).
    min_size, max_size
        Connections kept open / opened at most.
    connect_timeout_s
        How long to wait for the first connection, in seconds.
    check_schema
        Refuse (``StorageError``) a database whose migrations are not all applied, naming ``sonantica migrate``.

    Raises
    ------
    StorageError
        The schema is behind the code, or ``url`` is not a connection string.
    StorageUnavailableError
        The server cannot be reached (transient: callers retry).
    """
    if check_schema:
        await _check_migrated(url, connect_timeout_s=connect_timeout_s)
    pool: Pool = AsyncConnectionPool(
        url,
        connection_class=psycopg.AsyncConnection,
        min_size=min_size,
        max_size=max_size,
        configure=_configure,
        open=False,
        name="sonantica",
    )
    try:
        await pool.open(wait=True, timeout=connect_timeout_s)
    except psycopg_pool.PoolTimeout as exc:
        await pool.close()
        raise StorageUnavailableError(f"PostgreSQL is unavailable: {exc}") from exc
    return pool


async def close_pool(pool: Pool) -> None:
    """Close every connection of ``pool`` (waits for connections in use to be returned)."""
    await pool.close()


@asynccontextmanager
async def transaction(pool: Pool) -> AsyncIterator[Connection]:
    """Borrow a connection and run the block in one transaction: committed on success, rolled back on error.

    A lost or unreachable server raises :class:`StorageUnavailableError` (transient: retry with back-off).
    """
    async with connection(pool) as conn, conn.transaction():
        yield conn


@asynccontextmanager
async def connection(pool: Pool) -> AsyncIterator[Connection]:
    """Borrow a connection outside any transaction, for a call that commits on its own (an index build). Errors as
    :func:`transaction`."""
    try:
        async with pool.connection() as conn:
            yield conn
    except (psycopg.OperationalError, psycopg.InterfaceError, psycopg_pool.PoolTimeout) as exc:
        raise StorageUnavailableError(f"PostgreSQL is unavailable: {exc}") from exc


async def ping(url: str, *, timeout_s: float) -> None:
    """Open a connection of its own to ``url`` and run ``SELECT 1`` (for readiness checks that must not wait for
    a busy pool). Raises :class:`StorageUnavailableError` when that fails or takes over ``timeout_s`` seconds."""
    try:
        async with asyncio.timeout(timeout_s):
            conn = await psycopg.AsyncConnection.connect(url, connect_timeout=max(1, round(timeout_s)))
            async with conn:
                await conn.execute("SELECT 1")
    except (psycopg.Error, OSError, TimeoutError) as exc:
        raise StorageUnavailableError(f"PostgreSQL is unavailable: {exc or type(exc).__name__}") from exc


def pool_url(pool: Pool) -> str:
    """The connection string ``pool`` was opened with."""
    conninfo = pool.conninfo
    if not isinstance(conninfo, str):  # psycopg_pool also takes a callable; open_pool always gives a string
        raise TypeError("the pool was opened with a conninfo callable")
    return conninfo
