"""Rebuild the Redis queues from PostgreSQL, the source of truth (§H.6 step 8)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping

from sidecar.domain import Priority, TrackKey
from sidecar.jobqueue import RebuildItem, RebuildOutcome, rebuild_queues
from sidecar.services.jobs import jobs_for
from sidecar.services.runtime import Runtime
from sidecar.storage import status
from sidecar.storage.db import Connection, transaction

log = logging.getLogger(__name__)


async def rebuild_from_database(
    runtime: Runtime, versions: Mapping[str, int], *, force: bool = False
) -> RebuildOutcome:
    """Re-enqueue every pending, queued, running or stale analysis at scan priority, if Redis lost its data.

    Runs only when ``queue:epoch`` is missing (Redis restarted empty, or never rebuilt) unless ``force``; one
    caller at a time (a Redis lock), so workers starting together rebuild once. The open work is read in pages
    (``SONANTICA_REDIS__REBUILD_BATCH_SIZE`` tracks) through a server-side cursor and pushed page by page, so a
    million open tracks never sit in memory at once. Every open track is pushed, including rows written while the
    rebuild runs (callers such as :func:`~sidecar.services.enqueue.enqueue_track_ids` count on it); a job pushed
    twice that way is harmless (the worker checks the status first).
    """
    async with transaction(runtime.pool) as conn:
        await status.ensure_status(conn, versions)
    batch_size = runtime.settings.redis.rebuild_batch_size
    async with transaction(runtime.pool) as conn:
        return await rebuild_queues(
            runtime.redis,
            runtime.keys,
            _open_items(conn, versions, batch_size),
            lock_s=runtime.settings.redis.rebuild_lock_s,
            batch_size=batch_size,
            force=force,
        )


async def _open_items(conn: Connection, versions: Mapping[str, int], batch_size: int) -> AsyncIterator[RebuildItem]:
    async for batch in status.iter_open_work(conn, versions, updated_before=None, batch_size=batch_size):
        for item in batch:
            yield item.host, item.host_track_id, item.analyzers


async def requeue_lost_jobs(runtime: Runtime, versions: Mapping[str, int]) -> int:
    """Push a scan job for every track with open work in PostgreSQL but no job anywhere in Redis; returns how many.

    Repairs what a rebuild cannot see: the epoch is present, but a push failed after the rows were marked
    ``queued`` (Redis blipped between the two steps of an enqueue), or a job was lost otherwise. Tracks whose
    open rows changed after the Redis read began are left to the next run (they may be being enqueued now). Both
    sides are read in pages, so a million queued jobs cost a few MB, not hundreds. A job that moves while Redis is
    read can still be taken for lost and get a second job, which the worker's status check makes harmless.
    """
    async with transaction(runtime.pool) as conn:
        await status.ensure_status(conn, versions)
        checked_at = await status.database_now(conn)
    present = await runtime.queue.tracks_with_jobs()
    pushed = 0
    async with transaction(runtime.pool) as conn:
        async for batch in status.iter_open_work(conn, versions, updated_before=checked_at):
            lost = [item for item in batch if TrackKey(item.host, item.host_track_id) not in present]
            pushed += await runtime.queue.enqueue_many(jobs_for(lost, priority=Priority.SCAN))
    if pushed:
        log.warning("reconciler: %d track(s) had open work in PostgreSQL but no job in Redis; queued them", pushed)
    return pushed
