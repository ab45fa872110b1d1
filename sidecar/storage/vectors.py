"""Embeddings in pgvector and the similar-tracks query: the only module with pgvector SQL.

Every model's vectors share one untyped ``vector`` column; ``embedding_models`` fixes each model's dimension and
names its partial HNSW index over ``embedding::halfvec(dim)`` (cosine; ``embedding::vector(dim)`` on a pgvector
older than 0.7, ``embedding_models.index_type``), so a query, which always names one model, uses that model's index
and never mixes models. Filters are applied to an over-fetched candidate set (see :func:`similar`; no iterative
index scans, so pgvector 0.6 servers work too). A model can also have one partial HNSW index per Camelot key
(``embedding_models.key_indexed``, :func:`build_index`; the key is copied onto its embedding rows by triggers,
migration 0024), so a Camelot-compatible query searches only the compatible keys' graphs. A rebuild
(:func:`build_index`) builds the new indexes beside the ones in use, then switches to them (migration 0028).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import pq, sql

from sidecar.domain import KeySignature
from sidecar.errors import NotFoundError, StorageError
from sidecar.storage.db import Connection

log = logging.getLogger(__name__)

MAX_CANDIDATES = 1000  # hnsw.ef_search's ceiling
HALFVEC_SINCE = (0, 7)
"""The first pgvector with ``halfvec``: from it on, HNSW indexes are half precision (docs/benchmarks/scale.md: at
1M x 1 506 half the index size and a fraction of the latency, same recall)."""
ITERATIVE_SCANS_SINCE = (0, 8)
"""The first pgvector with iterative index scans, which :func:`warm_index` needs."""
WARM_SCAN_BYTES_PER_ROW = 256
"""``work_mem`` :func:`warm_index` allows per row of the model: pgvector's iterative scan keeps every element it
visited (about 170 bytes each at 1M x 1 506, docs/benchmarks/scale.md) and ends early when the memory runs out."""
KEY_CANDIDATES = 60
"""Fewest HNSW candidates per compatible key of a Camelot-compatible :func:`similar` on a key-indexed model
(``max(KEY_CANDIDATES, 2 * limit)`` per key; docs/benchmarks/scale.md)."""
COPY_KEYS_ROWS = 5000
"""Rows per transaction of the key copy a rebuild towards per-key indexes makes (:func:`build_index`)."""
CAMELOTS = tuple(f"{hour}{letter}" for hour in range(1, 13) for letter in "AB")
"""The 24 Camelot codes: one partial HNSW index each on a key-indexed model."""
UNFILTERED_CANDIDATES = 200
"""Fewest HNSW candidates (``hnsw.ef_search``) of an unfiltered :func:`similar`, measured at 1M x 1 506 dims (the
default embedding): 200 kept recall@10 >= 0.95 on every 100-seed draw (0.969-0.994); 100 gave 0.871-0.963 and 150
0.948-0.981 (docs/benchmarks/scale.md). At 1M x 753 dims 100 was enough (0.953-0.959)."""
UNFILTERED_ROWS = 3
"""Rows an unfiltered :func:`similar` first reads per requested row, of the ``UNFILTERED_CANDIDATES`` its search
finds: enough for seeds, missing tracks and duplicates to drop out, and each row read costs a fetch of its stored
vector (PostgreSQL computes the distance again from it; docs/benchmarks/scale.md)."""


_REBUILD_LOCK = "sonantica:embedding_index_rebuild"
"""The advisory lock (key ``hashtext`` of it) of :func:`_rebuild_lock`, which :func:`register_model` also takes."""


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A nearest neighbour: cosine distance in [0, 2] (0 = same direction)."""

    track_id: int
    distance: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SimilarFilters:
    """Filters of :func:`similar`, all evaluated in the same SQL query as the vector search.

    ``bpm_min``/``bpm_max`` are absolute bounds; ``bpm_window_pct`` is a window of +-pct % around the seeds'
    mean BPM (both may be combined: the intersection). With ``half_double`` a track also passes when half or
    double its BPM is inside the window. ``camelot_compatible`` keeps keys next to a seed's key on the Camelot
    wheel (same, +-1 hour, relative). ``exclude_duplicates`` drops other versions of a seed and keeps only the
    nearest version of any other song (same artist and title after :sql:`normalize_for_dedup`).

    ``moods`` / ``styles`` keep tracks that have at least one of those tags (canonical names, see
    :mod:`sidecar.analyzers.tags`) with probability >= ``tag_min_probability``; ``exclude_moods`` /
    ``exclude_styles`` drop tracks that have any of them at that probability. Both lists given: both must hold.
    Tracks without tags pass the exclusions and fail the inclusions.
    """

    bpm_min: float | None = None
    bpm_max: float | None = None
    bpm_window_pct: float | None = None
    half_double: bool = False
    camelot_compatible: bool = False
    exclude_duplicates: bool = True
    max_per_artist: int | None = None
    max_per_album: int | None = None
    duration_min_s: float | None = None
    duration_max_s: float | None = None
    exclude_genres: tuple[str, ...] = ()  # case-insensitive
    exclude_libraries: tuple[str, ...] = ()
    moods: tuple[str, ...] = ()
    exclude_moods: tuple[str, ...] = ()
    styles: tuple[str, ...] = ()
    exclude_styles: tuple[str, ...] = ()
    tag_min_probability: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.tag_min_probability <= 1.0:
            raise ValueError(f"tag_min_probability must be within 0..1 (got {self.tag_min_probability})")
        for name in ("bpm_min", "bpm_max", "bpm_window_pct", "duration_min_s", "duration_max_s"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative (got {value})")
        for name in ("max_per_artist", "max_per_album"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be at least 1 (got {value})")
        if self.bpm_min is not None and self.bpm_max is not None and self.bpm_min > self.bpm_max:
            raise ValueError(f"bpm_min {self.bpm_min} is above bpm_max {self.bpm_max}")
        if (
            self.duration_min_s is not None
            and self.duration_max_s is not None
            and self.duration_min_s > self.duration_max_s
        ):
            raise ValueError(f"duration_min_s {self.duration_min_s} is above duration_max_s {self.duration_max_s}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SimilarTrack:
    """One result of :func:`similar`, with what a playlist shows as the reason."""

    track_id: int
    host: str
    host_track_id: str
    distance: float  # cosine distance to the (mean) seed vector, 0..2
    title: str
    artist: str | None
    album: str | None
    duration_s: float | None
    bpm: float | None
    key: str | None  # canonical spelling, e.g. "A minor"
    camelot: str | None


def _digest(model: str) -> str:
    return hashlib.sha256(model.encode()).hexdigest()[:8]


def _index_name(model: str, dim: int, generation: int = 0) -> str:
    """The name of ``model``'s main HNSW index of ``generation``: 0 is the name :func:`register_model` and the
    migrations use; from 1 on (:func:`build_index`) ``embeddings_hnsw_<digest>_<dim>_g<n>`` (at most 41 bytes for
    n < 10**6, within PostgreSQL's 63)."""
    if generation == 0:
        slug = re.sub(r"[^a-z0-9]+", "_", model.lower()).strip("_")[:32]
        return f"embeddings_hnsw_{slug}_{dim}_{_digest(model)}"
    return f"embeddings_hnsw_{_digest(model)}_{dim}_g{generation}"


def _key_index_name(model: str, dim: int, camelot: str, generation: int = 0) -> str:
    """The name of ``model``'s HNSW index of one Camelot key: ``embeddings_hnsw_<digest>_<dim>[_g<n>]_<camelot>``."""
    suffix = f"_g{generation}" if generation else ""
    return f"embeddings_hnsw_{_digest(model)}_{dim}{suffix}_{camelot.lower()}"


@dataclass(frozen=True, slots=True)
class _ModelIndex:
    dim: int
    index: str
    key_indexed: bool
    index_type: str  # "vector" or "halfvec": the cast of the indexes and of every distance the queries compute
    generation: int  # of the index names (embedding_models.index_generation)

    def indexes(self, model: str) -> list[tuple[str, str | None]]:
        """(name, Camelot key or ``None`` for the main one) of each index the model's queries use, main first."""
        return _generation(model, self.dim, self.index, self.generation, key_indexes=self.key_indexed)


def _generation(model: str, dim: int, main: str, generation: int, *, key_indexes: bool) -> list[tuple[str, str | None]]:
    keys = [(_key_index_name(model, dim, c, generation), c) for c in CAMELOTS] if key_indexes else []
    return [(main, None), *keys]


def _version(pgvector_version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", pgvector_version)[:2])


def index_type_for(pgvector_version: str) -> str:
    """The HNSW index type for a server with this pgvector (``extversion``, e.g. "0.8.5"): "halfvec" from 0.7 on."""
    return "halfvec" if _version(pgvector_version) >= HALFVEC_SINCE else "vector"


def has_iterative_scans(pgvector_version: str) -> bool:
    """Whether this pgvector (``extversion``) has iterative index scans (0.8 on)."""
    return _version(pgvector_version) >= ITERATIVE_SCANS_SINCE


async def _pgvector_version(conn: Connection) -> str:
    cur = await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
    row = await cur.fetchone()
    if row is None:
        raise StorageError("the vector extension is not installed in this database (run sonantica migrate)")
    return str(row[0])


async def preferred_index_type(conn: Connection) -> str:
    """:func:`index_type_for` the pgvector installed in this database."""
    return index_type_for(await _pgvector_version(conn))


def _cast(index_type: str, dim: int) -> sql.Composed:
    return sql.SQL("::{}({})").format(sql.SQL(index_type), sql.Literal(dim))


def _create_index(
    model: str,
    dim: int,
    index: str,
    *,
    index_type: str,
    m: int,
    ef_construction: int,
    camelot: str | None = None,
    concurrently: bool = False,
) -> sql.Composed:
    """The model's HNSW index over every row, or with ``camelot`` over the rows of that key only."""
    where = sql.SQL("model = {}").format(sql.Literal(model))
    if camelot is not None:
        where = sql.SQL("{} AND camelot = {}").format(where, sql.Literal(camelot))
    return sql.SQL(
        "CREATE INDEX {concurrently}{index} ON embeddings USING hnsw ((embedding{cast}) {ops})"
        " WITH (m = {m}, ef_construction = {ef}) WHERE {where}"
    ).format(
        concurrently=sql.SQL("CONCURRENTLY " if concurrently else ""),
        index=sql.Identifier(index),
        cast=_cast(index_type, dim),
        ops=sql.Identifier(f"{index_type}_cosine_ops"),
        m=sql.Literal(m),
        ef=sql.Literal(ef_construction),
        where=where,
    )


def _printed_predicate(conn: Connection, model: str) -> str:
    """``(model = '<model>'::text)`` as PostgreSQL prints it in an index's predicate (``pg_get_expr``): quotes
    doubled, backslashes too when the session's ``standard_conforming_strings`` is off, never ``E''`` (unlike
    ``quote_literal``, which writes ``E'a\\\\b'`` for ``a\\b``)."""
    literal = model.replace("'", "''")
    if conn.info.parameter_status("standard_conforming_strings") == "off":
        literal = literal.replace("\\", "\\\\")
    return f"(model = '{literal}'::text)"


async def _hnsw_indexes(conn: Connection, model: str) -> dict[str, bool]:
    """Every HNSW index of ``model`` on ``embeddings``, of any generation, valid or not: ``{name: valid}``.

    Found by predicate (``model = '<model>'``, alone or with a key; a plain substring test, so ``_``, ``%`` and
    ``\\`` in a model's name match only themselves) and the ``embeddings_hnsw_`` prefix, so that an index left by
    an interrupted rebuild or a name of an older scheme (migration 0005's) is found too."""
    cur = await conn.execute(
        """
        SELECT c.relname, i.indisvalid AND i.indisready
        FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
        WHERE i.indrelid = 'embeddings'::regclass AND a.amname = 'hnsw' AND starts_with(c.relname, 'embeddings_hnsw_')
          AND strpos(pg_get_expr(i.indpred, i.indrelid), %s) > 0
        """,
        (_printed_predicate(conn, model),),
    )
    return {str(name): bool(valid) for name, valid in await cur.fetchall()}


async def _drop_other_indexes(conn: Connection, model: str, keep: Sequence[tuple[str, str | None]]) -> None:
    """Drop, one ``DROP INDEX CONCURRENTLY`` each (autocommit), every HNSW index of ``model`` not in ``keep`` (its
    ``(name, camelot)`` pairs): the previous generation after a switch, or what an interrupted rebuild left."""
    for name in sorted(set(await _hnsw_indexes(conn, model)) - {name for name, _ in keep}):
        log.info("dropping %s, an HNSW index of %s that its queries no longer use", name, model)
        await conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))


async def _copy_keys(conn: Connection, model: str) -> int:
    """Copy each track's key onto ``model``'s rows that lack it, ``COPY_KEYS_ROWS`` rows per transaction
    (autocommit), so a writer waits for a few of its rows at most and no search waits; returns the rows updated.

    Each updated row is a new row version, which PostgreSQL adds to every index of the model that exists then (the
    old generation's while a rebuild runs); the new generation, built afterwards, holds only the live versions.
    Each batch that updated rows is logged with the rows read so far."""
    after, read, copied = 0, 0, 0
    while True:
        cur = await conn.execute(
            """
            WITH batch AS (
                SELECT track_id FROM embeddings
                WHERE model = %(model)s AND track_id > %(after)s ORDER BY track_id LIMIT %(rows)s
            ), copied AS (
                UPDATE embeddings e SET camelot = f.camelot
                FROM batch b JOIN track_features f ON f.track_id = b.track_id
                WHERE e.model = %(model)s AND e.track_id = b.track_id AND e.camelot IS DISTINCT FROM f.camelot
                RETURNING 1
            )
            SELECT (SELECT max(track_id) FROM batch), (SELECT count(*) FROM batch), (SELECT count(*) FROM copied)
            """,
            {"model": model, "after": after, "rows": COPY_KEYS_ROWS},
        )
        row = await cur.fetchone()
        if row is None or row[0] is None:
            return copied
        after, read, copied = int(row[0]), read + int(row[1]), copied + int(row[2])
        if row[2]:
            log.info("copying the key onto the rows of %s: %d read, %d updated", model, read, copied)


async def _commit_read(conn: Connection) -> None:
    """Commit the transaction a read began on a non-autocommit connection, so the next block is a transaction of
    its own; inside a caller's ``transaction()`` block psycopg refuses (``ProgrammingError``)."""
    if conn.info.transaction_status == pq.TransactionStatus.INTRANS:
        await conn.commit()


async def _model_index(conn: Connection, model: str) -> _ModelIndex:
    cur = await conn.execute(
        "SELECT dim, index_name, key_indexed, index_type, index_generation FROM embedding_models WHERE model = %s",
        (model,),
    )
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"embedding model {model!r} is not registered (the worker registers it at start-up)")
    return _ModelIndex(
        dim=int(row[0]), index=str(row[1]), key_indexed=bool(row[2]), index_type=str(row[3]), generation=int(row[4])
    )


async def register_model(
    conn: Connection, model: str, *, dim: int, m: int = 16, ef_construction: int = 128, build_index: bool = True
) -> bool:
    """Declare an embedding model and build its partial HNSW indexes (cosine, of :func:`preferred_index_type`; one
    over every row and one per Camelot key) if it is new.

    Call once at worker start-up, in a transaction of its own (it takes a lock that keeps two registrations
    apart). Returns ``True`` when the model was new. ``build_index=False`` leaves the indexes to
    :func:`build_index` (faster for a bulk import: build once after loading). While another session rebuilds
    indexes (:func:`_rebuild_lock` taken), a new model is registered without its indexes too, and
    :func:`ensure_indexes` builds them once that rebuild is done: a plain ``CREATE INDEX`` here would wait for the
    rebuild's concurrent build, which waits for this transaction in turn (PostgreSQL would cancel one of them as a
    deadlock). Building them here holds the rebuild lock until the transaction ends, so no rebuild starts meanwhile.
    Raises ``StorageError`` when the model exists with another dimension.
    """
    if not 1 <= dim <= 2000:
        raise ValueError(f"dim must be 1..2000 for an HNSW index (got {dim})")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('sonantica:embedding_models'))")
        cur = await conn.execute("SELECT dim FROM embedding_models WHERE model = %s", (model,))
        row = await cur.fetchone()
        if row is not None:
            if int(row[0]) != dim:
                raise StorageError(f"embedding model {model!r} is stored with dim {row[0]}, not {dim}")
            return False
        index = _index_name(model, dim)
        index_type = await preferred_index_type(conn)
        if build_index:
            cur = await conn.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", (_REBUILD_LOCK,))
            row = await cur.fetchone()
            build_index = row is not None and bool(row[0])
            if not build_index:
                log.info(
                    "another session is rebuilding embedding indexes: %s is registered without its HNSW indexes,"
                    " which ensure_indexes builds once that rebuild is done",
                    model,
                )
        await conn.execute(
            "INSERT INTO embedding_models (model, dim, index_name, index_type, key_indexed, keeps_camelot)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (model, dim, index, index_type, build_index, build_index),
        )
        if build_index:  # a new model has no rows yet: no key to copy
            for name, camelot in _generation(model, dim, index, 0, key_indexes=True):
                create = _create_index(
                    model, dim, name, index_type=index_type, m=m, ef_construction=ef_construction, camelot=camelot
                )
                await conn.execute(create)
    return True


