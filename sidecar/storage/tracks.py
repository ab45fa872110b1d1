"""Tracks: one row per (host, host_track_id), with the mapped file's size and mtime to notice changed files."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from sidecar.domain import TrackKey
from sidecar.storage.db import Connection


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackUpsert:
    """What a sync (or a local enqueue) knows about a track; ``host`` is ``jellyfin``, ``navidrome`` or ``local``.

    ``size_bytes`` / ``mtime_ns`` describe the file on the sidecar's mount; ``None`` keeps the stored value.
    ``host_fingerprint`` is a sync's hash of the host's facts (stored as given: ``None`` clears it, so the next sync
    checks the track in full).
    """

    host: str
    host_track_id: str
    title: str
    path: str | None = None  # the file on the sidecar's read-only mount; None when it cannot be mapped
    host_path: str | None = None  # the path as the host reports it
    size_bytes: int | None = None
    mtime_ns: int | None = None  # nanoseconds since the epoch
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    genres: tuple[str, ...] = ()
    duration_s: float | None = None
    library: str | None = None  # host library / music folder id
    host_fingerprint: int | None = None  # signed 64-bit
    host_bpm: float | None = None  # BPM from the file's tags as the host reports it; None when none


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackRecord:
    """A stored track."""

    id: int
    host: str
    host_track_id: str
    title: str
    path: str | None
    host_path: str | None
    size_bytes: int | None
    mtime_ns: int | None
    artist: str | None
    album: str | None
    album_artist: str | None
    genres: list[str]
    duration_s: float | None
    codec: str | None  # from the decoder, once analysed
    sample_rate_hz: int | None
    channels: int | None
    library: str | None
    is_missing: bool
    created_at: datetime
    updated_at: datetime

    @property
    def key(self) -> TrackKey:
        """The host identity of this track."""
        return TrackKey(self.host, self.host_track_id)


@dataclass(frozen=True, slots=True)
class UpsertOutcome:
    """Result of :func:`upsert_track`: ``file_changed`` means its analyses were set back to pending; ``written``
    that the row was inserted or updated (:func:`upsert_tracks` leaves unchanged rows unwritten)."""

    track_id: int
    created: bool
    file_changed: bool
    written: bool = True


_COLUMNS = (
    "id, host, host_track_id, title, path, host_path, size_bytes, mtime_ns, artist, album, album_artist, genres,"
    " duration_s, codec, sample_rate_hz, channels, library, is_missing, created_at, updated_at"
)

_LOCK_EXISTING = """
SELECT size_bytes, mtime_ns FROM tracks WHERE host = %s AND host_track_id = %s FOR UPDATE
"""

_UPSERT = """
INSERT INTO tracks AS t (host, host_track_id, title, path, host_path, size_bytes, mtime_ns, artist, album,
                         album_artist, genres, duration_s, library, host_fingerprint, host_bpm)
VALUES (%(host)s, %(host_track_id)s, %(title)s, %(path)s, %(host_path)s, %(size_bytes)s, %(mtime_ns)s,
        %(artist)s, %(album)s, %(album_artist)s, %(genres)s, %(duration_s)s, %(library)s, %(host_fingerprint)s,
        %(host_bpm)s)
ON CONFLICT (host, host_track_id) DO UPDATE SET
    title = EXCLUDED.title, path = EXCLUDED.path, host_path = EXCLUDED.host_path,
    size_bytes = coalesce(EXCLUDED.size_bytes, t.size_bytes), mtime_ns = coalesce(EXCLUDED.mtime_ns, t.mtime_ns),
    artist = EXCLUDED.artist, album = EXCLUDED.album, album_artist = EXCLUDED.album_artist,
    genres = EXCLUDED.genres, duration_s = EXCLUDED.duration_s, library = EXCLUDED.library,
    host_fingerprint = EXCLUDED.host_fingerprint, host_bpm = EXCLUDED.host_bpm, is_missing = false,
    updated_at = now()
