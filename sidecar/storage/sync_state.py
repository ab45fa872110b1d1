"""Per-host sync bookkeeping: when the last complete deep sync ended."""

from __future__ import annotations

from datetime import datetime

from sidecar.storage.db import Connection


async def last_deep_sync(conn: Connection, host: str) -> datetime | None:
    """When the last complete deep sync of ``host`` ended, or ``None`` when it never had one."""
    cur = await conn.execute("SELECT deep_synced_at FROM host_sync_state WHERE host = %s", (host,))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def record_deep_sync(conn: Connection, host: str, at: datetime) -> None:
    """Remember that a complete deep sync of ``host`` ended at ``at`` (timezone-aware)."""
    await conn.execute(
        "INSERT INTO host_sync_state (host, deep_synced_at) VALUES (%s, %s)"
        " ON CONFLICT (host) DO UPDATE SET deep_synced_at = EXCLUDED.deep_synced_at",
        (host, at),
    )