@contextlib.asynccontextmanager
async def _rebuild_lock(conn: Connection) -> AsyncIterator[bool]:
    """Take, without waiting, the lock that keeps two rebuilds apart, with ``conn`` in autocommit mode meanwhile
    (``CREATE``/``DROP INDEX CONCURRENTLY`` run outside transactions); yields whether it was free.

    Never waited for: a session waiting for it would hold a snapshot, which the holder's concurrent builds wait
    for in turn (a deadlock PostgreSQL would break by cancelling one of them)."""
    await _commit_read(conn)
    autocommit = conn.autocommit
    await conn.set_autocommit(True)
    try:
        cur = await conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (_REBUILD_LOCK,))
        row = await cur.fetchone()
        taken = row is not None and bool(row[0])
        try:
            yield taken
        finally:
            if taken and not conn.broken:
                await conn.execute("SELECT pg_advisory_unlock(hashtext(%s))", (_REBUILD_LOCK,))
    finally:
        if not conn.broken:
            await conn.set_autocommit(autocommit)


@contextlib.asynccontextmanager
async def _session_setting(conn: Connection, name: str, value: str) -> AsyncIterator[None]:
    """``name`` set to ``value`` for this session meanwhile, then back to what it was."""
    cur = await conn.execute("SELECT current_setting(%s), set_config(%s, %s, false)", (name, name, value))
    row = await cur.fetchone()
    try:
        yield
    finally:
        if row is not None and not conn.broken:
            await conn.execute("SELECT set_config(%s, %s, false)", (name, str(row[0])))


