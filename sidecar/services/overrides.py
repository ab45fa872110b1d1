"""A user's BPM and key for a track (``PATCH /api/tracks/{id}/overrides``, ``sonantica override``): stored over the
analyzers' readings, then the cached analysis is dropped and the host's tags are rewritten where it takes them."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from adapters.base import HostAdapter, HostError
from sidecar.domain import KeySignature, TrackKey
from sidecar.errors import StorageUnavailableError
from sidecar.services.runtime import Runtime
from sidecar.services.writeback import write_back_track, writes_tags
from sidecar.storage import analyses, overrides
from sidecar.storage.analyses import AnalysisSummary
from sidecar.storage.db import transaction

log = logging.getLogger(__name__)


async def override_track(
    runtime: Runtime,
    track_id: int,
    changes: Mapping[str, float | KeySignature | None],
    adapter: HostAdapter | None,
) -> AnalysisSummary:
    """Set (a value) or remove (``None``) the user's "bpm" / "key" of a track and return its analysis afterwards.

    Playlists, filters and the per-key search indexes use the new values at once. The host's tags are rewritten
    when ``adapter`` writes tags (Jellyfin); a host that is down is logged, not raised (`sonantica host
    write-back` retries). Raises ``NotFoundError`` for an unknown track, ``ValueError`` for a value out of range.
    """
    async with transaction(runtime.pool) as conn:
        await overrides.update_overrides(conn, track_id, changes)  # NotFoundError for an unknown track
        summary = await analyses.get_analysis(conn, track_id)
    assert summary is not None  # the track was there, in the same transaction
    key = TrackKey(summary["host"], summary["host_track_id"])
    await runtime.cache.invalidate(key)
    if adapter is not None and writes_tags(adapter):  # write_back_track skips another host's track
        try:
            await write_back_track(runtime, adapter, key)
        except (HostError, ValueError, StorageUnavailableError) as exc:
            log.warning("tags of track %d not written (%s); `sonantica host write-back` retries", track_id, exc)
    return summary
