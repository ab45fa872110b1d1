"""Tracks by their tempo and key features (the BPM-range and harmonic-mix playlists' candidates).

BPM conditions are written as ranges of ``f.bpm`` itself (half time: ``[low / 2, high / 2]``, double time:
``[low * 2, high * 2]``; exact in floating point), so the BPM index serves them at library scale.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from sidecar.storage.db import Connection


@dataclass(frozen=True, slots=True, kw_only=True)
class TempoTrack:
    """A present track with a BPM (and its key when known)."""

    track_id: int
    host: str
    host_track_id: str
    title: str
    artist: str | None
    album: str | None
    duration_s: float | None
    bpm: float
    key: str | None  # canonical spelling, e.g. "A minor"
    camelot: str | None
    bpm_alternative: float | None = None  # the other metrical level's tempo when the BPM is uncertain


_PARTS = {
    "columns": sql.SQL(
        "t.id, t.host, t.host_track_id, t.title, t.artist, t.album, t.duration_s, f.bpm, f.key, f.camelot,"
        " f.bpm_alternative"
    ),
    "source": sql.SQL("tracks t JOIN track_features f ON f.track_id = t.id"),
    "in_range": sql.SQL("""(f.bpm BETWEEN %(low)s AND %(high)s
       OR (%(half_double)s AND (f.bpm BETWEEN %(half_low)s AND %(half_high)s
                                OR f.bpm BETWEEN %(double_low)s AND %(double_high)s)))"""),
    "tags": sql.SQL("""
  AND (cardinality(%(moods)s::text[]) = 0 OR EXISTS (SELECT 1 FROM track_tags g WHERE g.track_id = t.id
       AND g.tag = ANY(%(moods)s::text[]) AND g.probability >= %(tag_p)s))
  AND (cardinality(%(styles)s::text[]) = 0 OR EXISTS (SELECT 1 FROM track_tags g WHERE g.track_id = t.id
       AND g.tag = ANY(%(styles)s::text[]) AND g.probability >= %(tag_p)s))
  AND NOT EXISTS (SELECT 1 FROM track_tags g WHERE g.track_id = t.id
       AND g.tag = ANY(%(exclude_tags)s::text[]) AND g.probability >= %(tag_p)s)"""),
}
"""Fragments of the queries below (``sql.SQL(...).format(**_PARTS)``)."""


def _tempo_track(r: tuple[Any, ...]) -> TempoTrack:
    return TempoTrack(
        track_id=int(r[0]),
        host=str(r[1]),
        host_track_id=str(r[2]),
        title=str(r[3]),
        artist=r[4],
        album=r[5],
        duration_s=r[6],
        bpm=float(r[7]),
        key=r[8],
        camelot=r[9],
        bpm_alternative=None if r[10] is None else float(r[10]),
    )


def _range_params(
    bpm_min: float,
    bpm_max: float,
    half_double: bool,
    moods: tuple[str, ...],
    styles: tuple[str, ...],
    exclude_tags: tuple[str, ...],
    tag_min_probability: float,
) -> dict[str, object]:
    if bpm_min > bpm_max:
        raise ValueError(f"bpm_min {bpm_min} is above bpm_max {bpm_max}")
    return {  # halves and doubles computed here: in SQL a tiny bound fails with a float underflow
        "low": bpm_min,
        "high": bpm_max,
        "half_low": bpm_min / 2,
        "half_high": bpm_max / 2,
        "double_low": bpm_min * 2,
        "double_high": bpm_max * 2,
        "half_double": half_double,
        "moods": list(moods),
        "styles": list(styles),
        "exclude_tags": list(exclude_tags),
        "tag_p": tag_min_probability,
    }


async def tempo_tracks(
    conn: Connection,
    *,
    bpm_min: float,
    bpm_max: float,
    half_double: bool = False,
    keyed_only: bool = False,
    track_id: int | None = None,
    moods: tuple[str, ...] = (),
    styles: tuple[str, ...] = (),
    exclude_tags: tuple[str, ...] = (),
    tag_min_probability: float = 0.3,
    limit: int = 5000,
) -> list[TempoTrack]:
    """Present tracks whose BPM is in ``[bpm_min, bpm_max]`` (or half/double of it with ``half_double``).

    ``keyed_only`` keeps tracks with a detected key; ``track_id`` keeps only that track. ``moods`` / ``styles``
    (canonical tag names; empty: no condition) keep tracks with at least one of them at probability >=
    ``tag_min_probability``; ``exclude_tags`` drops tracks with any of those. At most ``limit`` rows, ordered by
    BPM then id.
    """
    params = _range_params(bpm_min, bpm_max, half_double, moods, styles, exclude_tags, tag_min_probability)
    query = sql.SQL("""
        SELECT {columns}
        FROM {source}
        WHERE NOT t.is_missing AND f.bpm IS NOT NULL AND {in_range}
          AND (NOT %(keyed_only)s OR f.camelot IS NOT NULL)
          AND (%(track_id)s::bigint IS NULL OR t.id = %(track_id)s){tags}
        ORDER BY f.bpm, t.id
        LIMIT %(limit)s
        """).format(**_PARTS)
    cur = await conn.execute(
        query,
        {**params, "keyed_only": keyed_only, "track_id": track_id, "limit": limit},
    )
    return [_tempo_track(r) for r in await cur.fetchall()]


async def tempo_spread(
    conn: Connection,
    *,
    bpm_min: float,
    bpm_max: float,
    half_double: bool,
    limit: int,
    moods: tuple[str, ...] = (),
    styles: tuple[str, ...] = (),
    exclude_tags: tuple[str, ...] = (),
    tag_min_probability: float = 0.3,
) -> list[TempoTrack]:
    """At most ``limit`` of the tracks :func:`tempo_tracks` would match (no ``limit`` of its own), spread evenly
    over all of them in rising effective BPM (the BPM, else its double, else its half, whichever lies in the
    range; ties by id): of ``n`` matches, ranks ``floor(i * n / limit)`` for ``i`` in ``0..limit-1``, so every
    match when ``n <= limit``. Returned in that order."""
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    params = _range_params(bpm_min, bpm_max, half_double, moods, styles, exclude_tags, tag_min_probability)
    query = sql.SQL("""
        WITH matched AS (
            SELECT {columns},
                   CASE WHEN f.bpm BETWEEN %(low)s AND %(high)s THEN f.bpm
                        WHEN f.bpm * 2 BETWEEN %(low)s AND %(high)s THEN f.bpm * 2
                        ELSE f.bpm / 2 END AS effective
            FROM {source}
            WHERE NOT t.is_missing AND f.bpm IS NOT NULL AND {in_range}{tags}
        ), ranked AS (
            SELECT *, row_number() OVER (ORDER BY effective, id) - 1 AS rank, count(*) OVER () AS n FROM matched
        )
        SELECT id, host, host_track_id, title, artist, album, duration_s, bpm, key, camelot, bpm_alternative
        FROM ranked
        WHERE ((rank * %(limit)s + n - 1) / n) * n / %(limit)s = rank
        ORDER BY effective, id
        """).format(**_PARTS)
    cur = await conn.execute(
        query,
        {**params, "limit": limit},
    )
    return [_tempo_track(r) for r in await cur.fetchall()]


async def tempo_neighbours(
    conn: Connection,
    *,
    bpm: float,
    bpm_min: float,
    bpm_max: float,
    limit: int,
    min_key_confidence: float = 0.0,
) -> list[TempoTrack]:
    """The ``limit`` present tracks with a key whose BPM in ``[bpm_min, bpm_max]`` is nearest to ``bpm`` (ties by
    id), nearest first: two walks of the BPM index, up and down from ``bpm``. Tracks whose ``key_confidence``
    (0..1; none counts as 0) is below ``min_key_confidence`` are left out; a key set by hand has confidence 1, so
    it always passes."""
    if bpm_min > bpm_max:
        raise ValueError(f"bpm_min {bpm_min} is above bpm_max {bpm_max}")
    query = sql.SQL("""
        SELECT * FROM (
            ({side} f.bpm >= %(bpm)s AND f.bpm <= %(high)s ORDER BY f.bpm, t.id LIMIT %(limit)s)
            UNION ALL
            ({side} f.bpm < %(bpm)s AND f.bpm >= %(low)s ORDER BY f.bpm DESC, t.id LIMIT %(limit)s)
        ) near
        ORDER BY abs(bpm - %(bpm)s), id
        LIMIT %(limit)s
        """).format(
        side=sql.SQL(
            "SELECT {columns} FROM {source} WHERE NOT t.is_missing AND f.camelot IS NOT NULL"
            " AND coalesce(f.key_confidence, 0) >= %(min_key_confidence)s AND"
        ).format(**_PARTS)
    )
    cur = await conn.execute(
        query,
        {"bpm": bpm, "low": bpm_min, "high": bpm_max, "limit": limit, "min_key_confidence": min_key_confidence},
    )
    return [_tempo_track(r) for r in await cur.fetchall()]