async def build_index(
    conn: Connection,
    model: str,
    *,
    m: int = 16,
    ef_construction: int = 128,
    maintenance_work_mem_mb: int = 1024,
    key_indexes: bool = True,
    index_type: str | None = None,
) -> None:
    """(Re)build ``model``'s HNSW index and, with ``key_indexes``, its 24 per-key indexes, of ``index_type``
    ("vector" or "halfvec"; default :func:`preferred_index_type`), beside the ones its queries use now, then switch
    to them. Without ``key_indexes`` the model has none afterwards. Call outside a transaction: it commits often.

    Raises ``StorageError`` at once when another session rebuilds (they share a lock, never waited for: see
    :func:`_rebuild_lock`). Steps: (1) indexes of the model that its queries do not use (what an
    interrupted rebuild left, valid or not) are dropped; (2) with ``key_indexes``, the triggers start keeping the key
    on the model's rows (``keeps_camelot``) and it is copied onto them, :data:`COPY_KEYS_ROWS` rows per transaction;
    (3) the new generation's indexes (:func:`_index_name`) are built one by one with ``CREATE INDEX CONCURRENTLY``
    and ``maintenance_work_mem_mb`` for this session (the build is much faster when the graph fits), each logged as
    n of 25; (4) the key is copied again onto rows written meanwhile by a transaction older than step 2, and
    ``embeddings`` analyzed (a concurrent build, unlike a plain one, leaves the planner's row count as it was); (5) one
    short transaction checks that every new index is valid and points ``embedding_models`` (index name, type,
    ``key_indexed``, generation) at them; (6) the old ones are dropped with ``DROP INDEX CONCURRENTLY``.

    Until step 5 commits, searches use the old indexes with their cast and their speed (none if the model has none:
    then they scan its rows exactly); nothing waits on the build but a schema change of ``embeddings``. Writes go
    on (each new vector also goes into every index being built). Each
    concurrent build waits first for the transactions that write ``embeddings`` then, and last for every
    transaction of the database older than its own snapshot (PostgreSQL's rule): an idle open transaction stalls
    it. Interrupted (a crash, a cancelled statement), it leaves an INVALID index that step 1 of the next rebuild
    drops, and the model's queries keep the old generation.
    """
    index_type = index_type or await preferred_index_type(conn)
    if index_type not in ("vector", "halfvec"):
        raise ValueError(f"index_type must be 'vector' or 'halfvec' (got {index_type!r})")
    async with _rebuild_lock(conn) as taken:
        if not taken:
            raise StorageError("another session is rebuilding embedding indexes; build again once it is done")
        await _rebuild(
            conn,
            model,
            index_type=index_type,
            key_indexes=key_indexes,
            m=m,
            ef_construction=ef_construction,
            maintenance_work_mem_mb=maintenance_work_mem_mb,
        )


