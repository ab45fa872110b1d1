"""Tracks by their tempo and key features (the BPM-range and harmonic-mix playlists' candidates)."""

from __future__ import annotations

from dataclasses import dataclass

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
    if bpm_min > bpm_max:
        raise ValueError(f"bpm_min {bpm_min} is above bpm_max {bpm_max}")
    cur = await conn.execute(
        """
        SELECT t.id, t.host, t.host_track_id, t.title, t.artist, t.album, t.duration_s, f.bpm, f.key, f.camelot
        FROM tracks t JOIN track_features f ON f.track_id = t.id
        WHERE NOT t.is_missing AND f.bpm IS NOT NULL
          AND (f.bpm BETWEEN %(low)s AND %(high)s
               OR (%(half_double)s AND (f.bpm * 2 BETWEEN %(low)s AND %(high)s
                                        OR f.bpm / 2 BETWEEN %(low)s AND %(high)s)))
          AND (NOT %(keyed_only)s OR f.camelot IS NOT NULL)
          AND (%(track_id)s::bigint IS NULL OR t.id = %(track_id)s)
          AND (cardinality(%(moods)s::text[]) = 0 OR EXISTS (SELECT 1 FROM track_tags g WHERE g.track_id = t.id
               AND g.tag = ANY(%(moods)s::text[]) AND g.probability >= %(tag_p)s))
          AND (cardinality(%(styles)s::text[]) = 0 OR EXISTS (SELECT 1 FROM track_tags g WHERE g.track_id = t.id
               AND g.tag = ANY(%(styles)s::text[]) AND g.probability >= %(tag_p)s))
          AND NOT EXISTS (SELECT 1 FROM track_tags g WHERE g.track_id = t.id
               AND g.tag = ANY(%(exclude_tags)s::text[]) AND g.probability >= %(tag_p)s)
        ORDER BY f.bpm, t.id
        LIMIT %(limit)s
        """,
        {
            "low": bpm_min,
            "high": bpm_max,
            "half_double": half_double,
            "keyed_only": keyed_only,
            "track_id": track_id,
            "moods": list(moods),
            "styles": list(styles),
            "exclude_tags": list(exclude_tags),
            "tag_p": tag_min_probability,
            "limit": limit,
        },
    )
    return [
        TempoTrack(
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
        )
        for r in await cur.fetchall()
    ]
