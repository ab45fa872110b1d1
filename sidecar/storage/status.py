"""Per-track, per-analyzer work state: the source of truth the Redis queue is rebuilt from.

States: ``pending -> queued -> running -> done | failed`` (back to ``queued`` on a transient retry). A row's
``version`` is the analyzer version it is about: requested while not done, the producing version once done.
"done at an older version than the running code" is reported as ``stale``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from psycopg.rows import class_row

from sidecar.storage.db import Connection

AnalysisState = Literal["pending", "queued", "running", "done", "failed"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalysisStatus:
    """One (track, analyzer) row."""

    track_id: int
    analyzer: str
    version: int
    state: AnalysisState
    attempts: int
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusCounts:
    """Rows of one analyzer per state; ``done`` counts only the current version, ``stale`` the older ones."""

    done: int = 0
    stale: int = 0
    pending: int = 0
    queued: int = 0
    running: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedAnalysis:
    """A failed (track, analyzer) with the reason, for ``sonantica failed``."""

    track_id: int
    host: str
    host_track_id: str
    path: str | None
    analyzer: str
    version: int
    attempts: int
    last_error: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackWork:
    """A track with the analyzers that still have to run for it (one queue job)."""

    track_id: int
    host: str
    host_track_id: str
    path: str | None
    analyzers: tuple[str, ...]


def _names_versions(versions: Mapping[str, int]) -> tuple[list[str], list[int]]:
    names = sorted(versions)
    return names, [versions[name] for name in names]


async def ensure_status(
    conn: Connection, versions: Mapping[str, int], *, track_ids: Collection[int] | None = None
) -> int:
    """Make sure every present track has a row per analyzer in ``versions`` (``{name: current version}``).

    Missing rows are created ``pending``; rows at an older version in any state (including ``done`` and
    ``failed``) go back to ``pending`` with attempts and last error cleared. ``track_ids=None`` means every track
    that is not missing; tracks without a readable file (``path`` NULL) get no rows. Returns how many rows became
    pending.
    """
    names, numbers = _names_versions(versions)
    ids = None if track_ids is None else list(track_ids)
    cur = await conn.execute(
        """
        INSERT INTO analysis_status AS s (track_id, analyzer, version, state)
        SELECT t.id, a.name, a.version, 'pending'
        FROM tracks t CROSS JOIN unnest(%(names)s::text[], %(versions)s::int[]) AS a(name, version)
        WHERE NOT t.is_missing AND t.path IS NOT NULL
          AND (%(ids)s::bigint[] IS NULL OR t.id = ANY(%(ids)s::bigint[]))
          AND NOT EXISTS (
              SELECT 1 FROM analysis_status c
              WHERE c.track_id = t.id AND c.analyzer = a.name AND c.version >= a.version
          )
        ON CONFLICT (track_id, analyzer) DO UPDATE
            SET version = EXCLUDED.version, state = 'pending', attempts = 0, last_error = NULL, updated_at = now()
            WHERE s.version < EXCLUDED.version
        """,
        {"names": names, "versions": numbers, "ids": ids},
    )
    return cur.rowcount


async def get_status(conn: Connection, track_id: int) -> dict[str, AnalysisStatus]:
    """Every analyzer row of one track, by analyzer name."""
    async with conn.cursor(row_factory=class_row(AnalysisStatus)) as cur:
        await cur.execute(
            "SELECT track_id, analyzer, version, state, attempts, last_error, updated_at"
            " FROM analysis_status WHERE track_id = %s",
            (track_id,),
        )
        return {row.analyzer: row for row in await cur.fetchall()}


async def waiting_for_queue(conn: Connection, track_ids: Collection[int], versions: Mapping[str, int]) -> set[int]:
    """Those of ``track_ids`` with an analyzer of ``versions`` that has no row, an older version, or is
    ``pending`` (not yet queued): what a periodic sync queues for tracks it already knew."""
    names, numbers = _names_versions(versions)
    cur = await conn.execute(
        """
        SELECT k.id FROM unnest(%s::bigint[]) AS k(id)
        WHERE EXISTS (
            SELECT 1 FROM unnest(%s::text[], %s::int[]) AS a(name, version)
            LEFT JOIN analysis_status s ON s.track_id = k.id AND s.analyzer = a.name
            WHERE s.track_id IS NULL OR s.version < a.version OR s.state = 'pending'
        )
        """,
        (list(track_ids), names, numbers),
    )
    return {int(row[0]) for row in await cur.fetchall()}


async def list_due_analyzers(conn: Connection, track_id: int, versions: Mapping[str, int]) -> list[str]:
    """Analyzers of ``versions`` this track still needs: no row, not done, or done at an older version.

    ``failed`` rows at the current version are not due (``reset_failed`` makes them due again).
    """
    rows = await get_status(conn, track_id)
    due = []
    for name in sorted(versions):
        row = rows.get(name)
        if row is None or row.version < versions[name] or row.state not in ("done", "failed"):
            due.append(name)
    return due


async def queue_due(conn: Connection, track_ids: Sequence[int], versions: Mapping[str, int]) -> list[TrackWork]:
    """Mark what ``track_ids`` still need as ``queued``, in three statements whatever the number of tracks.

    Status rows are made current first (:func:`ensure_status`); then every row of an analyzer in ``versions``
    that is ``pending``, ``queued`` or ``running`` becomes ``queued`` (``done`` and ``failed`` rows are not due).
    Returns each present track with a file, in the order of ``track_ids`` (once, however often it is named), with
    the analyzers now queued, sorted (empty: nothing due). Missing tracks and tracks without a file are left out.
    """
    ids = list(dict.fromkeys(track_ids))
    await ensure_status(conn, versions, track_ids=ids)
    cur = await conn.execute(
        """
        WITH queued AS (
            UPDATE analysis_status AS s SET state = 'queued', updated_at = now()
            FROM tracks t
            WHERE s.track_id = ANY(%(ids)s) AND s.analyzer = ANY(%(names)s)
              AND s.state IN ('pending', 'queued', 'running')
              AND t.id = s.track_id AND NOT t.is_missing AND t.path IS NOT NULL
            RETURNING s.track_id, s.analyzer
        )
        SELECT t.id, t.host, t.host_track_id, t.path,
               coalesce(array_agg(q.analyzer ORDER BY q.analyzer) FILTER (WHERE q.analyzer IS NOT NULL), '{}')
        FROM tracks t LEFT JOIN queued q ON q.track_id = t.id
        WHERE t.id = ANY(%(ids)s) AND NOT t.is_missing AND t.path IS NOT NULL
        GROUP BY t.id
        """,
        {"ids": ids, "names": sorted(versions)},
    )
    found = {
        int(track_id): TrackWork(
            track_id=int(track_id), host=host, host_track_id=host_track_id, path=path, analyzers=tuple(analyzers)
        )
        for track_id, host, host_track_id, path, analyzers in await cur.fetchall()
    }
    return [found[i] for i in ids if i in found]


async def _set_state(
    conn: Connection, track_id: int, analyzers: Collection[str], *, state: AnalysisState, from_states: tuple[str, ...]
) -> list[str]:
    cur = await conn.execute(
        "UPDATE analysis_status SET state = %s, updated_at = now()"
        " WHERE track_id = %s AND analyzer = ANY(%s) AND state = ANY(%s) RETURNING analyzer",
        (state, track_id, list(analyzers), list(from_states)),
    )
    return sorted(str(row[0]) for row in await cur.fetchall())


async def mark_queued(conn: Connection, track_id: int, analyzers: Collection[str]) -> list[str]:
    """``pending``/``running``/``queued`` rows of these analyzers become ``queued`` (done before the Redis push).

    ``done`` and ``failed`` rows are left alone. Returns the analyzers now queued.
    """
    return await _set_state(conn, track_id, analyzers, state="queued", from_states=("pending", "queued", "running"))


async def mark_running(conn: Connection, track_id: int, versions: Mapping[str, int]) -> dict[str, int]:
    """The worker starts these analyzers (``{name: version}``): rows become ``running`` with ``attempts + 1``.

    Missing rows are created. Returns ``{analyzer: attempts}`` after the increment.
    """
    names, numbers = _names_versions(versions)
    cur = await conn.execute(
        """
        INSERT INTO analysis_status AS s (track_id, analyzer, version, state, attempts)
        SELECT %(track_id)s, a.name, a.version, 'running', 1
        FROM unnest(%(names)s::text[], %(versions)s::int[]) AS a(name, version)
        ON CONFLICT (track_id, analyzer) DO UPDATE
            SET version = EXCLUDED.version, state = 'running', attempts = s.attempts + 1, updated_at = now()
        RETURNING analyzer, attempts
        """,
        {"track_id": track_id, "names": names, "versions": numbers},
    )
    return {str(name): int(attempts) for name, attempts in await cur.fetchall()}


async def mark_failed(conn: Connection, track_id: int, reasons: Mapping[str, str]) -> None:
    """Record per-analyzer failures (``{analyzer: reason}``): state ``failed`` with ``last_error``."""
    if not reasons:
        return
    names = sorted(reasons)
    await conn.execute(
        """
        UPDATE analysis_status AS s SET state = 'failed', last_error = r.reason, updated_at = now()
        FROM unnest(%s::text[], %s::text[]) AS r(name, reason)
        WHERE s.track_id = %s AND s.analyzer = r.name
        """,
        (names, [reasons[n] for n in names], track_id),
    )


async def mark_error(conn: Connection, track_id: int, analyzers: Collection[str], reason: str) -> None:
    """Note a transient error on rows that will be retried: back to ``queued``, ``last_error`` kept for display."""
    await conn.execute(
        "UPDATE analysis_status SET state = 'queued', last_error = %s, updated_at = now()"
        " WHERE track_id = %s AND analyzer = ANY(%s) AND state <> 'done'",
        (reason, track_id, list(analyzers)),
    )


async def mark_done(conn: Connection, track_id: int, versions: Mapping[str, int]) -> None:
    """Rows become ``done`` at these versions (``{analyzer: version}``), last error cleared; missing rows created.

    Prefer :func:`sidecar.storage.analyses.store_results`, which stores the values and calls this atomically.
    """
    names, numbers = _names_versions(versions)
    await conn.execute(
        """
        INSERT INTO analysis_status AS s (track_id, analyzer, version, state)
        SELECT %(track_id)s, a.name, a.version, 'done'
        FROM unnest(%(names)s::text[], %(versions)s::int[]) AS a(name, version)
        ON CONFLICT (track_id, analyzer) DO UPDATE
            SET version = EXCLUDED.version, state = 'done', last_error = NULL, updated_at = now()
        """,
        {"track_id": track_id, "names": names, "versions": numbers},
    )


async def fail_exhausted(conn: Connection, track_id: int, *, max_attempts: int) -> list[str]:
    """Poison check: unfinished rows of the track with ``attempts >= max_attempts`` become ``failed``.

    The last error is kept and prefixed with the attempt count. Returns the analyzers failed now.
    """
    cur = await conn.execute(
        """
        UPDATE analysis_status SET state = 'failed', updated_at = now(),
            last_error = format('gave up after %%s attempts: %%s', attempts,
                                coalesce(last_error, 'the worker stopped during analysis'))
        WHERE track_id = %s AND state IN ('pending', 'queued', 'running') AND attempts >= %s
        RETURNING analyzer
        """,
        (track_id, max_attempts),
    )
    return sorted(str(row[0]) for row in await cur.fetchall())


async def fold_counts(conn: Connection) -> int:
    """Fold the deltas the triggers appended to ``analysis_status_counts`` into one row per (analyzer, version,
    state); returns the rows left. Safe beside concurrent writers (their uncommitted deltas stay as they are)."""
    cur = await conn.execute(
        """
        WITH folded AS (DELETE FROM analysis_status_counts RETURNING analyzer, version, state, row_count)
        INSERT INTO analysis_status_counts (analyzer, version, state, row_count)
        SELECT analyzer, version, state, sum(row_count) FROM folded GROUP BY 1, 2, 3 HAVING sum(row_count) <> 0
        """
    )
    return cur.rowcount


async def count_by_analyzer(conn: Connection, versions: Mapping[str, int]) -> dict[str, StatusCounts]:
    """Counts per analyzer and state, for every analyzer in ``versions`` (zeros when it has no rows).

    ``done`` rows at a version below ``versions[analyzer]`` count as ``stale``. Rows of missing tracks and of
    tracks without a readable file are left out. Reads the trigger-kept counts of ``analysis_status_counts``
    (folding their deltas into one row per group first) minus the rows of absent tracks, found through a partial
    index: the cost grows with the number of absent tracks and analyzers, not with the library.
    """
    names, numbers = _names_versions(versions)
    current = dict(zip(names, numbers, strict=True))
    await fold_counts(conn)
    cur = await conn.execute(
        """
        SELECT analyzer, version, state, sum(row_count) FROM (
            SELECT analyzer, version, state, row_count FROM analysis_status_counts WHERE analyzer = ANY(%(names)s)
            UNION ALL
            SELECT s.analyzer, s.version, s.state, -1
            FROM tracks t JOIN analysis_status s ON s.track_id = t.id
            WHERE (t.is_missing OR t.path IS NULL) AND s.analyzer = ANY(%(names)s)
        ) AS counted
        GROUP BY 1, 2, 3
        """,
        {"names": names},
    )
    raw: dict[str, dict[str, int]] = {name: {} for name in names}
    for name, version, state, count in await cur.fetchall():
        shown = "stale" if state == "done" and version < current[name] else str(state)
        per_state = raw[str(name)]
        per_state[shown] = per_state.get(shown, 0) + int(count)
    return {name: StatusCounts(**{k: v for k, v in counts.items() if v}) for name, counts in raw.items()}


async def count_by_analyzer_scan(conn: Connection, versions: Mapping[str, int]) -> dict[str, StatusCounts]:
    """The same answer as :func:`count_by_analyzer` from a full scan of the status rows: the reference the
    trigger-kept counts are checked against (tests, ``scripts/bench_scale.py``); seconds on millions of rows."""
    names, numbers = _names_versions(versions)
    cur = await conn.execute(
        """
        SELECT a.name,
               CASE WHEN s.state = 'done' AND s.version < a.version THEN 'stale' ELSE s.state END AS shown,
               count(*)
        FROM unnest(%s::text[], %s::int[]) AS a(name, version)
        JOIN analysis_status s ON s.analyzer = a.name
        JOIN tracks t ON t.id = s.track_id AND NOT t.is_missing AND t.path IS NOT NULL
        GROUP BY 1, 2
        """,
        (names, numbers),
    )
    raw: dict[str, dict[str, int]] = {name: {} for name in names}
    for name, shown, count in await cur.fetchall():
        raw[str(name)][str(shown)] = int(count)
    return {name: StatusCounts(**counts) for name, counts in raw.items()}


async def list_failed(conn: Connection, *, analyzer: str | None = None, limit: int = 1000) -> list[FailedAnalysis]:
    """Failed rows with their reasons, most recent first."""
    async with conn.cursor(row_factory=class_row(FailedAnalysis)) as cur:
        await cur.execute(
            """
            SELECT s.track_id, t.host, t.host_track_id, t.path, s.analyzer, s.version, s.attempts, s.last_error,
                   s.updated_at
            FROM analysis_status s JOIN tracks t ON t.id = s.track_id
            WHERE s.state = 'failed' AND (%(analyzer)s::text IS NULL OR s.analyzer = %(analyzer)s::text)
            ORDER BY s.updated_at DESC, s.track_id, s.analyzer
            LIMIT %(limit)s
            """,
            {"analyzer": analyzer, "limit": limit},
        )
        return await cur.fetchall()


async def reset_failed(
    conn: Connection, *, analyzer: str | None = None, track_ids: Collection[int] | None = None
) -> int:
    """``sonantica failed --retry``: failed rows become ``pending`` with attempts 0. Returns how many."""
    cur = await conn.execute(
        """
        UPDATE analysis_status SET state = 'pending', attempts = 0, updated_at = now()
        WHERE state = 'failed' AND (%(analyzer)s::text IS NULL OR analyzer = %(analyzer)s::text)
          AND (%(ids)s::bigint[] IS NULL OR track_id = ANY(%(ids)s::bigint[]))
        """,
        {"analyzer": analyzer, "ids": None if track_ids is None else list(track_ids)},
    )
    return cur.rowcount


_OPEN_WORK = """
    SELECT t.id, t.host, t.host_track_id, t.path, array_agg(s.analyzer ORDER BY s.analyzer)
    FROM analysis_status s
    JOIN unnest(%(names)s::text[], %(numbers)s::int[]) AS a(name, version) ON a.name = s.analyzer
    JOIN tracks t ON t.id = s.track_id AND NOT t.is_missing AND t.path IS NOT NULL
    WHERE s.state IN ('pending', 'queued', 'running') OR (s.state = 'done' AND s.version < a.version)
    GROUP BY t.id
    HAVING %(before)s::timestamptz IS NULL OR max(s.updated_at) < %(before)s::timestamptz
    ORDER BY t.id