async def _rebuild(
    conn: Connection,
    model: str,
    *,
    index_type: str,
    key_indexes: bool,
    m: int,
    ef_construction: int,
    maintenance_work_mem_mb: int,
) -> None:
    """:func:`build_index`'s steps, on an autocommit connection holding :func:`_rebuild_lock`."""
    current = await _model_index(conn, model)
    await _drop_other_indexes(conn, model, current.indexes(model))
    generation = current.generation + 1
    dim = current.dim
    new = _generation(model, dim, _index_name(model, dim, generation), generation, key_indexes=key_indexes)
    if key_indexes:
        await conn.execute("UPDATE embedding_models SET keeps_camelot = true WHERE model = %s", (model,))
        copied = await _copy_keys(conn, model)
        log.info("copied the key onto %d rows of %s", copied, model)
    async with _session_setting(conn, "maintenance_work_mem", f"{maintenance_work_mem_mb}MB"):
        for n, (name, camelot) in enumerate(new, 1):
            log.info(
                "building HNSW index %d of %d of %s (%s, %s%s) beside the ones in use",
                n,
                len(new),
                model,
                name,
                index_type,
                "" if camelot is None else f", key {camelot}",
            )
            create = _create_index(
                model,
                dim,
                name,
                index_type=index_type,
                m=m,
                ef_construction=ef_construction,
                camelot=camelot,
                concurrently=True,
            )
            await conn.execute(create)
    if key_indexes:
        await _copy_keys(conn, model)
    await conn.execute("ANALYZE embeddings")  # a concurrent build leaves the table's statistics as they were
    async with conn.transaction():
        found = await _hnsw_indexes(conn, model)
        unusable = [name for name, _ in new if not found.get(name, False)]
        if unusable:
            raise StorageError(f"not switching {model!r} to its new HNSW indexes: {unusable} missing or invalid")
        await conn.execute(
            "UPDATE embedding_models SET index_name = %s, index_type = %s, key_indexed = %s, keeps_camelot = %s,"
            " index_generation = %s WHERE model = %s",
            (new[0][0], index_type, key_indexes, key_indexes, generation, model),
        )
    log.info("%s now searches its %s HNSW indexes of generation %d", model, index_type, generation)
    await _drop_other_indexes(conn, model, new)


def _current(model: str, current: _ModelIndex, found: dict[str, bool], index_type: str) -> bool:
    """Whether ``model``'s queries use a main and 24 per-key indexes of ``index_type`` and all of them are among
    ``found`` (:func:`_hnsw_indexes`) and valid."""
    in_use = current.indexes(model)
    return current.key_indexed and current.index_type == index_type and all(found.get(n, False) for n, _ in in_use)


async def _serving(conn: Connection, model: str, index_type: str) -> bool:
    """:func:`_current`, and the model has no other HNSW index (what an interrupted rebuild leaves)."""
    current = await _model_index(conn, model)
    found = await _hnsw_indexes(conn, model)
    return _current(model, current, found, index_type) and set(found) == {n for n, _ in current.indexes(model)}


async def ensure_indexes(
    conn: Connection, model: str, *, m: int = 16, ef_construction: int = 128, maintenance_work_mem_mb: int = 1024
) -> bool:
    """Rebuild ``model``'s HNSW indexes (:func:`build_index`, beside the ones in use) when it has no per-key indexes
    (a model registered before migration 0024, or by :func:`register_model` during another session's rebuild), its
    indexes are not of :func:`preferred_index_type` (registered before the server's pgvector had ``halfvec``), or
    one is missing or invalid; drop what an interrupted rebuild left. Returns whether it rebuilt; ``False`` at once
    when another session holds the rebuild lock (rebuilding, or registering a model): that session rebuilds only
    its own models, so :func:`indexes_ready` then tells whether this one still needs a try later. Call outside a
    transaction (see :func:`build_index`).

    Minutes for a large library, during which Sonic Match answers from the old indexes (docs/benchmarks/scale.md).
    A refusal of the server (e.g. an index name already taken) raises ``StorageError`` naming the model; a lost
    server or a cancelled statement raises psycopg's ``OperationalError`` (which
    :func:`~sidecar.storage.db.connection` reports as ``StorageUnavailableError``).
    """
    try:
        return await _ensure_indexes(
            conn, model, m=m, ef_construction=ef_construction, maintenance_work_mem_mb=maintenance_work_mem_mb
        )
    except psycopg.OperationalError:
        raise
    except psycopg.Error as exc:
        raise StorageError(f"rebuilding the HNSW indexes of {model!r}: {exc}") from exc


async def indexes_ready(conn: Connection, model: str) -> bool:
    """Whether :func:`ensure_indexes` has nothing to do for ``model``: its queries use a valid main and 24 per-key
    indexes of :func:`preferred_index_type`, and it has no other HNSW index. Commits the read on a connection
    outside a transaction block."""
    ready = await _serving(conn, model, await preferred_index_type(conn))
    await _commit_read(conn)
    return ready


async def _ensure_indexes(
    conn: Connection, model: str, *, m: int, ef_construction: int, maintenance_work_mem_mb: int
) -> bool:
    if await indexes_ready(conn, model):
        return False
    wanted = await preferred_index_type(conn)
    async with _rebuild_lock(conn) as taken:
        if not taken:
            log.info("another session holds the embedding index rebuild lock; the indexes of %s wait for it", model)
            return False
        current = await _model_index(conn, model)
        if _current(model, current, await _hnsw_indexes(conn, model), wanted):
            await _drop_other_indexes(conn, model, current.indexes(model))
            return False
        log.info(
            "rebuilding the HNSW indexes of %s as %s, one per key too (once; minutes for a large library)",
            model,
            wanted,
        )
        await _rebuild(
            conn,
            model,
            index_type=wanted,
            key_indexes=True,
            m=m,
            ef_construction=ef_construction,
            maintenance_work_mem_mb=maintenance_work_mem_mb,
        )
    return True


@dataclass(frozen=True, slots=True)
class WarmedIndex:
    """What :func:`warm_index` read: the model's main HNSW index and how many of its rows the scan visited."""

    model: str
    index: str
    rows: int
    rows_visited: int


