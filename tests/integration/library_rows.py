"""Rows the storage tests start from."""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.storage import status, tracks
from sidecar.storage.db import Pool, transaction


async def add_track(
    pool: Pool, versions: Mapping[str, int], host_track_id: str = "t1", *, host: str = "navidrome"
) -> int:
    """A track ``host_track_id`` of ``host`` at ``/music/<host_track_id>.flac`` with a status row for each of
    ``versions`` (analyzer name -> version); returns its id."""
    async with transaction(pool) as conn:
        upsert = tracks.TrackUpsert(
            host=host,
            host_track_id=host_track_id,
            title=host_track_id,
            path=f"/music/{host_track_id}.flac",
            size_bytes=1,
            mtime_ns=1,
        )
        track_id = (await tracks.upsert_track(conn, upsert)).track_id
        await status.ensure_status(conn, versions)
    return track_id
