"""Per-track mood/genre/instrumentation/era tag probabilities (table ``track_tags``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from sidecar.errors import StorageError
from sidecar.storage.db import Connection


@dataclass(frozen=True, slots=True, kw_only=True)
class StoredTags:
    """A track's tags: ``probabilities`` (canonical tag -> 0..1) most probable first, from ``model`` at ``version``."""

    model: str
    version: int
    probabilities: dict[str, float]


async def store_tags(
    conn: Connection, track_id: int, *, model: str, version: int, tags: Sequence[tuple[str, float]]
) -> bool:
    """Replace the track's tags with ``tags`` (``(canonical name, probability)`` pairs) from ``model``.

    Tags from a newer analyzer version are never overwritten by an older one (a re-delivered job from an older
    worker); returns whether the tags were written. Raises ``StorageError`` for a probability outside 0..1 or not
    finite, or a name that is not lower case.
    """
    names = [name for name, _ in tags]
    values = [float(p) for _, p in tags]
    bad = [f"{n}={p}" for n, p in zip(names, values, strict=True) if not (math.isfinite(p) and 0.0 <= p <= 1.0)]
    if bad:
        raise StorageError(f"tag probabilities of track {track_id} must be within 0..1: {', '.join(bad)}")
    if any(name != name.lower() or not name for name in names):
        raise StorageError(f"tag names of track {track_id} must be lower case and not empty: {names}")
    cur = await conn.execute("SELECT max(version) FROM track_tags WHERE track_id = %s", (track_id,))
    row = await cur.fetchone()
    if row is not None and row[0] is not None and int(row[0]) > version:
        return False
    await conn.execute("DELETE FROM track_tags WHERE track_id = %s", (track_id,))
    await conn.execute(
        """
        INSERT INTO track_tags (track_id, tag, probability, model, version)
        SELECT %s, t.tag, t.probability, %s, %s FROM unnest(%s::text[], %s::real[]) AS t(tag, probability)
        """,
        (track_id, model, version, names, values),
    )
    return True


async def get_tags(conn: Connection, track_id: int) -> StoredTags | None:
    """The track's stored tags, most probable first (ties by name); ``None`` when it has none."""
    cur = await conn.execute(
        "SELECT tag, probability, model, version FROM track_tags WHERE track_id = %s ORDER BY probability DESC, tag",
        (track_id,),
    )
    rows = await cur.fetchall()
    if not rows:
        return None
    return StoredTags(
        model=str(rows[0][2]),
        version=int(rows[0][3]),
        probabilities={str(tag): round(float(probability), 4) for tag, probability, _, _ in rows},
    )
