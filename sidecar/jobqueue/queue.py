"""The reliable priority queue of §H.6: strict on-play-before-scan claims, leases, retries and re-delivery.

A claimed job moves atomically (``LMOVE``/``BLMOVE``) from its priority list into ``processing:{worker_id}`` and
stays there until acknowledged, so it is never only in a worker's memory. A worker whose lease key has expired is
dead: one Lua script moves its processing list back onto the queues and unregisters it, atomically, so concurrent
reapers never deliver a job twice. Delivery is at-least-once; the per-track lock and the status rows in PostgreSQL
make a repeated delivery harmless.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from redis.asyncio import Redis

from sidecar.domain import Priority, TrackKey
from sidecar.errors import InvalidJobError
from sidecar.jobqueue.connection import as_optional_text, as_text, translate_errors
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.locks import TokenLock
from sidecar.jobqueue.messages import (
    AnalysisReady,
    CachedAnalysis,
    FailedEntry,
    Job,
    decode_failed_entry,
    decode_job,
    encode_analysis_ready,
    encode_cached_analysis,
    encode_failed_entry,
    encode_job,
    job_track_key,
)
from sidecar.settings import Settings

if TYPE_CHECKING:  # presence (numpy) is imported by tracks_with_jobs only: most users of the queue never load numpy
    import numpy as np
    import numpy.typing as npt

    from sidecar.jobqueue.presence import TrackPresence

log = logging.getLogger(__name__)

# Shared by the promote and claim scripts. KEYS[1..3]: delayed, on_play list, scan list. ARGV[1..2]: now (epoch s),
# most entries to move. Due entries go to the right end of their priority's list (taken next: they have waited
# already). An entry whose priority cannot be read goes to the scan list, where the claim that takes it records it
# as failed. Each entry is moved by whoever removes it from the zset, so concurrent callers never move it twice.
_PROMOTE_BODY = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
local moved = 0
for _, raw in ipairs(due) do
  if redis.call('ZREM', KEYS[1], raw) == 1 then
    local ok, job = pcall(cjson.decode, raw)
    local target = KEYS[3]
    if ok and type(job) == 'table' and job['priority'] == 'on_play' then
      target = KEYS[2]
    end
    redis.call('RPUSH', target, raw)
    moved = moved + 1
  end
end
"""

_PROMOTE_DUE = _PROMOTE_BODY + "return moved\n"

# KEYS[4]: processing:{w}. ARGV[3], ARGV[4]: '1' to take from on_play, scan. Promotes due entries, then takes the
# oldest entry of the first non-empty chosen list, on-play before scan: flow step 2 in one round trip.
_CLAIM = (
    _PROMOTE_BODY
    + """
if ARGV[3] == '1' then
  local raw = redis.call('LMOVE', KEYS[2], KEYS[4], 'RIGHT', 'LEFT')
  if raw then return raw end
end
if ARGV[4] == '1' then
  local raw = redis.call('LMOVE', KEYS[3], KEYS[4], 'RIGHT', 'LEFT')
  if raw then return raw end
end
return false
"""
)

# KEYS: workers, lease:{w}, processing:{w}, on_play list, scan list. ARGV: worker id, mode.
# mode 'reap': only for a registered worker whose lease has expired (else -1): pushes its jobs back, unregisters it.
# mode 'requeue': pushes the jobs back; the worker stays registered.
# mode 'unregister': pushes the jobs back, deletes the lease and unregisters the worker.
# Jobs are popped newest first and pushed to the right end, so the oldest claim ends up taken first.
_RELEASE_WORKER = """
local mode = ARGV[2]
if mode == 'reap' and (redis.call('EXISTS', KEYS[2]) == 1 or redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0) then
  return -1
end
local moved = 0
while true do
  local raw = redis.call('LPOP', KEYS[3])
  if not raw then break end
  local ok, job = pcall(cjson.decode, raw)
  local target = KEYS[5]
  if ok and type(job) == 'table' and job['priority'] == 'on_play' then
    target = KEYS[4]
  end
  redis.call('RPUSH', target, raw)
  moved = moved + 1
end
if mode ~= 'requeue' then
  redis.call('SREM', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
end
return moved
"""

# KEYS: workers, lease:{w}. ARGV: worker id, lease ms. Returns 1 when the worker was still registered, 0 when it
# had been reaped (its jobs were re-delivered) and is registered again now.
_HEARTBEAT = """
local was = redis.call('SADD', KEYS[1], ARGV[1]) == 0
redis.call('SET', KEYS[2], '1', 'PX', tonumber(ARGV[2]))
if was then return 1 end
return 0
"""

