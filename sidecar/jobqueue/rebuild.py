"""Refilling the queues after Redis lost its data (§H.6 flow step 8), and the ``queue:epoch`` marker.

Redis holds only derived state: the caller (the worker, or ``sonantica queue rebuild``) reads the tracks whose
analyses are pending, queued, running or stale from PostgreSQL and hands them over as
``(host, host_track_id, analyzers)`` items; this module pushes them as scan jobs under a rebuild lock and then
writes the epoch. It speaks no SQL.
"""

from __future__ import annotations

import datetime as dt
import logging
import secrets
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Sequence
from dataclasses import dataclass

from redis.asyncio import Redis

from sidecar.domain import Priority
from sidecar.jobqueue.connection import as_optional_text, translate_errors
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.locks import TokenLock
from sidecar.jobqueue.messages import AnalyzeTrack, encode_job

log = logging.getLogger(__name__)

RebuildItem = tuple[str, str, Sequence[str]]
"""``(host, host_track_id, analyzers)``: one track and the analyzers it still needs."""


@dataclass(frozen=True, slots=True)
class RebuildOutcome:
    """What :func:`rebuild_queues` did: ``ran`` is ``False`` when the epoch was present or another worker rebuilds."""

    ran: bool
    jobs_pushed: int
    epoch: str | None


@translate_errors
async def get_epoch(redis: Redis, keys: Keys) -> str | None:
    """The value of ``queue:epoch``, or ``None`` when Redis has lost its data (or never had a rebuild)."""
    return as_optional_text(await redis.get(keys.epoch))


@translate_errors
async def set_epoch(redis: Redis, keys: Keys, value: str | None = None) -> str:
    """Write ``queue:epoch`` (default: the current UTC time and a random suffix) and return the value written."""
    epoch = value if value is not None else f"{dt.datetime.now(dt.UTC).isoformat()}/{secrets.token_hex(4)}"
    await redis.set(keys.epoch, epoch)
    return epoch


async def _items(source: AsyncIterable[RebuildItem] | Iterable[RebuildItem]) -> AsyncIterator[RebuildItem]:
    if isinstance(source, AsyncIterable):
        async for item in source:
            yield item
    else:
        for item in source:
            yield item


@translate_errors
async def rebuild_queues(
    redis: Redis,
    keys: Keys,
    source: AsyncIterable[RebuildItem] | Iterable[RebuildItem],
    *,
    lock_s: float,
    batch_size: int = 1000,
    force: bool = False,
) -> RebuildOutcome:
    """Push a scan job for every item of ``source`` and write ``queue:epoch``, if the epoch is missing.

    One caller at a time: the rebuild takes ``lock:rebuild`` (``SET NX`` with ``lock_s``, renewed after every
    batch) and re-checks the epoch under it, so workers starting together rebuild once. Jobs go out in batches of
    ``batch_size`` (one variadic ``LPUSH`` each). ``force`` rebuilds even when the epoch exists (operators;
    duplicates of waiting jobs are harmless). An item with an invalid host, id or analyzer list raises
    ``ValueError`` naming it; the batches already pushed stay queued and the epoch is not written, so the next
    attempt starts over.

    Returns
    -------
    RebuildOutcome
        ``ran=False`` (nothing pushed) when the epoch was present and ``force`` is off, or when another caller
        holds the rebuild lock.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not force and await redis.exists(keys.epoch):
        return RebuildOutcome(ran=False, jobs_pushed=0, epoch=await get_epoch(redis, keys))
    lock = TokenLock(redis, keys.rebuild_lock, ttl_s=lock_s)
    if not await lock.acquire():
        log.info("another process is rebuilding the queues")
        return RebuildOutcome(ran=False, jobs_pushed=0, epoch=None)
    try:
        if not force and await redis.exists(keys.epoch):
            return RebuildOutcome(ran=False, jobs_pushed=0, epoch=await get_epoch(redis, keys))
        pushed = 0
        batch: list[str] = []
        now = dt.datetime.now(dt.UTC)
        async for host, host_track_id, analyzers in _items(source):
            job = AnalyzeTrack(
                host=host,
                host_track_id=host_track_id,
                priority=Priority.SCAN,
                analyzers=tuple(analyzers),
                enqueued_at=now,
            )
            batch.append(encode_job(job))
            if len(batch) == batch_size:
                pushed += await _push(redis, keys, batch, lock)
                batch = []
        if batch:
            pushed += await _push(redis, keys, batch, lock)
        epoch = await set_epoch(redis, keys)
        log.info("queues rebuilt: %d scan job(s) pushed, epoch %s", pushed, epoch)
        return RebuildOutcome(ran=True, jobs_pushed=pushed, epoch=epoch)
    finally:
        await lock.release()


async def _push(redis: Redis, keys: Keys, batch: list[str], lock: TokenLock) -> int:
    await redis.lpush(keys.queue(Priority.SCAN), *batch)
    if not await lock.renew():
        log.warning("the rebuild lock expired during the rebuild; another process may push duplicates")
    return len(batch)
