"""Per-host sync bookkeeping: when the last complete deep sync ended and when the last complete listings began."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sidecar.storage.db import Connection


@dataclass(frozen=True, slots=True)
class SyncState:
    """A host's sync times (timezone-aware; ``None``: never)."""

    deep_synced_at: datetime | None
    listed_at: datetime | None
    full_listed_at: datetime | None


async def get_sync_state(conn: Connection, host: str) -> SyncState:
    """The sync times of ``host`` (all ``None`` before its first complete sync)."""
    cur = await conn.execute(
        "SELECT deep_synced_at, listed_at, full_listed_at FROM host_sync_state WHERE host = %s", (host,)
    )
    row = await cur.fetchone()
    return SyncState(None, None, None) if row is None else SyncState(*row)


async def record_deep_sync(conn: Connection, host: str, at: datetime) -> None:
    """Remember that a complete deep sync of ``host`` ended at ``at`` (timezone-aware)."""
    await conn.execute(
        "INSERT INTO host_sync_state (host, deep_synced_at) VALUES (%s, %s)"
        " ON CONFLICT (host) DO UPDATE SET deep_synced_at = EXCLUDED.deep_synced_at",
        (host, at),
    )


async def record_listing(conn: Connection, host: str, began_at: datetime, *, full: bool) -> None:
    """Remember that a complete listing of ``host`` (a full one when ``full``) began at ``began_at``."""
    await conn.execute(
        "INSERT INTO host_sync_state (host, listed_at, full_listed_at) VALUES (%(host)s, %(at)s, %(full_at)s)"
        " ON CONFLICT (host) DO UPDATE SET listed_at = EXCLUDED.listed_at,"
        " full_listed_at = coalesce(EXCLUDED.full_listed_at, host_sync_state.full_listed_at)",
        {"host": host, "at": began_at, "full_at": began_at if full else None},
    )
