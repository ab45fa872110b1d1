"""The library listing of the web client: search, filters and pages over tracks and their features."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Literal

from psycopg import sql

from sidecar.storage.db import Connection

SortField = Literal["artist", "title", "album", "bpm", "loudness"]
SortKey = tuple[str | float | None, ...]
"""A row's place in its order: its sort values (strings as the order compares them, lower-case; the BPM or
loudness, ``None`` when the track has none) and, last, its track id."""
_KEYS: dict[str, tuple[str, ...]] = {  # the order's expressions, before the tie-break by id
    "artist": ("lower(coalesce(t.artist, ''))", "lower(coalesce(t.album, ''))", "lower(t.title)"),
    "title": ("lower(t.title)", "lower(coalesce(t.artist, ''))"),
    "album": ("lower(coalesce(t.album, ''))", "lower(t.title)"),
    "bpm": ("f.bpm",),
    "loudness": ("f.loudness_lufs",),
}
_FEATURES = ("bpm", "loudness")  # NULLS LAST; read from their (value, track_id) indexes (migration 0031)
_WIDTH = 14  # the columns of a LibraryTrack; the sort values follow them


@dataclass(frozen=True, slots=True, kw_only=True)
class LibraryFilters:
    """Filters of :func:`list_tracks`, combined with AND.

    ``query`` matches title, artist or album (case-insensitive substring; ``%`` and ``_`` are literal).
    ``track_ids`` keeps only these tracks (empty: all).
    ``bpm_min``/``bpm_max`` bound the BPM; with ``half_double`` a track also passes when half or double its BPM
    is inside. ``camelots`` keeps tracks whose key is one of these Camelot codes (the caller expands a key and,
    when asked, its compatible keys). ``loudness_min_lufs``/``loudness_max_lufs`` bound the integrated loudness.
    A track without the value a filter needs (not analysed yet) does not pass that filter.
    """

    query: str | None = None
    track_ids: tuple[int, ...] = ()
    bpm_min: float | None = None
    bpm_max: float | None = None
    half_double: bool = False
    camelots: tuple[str, ...] = ()
    loudness_min_lufs: float | None = None
    loudness_max_lufs: float | None = None

    def __post_init__(self) -> None:
        for low, high in (("bpm_min", "bpm_max"), ("loudness_min_lufs", "loudness_max_lufs")):
            lo, hi = getattr(self, low), getattr(self, high)
            if lo is not None and hi is not None and lo > hi:
                raise ValueError(f"{low} {lo} is above {high} {hi}")
        for name in ("bpm_min", "bpm_max"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative (got {value})")


@dataclass(frozen=True, slots=True, kw_only=True)
class LibraryTrack:
    """One row of the listing; feature values are ``None`` until analysed."""

    track_id: int
    host: str
    host_track_id: str
    title: str
    artist: str | None
    album: str | None
    duration_s: float | None
    bpm: float | None
    bpm_confidence: float | None
    key: str | None
    camelot: str | None
    loudness_lufs: float | None
    overridden: tuple[str, ...] = ()  # "bpm", "key": values the user set (sidecar.storage.overrides)


@dataclass(frozen=True, slots=True)
class LibraryPage:
    """A page of tracks and how many match in all; ``next_after`` is the last row's place in the order (``None``
    when the page is not full: nothing follows it)."""

    total: int
    tracks: list[LibraryTrack]
    next_after: SortKey | None = None


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(filters: LibraryFilters) -> tuple[list[sql.Composable], dict[str, object]]:
    conditions: list[sql.Composable] = [sql.SQL("NOT t.is_missing")]
    params: dict[str, object] = {}
    if filters.query:
        params["pattern"] = f"%{_escape_like(filters.query)}%"
        conditions.append(
            sql.SQL(
                "(t.title ILIKE %(pattern)s OR t.artist ILIKE %(pattern)s OR t.album ILIKE %(pattern)s"
                " OR t.album_artist ILIKE %(pattern)s)"
            )
        )
    if filters.track_ids:
        params["track_ids"] = list(filters.track_ids)
        conditions.append(sql.SQL("t.id = ANY(%(track_ids)s)"))
    if filters.bpm_min is not None or filters.bpm_max is not None:
        low = filters.bpm_min if filters.bpm_min is not None else 0.0
        high = filters.bpm_max if filters.bpm_max is not None else float("inf")
        scales = (1.0, 0.5, 2.0) if filters.half_double else (1.0,)  # bpm * 2 in [low, high] <=> bpm in [low/2, high/2]
        options = []
        for n, scale in enumerate(scales):
            params[f"bpm_low_{n}"], params[f"bpm_high_{n}"] = low * scale, high * scale
            options.append(f"f.bpm BETWEEN %(bpm_low_{n})s AND %(bpm_high_{n})s")
        conditions.append(sql.SQL("(" + " OR ".join(options) + ")"))
    if filters.camelots:
        params["camelots"] = list(filters.camelots)
        conditions.append(sql.SQL("f.camelot = ANY(%(camelots)s)"))
    if filters.loudness_min_lufs is not None:
        params["loudness_min"] = filters.loudness_min_lufs
        conditions.append(sql.SQL("f.loudness_lufs >= %(loudness_min)s"))
    if filters.loudness_max_lufs is not None:
        params["loudness_max"] = filters.loudness_max_lufs
        conditions.append(sql.SQL("f.loudness_lufs <= %(loudness_max)s"))
    return conditions, params


async def _page(
    conn: Connection, query: sql.Composed, params: dict[str, object], *, substring: bool
) -> list[tuple[Any, ...]]:
    """The page's rows. With a substring search, index scans are off for this query: the planner cannot tell how
    few tracks a substring matches, and walking the order index (migration 0022) for a rare one reads every track;
    the matches are scanned and sorted instead."""
    if not substring:
        return await (await conn.execute(query, params)).fetchall()
    async with conn.transaction() if conn.autocommit else contextlib.nullcontext():
        cur = await conn.execute(
            "SELECT current_setting('enable_indexscan'), set_config('enable_indexscan', 'off', true)"
        )
        before = await cur.fetchone()
        rows = await (await conn.execute(query, params)).fetchall()
        await conn.execute("SELECT set_config('enable_indexscan', %s, true)", (before[0] if before else "on",))
        return rows


async def present_count(conn: Connection) -> int:
    """How many tracks are present (not missing): the sum of the trigger-kept deltas (migration 0031), a few rows
    whatever the library's size."""
    cur = await conn.execute("SELECT coalesce(sum(row_count), 0) FROM present_track_counts")
    row = await cur.fetchone()
    return int(row[0]) if row is not None else 0


