"""Per-track waveform overviews (table ``track_waveforms``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sidecar.domain import WaveformResult
from sidecar.storage.db import Connection


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredWaveform:
    """A track's waveform: per ``bucket_s`` seconds the lowest and highest sample (full scale 1.0)."""

    bucket_s: float
    minimum: list[float]
    maximum: list[float]
    version: int
    updated_at: datetime


async def store_waveform(conn: Connection, track_id: int, result: WaveformResult, *, version: int) -> None:
    """Write the track's waveform; one from a newer analyzer version is never overwritten by an older one."""
    await conn.execute(
        """
        INSERT INTO track_waveforms AS w (track_id, bucket_s, minimum, maximum, version)
        VALUES (%s, %s, %s::real[], %s::real[], %s)
        ON CONFLICT (track_id) DO UPDATE SET bucket_s = EXCLUDED.bucket_s, minimum = EXCLUDED.minimum,
            maximum = EXCLUDED.maximum, version = EXCLUDED.version, updated_at = now()
        WHERE w.version <= EXCLUDED.version
        """,
        (track_id, result.bucket_s, result.minimum.tolist(), result.maximum.tolist(), version),
    )


async def get_waveform(conn: Connection, track_id: int) -> StoredWaveform | None:
    """The track's stored waveform, or ``None``."""
    cur = await conn.execute(
        "SELECT bucket_s, minimum, maximum, version, updated_at FROM track_waveforms WHERE track_id = %s",
        (track_id,),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return StoredWaveform(
        bucket_s=float(row[0]),
        minimum=[float(v) for v in row[1]],
        maximum=[float(v) for v in row[2]],
        version=int(row[3]),
        updated_at=row[4],
    )
