"""Fresh, migrated PostgreSQL databases for the storage tests.

The real server comes from the session fixture ``postgres_url``; the schema is migrated once into a template
database, and every test gets its own copy (``CREATE DATABASE ... TEMPLATE``), dropped afterwards.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from psycopg.conninfo import make_conninfo

from sidecar.analyzers.versions import enabled_versions
from sidecar.jobqueue import Keys, RedisClient, connect
from sidecar.services.runtime import Runtime, open_runtime
from sidecar.settings import Settings, get_settings
from sidecar.storage.db import Pool, close_pool, open_pool
from sidecar.storage.migrate import migrate
from tests.integration.redis_server import RestartableRedis


def _admin(url: str) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(make_conninfo(url, dbname="postgres"), autocommit=True)


def create_database(url: str, name: str, *, template: str | None = None) -> str:
    """Create database ``name`` on the server of ``url`` (optionally from ``template``); return its conninfo."""
    with _admin(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
            )
    return make_conninfo(url, dbname=name)


def drop_database(url: str, name: str) -> None:
    """Drop database ``name`` (closing any connection still open to it)."""
    with _admin(url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def empty_database_url(postgres_url: str) -> Iterator[str]:
    """A new database with nothing in it (not even the vector extension)."""
    name = f"sonantica_empty_{uuid.uuid4().hex[:12]}"
    yield create_database(postgres_url, name)
    drop_database(postgres_url, name)


@pytest.fixture(scope="session")
async def template_database(postgres_url: str) -> AsyncIterator[str]:
    """The migrated template every test database is copied from (one per test session)."""
    name = f"sonantica_template_{uuid.uuid4().hex[:12]}"
    await migrate(create_database(postgres_url, name))
    yield name
    drop_database(postgres_url, name)


@pytest.fixture
def database_url(postgres_url: str, template_database: str) -> Iterator[str]:
    """A fresh, fully migrated database for one test."""
    name = f"sonantica_test_{uuid.uuid4().hex[:12]}"
    yield create_database(postgres_url, name, template=template_database)
    drop_database(postgres_url, name)


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[Pool]:
    """A connection pool on the test's own database."""
    opened = await open_pool(database_url, min_size=1, max_size=4)
    yield opened
    await close_pool(opened)


@pytest.fixture
def keys() -> Keys:
    """Redis key names under a prefix of this test's own."""
    return Keys(f"test-{uuid.uuid4().hex[:12]}:")


@pytest.fixture
async def redis(redis_url: str, keys: Keys) -> AsyncIterator[RedisClient]:
    """A client of the session's Redis; this test's keys are deleted afterwards."""
    client = connect(redis_url, Settings(redis_url=redis_url))
    yield client
    stale = [key async for key in client.scan_iter(match=f"{keys.prefix}*")]
    if stale:
        await client.delete(*stale)
    await client.aclose()


@pytest.fixture
def service_env(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str) -> dict[str, str]:
    """Settings (environment) for this test's own database and Redis key prefix, with the three cheap analyzers;
    tests add their own variables with ``monkeypatch.setenv`` and call ``get_settings.cache_clear()``."""
    values = {
        "SONANTICA_DATABASE_URL": database_url,
        "SONANTICA_REDIS_URL": redis_url,
        "SONANTICA_REDIS__KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
        "SONANTICA_ANALYSIS__ENABLED": "loudness,tempo,key",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return values


@pytest.fixture
def runtime_env(service_env: dict[str, str]) -> dict[str, str]:
    """The environment :func:`runtime` and :func:`versions` read; a module overrides it to add its own variables
    (set with ``monkeypatch.setenv``, then ``get_settings.cache_clear()``)."""
    return service_env


@pytest.fixture
async def runtime(runtime_env: dict[str, str]) -> AsyncIterator[Runtime]:
    """A :class:`Runtime` (PostgreSQL pool, Redis, queue) opened from :func:`runtime_env`."""
    async with open_runtime(get_settings()) as opened:
        yield opened


@pytest.fixture
def versions(runtime_env: dict[str, str]) -> dict[str, int]:
    """The enabled analyzers and their versions under :func:`runtime_env`."""
    return enabled_versions(get_settings())


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[RestartableRedis]:
    server = RestartableRedis(tmp_path)
    server.start()
    yield server
    server.kill()
