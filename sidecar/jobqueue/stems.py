"""The third queue: stem separations, never mixed with analysis work, and their ``StemsReady`` notifications.

Separations have their own lists (``stems:queue``, ``stems:delayed``, ``stems:processing:{worker}``) so an analysis
claim can never take one and a separation can never take an analysis slot. Liveness is the worker's one lease
(``lease:{worker}``, refreshed by its heartbeat): a separation claimed by a worker whose lease has expired is moved
back onto ``stems:queue`` by one atomic script, exactly as analysis jobs are. Delivery is at-least-once; the
per-track ``lock:stems:{track id}`` and the ``stems`` row in PostgreSQL make a repeated delivery harmless.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from sidecar.errors import InvalidJobError
from sidecar.jobqueue.connection import as_optional_text, as_text, translate_errors
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.pubsub import Subscription

# KEYS: delayed, queue, processing:{w}, stems workers. ARGV: now, worker id. Promotes due retries, then takes the
# oldest separation into the worker's processing list and notes the worker as one that may hold separations.
_CLAIM = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, raw in ipairs(due) do
  if redis.call('ZREM', KEYS[1], raw) == 1 then
    redis.call('RPUSH', KEYS[2], raw)
  end
end
local raw = redis.call('LMOVE', KEYS[2], KEYS[3], 'RIGHT', 'LEFT')
if raw then
  redis.call('SADD', KEYS[4], ARGV[2])
  return raw
end
return false
"""

# KEYS: stems workers, lease:{w}, processing:{w}, queue. ARGV: worker id, mode ('reap' only when the lease has
# expired, else -1; 'release' always). Moves the worker's separations back (oldest taken next), unregisters it.
_RELEASE = """
if ARGV[2] == 'reap' and (redis.call('EXISTS', KEYS[2]) == 1 or redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0) then
  return -1
end
local moved = 0
while true do
  local raw = redis.call('LPOP', KEYS[3])
  if not raw then break end
  redis.call('RPUSH', KEYS[4], raw)
  moved = moved + 1
end
redis.call('SREM', KEYS[1], ARGV[1])
return moved
"""


@dataclass(frozen=True, slots=True)
class StemsKeys:
    """Key and channel names of the stems queue, under the deployment's prefix."""

    prefix: str

    @classmethod
    def of(cls, keys: Keys) -> StemsKeys:
        """The stems keys next to ``keys``."""
        return cls(keys.prefix)

    @property
    def queue(self) -> str:
        """Waiting separations (producers push left, workers take from the right)."""
        return f"{self.prefix}stems:queue"

    @property
    def delayed(self) -> str:
        """Separations waiting for a retry; score = due time in epoch seconds."""
        return f"{self.prefix}stems:delayed"

    def processing(self, worker_id: str) -> str:
        """Separations ``worker_id`` has claimed and not acknowledged."""
        return f"{self.prefix}stems:processing:{worker_id}"

    @property
    def workers(self) -> str:
        """Workers that have claimed a separation (the reaper looks at their leases)."""
        return f"{self.prefix}stems:workers"

    def lease(self, worker_id: str) -> str:
        """The worker's one liveness lease (the same key the analysis queue uses)."""
        return Keys(self.prefix).lease(worker_id)

    def lock(self, track_id: int) -> str:
        """At most one separation of a track at a time."""
        return f"{self.prefix}lock:stems:{int(track_id)}"

    def ready_channel(self, track_id: int) -> str:
        """One track's ``StemsReady`` messages."""
        return f"{self.prefix}StemsReady:{int(track_id)}"

    @property
    def ready_all_channel(self) -> str:
        """Every track's ``StemsReady`` messages."""
        return f"{self.prefix}stems-ready"


@dataclass(frozen=True, slots=True)
class SeparateStems:
    """A queued separation of one track (by the sidecar's track id); ``attempt`` counts deliveries after errors."""

    track_id: int
    attempt: int = 1

    def encode(self) -> str:
        """The queue entry."""
        return json.dumps({"type": "separate_stems", "track_id": self.track_id, "attempt": self.attempt})

    @classmethod
    def decode(cls, raw: str) -> SeparateStems:
        """Parse an entry written by :meth:`encode`; raises ``InvalidJobError`` on anything else."""
        try:
            data = json.loads(raw)
            if data.get("type") != "separate_stems" or set(data) != {"type", "track_id", "attempt"}:
                raise ValueError("not a separate_stems job")
            track_id, attempt = data["track_id"], data["attempt"]
            if not isinstance(track_id, int) or not isinstance(attempt, int) or track_id < 1 or attempt < 1:
                raise ValueError("track_id and attempt must be positive integers")
        except (ValueError, AttributeError) as exc:
            raise InvalidJobError(f"stems queue entry {raw[:200]!r} is invalid: {exc}") from None
        return cls(track_id, attempt)


@dataclass(frozen=True, slots=True)
class ClaimedSeparation:
    """A separation taken by a worker: ``raw`` is the exact entry (acknowledging removes that value)."""

    raw: str
    job: SeparateStems