async def warm_index(conn: Connection, model: str) -> WarmedIndex | None:
    """Read ``model``'s main HNSW index once from start to end, so that its pages sit in PostgreSQL's shared
    buffers (as many as ``shared_buffers`` holds) and in the OS page cache: after a restart, the first Sonic Match
    searches otherwise read the graph from disk (docs/benchmarks/scale.md).

    How: one search ordered by distance to a stored vector, with pgvector's iterative index scan allowed to run
    until it has visited every element (``hnsw.max_scan_tuples``, ``work_mem`` of
    :data:`WARM_SCAN_BYTES_PER_ROW` per row) and a filter no row passes, so that nothing is returned and no
    stored vector is read; the heap rows are read for their visibility. The settings hold for this transaction
    only. Seconds to a minute for a million rows; one backend holds about 256 MB per million rows meanwhile.

    It reads the index ``embedding_models`` names at the call: after a rebuild switched the model to a new
    generation (:func:`build_index`), a later call reads the new one.

    Returns ``None`` (nothing read) when the model has no vectors, its main index does not exist or is not valid
    (a model registered during another session's rebuild, before :func:`ensure_indexes` built it) or the server's
    pgvector is older than 0.8 (no iterative scans). Raises ``StorageError`` when the planner does not search the
    model's index. Call in a transaction or on a non-autocommit connection.
    """
    found = await _model_index(conn, model)
    if not has_iterative_scans(await _pgvector_version(conn)):
        log.info("pgvector has no iterative index scans (0.8 on): the %s index is not warmed", model)
        return None
    if not (await _hnsw_indexes(conn, model)).get(found.index, False):
        log.info("%s has no valid HNSW index %s yet (ensure_indexes builds it): nothing to warm", model, found.index)
        return None
    cur = await conn.execute(
        "SELECT count(*), (SELECT embedding FROM embeddings WHERE model = %s LIMIT 1) FROM embeddings WHERE model = %s",
        (model, model),
    )
    row = await cur.fetchone()
    rows, probe = (0, None) if row is None else (int(row[0]), row[1])
    if rows == 0 or probe is None:
        return None
    memory_mb = max(64, -(-rows * WARM_SCAN_BYTES_PER_ROW // 2**20))
    settings = {
        "hnsw.iterative_scan": "relaxed_order",
        "hnsw.max_scan_tuples": str(min(2**31 - 1, 2 * rows)),
        "hnsw.scan_mem_multiplier": "1",
        "hnsw.ef_search": "40",
        "work_mem": f"{memory_mb}MB",
        "enable_sort": "off",  # the plan must walk the index, not sort the rows
        "enable_seqscan": "off",
        "enable_bitmapscan": "off",
        "max_parallel_workers_per_gather": "0",
    }
    for name, value in settings.items():
        await conn.execute("SELECT set_config(%s, %s, true)", (name, value))
    distance = _distance(found.index_type, found.dim, sql.Identifier("embedding"), sql.Placeholder("probe"))
    query = sql.SQL(
        "EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) SELECT track_id FROM embeddings"
        " WHERE model = {model} AND random() < 0 ORDER BY {distance}"
    ).format(model=sql.Literal(model), distance=distance)
    try:
        cur = await conn.execute(query, {"probe": probe})
        plan_row = await cur.fetchone()
    except psycopg.errors.OperationalError:
        raise  # a lost server: the caller's transaction() reports it as unavailable
    except psycopg.Error as exc:
        raise StorageError(f"warming {model!r}: {exc}") from exc
    scan = None if plan_row is None else _index_scan_node(plan_row[0][0]["Plan"], found.index)
    if scan is None:
        raise StorageError(f"warming {model!r}: the planner did not search its index {found.index}")
    visited = scan.get("Rows Removed by Filter", 0)
    return WarmedIndex(
        model=model, index=found.index, rows=rows, rows_visited=visited if isinstance(visited, int) else 0
    )


def _index_scan_node(node: dict[str, object], index: str) -> dict[str, object] | None:
    """The plan node that scans ``index`` (depth first), or ``None``."""
    if node.get("Index Name") == index:
        return node
    children = node.get("Plans", [])
    for child in children if isinstance(children, list) else []:
        found = _index_scan_node(child, index)
        if found is not None:
            return found
    return None


async def drop_index(conn: Connection, model: str) -> None:
    """Drop ``model``'s HNSW indexes of every generation (before a bulk :func:`copy_embeddings`; :func:`build_index`
    makes them again); in the caller's transaction."""
    names = sorted(await _hnsw_indexes(conn, model))
    if names:
        await conn.execute(
            sql.SQL("DROP INDEX IF EXISTS {}").format(sql.SQL(", ").join(sql.Identifier(n) for n in names))
        )
    await conn.execute(
        "UPDATE embedding_models SET key_indexed = false, keeps_camelot = false WHERE model = %s", (model,)
    )


async def model_dim(conn: Connection, model: str) -> int:
    """The registered dimension of ``model``; ``NotFoundError`` when it was never registered."""
    cur = await conn.execute("SELECT dim FROM embedding_models WHERE model = %s", (model,))
    row = await cur.fetchone()
    if row is None:
        raise NotFoundError(f"embedding model {model!r} is not registered (the worker registers it at start-up)")
    return int(row[0])


async def upsert_embedding(conn: Connection, track_id: int, model: str, vector: npt.NDArray[np.float32]) -> None:
    """Store (or replace) the track's vector for ``model``.

    Raises ``NotFoundError`` for an unregistered model and ``StorageError`` for a vector whose length is not the
    model's dimension or that holds NaN/inf.
    """
    values = np.asarray(vector, dtype=np.float32)
    if values.ndim != 1 or not np.all(np.isfinite(values)):
        raise StorageError(f"embedding for track {track_id} must be a finite 1-d vector (shape {values.shape})")
    dim = await model_dim(conn, model)
    if values.shape[0] != dim:
        raise StorageError(f"embedding for track {track_id} has {values.shape[0]} values; {model!r} has {dim}")
    await conn.execute(
        """
        INSERT INTO embeddings (track_id, model, embedding) VALUES (%s, %s, %s)
        ON CONFLICT (track_id, model) DO UPDATE SET embedding = EXCLUDED.embedding, updated_at = now()
        """,
        (track_id, model, values),
    )


async def copy_embeddings(
    conn: Connection, model: str, track_ids: Sequence[int], matrix: npt.NDArray[np.float32]
) -> int:
    """Bulk-insert new vectors (``matrix[i]`` for ``track_ids[i]``) with binary COPY; returns the row count.

    For imports and benchmarks: rows must not exist yet (a duplicate ``(track_id, model)`` fails the whole COPY).
    Raises ``StorageError`` when the shapes do not match the model's dimension or the ids.
    """
    values = np.asarray(matrix, dtype=np.float32)
    dim = await model_dim(conn, model)
    if values.ndim != 2 or values.shape[1] != dim or values.shape[0] != len(track_ids):
        raise StorageError(f"expected a ({len(track_ids)}, {dim}) matrix for {model!r}, got {values.shape}")
    if not np.all(np.isfinite(values)):
        raise StorageError("embeddings must be finite")
    async with (
        conn.cursor() as cur,
        cur.copy("COPY embeddings (track_id, model, embedding) FROM STDIN WITH (FORMAT BINARY)") as copy,
    ):
        copy.set_types(["int8", "text", "vector"])
        for track_id, row in zip(track_ids, values, strict=True):
            await copy.write_row((track_id, model, row))
    return len(track_ids)


async def models_with_vectors(conn: Connection, track_ids: Sequence[int], models: Sequence[str]) -> set[str]:
    """Which of ``models`` have a stored vector for at least one of ``track_ids`` (from the primary key's index:
    no vector is read)."""
    cur = await conn.execute(
        "SELECT DISTINCT model FROM embeddings WHERE track_id = ANY(%s) AND model = ANY(%s)",
        (list(track_ids), list(models)),
    )
    return {str(row[0]) for row in await cur.fetchall()}


def _distance(index_type: str, dim: int, left: sql.Composable, right: sql.Composable) -> sql.Composed:
    cast = _cast(index_type, dim)
    return sql.SQL("({left}{cast}) <=> ({right}{cast})").format(left=left, right=right, cast=cast)


async def _set_ef_search(conn: Connection, candidates: int) -> None:
    await conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(candidates),))