"""
"""Open work grouped by track: rows ``pending``, ``queued`` or ``running``, or ``done`` below the current version;
only analyzers named in the versions and tracks that are not missing and have a file."""


def _open_work_params(versions: Mapping[str, int], before: datetime | None) -> dict[str, object]:
    names, numbers = _names_versions(versions)
    return {"names": names, "numbers": numbers, "before": before}


def _track_work(row: tuple[int, str, str, str | None, list[str]]) -> TrackWork:
    track_id, host, host_track_id, path, analyzers = row
    return TrackWork(track_id=track_id, host=host, host_track_id=host_track_id, path=path, analyzers=tuple(analyzers))


async def iter_open_work(
    conn: Connection, versions: Mapping[str, int], *, updated_before: datetime | None, batch_size: int = 10_000
) -> AsyncIterator[list[TrackWork]]:
    """Everything the queue should hold, grouped by track and ordered by track id, in batches of ``batch_size``
    read through a server-side cursor (memory stays small with a million open tracks). ``conn`` must be inside a
    transaction; call :func:`ensure_status` first so tracks without rows are included.

    A row counts when it is ``pending``, ``queued`` or ``running``, or ``done`` at a version below the current
    one; only analyzers named in ``versions`` and tracks that are not missing and have a file. Tracks with an open
    row changed at or after ``updated_before`` (work being enqueued right now) are left out; ``None`` keeps all.
    """
    async with conn.cursor(name="open_work") as cur:
        await cur.execute(_OPEN_WORK, _open_work_params(versions, updated_before))
        while rows := await cur.fetchmany(batch_size):
            yield [_track_work(row) for row in rows]


async def database_now(conn: Connection) -> datetime:
    """The database server's current time (the clock ``updated_at`` columns are written with)."""
    cur = await conn.execute("SELECT now()")
    row = await cur.fetchone()
    assert row is not None  # SELECT now() always returns one row
    now: datetime = row[0]
    return now


