"""Queue jobs for the open work PostgreSQL lists (the one place a :class:`TrackWork` becomes an ``AnalyzeTrack``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from sidecar.domain import Priority
from sidecar.jobqueue import AnalyzeTrack
from sidecar.storage.status import TrackWork


def jobs_for(work: Iterable[TrackWork], *, priority: Priority) -> list[AnalyzeTrack]:
    """One job per track of ``work`` for its open analyzers, all stamped with the current time (UTC)."""
    now = dt.datetime.now(dt.UTC)
    return [
        AnalyzeTrack(
            host=item.host,
            host_track_id=item.host_track_id,
            priority=priority,
            analyzers=item.analyzers,
            enqueued_at=now,
        )
        for item in work
    ]
