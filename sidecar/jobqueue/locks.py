"""Owner-token locks: ``SET key token NX PX``; renew and release only by the holder (Lua compare-and-...).

A lock that expired and was taken by someone else can never be renewed or released by its former holder.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import MutableSet
from types import TracebackType

from redis.asyncio import Redis

from sidecar.domain import TrackKey
from sidecar.jobqueue.connection import as_optional_text, translate_errors
from sidecar.jobqueue.keys import Keys

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


class TokenLock:
    """A lock on ``key`` that expires after ``ttl_s`` unless renewed; the value is a random owner token.

    Parameters
    ----------
    redis
        Client (``decode_responses=True``).
    key
        The full key name.
    ttl_s
        Expiry in seconds (millisecond resolution); renewing restarts it.
    held
        Optional registry: the lock adds itself while held (a worker's heartbeat renews every lock in it).
    """

    def __init__(self, redis: Redis, key: str, *, ttl_s: float, held: MutableSet[TokenLock] | None = None) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.redis = redis
        self.key = key
        self.ttl_s = ttl_s
        self.token = secrets.token_hex(16)
        self._held = held
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @translate_errors
    async def acquire(self) -> bool:
        """Take the lock if nobody holds it; ``True`` when this object now holds it."""
        taken = bool(await self.redis.set(self.key, self.token, nx=True, px=_ms(self.ttl_s)))
        if taken and self._held is not None:
            self._held.add(self)
        return taken

    @translate_errors
    async def renew(self) -> bool:
        """Restart the expiry if this token still holds the lock; ``False`` (and forgotten) when it was lost."""
        renewed = bool(await self._renew(keys=[self.key], args=[self.token, _ms(self.ttl_s)]))
        if not renewed:
            self._forget()
            log.warning("lock %s was lost (expired or taken over) before it was renewed", self.key)
        return renewed

    @translate_errors
    async def release(self) -> bool:
        """Delete the lock if this token holds it; ``False`` when it had expired or belongs to someone else."""
        self._forget()
        return bool(await self._release(keys=[self.key], args=[self.token]))

    @translate_errors
    async def holder(self) -> str | None:
        """The token currently holding ``key`` (any owner), or ``None`` when it is free."""
        return as_optional_text(await self.redis.get(self.key))

    def _forget(self) -> None:
        if self._held is not None:
            self._held.discard(self)

    async def __aenter__(self) -> bool:
        return await self.acquire()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.release()


class TrackLock(TokenLock):
    """The per-track analysis lock ``lock:analyze:{host}:{host_track_id}`` (``SET NX`` with ``worker.lock_s``).

    ``async with lock as taken:`` tries once and releases on exit; ``taken`` says whether it was acquired
    (releasing a lock that was not taken is a no-op).
    """

    def __init__(
        self, redis: Redis, keys: Keys, track: TrackKey, *, ttl_s: float, held: MutableSet[TokenLock] | None = None
    ) -> None:
        super().__init__(redis, keys.track_lock(track), ttl_s=ttl_s, held=held)
        self.track = track
