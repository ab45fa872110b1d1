"""What operators ask: coverage per analyzer, queue depths, live workers, failures; and retrying failures."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from sidecar.domain import Priority
from sidecar.services.enqueue import enqueue_track_ids
from sidecar.services.runtime import Runtime
from sidecar.storage import library, status
from sidecar.storage.db import transaction


async def status_report(runtime: Runtime, versions: Mapping[str, int]) -> dict[str, Any]:
    """``{"analyzers": {name: {version, done, pending, queued, running, stale, failed}}, "queues": {...},
    "workers": [...]}`` (counts are tracks)."""
    async with transaction(runtime.pool) as conn:
        counts = await status.count_by_analyzer(conn, versions)
    return {
        "analyzers": {name: {"version": versions[name], **asdict(c)} for name, c in sorted(counts.items())},
        "queues": await runtime.queue.depths(),
        "workers": await runtime.queue.workers_alive(),
    }


async def fold_status_counts(runtime: Runtime) -> None:
    """Fold the status-count deltas and those of the present-track count (the scheduler does it each
    reconciliation, so they stay few even when nobody asks for the status or lists the library)."""
    async with transaction(runtime.pool) as conn:
        await status.fold_counts(conn)
        await library.fold_present_count(conn)


async def failed_analyses(runtime: Runtime) -> list[dict[str, Any]]:
    """Every failed (track, analyzer) with its reason, newest first."""
    async with transaction(runtime.pool) as conn:
        rows = await status.list_failed(conn)
    return [
        {
            "track_id": r.track_id,
            "host": r.host,
            "host_track_id": r.host_track_id,
            "path": r.path,
            "analyzer": r.analyzer,
            "attempts": r.attempts,
            "last_error": r.last_error,
            "updated_at": r.updated_at.isoformat(),
        }
        for r in rows
    ]


async def retry_failed(runtime: Runtime, versions: Mapping[str, int]) -> int:
    """Reset failed analyses to pending (fresh attempts) and queue their tracks at scan priority."""
    async with transaction(runtime.pool) as conn:
        track_ids = sorted({r.track_id for r in await status.list_failed(conn)})
        await status.reset_failed(conn, track_ids=track_ids)
    queued = await enqueue_track_ids(runtime, track_ids, versions, priority=Priority.SCAN)
    return sum(1 for q in queued if q.analyzers)
