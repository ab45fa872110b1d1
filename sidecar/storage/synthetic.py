"""A generated library in bulk, for the scale benchmark and its fast test: tracks, features and status rows.

Everything is made by ``INSERT ... SELECT generate_series`` in the server, so a million tracks take seconds, not a
million round trips. Values are deterministic functions of the track number ``g`` (1-based): artist ``g % 5000``,
album ``g % 10000``, BPM 70-180, one of the 24 keys and a loudness of -20..-5 LUFS (by track id); every
``missing_every``-th track is missing and every ``pathless_every``-th has no readable file. Status rows cycle
through the states of :data:`STATE_CYCLE`, one row per analyzer of ``versions``, with every ``stale_every``-th
``done`` row one version behind. Never used by the product: benchmarks and tests only.
"""

from __future__ import annotations

from collections.abc import Mapping

from sidecar.domain import PITCH_CLASSES, KeySignature
from sidecar.storage.db import Connection

KEYS = tuple(KeySignature(tonic, mode) for tonic in PITCH_CLASSES for mode in ("major", "minor"))

STATE_CYCLE = ("done", "done", "done", "pending", "queued", "running", "failed")
"""The state of status row ``g`` is ``STATE_CYCLE[(g + analyzer number) % 7]``."""


async def insert_tracks(
    conn: Connection,
    count: int,
    *,
    host: str = "bench",
    path_prefix: str = "/music/bench",
    missing_every: int = 0,
    pathless_every: int = 0,
) -> tuple[int, int]:
    """Insert tracks ``1..count`` of ``host`` (host track id ``str(g)``, path ``{path_prefix}/{g}.flac``) with
    features; ``*_every`` 0 means none. Returns the first and last new ``tracks.id``."""
    cur = await conn.execute(
        """
        INSERT INTO tracks (host, host_track_id, path, host_path, size_bytes, mtime_ns, title, artist, album,
                            duration_s, is_missing)
        SELECT %(host)s, g::text,
               CASE WHEN %(pathless)s > 0 AND g %% %(pathless)s = 0 THEN NULL
                    ELSE %(prefix)s || '/' || g || '.flac' END,
               %(prefix)s || '/' || g || '.flac', 1000 + g, g::bigint * 1000000000,
               'Song ' || g, 'Artist ' || (g %% 5000), 'Album ' || (g %% 10000), 120 + g %% 240,
               %(missing)s > 0 AND g %% %(missing)s = 0
        FROM generate_series(1, %(count)s) AS g
        RETURNING id
        """,
        {"host": host, "prefix": path_prefix, "count": count, "missing": missing_every, "pathless": pathless_every},
    )
    ids = [int(row[0]) for row in await cur.fetchall()]
    first, last = min(ids), max(ids)
    await conn.execute(
        """
        INSERT INTO track_features (track_id, bpm, key, camelot, loudness_lufs)
        SELECT id, 70 + (id * 7919 %% 11000) / 100.0, (%s::text[])[id * 31 %% 24 + 1], (%s::text[])[id * 31 %% 24 + 1],
               -20 + (id * 104729 %% 1500) / 100.0
        FROM tracks WHERE id BETWEEN %s AND %s
        """,
        ([k.name for k in KEYS], [k.camelot for k in KEYS], first, last),
    )
    return first, last


async def insert_status(
    conn: Connection, versions: Mapping[str, int], first_id: int, last_id: int, *, stale_every: int = 0
) -> int:
    """One status row per analyzer of ``versions`` for tracks ``first_id..last_id`` (states as in the module
    docstring). Returns the rows inserted."""
    names = sorted(versions)
    cur = await conn.execute(
        """
        INSERT INTO analysis_status (track_id, analyzer, version, state, attempts)
        SELECT t.id, a.name,
               CASE WHEN %(stale)s > 0 AND t.id %% %(stale)s = 0 AND a.version > 0 THEN a.version - 1
                    ELSE a.version END,
               (%(states)s::text[])[(t.id + a.n) %% 7 + 1], 0
        FROM tracks t
        CROSS JOIN unnest(%(names)s::text[], %(versions)s::int[]) WITH ORDINALITY AS a(name, version, n)
        WHERE t.id BETWEEN %(first)s AND %(last)s
        """,
        {
            "stale": stale_every,
            "states": list(STATE_CYCLE),
            "names": names,
            "versions": [versions[n] for n in names],
            "first": first_id,
            "last": last_id,
        },
    )
    return cur.rowcount