@dataclass(frozen=True, slots=True)
class StemsReady:
    """A track's stems were just written (``files`` lists the stem names)."""

    track_id: int
    files: tuple[str, ...]

    def encode(self) -> str:
        """The pub/sub payload."""
        return json.dumps({"track_id": self.track_id, "stems": list(self.files)})

    @classmethod
    def decode(cls, raw: str) -> StemsReady:
        """Parse a payload written by :meth:`encode`; raises ``InvalidJobError`` on anything else."""
        try:
            data = json.loads(raw)
            track_id, stems = data["track_id"], data["stems"]
            if not isinstance(track_id, int) or not isinstance(stems, list):
                raise ValueError("bad field types")
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidJobError(f"stems-ready message {raw[:200]!r} is invalid: {exc}") from None
        return cls(track_id, tuple(str(s) for s in stems))


class StemsQueue:
    """Producer and worker operations on the separation queue (same lease and re-delivery rules as analysis)."""

    def __init__(self, redis: Redis, keys: Keys, *, clock: Callable[[], float] = time.time) -> None:
        self.redis = redis
        self.keys = StemsKeys.of(keys)
        self.clock = clock
        self._claim = redis.register_script(_CLAIM)
        self._release = redis.register_script(_RELEASE)

    @translate_errors
    async def enqueue(self, job: SeparateStems) -> None:
        """Queue ``job`` (call it after the ``stems`` row is ``queued`` in PostgreSQL)."""
        await self.redis.lpush(self.keys.queue, job.encode())

    @translate_errors
    async def claim(self, worker_id: str, *, block_s: float = 0.0) -> ClaimedSeparation | None:
        """Take the oldest separation into ``worker_id``'s processing list; with ``block_s > 0`` wait that long
        for one. An unreadable entry is dropped (logged by the caller through ``InvalidJobError``)."""
        keys = [self.keys.delayed, self.keys.queue, self.keys.processing(worker_id), self.keys.workers]
        raw = as_optional_text(await self._claim(keys=keys, args=[repr(self.clock()), worker_id]))
        if raw is None and block_s > 0:
            reply = await self.redis.blmove(
                self.keys.queue,
                self.keys.processing(worker_id),
                block_s,  # type: ignore[arg-type]  # Redis >= 6 takes a decimal timeout
                "RIGHT",
                "LEFT",
            )
            raw = as_optional_text(reply)
            if raw is not None:
                await self.redis.sadd(self.keys.workers, worker_id)
        if raw is None:
            return None
        try:
            return ClaimedSeparation(raw, SeparateStems.decode(raw))
        except InvalidJobError:
            await self.redis.lrem(self.keys.processing(worker_id), 1, raw)
            raise

    @translate_errors
    async def ack(self, worker_id: str, claimed: ClaimedSeparation) -> bool:
        """Remove ``claimed`` from the worker's processing list; ``False`` when it was gone (re-delivered)."""
        return bool(await self.redis.lrem(self.keys.processing(worker_id), 1, claimed.raw))

    @translate_errors
    async def complete(self, worker_id: str, claimed: ClaimedSeparation, ready: StemsReady) -> bool:
        """Announce ``ready`` and acknowledge ``claimed`` in one round trip (after PostgreSQL has the stems)."""
        payload = ready.encode()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.publish(self.keys.ready_channel(ready.track_id), payload)
            pipe.publish(self.keys.ready_all_channel, payload)
            pipe.lrem(self.keys.processing(worker_id), 1, claimed.raw)
            replies = await pipe.execute()
        return bool(replies[-1])

    @translate_errors
    async def retry_later(
        self, worker_id: str, claimed: ClaimedSeparation, delay_s: float, *, count_attempt: bool = True
    ) -> SeparateStems:
        """Delay ``claimed`` by ``delay_s`` seconds and acknowledge it, in one transaction."""
        job = claimed.job
        if count_attempt:
            job = SeparateStems(job.track_id, job.attempt + 1)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys.delayed, {job.encode(): self.clock() + delay_s})
            pipe.lrem(self.keys.processing(worker_id), 1, claimed.raw)
            await pipe.execute()
        return job

    async def _release_worker(self, worker_id: str, mode: str) -> int:
        keys = [self.keys.workers, self.keys.lease(worker_id), self.keys.processing(worker_id), self.keys.queue]
        return int(await self._release(keys=keys, args=[worker_id, mode]))

    @translate_errors
    async def release_worker(self, worker_id: str) -> int:
        """Clean shutdown: put the worker's unfinished separations back (taken next); returns how many."""
        return await self._release_worker(worker_id, "release")

    @translate_errors
    async def reap_dead_workers(self) -> int:
        """Re-deliver the separations of every worker whose lease has expired; returns how many moved."""
        moved = 0
        for worker_id in sorted(as_text(w) for w in await self.redis.smembers(self.keys.workers)):
            moved += max(0, await self._release_worker(worker_id, "reap"))
        return moved

    @translate_errors
    async def depths(self) -> dict[str, int]:
        """``stems`` waiting, ``stems_delayed`` and ``stems_processing`` (summed over workers)."""
        workers = sorted(as_text(w) for w in await self.redis.smembers(self.keys.workers))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.keys.queue)
            pipe.zcard(self.keys.delayed)
            for worker_id in workers:
                pipe.llen(self.keys.processing(worker_id))
            waiting, delayed, *processing = await pipe.execute()
        return {
            "stems": int(waiting),
            "stems_delayed": int(delayed),
            "stems_processing": sum(int(n) for n in processing),
        }

    def subscribe(self, track_id: int | None = None) -> Subscription[StemsReady]:
        """A subscription to one track's ``StemsReady`` messages, or every track's."""
        channel = self.keys.ready_all_channel if track_id is None else self.keys.ready_channel(track_id)
        return Subscription(self.redis, {channel: StemsReady.decode})
