"""Bookkeeping of derived stem files (kept under the stems directory, never inside the music library)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from sidecar.storage.db import Connection


@dataclass(frozen=True, slots=True, kw_only=True)
class StemsRecord:
    """Where a track's stems are and when they were last used."""

    track_id: int
    is_separated: bool
    location: str | None
    size_bytes: int | None
    separated_at: datetime | None
    last_accessed_at: datetime | None


async def record_stems(conn: Connection, track_id: int, *, location: str, size_bytes: int) -> None:
    """Note that the track's stems now exist at ``location`` (``size_bytes`` in total); also counts as a use."""
    await conn.execute(
        """
        INSERT INTO stems (track_id, is_separated, location, size_bytes, separated_at, last_accessed_at)
        VALUES (%s, true, %s, %s, now(), now())
        ON CONFLICT (track_id) DO UPDATE SET is_separated = true, location = EXCLUDED.location,
            size_bytes = EXCLUDED.size_bytes, separated_at = now(), last_accessed_at = now()
        """,
        (track_id, location, size_bytes),
    )


async def touch_stems(conn: Connection, track_id: int) -> bool:
    """Record a use of the track's stems; ``False`` when it has none."""
    cur = await conn.execute(
        "UPDATE stems SET last_accessed_at = now() WHERE track_id = %s AND is_separated", (track_id,)
    )
    return cur.rowcount == 1


async def get_stems(conn: Connection, track_id: int) -> StemsRecord | None:
    """The track's stems row, or ``None``."""
    async with conn.cursor(row_factory=class_row(StemsRecord)) as cur:
        await cur.execute(
            "SELECT track_id, is_separated, location, size_bytes, separated_at, last_accessed_at"
            " FROM stems WHERE track_id = %s",
            (track_id,),
        )
        return await cur.fetchone()


async def list_unused_stems(conn: Connection, *, unused_days: int) -> list[StemsRecord]:
    """Separated stems not used for ``unused_days`` days (candidates for deletion), least recently used first."""
    async with conn.cursor(row_factory=class_row(StemsRecord)) as cur:
        await cur.execute(
            "SELECT track_id, is_separated, location, size_bytes, separated_at, last_accessed_at FROM stems"
            " WHERE is_separated AND last_accessed_at < now() - make_interval(days => %s)"
            " ORDER BY last_accessed_at, track_id",
            (unused_days,),
        )
        return await cur.fetchall()


async def forget_stems(conn: Connection, track_id: int) -> None:
    """The track's stem files were deleted: keep the row, clear location and size."""
    await conn.execute(
        "UPDATE stems SET is_separated = false, location = NULL, size_bytes = NULL WHERE track_id = %s", (track_id,)
    )
