"""Turn "these tracks need analysis" into status rows and queue jobs, in the order §H.6 requires.

PostgreSQL first (rows ``queued``), then Redis: if the push fails, the rows stay ``queued`` and the reconciler
re-enqueues them, so no request is ever lost.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from sidecar.domain import Priority
from sidecar.jobqueue import get_epoch
from sidecar.services.jobs import jobs_for
from sidecar.services.reconcile import rebuild_from_database
from sidecar.services.runtime import Runtime
from sidecar.storage import status, tracks
from sidecar.storage.db import Pool, transaction

log = logging.getLogger(__name__)

BATCH_TRACKS = 1000
"""Tracks whose status rows are updated per transaction (three statements each) by :func:`enqueue_track_ids`."""

LOCAL_HOST = "local"
"""Host name of tracks enqueued by path (``sonantica enqueue PATH``); their host track id is the absolute path."""


@dataclass(frozen=True, slots=True)
class Enqueued:
    """One track handed to the queue, with the analyzers it still needs (empty: already current, not queued)."""

    track_id: int
    host: str
    host_track_id: str
    analyzers: tuple[str, ...]


async def enqueue_track_ids(
    runtime: Runtime, track_ids: Iterable[int], versions: Mapping[str, int], *, priority: Priority
) -> list[Enqueued]:
    """Queue every analyzer of ``versions`` that is missing, stale or unfinished for each track.

    Tracks whose analyses are all current (or failed: see ``sonantica failed --retry``) are not queued; at on-play
    priority a track whose on-play job is still waiting is not pushed again (one job however often it is played),
    and tracks without a readable file are left out (nothing could analyse them). When Redis
    has no queue epoch (new, or restarted empty) the queues are rebuilt from PostgreSQL first, so the rebuild and
    this call never push the same work twice. Status rows are updated :data:`BATCH_TRACKS` tracks per
    transaction (a few statements each); the jobs are pushed after the last batch.
    """
    rebuilt = False
    if await get_epoch(runtime.redis, runtime.keys) is None:
        rebuilt = (await rebuild_from_database(runtime, versions)).ran  # pushed every open track at scan priority
    outcome: list[Enqueued] = []
    due: list[status.TrackWork] = []
    ids = list(track_ids)
    for start in range(0, len(ids), BATCH_TRACKS):
        async with transaction(runtime.pool) as conn:
            work = await status.queue_due(conn, ids[start : start + BATCH_TRACKS], versions)
        due += [item for item in work if item.analyzers and not (rebuilt and priority is Priority.SCAN)]
        outcome += [Enqueued(item.track_id, item.host, item.host_track_id, item.analyzers) for item in work]
    jobs = jobs_for(due, priority=priority)
    if priority is Priority.ON_PLAY:  # repeated plays while a job waits push nothing more
        ttl_s = runtime.settings.worker.lock_s
        jobs = [job for job in jobs if await runtime.queue.reserve_on_play(job.track, ttl_s=ttl_s)]
    await runtime.queue.enqueue_many(jobs)
    return outcome


async def register_local_files(pool: Pool, paths: Sequence[Path]) -> list[int]:
    """Record files named on the command line as tracks of the ``local`` host (id = absolute path)."""
    ids: list[int] = []
    async with transaction(pool) as conn:
        for path in paths:
            resolved = path.resolve()
            stat = resolved.stat() if resolved.is_file() else None
            saved = await tracks.upsert_track(
                conn,
                tracks.TrackUpsert(
                    host=LOCAL_HOST,
                    host_track_id=str(resolved),
                    title=resolved.stem,
                    path=str(resolved),
                    host_path=str(resolved),
                    size_bytes=None if stat is None else stat.st_size,
                    mtime_ns=None if stat is None else stat.st_mtime_ns,
                ),
            )
            ids.append(saved.track_id)
    return ids
