"""Open everything a long-running role needs (database pool, Redis, queue, cache, events) from the settings.

With no ``SONANTICA_DATABASE_URL`` the embedded PostgreSQL under the data directory is started and migrated
automatically; with no ``SONANTICA_REDIS_URL`` the embedded redis-server is started (shared by every process of
the same data directory, stopped by the last one). Configured URLs are used as they are, and a configured
database must have been migrated with ``sonantica migrate``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sidecar.embedded import EmbeddedRedis, database_url
from sidecar.jobqueue import EventBus, JobQueue, Keys, RedisClient, ResultCache, connect
from sidecar.settings import Settings
from sidecar.storage.db import Pool, close_pool, open_pool
from sidecar.storage.migrate import migrate


@dataclass(frozen=True, slots=True)
class Runtime:
    """The shared resources of one process."""

    settings: Settings
    pool: Pool
    redis: RedisClient
    keys: Keys
    queue: JobQueue
    cache: ResultCache
    events: EventBus


async def database_url_ready(settings: Settings) -> str:
    """The database URL to use: the configured one, or the embedded server's, started and migrated."""
    url = await asyncio.to_thread(database_url, settings)
    if settings.database_url is None:
        await migrate(url)
    return url


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Connect to PostgreSQL and Redis (embedded when not configured) and close everything on exit."""
    db_url = await database_url_ready(settings)
    embedded_redis = EmbeddedRedis(settings.data_dir) if settings.redis_url is None else None
    if embedded_redis is not None:
        redis_url = await asyncio.to_thread(embedded_redis.acquire)
    else:
        assert settings.redis_url is not None
        redis_url = settings.redis_url.get_secret_value()
    pool = await open_pool(
        db_url,
        min_size=settings.db.pool_min_size,
        max_size=settings.db.pool_max_size,
        connect_timeout_s=settings.db.connect_timeout_s,
    )
    redis = connect(redis_url, settings)
    keys = Keys.from_settings(settings)
    try:
        yield Runtime(
            settings=settings,
            pool=pool,
            redis=redis,
            keys=keys,
            queue=JobQueue.from_settings(redis, settings),
            cache=ResultCache(redis, keys, ttl_s=settings.api.result_cache_s),
            events=EventBus(redis, keys),
        )
    finally:
        await redis.aclose()
        await close_pool(pool)
        if embedded_redis is not None:
            await asyncio.to_thread(embedded_redis.release)