async def nearest(
    conn: Connection,
    model: str,
    vector: npt.NDArray[np.float32],
    *,
    limit: int = 10,
    exact: bool = False,
    ef_search: int | None = None,
) -> list[Neighbour]:
    """The ``limit`` tracks whose ``model`` vectors are closest (cosine) to ``vector``, nearest first.

    ``exact=True`` scans every vector (the reference for recall); otherwise the HNSW index answers with
    ``hnsw.ef_search = ef_search`` (default ``max(40, limit)``, at most 1000), set for the current transaction.
    """
    async with conn.transaction() if conn.autocommit else contextlib.nullcontext():
        return await _nearest(conn, model, vector, limit=limit, exact=exact, ef_search=ef_search)


async def _nearest(
    conn: Connection, model: str, vector: npt.NDArray[np.float32], *, limit: int, exact: bool, ef_search: int | None
) -> list[Neighbour]:
    found = await _model_index(conn, model)
    query_vector = sql.Placeholder("vector")
    if exact:
        order = sql.SQL("embedding <=> {}::vector").format(query_vector)  # no cast: the index cannot serve it
    else:
        await _set_ef_search(conn, min(MAX_CANDIDATES, ef_search or max(40, limit)))
        order = _distance(found.index_type, found.dim, sql.Identifier("embedding"), query_vector)
    query = sql.SQL(
        "SELECT track_id, {order} AS distance FROM embeddings WHERE model = {model} ORDER BY {order} LIMIT {limit}"
    ).format(order=order, model=sql.Literal(model), limit=sql.Literal(limit))
    cur = await conn.execute(query, {"vector": np.asarray(vector, dtype=np.float32)})
    return [Neighbour(int(track_id), float(distance)) for track_id, distance in await cur.fetchall()]


@dataclass(frozen=True, slots=True)
class _Seeds:
    model: str
    dim: int
    index_type: str
    key_indexed: bool
    bpm: float | None
    camelots: tuple[str, ...]


async def _load_seeds(
    conn: Connection, seed_track_ids: Sequence[int], models: Sequence[str], *, ef_search: int
) -> _Seeds:
    """The model to search (the first of ``models`` with a vector of any seed, else the first), its dimension and
    the seeds' BPM and keys, in one round trip that also sets ``hnsw.ef_search``. Raises ``NotFoundError`` for a
    seed that is not a track, an unregistered model, or a seed without a vector of the model."""
    cur = await conn.execute(
        """
        SELECT c.model, m.dim, m.index_type, m.key_indexed, s.id,
               EXISTS (SELECT FROM tracks t WHERE t.id = s.id),
               EXISTS (SELECT FROM embeddings e WHERE e.track_id = s.id AND e.model = c.model),
               f.bpm, f.key, set_config('hnsw.ef_search', %s, true)
        FROM unnest(%s::text[]) WITH ORDINALITY AS c(model, preference)
        CROSS JOIN unnest(%s::bigint[]) WITH ORDINALITY AS s(id, position)
        LEFT JOIN embedding_models m ON m.model = c.model
        LEFT JOIN track_features f ON f.track_id = s.id
        ORDER BY c.preference, s.position
        """,
        (str(ef_search), list(models), list(seed_track_ids)),
    )
    rows = await cur.fetchall()
    absent = list(dict.fromkeys(int(row[4]) for row in rows if not row[5]))
    if absent:
        raise NotFoundError(f"no track with id {', '.join(map(str, absent))}")
    model = next((str(row[0]) for row in rows if row[6]), models[0])
    rows = [row for row in rows if row[0] == model]
    if rows[0][1] is None:
        raise NotFoundError(f"embedding model {model!r} is not registered (the worker registers it at start-up)")
    without = [int(row[4]) for row in rows if not row[6]]
    if without:
        raise NotFoundError(f"no {model!r} embedding for seed track(s) {', '.join(map(str, without))}")
    bpms = [float(row[7]) for row in rows if row[7] is not None]
    camelots: list[str] = []
    for row in rows:
        if row[8] is not None:
            camelots.extend(KeySignature.parse(str(row[8])).compatible_camelot())
    return _Seeds(
        model=model,
        dim=int(rows[0][1]),
        index_type=str(rows[0][2]),
        key_indexed=bool(rows[0][3]),
        bpm=sum(bpms) / len(bpms) if bpms else None,
        camelots=tuple(sorted(set(camelots))),
    )


def _bpm_bounds(filters: SimilarFilters, seeds: _Seeds) -> tuple[float | None, float | None]:
    low, high = filters.bpm_min, filters.bpm_max
    if filters.bpm_window_pct is not None:
        if seeds.bpm is None:
            raise ValueError("a BPM window around the seed needs a seed with a BPM; none of the seeds has one")
        window_low = seeds.bpm * (1 - filters.bpm_window_pct / 100)
        window_high = seeds.bpm * (1 + filters.bpm_window_pct / 100)
        low = window_low if low is None else max(low, window_low)
        high = window_high if high is None else min(high, window_high)
    return low, high


def _conditions(filters: SimilarFilters, seeds: _Seeds) -> tuple[list[sql.Composable], dict[str, object]]:
    conditions: list[sql.Composable] = []
    params: dict[str, object] = {}
    low, high = _bpm_bounds(filters, seeds)
    if low is not None or high is not None:
        low, high = low if low is not None else 0.0, high if high is not None else float("inf")
        scales = (1.0, 0.5, 2.0) if filters.half_double else (1.0,)  # bpm * 2 in [low, high] <=> bpm in [low/2, high/2]
        options = []
        for n, scale in enumerate(scales):  # ranges of f.bpm itself: the BPM index serves the filter-first query
            params[f"bpm_low_{n}"], params[f"bpm_high_{n}"] = low * scale, high * scale
            options.append(f"f.bpm BETWEEN %(bpm_low_{n})s AND %(bpm_high_{n})s")
        conditions.append(sql.SQL("(" + " OR ".join(options) + ")"))
    if filters.camelot_compatible:
        if not seeds.camelots:
            raise ValueError("key-compatible results need a seed with a key; none of the seeds has one")
        params["camelots"] = list(seeds.camelots)
        conditions.append(sql.SQL("f.camelot = ANY(%(camelots)s)"))
    if filters.duration_min_s is not None:
        params["duration_min_s"] = filters.duration_min_s
        conditions.append(sql.SQL("t.duration_s >= %(duration_min_s)s"))
    if filters.duration_max_s is not None:
        params["duration_max_s"] = filters.duration_max_s
        conditions.append(sql.SQL("t.duration_s <= %(duration_max_s)s"))
    if filters.exclude_genres:
        params["genres"] = [g.lower() for g in filters.exclude_genres]
        conditions.append(sql.SQL("NOT EXISTS (SELECT 1 FROM unnest(t.genres) g WHERE lower(g) = ANY(%(genres)s))"))
    if filters.exclude_libraries:
        params["libraries"] = list(filters.exclude_libraries)
        conditions.append(sql.SQL("(t.library IS NULL OR NOT (t.library = ANY(%(libraries)s)))"))
    tag_filters = (
        ("moods", filters.moods, ""),
        ("styles", filters.styles, ""),
        ("exclude_moods", filters.exclude_moods, "NOT "),
        ("exclude_styles", filters.exclude_styles, "NOT "),
    )
    for name, wanted, negation in tag_filters:
        if wanted:
            params[name] = list(wanted)
            params["tag_min_probability"] = filters.tag_min_probability
            conditions.append(
                sql.SQL(
                    "{negation}EXISTS (SELECT 1 FROM track_tags g WHERE g.track_id = t.id"
                    " AND g.tag = ANY({tags}) AND g.probability >= {probability})"
                ).format(
                    negation=sql.SQL(negation),
                    tags=sql.Placeholder(name),
                    probability=sql.Placeholder("tag_min_probability"),
                )
            )
    if filters.exclude_duplicates:
        conditions.append(
            sql.SQL(
                "(t.norm_title = '' OR NOT EXISTS (SELECT 1 FROM tracks s WHERE s.id = ANY(%(seeds)s)"
                " AND s.norm_artist = t.norm_artist AND s.norm_title = t.norm_title))"
            )
        )
    return conditions, params