async def fold_present_count(conn: Connection) -> None:
    """Fold the deltas the triggers appended to ``present_track_counts`` into one row. Safe beside concurrent
    writers (their uncommitted deltas stay as they are)."""
    await conn.execute(
        "WITH folded AS (DELETE FROM present_track_counts RETURNING row_count)"
        " INSERT INTO present_track_counts (row_count) SELECT coalesce(sum(row_count), 0) FROM folded"
    )


_COLUMNS = sql.SQL(
    "t.id, t.host, t.host_track_id, t.title, t.artist, t.album, t.duration_s,"
    " f.bpm, f.bpm_confidence, f.key, f.camelot, f.loudness_lufs, o.bpm IS NOT NULL, o.key IS NOT NULL"
)


def check_after(sort: str, after: SortKey) -> None:
    """``ValueError`` unless ``after`` is a place in the ``sort`` order: as many values as the order has, each
    of its type (text PostgreSQL can hold; a finite number or ``None``), then a track id (a 64-bit integer)."""
    *values, track_id = after
    check = _is_value if sort in _FEATURES else _is_text
    if not (len(values) == len(_KEYS[sort]) and _is_id(track_id) and all(map(check, values))):
        raise ValueError(f"not a place in the {sort} order: {after!r}")


def _is_id(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63


def _is_value(value: object) -> bool:
    """A BPM or loudness as a place holds it: ``None`` (none) or a finite number."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return abs(value) <= 2**53
    return value is None or (isinstance(value, float) and math.isfinite(value))


def _is_text(value: object) -> bool:
    """Text PostgreSQL can hold: no NUL, valid UTF-8 (no lone surrogates)."""
    if not isinstance(value, str) or "\x00" in value:
        return False
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


def _after_condition(sort: str, after: SortKey, params: dict[str, object]) -> sql.Composable:
    """The rows after ``after`` in the ``sort`` order (NULLS LAST, then id); adds its values to ``params``."""
    *values, track_id = after
    params["after_id"] = track_id
    keys = _KEYS[sort]
    if sort in _FEATURES and values[0] is None:
        return sql.SQL("{} IS NULL AND t.id > %(after_id)s").format(sql.SQL(keys[0]))
    names = [f"after_{n}" for n in range(len(keys))]
    params.update(zip(names, values, strict=True))
    later = sql.SQL("({}, t.id) > ({}, %(after_id)s)").format(
        sql.SQL(", ").join(map(sql.SQL, keys)), sql.SQL(", ").join(map(sql.Placeholder, names))
    )
    if sort in _FEATURES:
        return sql.SQL("({} OR {} IS NULL)").format(later, sql.SQL(keys[0]))
    return later


async def _feature_ordered(
    conn: Connection,
    feature: str,
    where: sql.Composable,
    params: dict[str, object],
    *,
    limit: int,
    offset: int,
    after: SortKey | None,
) -> list[tuple[Any, ...]]:
    """The page in ``feature`` order (NULLS LAST, then id) as two walks: the tracks with the value, along its
    ``(feature, track_id)`` index (migration 0031), then, when the page reaches past them, the tracks without it
    by id. A page that starts past the first walk counts it to know where the second one starts. ``after``
    starts both walks after that place (a place without the value skips the first walk)."""
    value = sql.SQL(feature)
    with_where, without_where = where, where
    if after is not None:
        params = {**params, "after_value": after[0], "after_id": after[1]}
        if after[0] is None:
            without_where = sql.SQL("{} AND t.id > %(after_id)s").format(where)
        else:
            with_where = sql.SQL("{} AND ({}, f.track_id) > (%(after_value)s, %(after_id)s)").format(where, value)
    rows: list[tuple[Any, ...]] = []
    if after is None or after[0] is not None:
        with_value = sql.SQL(
            "SELECT {columns}, {value} FROM track_features f JOIN tracks t ON t.id = f.track_id"
            " LEFT JOIN track_overrides o ON o.track_id = t.id"
            " WHERE {value} IS NOT NULL AND {where} ORDER BY {value}, f.track_id LIMIT %(limit)s OFFSET %(offset)s"
        ).format(columns=_COLUMNS, value=value, where=with_where)
        rows = await (await conn.execute(with_value, {**params, "limit": limit, "offset": offset})).fetchall()
        if len(rows) == limit:
            return rows
    skip = 0 if rows else offset
    if not rows and offset > 0 and (after is None or after[0] is not None):
        count = sql.SQL(
            "SELECT count(*) FROM track_features f JOIN tracks t ON t.id = f.track_id"
            " WHERE {value} IS NOT NULL AND {where}"
        ).format(value=value, where=with_where)
        counted = await (await conn.execute(count, params)).fetchone()
        skip = offset - (int(counted[0]) if counted is not None else 0)
    without_value = sql.SQL(
        "SELECT {columns}, {value} FROM tracks t LEFT JOIN track_features f ON f.track_id = t.id"
        " LEFT JOIN track_overrides o ON o.track_id = t.id"
        " WHERE {value} IS NULL AND {where} ORDER BY t.id LIMIT %(limit)s OFFSET %(offset)s"
    ).format(columns=_COLUMNS, value=value, where=without_where)
    rest = await conn.execute(without_value, {**params, "limit": limit - len(rows), "offset": skip})
    return rows + await rest.fetchall()


async def list_tracks(
    conn: Connection,
    filters: LibraryFilters,
    *,
    limit: int = 50,
    offset: int = 0,
    sort: SortField = "artist",
    after: SortKey | None = None,
) -> LibraryPage:
    """A page of the tracks matching ``filters`` (missing tracks never), ordered by ``sort`` then id (tracks
    without the BPM or loudness last for those sorts), and the total count. ``limit`` >= 1, ``offset`` >= 0 (an
    offset past the end gives no rows and the total). ``after`` (keyset paging: a page's ``next_after``) starts
    the page after that place, then skips ``offset`` rows; ``ValueError`` when it is no place in ``sort`` order.

    The default order (artist) is read from an index (migration 0022), BPM and loudness from theirs (migration
    0031), so the first pages do not sort the library; a deep page by ``offset`` walks the index up to it, by
    ``after`` it starts there (title and album orders have no index: every match is sorted). The total is free
    without filters (the trigger-kept count of present tracks) and on the last page of an offset; a filtered one
    is a second query, or comes with the page for a substring search, which scans every track anyway.
    """
    if limit < 1 or offset < 0:
        raise ValueError("limit must be at least 1 and offset not negative")
    if after is not None:
        check_after(sort, after)
    conditions, params = _conditions(filters)
    unfiltered = not params  # each filter has a parameter
    where = sql.SQL(" AND ").join(conditions)
    substring = bool(filters.query)  # every track is scanned anyway: the total comes with the page
    if sort in _FEATURES and not substring:
        feature = _KEYS[sort][0]
        rows = await _feature_ordered(conn, feature, where, params, limit=limit, offset=offset, after=after)
    else:
        page_params = {**params, "limit": limit, "offset": offset}
        page_where = where
        if after is not None:
            page_where = sql.SQL("{} AND {}").format(where, _after_condition(sort, after, page_params))
        keys = _KEYS[sort]
        query = sql.SQL(
            "SELECT {columns}, {keys}{total}"
            " FROM tracks t LEFT JOIN track_features f ON f.track_id = t.id"
            " LEFT JOIN track_overrides o ON o.track_id = t.id"
            " WHERE {where} ORDER BY {order}, t.id LIMIT %(limit)s OFFSET %(offset)s"
        ).format(
            columns=_COLUMNS,
            keys=sql.SQL(", ").join(map(sql.SQL, keys)),
            total=sql.SQL(", count(*) OVER ()" if substring else ""),
            where=page_where,
            order=sql.SQL(", ".join(keys) + (" NULLS LAST" if sort in _FEATURES else "")),
        )
        rows = await _page(conn, query, page_params, substring=substring)
    if after is None and substring and rows:
        total = int(rows[0][-1])
    elif after is None and rows and len(rows) < limit:
        total = offset + len(rows)  # the last page: no count needed
    elif after is None and not rows and offset == 0:
        total = 0
    elif unfiltered:
        total = await present_count(conn)
    else:
        count = sql.SQL(
            "SELECT count(*) FROM tracks t LEFT JOIN track_features f ON f.track_id = t.id WHERE {where}"
        ).format(where=where)
        counted = await (await conn.execute(count, params)).fetchone()
        total = int(counted[0]) if counted is not None else 0
    width = _WIDTH + len(_KEYS[sort])
    next_after = (*rows[-1][_WIDTH:width], int(rows[-1][0])) if len(rows) == limit else None
    return LibraryPage(
        total=total,
        next_after=next_after,
        tracks=[
            LibraryTrack(
                track_id=int(r[0]),
                host=str(r[1]),
                host_track_id=str(r[2]),
                title=str(r[3]),
                artist=r[4],
                album=r[5],
                duration_s=r[6],
                bpm=r[7],
                bpm_confidence=r[8],
                key=r[9],
                camelot=r[10],
                loudness_lufs=r[11],
                overridden=tuple(group for group, is_set in (("bpm", r[12]), ("key", r[13])) if is_set),
            )
            for r in rows
        ],
    )
