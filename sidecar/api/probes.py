"""The readiness check, on connections of its own: a database pool or Redis pool exhausted by requests (or by
streams) must not make ``/health/ready`` wait or fail while both servers answer."""

from __future__ import annotations

import asyncio
import logging
from types import TracebackType
from typing import Self

from sidecar.jobqueue import RedisClient, dedicated_client
from sidecar.services.runtime import Runtime
from sidecar.storage.db import ping, pool_url

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 2.0
"""Each dependency has this many seconds to answer before it counts as failed."""


class ReadinessProbe:
    """PostgreSQL (a fresh connection per check) and Redis (a one-connection pool of its own)."""

    def __init__(self, database_url: str, redis: RedisClient) -> None:
        self.database_url = database_url
        self.redis = redis

    @classmethod
    def of(cls, runtime: Runtime) -> ReadinessProbe:
        """A probe of the same servers as ``runtime``, on connections it does not share."""
        return cls(pool_url(runtime.pool), dedicated_client(runtime.redis, max_connections=1))

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.redis.aclose()

    async def check(self) -> dict[str, str]:
        """``{"database": "ok"|"failed", "redis": "ok"|"failed"}``; both checks run at once, each bounded by
        :data:`CHECK_TIMEOUT_S`. Reasons are logged, not returned."""
        database, redis = await asyncio.gather(self._database(), self._redis())
        return {"database": database, "redis": redis}

    async def _database(self) -> str:
        try:
            await ping(self.database_url, timeout_s=CHECK_TIMEOUT_S)
        except Exception as exc:  # any failure means "not ready"
            log.warning("readiness: database check failed: %s", exc)
            return "failed"
        return "ok"

    async def _redis(self) -> str:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT_S):
                await self.redis.ping()
        except Exception as exc:  # idem
            log.warning("readiness: Redis check failed: %s", exc or type(exc).__name__)
            return "failed"
        return "ok"
