"""Rebuild the Redis queues from PostgreSQL, the source of truth (§H.6 step 8)."""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.jobqueue import RebuildOutcome, rebuild_queues
from sidecar.services.runtime import Runtime
from sidecar.storage import status
from sidecar.storage.db import transaction


async def rebuild_from_database(
    runtime: Runtime, versions: Mapping[str, int], *, force: bool = False
) -> RebuildOutcome:
    """Re-enqueue every pending, queued, running or stale analysis at scan priority, if Redis lost its data.

    Runs only when ``queue:epoch`` is missing (Redis restarted empty, or never rebuilt) unless ``force``; one
    caller at a time (a Redis lock), so workers starting together rebuild once.
    """
    async with transaction(runtime.pool) as conn:
        await status.ensure_status(conn, versions)
        work = await status.list_open_work(conn, versions)
    return await rebuild_queues(
        runtime.redis,
        runtime.keys,
        [(item.host, item.host_track_id, item.analyzers) for item in work],
        lock_s=runtime.settings.redis.rebuild_lock_s,
        batch_size=runtime.settings.redis.rebuild_batch_size,
        force=force,
    )