_FROM_INDEX = """
    SELECT e.track_id, {distance} AS distance
    FROM embeddings e
    WHERE e.model = {model}
    ORDER BY {distance}
    LIMIT %(candidates)s"""
"""The ``candidates`` nearest vectors from the model's HNSW index, before any filter."""

_FROM_KEY_INDEX = """
    (SELECT e.track_id, {distance} AS distance
    FROM embeddings e
    WHERE e.model = {model} AND e.camelot = {camelot}
    ORDER BY {distance}
    LIMIT %(candidates)s)"""
"""The ``candidates`` nearest vectors of one key from its partial HNSW index: the model and the key are literals,
so the planner can match the index's predicate."""

_FILTER_FIRST = """
    SELECT e.track_id, {distance} AS distance
    FROM tracks t
    LEFT JOIN track_features f ON f.track_id = t.id
    JOIN embeddings e ON e.track_id = t.id AND e.model = {model}
    WHERE NOT t.is_missing AND {conditions}
    ORDER BY ({distance}) + 0
    LIMIT %(candidates)s"""
"""The nearest of the tracks that pass the filters, by exact distance: ``+ 0`` keeps the planner off the HNSW index
(which would stop after ``hnsw.ef_search`` rows), so the filters' own indexes (BPM, key) choose the rows."""

_SIMILAR = """
WITH query AS (
    SELECT avg(embedding{cast}) AS v FROM embeddings WHERE model = {model} AND track_id = ANY(%(seeds)s)
), candidates AS ({candidates}
), kept AS (
    SELECT c.track_id, c.distance, t.host, t.host_track_id, t.title, t.artist, t.album, t.duration_s,
           CASE WHEN t.norm_title = '' THEN t.id::text ELSE t.norm_artist || chr(31) || t.norm_title END AS song,
           coalesce(nullif(t.norm_artist, ''), t.id::text) AS artist_group,
           coalesce(nullif(t.norm_artist, ''), t.id::text) || chr(31)
               || coalesce(nullif(normalize_for_dedup(t.album), ''), t.id::text) AS album_group
    FROM candidates c
    JOIN tracks t ON t.id = c.track_id
    LEFT JOIN track_features f ON f.track_id = c.track_id
    WHERE NOT t.is_missing AND NOT (c.track_id = ANY(%(seeds)s)) AND {conditions}
), songs AS (
    SELECT *, row_number() OVER (PARTITION BY song ORDER BY distance, track_id) AS song_rank FROM kept
), ranked AS (
    SELECT *, {artist_rank} AS artist_rank, {album_rank} AS album_rank FROM songs WHERE {dedup}
), chosen AS (
    SELECT track_id, host, host_track_id, distance, title, artist, album, duration_s
    FROM ranked
    WHERE artist_rank <= %(max_per_artist)s AND album_rank <= %(max_per_album)s
    ORDER BY distance, track_id
    LIMIT %(limit)s
)
SELECT c.track_id, c.host, c.host_track_id, c.distance, c.title, c.artist, c.album, c.duration_s,
       f.bpm, f.key, f.camelot
FROM chosen c
LEFT JOIN track_features f ON f.track_id = c.track_id
ORDER BY c.distance, c.track_id
"""
"""The similar-tracks query. ``kept`` joins ``track_features`` only for the filters that read it (the planner
drops an unused left join on its primary key); the returned rows read their tempo and key last, after the limit.
A cap's rank is ``1`` when that cap is off, so no window (and no album normalisation) is computed for it."""

_ARTIST_RANK = "row_number() OVER (PARTITION BY artist_group ORDER BY distance, track_id)"
_ALBUM_RANK = "row_number() OVER (PARTITION BY album_group ORDER BY distance, track_id)"


def _selective(filters: SimilarFilters) -> bool:
    """Any filter or cap beyond excluding duplicates."""
    unfiltered = SimilarFilters(
        exclude_duplicates=filters.exclude_duplicates, tag_min_probability=filters.tag_min_probability
    )
    return filters != unfiltered


def _default_candidates(filters: SimilarFilters, limit: int) -> int:
    return max(200, 20 * limit) if _selective(filters) else max(UNFILTERED_CANDIDATES, 5 * limit)


def _by_key(filters: SimilarFilters, seeds: _Seeds) -> bool:
    """Whether the candidates come from the compatible keys' indexes (a key-indexed model, Camelot-compatible)."""
    return filters.camelot_compatible and seeds.key_indexed and bool(seeds.camelots)


def _first_candidates(filters: SimilarFilters, seeds: _Seeds, limit: int, candidates: int | None) -> int:
    if candidates is None:
        candidates = max(KEY_CANDIDATES, 2 * limit) if _by_key(filters, seeds) else _default_candidates(filters, limit)
    return min(MAX_CANDIDATES, candidates)


def _steps(
    filters: SimilarFilters, seeds: _Seeds, limit: int, candidates: int | None
) -> list[tuple[str, str, int, int]]:
    """The steps of :func:`similar`, each (logged name, candidates' source, ``hnsw.ef_search``, rows read): the
    first, then wider ones for when fewer than ``limit`` rows come back. Unfiltered, the first step reads only
    ``UNFILTERED_ROWS * limit`` of its candidates (same search, same recall: each row read costs a fetch of its
    stored vector) and the second all of them."""
    first = _first_candidates(filters, seeds, limit, candidates)
    source = "keys" if _by_key(filters, seeds) else "index"
    if not _selective(filters):
        rows = min(first, UNFILTERED_ROWS * limit)
        return [(source, source, first, rows)] + ([(f"{source}-all", source, first, first)] if rows < first else [])
    steps = [(source, source, first, first)]
    if first < MAX_CANDIDATES:
        steps.append((f"{source}-{MAX_CANDIDATES}", source, MAX_CANDIDATES, MAX_CANDIDATES))
    return [*steps, ("filter-first", "filter-first", MAX_CANDIDATES, MAX_CANDIDATES)]