# KEYS: processing:{w}, target list. ARGV: raw entry. Moves it only when it was still there.
_REQUEUE_ENTRY = """
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
  return 1
end
return 0
"""

_PROMOTE_BATCH = 1000


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def new_worker_id() -> str:
    """A worker id unique per process: host name, pid and a random suffix (``myhost:1234:9f8e7d6c``)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


def backoff_s(attempt: int, *, base_s: float, max_s: float) -> float:
    """Retry delay in seconds after failed attempt number ``attempt`` (1-based).

    ``base_s * 2**(attempt - 1)`` capped at ``max_s`` (``worker.retry_base_s`` / ``worker.retry_max_s``); no
    jitter, so tests can predict it. Raises ``ValueError`` if ``attempt < 1``.
    """
    if attempt < 1:
        raise ValueError(f"attempt must be >= 1, got {attempt}")
    return float(min(max_s, base_s * 2.0 ** min(attempt - 1, 64)))


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job taken by a worker: ``raw`` is the exact queue entry (acknowledging removes that value)."""

    raw: str
    job: Job


class JobQueue:
    """Producer and worker operations on the two priority lists (§H.6 flow steps 1, 2, 4, 5, 6).

    Parameters
    ----------
    redis
        Client with ``decode_responses=True`` (see :func:`sidecar.jobqueue.connection.connect`).
    keys
        Key names under the deployment's prefix.
    lease_s
        Worker liveness lease in seconds; a worker whose lease is not refreshed for this long is dead.
    failed_jobs_kept
        Newest entries kept in the failed list.
    clock
        Current time in epoch seconds; due times of delayed retries are computed and compared with it (tests
        inject a controllable clock instead of sleeping).
    """

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        *,
        lease_s: float,
        failed_jobs_kept: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        if failed_jobs_kept < 1:
            raise ValueError(f"failed_jobs_kept must be >= 1, got {failed_jobs_kept}")
        self.redis = redis
        self.keys = keys
        self.lease_s = lease_s
        self.failed_jobs_kept = failed_jobs_kept
        self.clock = clock
        self._promote = redis.register_script(_PROMOTE_DUE)
        self._claim = redis.register_script(_CLAIM)
        self._release_worker = redis.register_script(_RELEASE_WORKER)
        self._heartbeat = redis.register_script(_HEARTBEAT)
        self._requeue_entry = redis.register_script(_REQUEUE_ENTRY)

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings, *, clock: Callable[[], float] = time.time) -> JobQueue:
        """A queue with the key prefix, lease and failed-list size of ``settings``."""
        return cls(
            redis,
            Keys.from_settings(settings),
            lease_s=settings.worker.lease_s,
            failed_jobs_kept=settings.redis.failed_jobs_kept,
            clock=clock,
        )

    # ----------------------------------------------------------------------------------------------------------
    # producers

    @translate_errors
    async def enqueue(self, job: Job) -> None:
        """``LPUSH`` ``job`` onto the list of its priority.

        Call it after the track's status rows are ``queued`` in PostgreSQL (a failed push is then repaired by the
        next rebuild). Duplicates are allowed: an on-play push for a track waiting in the scan list is how it jumps
        the line, and the worker's status check and track lock make the second delivery harmless.
        """
        await self.redis.lpush(self.keys.queue(job.priority), encode_job(job))

    @translate_errors
    async def reserve_on_play(self, track: TrackKey, *, ttl_s: float) -> bool:
        """``SET NX`` the on-play marker of ``track`` (the mission's ``SETNX lock:analyze``): ``True`` when no
        on-play job of it was waiting, so the caller pushes one; the marker expires after ``ttl_s`` seconds."""
        return bool(await self.redis.set(self.keys.on_play_waiting(track), "1", nx=True, px=_ms(ttl_s)))

    @translate_errors
    async def release_on_play(self, track: TrackKey) -> None:
        """Clear the on-play marker of ``track`` (a worker took its job: the next play may queue again)."""
        await self.redis.delete(self.keys.on_play_waiting(track))

    @translate_errors
    async def enqueue_many(self, jobs: Iterable[Job], *, batch_size: int = 1000) -> int:
        """Push ``jobs`` in pipelined batches of ``batch_size`` (one round trip each); returns how many were pushed.

        Jobs of one priority keep their order. A failure part-way leaves the earlier batches queued.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        pushed = 0
        batch: dict[Priority, list[str]] = {}
        count = 0
        for job in jobs:
            batch.setdefault(job.priority, []).append(encode_job(job))
            count += 1
            if count == batch_size:
                pushed += await self._push_batch(batch)
                batch, count = {}, 0
        if count:
            pushed += await self._push_batch(batch)
        return pushed

    async def _push_batch(self, batch: dict[Priority, list[str]]) -> int:
        async with self.redis.pipeline(transaction=False) as pipe:
            for priority, raws in batch.items():
                pipe.lpush(self.keys.queue(priority), *raws)
            await pipe.execute()
        return sum(len(raws) for raws in batch.values())

    # ----------------------------------------------------------------------------------------------------------
    # workers: claim, acknowledge, retry

    @translate_errors
    async def promote_due(self) -> int:
        """Move every delayed job whose due time has come to its priority list; returns how many.

        Each batch of up to 1000 entries moves in one atomic script, so concurrent callers never move an entry twice.
        """
        moved = 0
        while True:
            batch = int(
                await self._promote(
                    keys=[self.keys.delayed, self.keys.queue(Priority.ON_PLAY), self.keys.queue(Priority.SCAN)],
                    args=[repr(self.clock()), _PROMOTE_BATCH],
                )
            )
            moved += batch
            if batch < _PROMOTE_BATCH:
                return moved

    @translate_errors
    async def claim(
        self,
        worker_id: str,
        *,
        queues: Collection[Priority] = (Priority.ON_PLAY, Priority.SCAN),
        block_s: float = 0.0,
    ) -> ClaimedJob | None:
        """Take the next job for ``worker_id``, on-play strictly before scan, into its processing list.

        One Lua script promotes due delayed jobs and takes the oldest job of the first non-empty list in
        ``queues`` (one round trip). With ``block_s > 0`` and nothing waiting, the call then blocks on the
        highest-priority list in ``queues`` for up to ``block_s`` seconds (``BLMOVE``) and, if that stays empty,
        looks at every list once more, so a new lower-priority job is noticed within ``block_s``; ``block_s == 0``
        never blocks (drain mode). Returns ``None`` when nothing could be claimed. An entry that is not a readable
        job is moved to the failed list (with the reason) and the next one is tried.
        """
        if block_s < 0:
            raise ValueError(f"block_s must be >= 0, got {block_s}")
        order = [p for p in (Priority.ON_PLAY, Priority.SCAN) if p in queues]
        if not order:
            raise ValueError("claim needs at least one queue")
        processing = self.keys.processing(worker_id)
        claim_keys = [self.keys.delayed, self.keys.queue(Priority.ON_PLAY), self.keys.queue(Priority.SCAN), processing]
        flags = ["1" if Priority.ON_PLAY in order else "0", "1" if Priority.SCAN in order else "0"]
        blocked = False
        while True:
            raw = as_optional_text(
                await self._claim(keys=claim_keys, args=[repr(self.clock()), _PROMOTE_BATCH, *flags])
            )
            if raw is None and block_s > 0 and not blocked:
                blocked = True
                # Redis >= 6 takes a decimal timeout; redis-py's stub says int.
                reply = await self.redis.blmove(
                    self.keys.queue(order[0]),
                    processing,
                    block_s,  # type: ignore[arg-type]
                    "RIGHT",
                    "LEFT",
                )
                raw = as_optional_text(reply)
                if raw is None:
                    continue
            if raw is None:
                return None
            try:
                return ClaimedJob(raw, decode_job(raw))
            except InvalidJobError as exc:
                log.error("unreadable queue entry moved to the failed list: %s", exc)
                await self._fail_raw(worker_id, raw, str(exc))

    @translate_errors
    async def ack(self, worker_id: str, claimed: ClaimedJob) -> bool:
        """Remove ``claimed`` from the worker's processing list; ``False`` when it was gone (re-delivered)."""
        return bool(await self.redis.lrem(self.keys.processing(worker_id), 1, claimed.raw))

    @translate_errors
    async def complete(
        self,
        worker_id: str,
        claimed: ClaimedJob,
        *,
        ready: AnalysisReady | None = None,
        cached: CachedAnalysis | None = None,
        cache_ttl_s: float | None = None,
    ) -> bool:
        """Finish ``claimed`` in one round trip: cache the result, announce it, acknowledge (§H.6 step 3's tail).

        ``cached`` is stored under ``result:{host}:{host_track_id}`` for ``cache_ttl_s`` seconds (required with it);
        ``ready`` is published on the track's channel and on ``analysis-ready`` (as :class:`EventBus` does). Call it
        after the results are committed to PostgreSQL. Returns what :meth:`ack` returns.
        """
        if cached is not None and (cache_ttl_s is None or cache_ttl_s <= 0):
            raise ValueError("a cached result needs a positive cache_ttl_s")
        async with self.redis.pipeline(transaction=False) as pipe:
            if cached is not None and cache_ttl_s is not None:
                pipe.set(self.keys.result(cached.track), encode_cached_analysis(cached), px=_ms(cache_ttl_s))
            if ready is not None:
                payload = encode_analysis_ready(ready)
                pipe.publish(self.keys.analysis_ready_channel(ready.track), payload)
                pipe.publish(self.keys.analysis_ready_all_channel, payload)
            pipe.lrem(self.keys.processing(worker_id), 1, claimed.raw)
            replies = await pipe.execute()
        return bool(replies[-1])

    @translate_errors
    async def retry_later(
        self, worker_id: str, claimed: ClaimedJob, delay_s: float, *, count_attempt: bool = True
    ) -> Job:
        """Put ``claimed`` into the delayed set, due in ``delay_s`` seconds, and acknowledge it, in one transaction.

        With ``count_attempt`` (a transient failure) the delayed job carries ``attempt + 1``; without it (the track
        lock was busy) the job is deferred unchanged. Returns the job as it was delayed.
        """
        if delay_s < 0:
            raise ValueError(f"delay_s must be >= 0, got {delay_s}")
        job = claimed.job.next_attempt() if count_attempt else claimed.job
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.zadd(self.keys.delayed, {encode_job(job): self.clock() + delay_s})
            pipe.lrem(self.keys.processing(worker_id), 1, claimed.raw)
            await pipe.execute()
        return job

    @translate_errors
    async def fail(self, worker_id: str, claimed: ClaimedJob, reason: str) -> None:
        """Give up on ``claimed``: record it with ``reason`` in the failed list and acknowledge it (one transaction)."""
        await self._fail_raw(worker_id, claimed.raw, reason)

    async def _fail_raw(self, worker_id: str, raw: str, reason: str) -> None:
        record = encode_failed_entry(raw, reason=reason, failed_at=dt.datetime.fromtimestamp(self.clock(), dt.UTC))
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.lpush(self.keys.failed, record)
            pipe.ltrim(self.keys.failed, 0, self.failed_jobs_kept - 1)
            pipe.lrem(self.keys.processing(worker_id), 1, raw)
            await pipe.execute()

    @translate_errors
    async def failed_entries(self, *, limit: int = 100) -> list[FailedEntry]:
        """The newest ``limit`` failed-list records, newest first (a record whose entry is unreadable has no job)."""
        records = await self.redis.lrange(self.keys.failed, 0, limit - 1)
        return [decode_failed_entry(as_text(record)) for record in records]

    @translate_errors
    async def processing(self, worker_id: str) -> list[str]:
        """The raw entries ``worker_id`` holds unacknowledged, newest first."""
        return [as_text(entry) for entry in await self.redis.lrange(self.keys.processing(worker_id), 0, -1)]

    # ----------------------------------------------------------------------------------------------------------
    # worker liveness and re-delivery

    @translate_errors
    async def register_worker(self, worker_id: str) -> None:
        """Add ``worker_id`` to ``workers`` and start its lease (one transaction)."""
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(self.keys.workers, worker_id)
            pipe.set(self.keys.lease(worker_id), "1", px=_ms(self.lease_s))
            await pipe.execute()

    @translate_errors
    async def heartbeat(self, worker_id: str, locks: Iterable[TokenLock] = ()) -> bool:
        """Refresh the lease of ``worker_id`` and renew the track locks it holds.

        Returns ``False`` when the worker had already been declared dead (its jobs were re-delivered to others);
        it is registered again, and the caller should treat the jobs it is running as possibly duplicated. A lock
        that was lost is logged and dropped by :meth:`TokenLock.renew`.
        """
        alive = bool(
            await self._heartbeat(
                keys=[self.keys.workers, self.keys.lease(worker_id)], args=[worker_id, _ms(self.lease_s)]
            )
        )
        if not alive:
            log.warning("worker %s had been declared dead; its claimed jobs were re-delivered", worker_id)
        for lock in list(locks):
            await lock.renew()
        return alive

    async def _registered(self) -> list[str]:
        return sorted(as_text(worker_id) for worker_id in await self.redis.smembers(self.keys.workers))

    async def _release(self, worker_id: str, mode: str) -> int:
        result = await self._release_worker(
            keys=[
                self.keys.workers,
                self.keys.lease(worker_id),
                self.keys.processing(worker_id),
                self.keys.queue(Priority.ON_PLAY),
                self.keys.queue(Priority.SCAN),
            ],
            args=[worker_id, mode],
        )
        return int(result)

    @translate_errors
    async def requeue_unfinished(self, worker_id: str) -> int:
        """Push every job ``worker_id`` holds back onto its priority list (taken next); returns how many."""
        return await self._release(worker_id, "requeue")

    @translate_errors
    async def unregister_worker(self, worker_id: str) -> int:
        """Clean shutdown: requeue the unfinished jobs, drop the lease and the registration; returns jobs requeued."""
        return await self._release(worker_id, "unregister")

    @translate_errors
    async def requeue_entries(self, worker_id: str, raws: Collection[str]) -> int:
        """Move the entries ``raws`` from the processing list of ``worker_id`` back to their priority lists (taken
        next); an entry no longer there is skipped. For a live worker's entries it is not running (a Redis that
        restarted from its append-only file can hold claims whose acknowledgement it lost). Returns how many moved.
        """
        moved = 0
        for raw in raws:
            try:
                target = self.keys.queue(decode_job(raw).priority)
            except InvalidJobError:
                target = self.keys.queue(Priority.SCAN)  # its claim records it as failed
            moved += int(await self._requeue_entry(keys=[self.keys.processing(worker_id), target], args=[raw]))
        return moved

    @translate_errors
    async def reap_dead_workers(self) -> int:
        """Re-deliver the jobs of every registered worker whose lease has expired, and unregister it.

        Each worker is handled by one atomic script, so concurrent reapers never deliver a job twice. Returns the
        number of jobs re-delivered by this call.
        """
        redelivered = 0
        for worker_id in await self._registered():
            moved = await self._release(worker_id, "reap")
            if moved >= 0:
                log.warning("worker %s is dead (lease expired): re-delivered %d job(s)", worker_id, moved)
                redelivered += moved
        return redelivered

    @translate_errors
    async def workers_alive(self) -> list[str]:
        """Registered workers whose lease is current, sorted."""
        workers = await self._registered()
        if not workers:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for worker_id in workers:
                pipe.exists(self.keys.lease(worker_id))
            leases = await pipe.execute()
        return [worker_id for worker_id, lease in zip(workers, leases, strict=True) if lease]

    @translate_errors
    async def tracks_with_jobs(self, *, page_size: int = 10_000) -> TrackPresence:
        """Tracks that have an analyze job anywhere in Redis: delayed, waiting or claimed by a registered worker
        (the reconciler compares this with PostgreSQL). Unreadable entries are skipped.

        Entries are read in pages of ``page_size``, so memory stays small with a million queued. The reads are not
        one snapshot; their order makes a job that moves meanwhile be seen at least once: the delayed set first
        (due entries move to a queue, read next), queues from the left (new jobs enter on the left and shift the
        pages onto entries already read; claims leave on the right into ``processing``, read last).
        """
        workers = await self._registered()
        found: list[npt.NDArray[np.uint64]] = []
        pages = [(self.keys.delayed, True)]
        pages += [(self.keys.queue(priority), False) for priority in (Priority.ON_PLAY, Priority.SCAN)]
        pages += [(self.keys.processing(worker_id), False) for worker_id in workers]
        from sidecar.jobqueue.presence import TrackPresence, track_digests

        for name, is_zset in pages:
            start = 0
            while True:
                stop = start + page_size - 1
                read = self.redis.zrange if is_zset else self.redis.lrange
                page = cast("list[bytes | str]", await read(name, start, stop))
                found.append(track_digests(k for k in map(job_track_key, map(as_text, page)) if k is not None))
                if len(page) < page_size:
                    break
                start += page_size
        return TrackPresence(found)

    @translate_errors
    async def depths(self) -> dict[str, int]:
        """Entries per place, by name.

        ``on_play`` and ``scan`` are waiting, ``delayed`` wait for a retry, ``processing`` are claimed and not
        acknowledged (summed over registered workers), ``failed`` were given up.
        """
        workers = await self._registered()
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self.keys.queue(Priority.ON_PLAY))
            pipe.llen(self.keys.queue(Priority.SCAN))
            pipe.zcard(self.keys.delayed)
            pipe.llen(self.keys.failed)
            for worker_id in workers:
                pipe.llen(self.keys.processing(worker_id))
            on_play, scan, delayed, failed, *processing = await pipe.execute()
        return {
            "on_play": int(on_play),
            "scan": int(scan),
            "delayed": int(delayed),
            "processing": sum(int(n) for n in processing),
            "failed": int(failed),
        }