RETURNING t.id, t.xmax = 0
"""

_RESET_STATUS = """
UPDATE analysis_status SET state = 'pending', attempts = 0, last_error = NULL, updated_at = now()
WHERE track_id = %s
"""


async def upsert_track(conn: Connection, track: TrackUpsert) -> UpsertOutcome:
    """Insert or update a track by ``(host, host_track_id)``; a reappearing track is no longer missing.

    When the stored file's ``size_bytes`` or ``mtime_ns`` differ from the new ones, every analysis of the track
    goes back to ``pending`` (attempts and last error cleared) in the same transaction. The existing row is
    locked first, so of concurrent upserts exactly one reports ``created`` and one ``file_changed``.
    """
    async with conn.transaction():
        cur = await conn.execute(_LOCK_EXISTING, (track.host, track.host_track_id))
        old = await cur.fetchone()
        cur = await conn.execute(_UPSERT, _upsert_params(track))
        row = await cur.fetchone()
        assert row is not None  # an upsert always returns its row
        changed = old is not None and (
            (track.size_bytes is not None and track.size_bytes != old[0])
            or (track.mtime_ns is not None and track.mtime_ns != old[1])
        )
        outcome = UpsertOutcome(track_id=int(row[0]), created=bool(row[1]), file_changed=changed)
        if outcome.file_changed:
            await conn.execute(_RESET_STATUS, (outcome.track_id,))
    return outcome


_UPSERT_IF_CHANGED = _UPSERT.replace(
    "RETURNING",
    """WHERE t.is_missing OR (t.title, t.path, t.host_path, t.size_bytes, t.mtime_ns, t.artist, t.album,
                      t.album_artist, t.genres, t.duration_s, t.library, t.host_fingerprint, t.host_bpm)
    IS DISTINCT FROM (EXCLUDED.title, EXCLUDED.path, EXCLUDED.host_path,
                      coalesce(EXCLUDED.size_bytes, t.size_bytes), coalesce(EXCLUDED.mtime_ns, t.mtime_ns),
                      EXCLUDED.artist, EXCLUDED.album, EXCLUDED.album_artist, EXCLUDED.genres, EXCLUDED.duration_s,
                      EXCLUDED.library, EXCLUDED.host_fingerprint, EXCLUDED.host_bpm)
RETURNING""",
)
""":data:`_UPSERT` that leaves a row untouched (and returns nothing) when nothing in it would change."""

_LOCK_EXISTING_MANY = """
SELECT t.host, t.host_track_id, t.size_bytes, t.mtime_ns, t.id
FROM tracks t JOIN unnest(%s::text[], %s::text[]) AS k(host, host_track_id)
    ON t.host = k.host AND t.host_track_id = k.host_track_id