_REANALYSIS_MATCH = """
    s.analyzer = %(analyzer)s AND s.state = 'done'
    AND (%(since)s::timestamptz IS NULL OR s.updated_at >= %(since)s::timestamptz)
    AND (%(before)s::timestamptz IS NULL OR s.updated_at < %(before)s::timestamptz)
    AND (%(model)s::text IS NULL
         OR EXISTS (SELECT 1 FROM embeddings e WHERE e.track_id = s.track_id AND e.model = %(model)s::text)
         OR EXISTS (SELECT 1 FROM track_tags g WHERE g.track_id = s.track_id AND g.model = %(model)s::text))
    AND EXISTS (SELECT 1 FROM tracks t WHERE t.id = s.track_id AND NOT t.is_missing AND t.path IS NOT NULL)
"""
"""Done rows of one analyzer, optionally finished at or after ``since`` and with stored results of ``model``."""


async def count_done_matching(
    conn: Connection, analyzer: str, *, model: str | None = None, since: datetime | None = None
) -> tuple[int, datetime]:
    """How many tracks :func:`requeue_done` would take now, and the database's time now (pass it on as
    ``before``): ``done`` rows of ``analyzer`` (any version), finished at or after ``since`` when given, of
    present tracks that have stored results (a vector or tags) of ``model`` when given."""
    cur = await conn.execute(
        f"SELECT count(*), now() FROM analysis_status s WHERE {_REANALYSIS_MATCH}",  # noqa: S608 - constant text
        {"analyzer": analyzer, "model": model, "since": since, "before": None},
    )
    row = await cur.fetchone()
    assert row is not None
    return int(row[0]), row[1]