async def similar(
    conn: Connection,
    seed_track_ids: Sequence[int],
    *,
    model: str,
    limit: int = 20,
    filters: SimilarFilters | None = None,
    candidates: int | None = None,
) -> list[SimilarTrack]:
    """Tracks that sound like the seeds (cosine distance to the mean seed vector of ``model``), nearest first.

    One SQL query: the model's HNSW index returns ``candidates`` nearest vectors (at most 1000, with
    ``hnsw.ef_search`` set to the same number for the current transaction); every filter, the duplicate removal
    and the per-artist/per-album caps are then applied to those candidates. Default ``candidates``:
    ``max(UNFILTERED_CANDIDATES, 5 * limit)`` (200) without selective filters (only duplicates excluded; of them
    the first ``UNFILTERED_ROWS * limit`` are read, and all only when those leave fewer than ``limit``),
    ``max(200, 20 * limit)`` with any other filter or cap (docs/benchmarks/vectors.md and scale.md give the recall
    and latency of each). With ``camelot_compatible`` on a key-indexed model (:func:`build_index`), the candidates
    are instead the ``candidates`` nearest of each compatible key, from its own partial index (default
    ``max(KEY_CANDIDATES, 2 * limit)`` per key). Seeds and missing tracks are never returned. When filters or caps
    leave fewer than ``limit`` results, the query runs again with 1000 candidates (per key), then (still short)
    filter-first: the nearest of the tracks that pass the filters by exact distance, so ``limit`` rows come back
    whenever that many tracks pass (no iterative index scan, which pgvector 0.6 lacks; docs/benchmarks/scale.md
    gives the cost). Each answer logs the step that gave it (``similar_step`` on a DEBUG record of this module's
    logger). Round trips: one for the seeds (and ``hnsw.ef_search``), one per step.

    Raises ``NotFoundError`` when a seed is not a track or has no embedding for ``model`` (or the model is
    unknown) and ``ValueError`` for an empty seed list or a filter the seeds cannot anchor (a BPM window or key
    compatibility when no seed has a BPM / key).
    """
    answer = await similar_in_first_model(
        conn, seed_track_ids, models=[model], limit=limit, filters=filters, candidates=candidates
    )
    return answer.tracks


@dataclass(frozen=True, slots=True)
class SimilarAnswer:
    """What :func:`similar_in_first_model` found, and in which model."""

    model: str
    tracks: list[SimilarTrack]


async def similar_in_first_model(
    conn: Connection,
    seed_track_ids: Sequence[int],
    *,
    models: Sequence[str],
    limit: int = 20,
    filters: SimilarFilters | None = None,
    candidates: int | None = None,
) -> SimilarAnswer:
    """:func:`similar` in the first of ``models`` that holds a vector of any seed (``models[0]`` when none does),
    chosen in the same round trip that reads the seeds. Raises as :func:`similar` (for the chosen model), and
    ``ValueError`` for an empty ``models``."""
    if not seed_track_ids:
        raise ValueError("similar() needs at least one seed track")
    if not models:
        raise ValueError("similar() needs at least one model")
    if limit < 1:
        raise ValueError(f"limit must be at least 1 (got {limit})")
    chosen = filters or SimilarFilters()
    async with conn.transaction() if conn.autocommit else contextlib.nullcontext():
        default = min(MAX_CANDIDATES, candidates or _default_candidates(chosen, limit))
        seeds = await _load_seeds(conn, seed_track_ids, models, ef_search=default)
        ef_search = default
        for step, pool_source, count, rows in _steps(chosen, seeds, limit, candidates):
            if count != ef_search:  # the first step, then wider ones while fewer than limit rows came back
                ef_search = count
                await _set_ef_search(conn, ef_search)
            pool = (pool_source, rows)
            found = await _similar(conn, seed_track_ids, seeds, limit=limit, filters=chosen, pool=pool)
            answered = step
            if len(found) >= limit:
                break
        log.debug(
            "similar tracks of %s: %d rows from %s", seeds.model, len(found), answered, extra={"similar_step": answered}
        )
        return SimilarAnswer(model=seeds.model, tracks=found)


async def similar_plan(
    conn: Connection,
    seed_track_ids: Sequence[int],
    *,
    model: str,
    limit: int = 20,
    filters: SimilarFilters | None = None,
) -> str:
    """The ``EXPLAIN`` (text) of the first query :func:`similar` runs with these arguments (which indexes serve it)."""
    chosen = filters or SimilarFilters()
    async with conn.transaction() if conn.autocommit else contextlib.nullcontext():
        seeds = await _load_seeds(conn, seed_track_ids, [model], ef_search=MAX_CANDIDATES)
        _, source, _, rows = _steps(chosen, seeds, limit, None)[0]
        pool = (source, rows)
        query, params = _similar_query(seed_track_ids, seeds, limit=limit, filters=chosen, pool=pool)
        cur = await conn.execute(sql.SQL("EXPLAIN ") + query, params)
        return "\n".join(str(row[0]) for row in await cur.fetchall())


def _candidates_query(
    source: str, seeds: _Seeds, model: str, distance: sql.Composable, where: sql.Composable
) -> sql.Composable:
    literal = sql.Literal(model)
    if source == "keys":
        return sql.SQL(" UNION ALL").join(
            sql.SQL(_FROM_KEY_INDEX).format(distance=distance, model=literal, camelot=sql.Literal(camelot))
            for camelot in seeds.camelots
        )
    text = _FILTER_FIRST if source == "filter-first" else _FROM_INDEX
    return sql.SQL(text).format(distance=distance, model=literal, conditions=where)


def _similar_query(
    seed_track_ids: Sequence[int],
    seeds: _Seeds,
    *,
    limit: int,
    filters: SimilarFilters,
    pool: tuple[str, int],
) -> tuple[sql.Composed, dict[str, object]]:
    source, candidates = pool
    conditions, params = _conditions(filters, seeds)
    distance = _distance(seeds.index_type, seeds.dim, sql.SQL("e.embedding"), sql.SQL("(SELECT v FROM query)"))
    where = sql.SQL(" AND ").join([sql.SQL("true"), *conditions])
    query = sql.SQL(_SIMILAR).format(
        candidates=_candidates_query(source, seeds, seeds.model, distance, where),
        cast=_cast("vector", seeds.dim),
        model=sql.Literal(seeds.model),
        conditions=where,
        dedup=sql.SQL("song_rank = 1" if filters.exclude_duplicates else "true"),
        artist_rank=sql.SQL(_ARTIST_RANK if filters.max_per_artist else "1"),
        album_rank=sql.SQL(_ALBUM_RANK if filters.max_per_album else "1"),
    )
    never = 2**31 - 1
    params |= {
        "seeds": list(seed_track_ids),
        "candidates": candidates,
        "limit": limit,
        "max_per_artist": filters.max_per_artist or never,
        "max_per_album": filters.max_per_album or never,
    }
    return query, params


async def _similar(
    conn: Connection,
    seed_track_ids: Sequence[int],
    seeds: _Seeds,
    *,
    limit: int,
    filters: SimilarFilters,
    pool: tuple[str, int],
) -> list[SimilarTrack]:
    """One step of :func:`similar`: ``pool`` is the candidates' source ("index", "keys" or "filter-first") and
    how many (per key for "keys")."""
    query, params = _similar_query(seed_track_ids, seeds, limit=limit, filters=filters, pool=pool)
    cur = await conn.execute(query, params)
    rows = await cur.fetchall()
    return [
        SimilarTrack(
            track_id=int(r[0]),
            host=str(r[1]),
            host_track_id=str(r[2]),
            distance=float(r[3]),
            title=str(r[4]),
            artist=r[5],
            album=r[6],
            duration_s=r[7],
            bpm=r[8],
            key=r[9],
            camelot=r[10],
        )
        for r in rows
    ]