ORDER BY t.id
FOR UPDATE OF t
"""


def _upsert_params(track: TrackUpsert) -> dict[str, object]:
    return {
        "host": track.host,
        "host_track_id": track.host_track_id,
        "title": track.title,
        "path": track.path,
        "host_path": track.host_path,
        "size_bytes": track.size_bytes,
        "mtime_ns": track.mtime_ns,
        "artist": track.artist,
        "album": track.album,
        "album_artist": track.album_artist,
        "genres": list(track.genres),
        "duration_s": track.duration_s,
        "library": track.library,
        "host_fingerprint": track.host_fingerprint,
        "host_bpm": track.host_bpm,
    }


async def upsert_tracks(conn: Connection, batch: Sequence[TrackUpsert]) -> list[UpsertOutcome]:
    """:func:`upsert_track` for many tracks in a few round trips (a sync page), outcomes in the order given.

    The existing rows are locked in id order first (so concurrent batches cannot deadlock), the rows are upserted
    in one pipelined ``executemany`` that writes only rows with a changed value (a periodic sync of an unchanged
    library writes nothing), and the analyses of every track whose file changed go back to ``pending`` in one
    statement. A track named twice in ``batch`` is compared with the row as it was before the batch.
    """
    if not batch:
        return []
    async with conn.transaction():
        cur = await conn.execute(_LOCK_EXISTING_MANY, ([t.host for t in batch], [t.host_track_id for t in batch]))
        old = {(str(h), str(i)): (size, mtime, int(track_id)) for h, i, size, mtime, track_id in await cur.fetchall()}
        written: list[tuple[int, bool] | None] = []
        async with conn.cursor() as upsert:
            await upsert.executemany(_UPSERT_IF_CHANGED, [_upsert_params(t) for t in batch], returning=True)
            ids = {key: before[2] for key, before in old.items()}
            for track in batch:
                row = await upsert.fetchone()
                written.append(None if row is None else (int(row[0]), bool(row[1])))
                if row is not None:
                    ids[(track.host, track.host_track_id)] = int(row[0])
                upsert.nextset()
        # Unchanged rows were not written: they existed before, earlier in the batch, or were committed by a
        # concurrent upsert (a now-playing poll) after the lock above and before the insert, which waited for it.
        unseen = [(t.host, t.host_track_id) for t, w in zip(batch, written, strict=True) if w is None]
        unseen = [key for key in unseen if key not in ids]
        if unseen:
            cur = await conn.execute(_LOCK_EXISTING_MANY, ([h for h, _ in unseen], [i for _, i in unseen]))
            ids.update({(str(h), str(i)): int(track_id) for h, i, _, _, track_id in await cur.fetchall()})
        rows = [
            (ids[(t.host, t.host_track_id)], False) if w is None else w for t, w in zip(batch, written, strict=True)
        ]
        outcomes = []
        for track, (track_id, created), w in zip(batch, rows, written, strict=True):
            before = old.get((track.host, track.host_track_id))
            changed = before is not None and (
                (track.size_bytes is not None and track.size_bytes != before[0])
                or (track.mtime_ns is not None and track.mtime_ns != before[1])
            )
            outcomes.append(
                UpsertOutcome(track_id=track_id, created=created, file_changed=changed, written=w is not None)
            )
        changed_ids = [o.track_id for o in outcomes if o.file_changed]
        if changed_ids:
            await conn.execute(_RESET_STATUS.replace("track_id = %s", "track_id = ANY(%s)"), (changed_ids,))
    return outcomes


async def record_file_stat(conn: Connection, track_id: int, *, size_bytes: int, mtime_ns: int) -> bool:
    """Store the file's current size and modification time; when they differ from the stored ones, every analysis
    of the track goes back to ``pending`` (as :func:`upsert_track` does). Returns whether the file had changed."""
    async with conn.transaction():
        cur = await conn.execute(
            "UPDATE tracks SET size_bytes = %s, mtime_ns = %s, updated_at = now()"
            " WHERE id = %s AND (size_bytes, mtime_ns) IS DISTINCT FROM (%s, %s) RETURNING id",
            (size_bytes, mtime_ns, track_id, size_bytes, mtime_ns),
        )
        changed = await cur.fetchone() is not None
        if changed:
            await conn.execute(_RESET_STATUS, (track_id,))
    return changed


async def lock_track(conn: Connection, track_id: int) -> bool:
    """Hold the track's row until the transaction ends (``FOR NO KEY UPDATE``: foreign-key checks elsewhere still
    pass), so that writes of the same track's results and overrides run one after the other; whether it exists.
    Take it before any other row of the track, as :func:`sidecar.storage.analyses.store_results` does."""
    cur = await conn.execute("SELECT 1 FROM tracks WHERE id = %s FOR NO KEY UPDATE", (track_id,))
    return await cur.fetchone() is not None


async def get_track(conn: Connection, track_id: int) -> TrackRecord | None:
    """The track with this id, or ``None``."""
    async with conn.cursor(row_factory=class_row(TrackRecord)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM tracks WHERE id = %s", (track_id,))  # noqa: S608 constant
        return await cur.fetchone()


async def get_track_by_key(conn: Connection, key: TrackKey) -> TrackRecord | None:
    """The track a host knows as ``key``, or ``None``."""
    async with conn.cursor(row_factory=class_row(TrackRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM tracks WHERE host = %s AND host_track_id = %s",  # noqa: S608 constant
            (key.host, key.host_track_id),
        )
        return await cur.fetchone()


async def get_track_by_path(conn: Connection, path: str) -> TrackRecord | None:
    """A track whose mapped file is ``path`` (present tracks first, then the lowest id), or ``None``."""
    async with conn.cursor(row_factory=class_row(TrackRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM tracks WHERE path = %s ORDER BY is_missing, id LIMIT 1",  # noqa: S608 constant
            (path,),
        )
        return await cur.fetchone()


async def list_tracks(
    conn: Connection,
    *,
    host: str | None = None,
    include_missing: bool = False,
    after_id: int = 0,
    limit: int = 1000,
) -> list[TrackRecord]:
    """Tracks ordered by id, ``limit`` at a time after ``after_id`` (keyset paging: pass the last id seen)."""
    async with conn.cursor(row_factory=class_row(TrackRecord)) as cur:
        await cur.execute(
            f"SELECT {_COLUMNS} FROM tracks"  # noqa: S608 constant
            " WHERE id > %(after_id)s AND (%(host)s::text IS NULL OR host = %(host)s::text)"
            " AND (%(include_missing)s OR NOT is_missing)"
            " ORDER BY id LIMIT %(limit)s",
            {"after_id": after_id, "host": host, "include_missing": include_missing, "limit": limit},
        )
        return await cur.fetchall()


async def mark_missing(conn: Connection, host: str, *, present_host_track_ids: Collection[str]) -> int:
    """After a full sync of ``host``: flag its tracks not in ``present_host_track_ids`` as missing.

    Their rows and analyses are kept (a track that comes back is not re-analysed unless its file changed); their
    host fingerprints are cleared, so a track that comes back is checked in full. Returns how many tracks became
    missing.
    """
    cur = await conn.execute(
        "UPDATE tracks SET is_missing = true, host_fingerprint = NULL, updated_at = now()"
        " WHERE host = %s AND NOT is_missing AND NOT (host_track_id = ANY(%s))",
        (host, list(present_host_track_ids)),
    )
    return cur.rowcount


async def host_fingerprints(conn: Connection, host: str) -> list[int]:
    """The stored host fingerprints of ``host``'s present tracks, in no order (one array from the server, not a
    row per track: 1M fingerprints arrive as one value)."""
    cur = await conn.execute(
        "SELECT coalesce(array_agg(host_fingerprint), '{}') FROM tracks"
        " WHERE host = %s AND NOT is_missing AND host_fingerprint IS NOT NULL",
        (host,),
    )
    row = await cur.fetchone()
    assert row is not None  # an aggregate always returns one row
    return list(row[0])
