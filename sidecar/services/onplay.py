"""On-play requests: answer from the result cache or the database, or queue the track at on-play priority."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from sidecar.domain import Priority, TrackKey
from sidecar.jobqueue import CachedAnalysis
from sidecar.services.analysis import cached_from_summary
from sidecar.services.enqueue import enqueue_track_ids
from sidecar.services.runtime import Runtime
from sidecar.storage import analyses, tracks
from sidecar.storage.db import transaction


class OnPlayState(enum.StrEnum):
    """What an on-play request found."""

    READY = "ready"  # every enabled analyzer is current (or failed for good): ``analysis`` holds the results
    QUEUED = "queued"  # ``analyzers`` were queued at on-play priority; an AnalysisReady event follows
    NOT_FOUND = "not_found"  # the track is unknown (or gone from the library): sync first
    NO_FILE = "no_file"  # the track is known but has no readable file on the mount: nothing can analyse it


@dataclass(frozen=True, slots=True)
class OnPlayOutcome:
    """The answer to one on-play request."""

    state: OnPlayState
    track: TrackKey
    analysis: CachedAnalysis | None = None
    analyzers: tuple[str, ...] = ()  # queued analyzers (state QUEUED)


async def request_analysis(runtime: Runtime, track_key: TrackKey, versions: Mapping[str, int]) -> OnPlayOutcome:
    """Serve a track's analysis now if it is current, otherwise queue what is missing at on-play priority.

    Order: the Redis result cache (entries older than ``versions`` are misses), then PostgreSQL (a current stored
    analysis refills the cache), then the queue. Analyses that failed for good are not re-queued (the answer is
    READY with what exists). An unknown or missing track is NOT_FOUND; one without a readable file on the mount
    (unmappable path, not a regular file) is NO_FILE and nothing is queued. While an on-play job of the track
    waits, another request answers QUEUED without pushing a second job.
    """
    cached = await runtime.cache.get(track_key, required_versions=versions)
    if cached is not None:
        return OnPlayOutcome(OnPlayState.READY, track_key, analysis=cached)
    async with transaction(runtime.pool) as conn:
        record = await tracks.get_track_by_key(conn, track_key)
    if record is None or record.is_missing:
        return OnPlayOutcome(OnPlayState.NOT_FOUND, track_key)
    if record.path is None:
        return OnPlayOutcome(OnPlayState.NO_FILE, track_key)
    queued = await enqueue_track_ids(runtime, [record.id], versions, priority=Priority.ON_PLAY)
    due = queued[0].analyzers if queued else ()
    if due:
        return OnPlayOutcome(OnPlayState.QUEUED, track_key, analyzers=due)
    async with transaction(runtime.pool) as conn:
        summary = await analyses.get_analysis(conn, record.id)
    if summary is None:  # deleted in between
        return OnPlayOutcome(OnPlayState.NOT_FOUND, track_key)
    entry = cached_from_summary(summary)
    await runtime.cache.set(entry)
    return OnPlayOutcome(OnPlayState.READY, track_key, analysis=entry)
