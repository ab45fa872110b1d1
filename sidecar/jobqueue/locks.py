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

# KEYS[1]: the lock. ARGV: full value, ttl ms. Takes the lock when free, or when the value of the holder names a
# lease key (after '|') that no longer exists: the holder died, and its lock is released with its jobs.
_ACQUIRE = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
local held = redis.call('GET', KEYS[1])
if not held then
  return 0
end
local sep = string.find(held, '|', 1, true)
if sep and redis.call('EXISTS', string.sub(held, sep + 1)) == 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 2
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
        Optional registry: the lock adds itself while held (a worker's heartbeat renews every lock in it). A lock
        whose :meth:`release` failed because Redis could not be reached stays in it, marked for release, and the
        next :meth:`renew` releases it instead: a lock that a restarted Redis restores from its append-only file
        then ends with its job, not ``ttl_s`` later.
    owner_lease
        Optional liveness key of the holder (a worker's lease): while the lock is held by a holder whose lease key
        is gone (a dead worker), :meth:`acquire` takes it over instead of waiting ``ttl_s`` for it to expire.
    """

    def __init__(
        self,
        redis: Redis,
        key: str,
        *,
        ttl_s: float,
        held: MutableSet[TokenLock] | None = None,
        owner_lease: str | None = None,
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.redis = redis
        self.key = key
        self.ttl_s = ttl_s
        self.token = secrets.token_hex(16) + ("" if owner_lease is None else f"|{owner_lease}")
        self._held = held
        self._releasing = False
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @translate_errors
    async def acquire(self) -> bool:
        """Take the lock if nobody holds it, or if its holder's lease is gone; ``True`` when this object now holds
        it."""
        taken = int(await self._acquire(keys=[self.key], args=[self.token, _ms(self.ttl_s)]))
        if taken == 2:
            log.warning("lock %s was held by a dead worker; taken over", self.key)
        if taken:
            self._releasing = False
            if self._held is not None:
                self._held.add(self)
        return bool(taken)

    @translate_errors
    async def renew(self) -> bool:
        """Restart the expiry if this token still holds the lock; ``False`` (and forgotten) when it was lost.

        A lock whose release failed is released now instead (``False``)."""
        if self._releasing:
            await self.release()
            return False
        renewed = bool(await self._renew(keys=[self.key], args=[self.token, _ms(self.ttl_s)]))
        if not renewed:
            self._forget()
            log.warning("lock %s was lost (expired or taken over) before it was renewed", self.key)
        return renewed

    @translate_errors
    async def release(self) -> bool:
        """Delete the lock if this token holds it; ``False`` when it had expired or belongs to someone else.

        Raises :class:`~sidecar.errors.QueueUnavailableError` when Redis cannot be reached; the lock then stays in its
        ``held`` registry marked for release (see the class)."""
        self._releasing = True
        released = bool(await self._release(keys=[self.key], args=[self.token]))
        self._forget()
        return released

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

    With ``worker_id`` the lock names that worker's lease, so a worker that died holding it (SIGKILL, power loss)
    does not keep its track locked for ``worker.lock_s`` once its jobs are re-delivered.

    ``async with lock as taken:`` tries once and releases on exit; ``taken`` says whether it was acquired
    (releasing a lock that was not taken is a no-op).
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        track: TrackKey,
        *,
        ttl_s: float,
        held: MutableSet[TokenLock] | None = None,
        worker_id: str | None = None,
    ) -> None:
        owner_lease = None if worker_id is None else keys.lease(worker_id)
        super().__init__(redis, keys.track_lock(track), ttl_s=ttl_s, held=held, owner_lease=owner_lease)
        self.track = track
