"""Turn the host's now-playing signal (hosts.md §3a) into on-play analysis jobs.

Polls repeat the same plays, and hosts estimate a play's start from "minutes ago" or the position, so the
start time wobbles between polls: :class:`NowPlayingTracker` treats the same (user, track) with a start within
``same_play_s`` as the same play. Each new play's track is stored first when the sidecar does not know it yet
(``adapter.get_track``), then queued at on-play priority; tracks whose analyses are current are not queued.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from adapters.base import HostAdapter, NowPlaying, TrackNotFoundError
from sidecar.domain import Priority, TrackKey
from sidecar.services.enqueue import Enqueued, enqueue_track_ids
from sidecar.services.runtime import Runtime
from sidecar.services.sync import file_stat, track_upsert
from sidecar.storage import tracks
from sidecar.storage.db import transaction

log = logging.getLogger(__name__)


class NowPlayingTracker:
    """Remembers the plays seen in the last poll and reports only new ones.

    A play is ``(user, host_track_id, started_at)``; two sightings of the same user and track whose starts differ
    by at most ``same_play_s`` seconds are one play. Plays absent from a poll are forgotten, so playing a track
    again later counts as a new play.
    """

    def __init__(self, *, same_play_s: float = 90.0) -> None:
        if same_play_s < 0:
            raise ValueError("same_play_s must not be negative")
        self.same_play_s = same_play_s
        self._current: dict[tuple[str, str], datetime] = {}

    def new_plays(self, entries: Iterable[NowPlaying]) -> list[NowPlaying]:
        """The entries of this poll that are not plays already seen in the previous one (in input order)."""
        fresh: list[NowPlaying] = []
        current: dict[tuple[str, str], datetime] = {}
        for entry in entries:
            who_what = (entry.user, entry.host_track_id)
            known = self._current.get(who_what) or current.get(who_what)
            if known is None or abs((entry.started_at - known).total_seconds()) > self.same_play_s:
                fresh.append(entry)
                current[who_what] = entry.started_at
            else:
                current.setdefault(who_what, known)
        self._current = current
        return fresh


async def _known_track_id(runtime: Runtime, adapter: HostAdapter, host_track_id: str) -> int | None:
    """The stored id of the host's track, fetching and storing it first when it is unknown or missing."""
    key = TrackKey(adapter.kind.value, host_track_id)
    async with transaction(runtime.pool) as conn:
        record = await tracks.get_track_by_key(conn, key)
    if record is not None and not record.is_missing and record.path is not None:
        return record.id
    try:
        track = await adapter.get_track(host_track_id)
    except TrackNotFoundError:
        log.warning("now playing: %s does not know track %s any more; not queued", key.host, host_track_id)
        return None
    stat = await asyncio.to_thread(file_stat, track.local_path)
    path = track.local_path if stat is not None else None
    async with transaction(runtime.pool) as conn:
        outcome = await tracks.upsert_track(conn, track_upsert(key.host, track, path=path, stat=stat))
    if path is None:
        log.warning(
            "now playing: %s track %s has no readable file (%s); not queued",
            key.host,
            host_track_id,
            track.path_problem or f"{track.local_path} not a readable regular file on the mount",
        )
        return None
    return outcome.track_id


async def handle_now_playing(
    runtime: Runtime, adapter: HostAdapter, versions: Mapping[str, int], entries: Sequence[NowPlaying]
) -> list[Enqueued]:
    """Queue the tracks of ``entries`` (new plays) at on-play priority, storing unknown tracks first.

    Returns what was handed to the queue (an entry with no analyzers was already current and not queued).
    Host errors other than "track not found" propagate (the caller's next poll tries again).
    """
    track_ids: list[int] = []
    for host_track_id in dict.fromkeys(entry.host_track_id for entry in entries):
        track_id = await _known_track_id(runtime, adapter, host_track_id)
        if track_id is not None:
            track_ids.append(track_id)
    if not track_ids:
        return []
    queued = await enqueue_track_ids(runtime, track_ids, versions, priority=Priority.ON_PLAY)
    for item in queued:
        if item.analyzers:
            log.info("now playing: %s:%s queued on-play (%s)", item.host, item.host_track_id, ",".join(item.analyzers))
    return queued


async def poll_now_playing(
    runtime: Runtime, adapter: HostAdapter, versions: Mapping[str, int], tracker: NowPlayingTracker
) -> list[Enqueued]:
    """Ask the host what is playing, and queue the new plays (see :func:`handle_now_playing`)."""
    fresh = tracker.new_plays(await adapter.now_playing())
    return await handle_now_playing(runtime, adapter, versions, fresh) if fresh else []