async def requeue_done(
    conn: Connection,
    analyzer: str,
    version: int,
    *,
    model: str | None = None,
    since: datetime | None = None,
    before: datetime,
    limit: int = 1000,
) -> list[TrackWork]:
    """Re-analysis: up to ``limit`` rows matching :func:`count_done_matching` and finished before ``before``
    become ``queued`` at ``version`` with attempts and last error cleared; returns those tracks (lowest ids
    first), each with ``(analyzer,)``.

    The caller pushes the jobs after committing. Rows already queued, pending, running or failed are not
    matched, and rows done again after ``before`` (re-analysed meanwhile) neither, so calling again until it
    returns nothing takes every matching row exactly once.
    """
    cur = await conn.execute(
        f"""
        WITH picked AS (
            SELECT s.track_id FROM analysis_status s WHERE {_REANALYSIS_MATCH}
            ORDER BY s.track_id LIMIT %(limit)s FOR UPDATE SKIP LOCKED
        )
        UPDATE analysis_status AS s
        SET state = 'queued', version = %(version)s, attempts = 0, last_error = NULL, updated_at = now()
        FROM picked, tracks t
        WHERE s.track_id = picked.track_id AND s.analyzer = %(analyzer)s AND t.id = s.track_id
        RETURNING t.id, t.host, t.host_track_id, t.path
        """,  # noqa: S608 - constant text
        {"analyzer": analyzer, "version": version, "model": model, "since": since, "before": before, "limit": limit},
    )
    rows = sorted(await cur.fetchall())
    return [
        TrackWork(track_id=track_id, host=host, host_track_id=host_track_id, path=path, analyzers=(analyzer,))
        for track_id, host, host_track_id, path in rows
    ]
