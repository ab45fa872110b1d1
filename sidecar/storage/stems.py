"""Bookkeeping of derived stem files (kept under the stems directory, never inside the music library).

One row per track that was ever asked for: ``state`` is ``none`` (evicted or never made), ``queued``, ``running``,
``ready`` (``is_separated``: the files exist at ``location``) or ``failed`` (``last_error`` says why).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from sidecar.storage.db import Connection

StemsState = Literal["none", "queued", "running", "ready", "failed"]

_COLUMNS = (
    "track_id, is_separated, location, size_bytes, separated_at, last_accessed_at, state, purpose, model,"
    " model_version, format, files, attempts, last_error, requested_at"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class StemsRecord:
    """Where a track's stems are, what made them and when they were last used (times in UTC)."""

    track_id: int
    is_separated: bool
    location: str | None
    size_bytes: int | None
    separated_at: datetime | None
    last_accessed_at: datetime | None
    state: str = "none"
    purpose: str | None = None
    model: str | None = None
    model_version: str | None = None
    format: str | None = None
    files: dict[str, Any] | None = None  # stem name -> size in bytes
    attempts: int = 0
    last_error: str | None = None
    requested_at: datetime | None = None


async def request_stems(conn: Connection, track_id: int, *, purpose: str) -> tuple[StemsRecord, bool]:
    """Ask for the track's stems: ``(row, True)`` when this call queued a separation, ``(row, False)`` when they
    are ready, queued or running already (a concurrent request waits for the same separation).

    A ``failed`` or ``none`` row is queued again with a fresh count of attempts. The row lock taken by the upsert
    serialises concurrent callers, so exactly one of them gets ``True``.
    """
    async with conn.cursor(row_factory=class_row(StemsRecord)) as cur:
        await cur.execute(
            f"""
            INSERT INTO stems (track_id, state, purpose, requested_at, attempts)
            VALUES (%s, 'queued', %s, now(), 0)
            ON CONFLICT (track_id) DO UPDATE SET state = 'queued', purpose = EXCLUDED.purpose,
                requested_at = now(), attempts = 0, last_error = NULL
            WHERE stems.state IN ('none', 'failed')
            RETURNING {_COLUMNS}
            """,  # noqa: S608 constant columns
            (track_id, purpose),
        )
        queued = await cur.fetchone()
    if queued is not None:
        return queued, True
    current = await get_stems(conn, track_id)
    assert current is not None
    return current, False


async def start_separation(conn: Connection, track_id: int) -> int | None:
    """Mark a queued (or re-delivered running) separation ``running`` and count the attempt; returns the attempt
    number, or ``None`` when there is nothing to do (ready, evicted or cancelled since it was queued)."""
    cur = await conn.execute(
        "UPDATE stems SET state = 'running', attempts = attempts + 1 WHERE track_id = %s"
        " AND state IN ('queued', 'running') RETURNING attempts",
        (track_id,),
    )
    row = await cur.fetchone()
    return None if row is None else int(row[0])


async def record_stems(
    conn: Connection,
    track_id: int,
    *,
    location: str,
    size_bytes: int,
    model: str | None = None,
    model_version: str | None = None,
    format: str | None = None,
    files: dict[str, int] | None = None,
) -> None:
    """Note that the track's stems now exist at ``location`` (``size_bytes`` in total); also counts as a use."""
    await conn.execute(
        """
        INSERT INTO stems (track_id, is_separated, state, location, size_bytes, separated_at, last_accessed_at,
                           model, model_version, format, files, last_error)
        VALUES (%s, true, 'ready', %s, %s, now(), now(), %s, %s, %s, %s, NULL)
        ON CONFLICT (track_id) DO UPDATE SET is_separated = true, state = 'ready', location = EXCLUDED.location,
            size_bytes = EXCLUDED.size_bytes, separated_at = now(), last_accessed_at = now(),
            model = EXCLUDED.model, model_version = EXCLUDED.model_version, format = EXCLUDED.format,
            files = EXCLUDED.files, last_error = NULL
        """,
        (track_id, location, size_bytes, model, model_version, format, None if files is None else Jsonb(files)),
    )


async def mark_failed(conn: Connection, track_id: int, reason: str) -> None:
    """The separation failed for good: ``failed`` with ``reason`` (a new request tries again)."""
    await conn.execute(
        "UPDATE stems SET state = 'failed', last_error = %s WHERE track_id = %s AND NOT is_separated",
        (reason, track_id),
    )


async def mark_retry(conn: Connection, track_id: int, reason: str) -> None:
    """The attempt failed and will be retried: back to ``queued`` with ``reason`` kept."""
    await conn.execute(
        "UPDATE stems SET state = 'queued', last_error = %s WHERE track_id = %s AND state = 'running'",
        (reason, track_id),
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
        await cur.execute(f"SELECT {_COLUMNS} FROM stems WHERE track_id = %s", (track_id,))  # noqa: S608 constant
        return await cur.fetchone()


async def list_stems(conn: Connection, *, states: tuple[str, ...] | None = None) -> list[StemsRecord]:
    """Every stems row (or those in ``states``), most recently used first."""
    async with conn.cursor(row_factory=class_row(StemsRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM stems WHERE %s::text[] IS NULL OR state = ANY(%s::text[])"  # noqa: S608
            " ORDER BY last_accessed_at DESC NULLS LAST, track_id",
            (None if states is None else list(states), None if states is None else list(states)),
        )
        return await cur.fetchall()


async def list_unused_stems(conn: Connection, *, unused_days: float, now: datetime | None = None) -> list[StemsRecord]:
    """Separated stems not used for ``unused_days`` days before ``now`` (default: the database's clock), least
    recently used first (candidates for deletion)."""
    async with conn.cursor(row_factory=class_row(StemsRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM stems WHERE is_separated"  # noqa: S608 constant columns
            " AND last_accessed_at < coalesce(%s::timestamptz, now()) - make_interval(secs => %s * 86400)"
            " ORDER BY last_accessed_at, track_id",
            (now, unused_days),
        )
        return await cur.fetchall()


async def list_separated_lru(conn: Connection) -> list[StemsRecord]:
    """Every separated track, least recently used first (quota eviction)."""
    async with conn.cursor(row_factory=class_row(StemsRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM stems WHERE is_separated"  # noqa: S608 constant columns
            " ORDER BY last_accessed_at NULLS FIRST, track_id"
        )
        return await cur.fetchall()


async def stems_totals(conn: Connection) -> tuple[int, int]:
    """``(separated tracks, bytes on disk)`` as recorded."""
    cur = await conn.execute("SELECT count(*), coalesce(sum(size_bytes), 0) FROM stems WHERE is_separated")
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


async def forget_stems(conn: Connection, track_id: int) -> None:
    """The track's stem files were deleted: keep the row, clear location, size and files (``state`` ``none``)."""
    await conn.execute(
        "UPDATE stems SET is_separated = false, state = 'none', location = NULL, size_bytes = NULL, files = NULL"
        " WHERE track_id = %s",
        (track_id,),
    )
