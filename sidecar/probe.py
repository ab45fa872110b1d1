"""Liveness checks for the roles that serve no HTTP: ``python -m sidecar.probe worker|scheduler``.

Kubernetes exec probes (the Helm chart) run them every few seconds, so they import no analyzer or model.

- ``worker``: live while a Redis lease of a worker on this host exists (``<prefix>lease:<hostname>:*``). The
  worker's heartbeat refreshes it every ``worker.lease_s / 3`` seconds, so a hung worker lets it expire.
- ``scheduler``: live while the single-instance scheduler lock is held; the chart runs one scheduler, which
  renews the lock every ``scheduler.lock_s / 3`` seconds.

Exit status 0 when live, 1 when not or when Redis cannot be asked (the reason on stderr).
"""

from __future__ import annotations

import asyncio
import socket
import sys

from sidecar.errors import QueueUnavailableError
from sidecar.jobqueue import Keys, RedisClient, connect
from sidecar.jobqueue.connection import transient_redis_errors
from sidecar.settings import Settings, get_settings

ROLES = ("worker", "scheduler")


async def worker_lease_exists(redis: RedisClient, keys: Keys, hostname: str) -> bool:
    """Whether any worker process on ``hostname`` holds a live lease (worker ids start with the host name)."""
    async for _key in redis.scan_iter(match=keys.lease(f"{hostname}:*"), count=1000):
        return True
    return False


async def scheduler_lock_held(redis: RedisClient, keys: Keys) -> bool:
    """Whether some scheduler holds the single-instance lock."""
    return bool(await redis.exists(keys.scheduler_lock))


async def check(role: str, settings: Settings, hostname: str) -> str | None:
    """``None`` when ``role`` is live on ``hostname``, otherwise the reason it is not."""
    if settings.redis_url is None:
        return "SONANTICA_REDIS_URL is unset: the probe needs the Redis the sidecar uses"
    redis = connect(settings.redis_url.get_secret_value(), settings)
    keys = Keys.from_settings(settings)
    try:
        with transient_redis_errors():
            return await _check(role, redis, keys, hostname)
    except QueueUnavailableError as exc:
        return f"Redis cannot be asked: {exc}"
    finally:
        await redis.aclose()


async def _check(role: str, redis: RedisClient, keys: Keys, hostname: str) -> str | None:
    if role == "worker":
        live = await worker_lease_exists(redis, keys, hostname)
        return None if live else f"no worker lease for host {hostname!r} in Redis"
    live = await scheduler_lock_held(redis, keys)
    return None if live else f"nobody holds the scheduler lock {keys.scheduler_lock!r}"


def main(argv: list[str] | None = None) -> int:
    """Run the probe named by the first argument; 0 when live, 1 when not, 2 on a usage error."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in ROLES:
        sys.stderr.write(f"usage: python -m sidecar.probe {'|'.join(ROLES)}\n")
        return 2
    reason = asyncio.run(check(args[0], get_settings(), socket.gethostname()))
    if reason is not None:
        sys.stderr.write(f"{args[0]} not live: {reason}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
