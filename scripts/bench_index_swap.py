"""Sonic Match while a model's HNSW indexes are rebuilt (the upgrade ``vectors.ensure_indexes`` makes at a worker's
start: single-precision main index, no per-key ones, no key on the rows -> half precision, main + 24 per key).

``--scenario keys``: the indexes also predate the per-key ones (migration 0024), so the key is copied onto every
row first. Each round starts both procedures from that same state, on the same vectors, in the same embedded
PostgreSQL:

* ``previous``: the procedure before (replayed here): one transaction drops the indexes and copies the key onto
  the rows, a second builds the 25 indexes with plain ``CREATE INDEX``, which every query of ``embeddings`` waits for;
* ``beside``: ``vectors.ensure_indexes`` (key copied in batches, ``CREATE INDEX CONCURRENTLY`` of a new generation
  beside the old one, switch, ``DROP INDEX CONCURRENTLY``).

Meanwhile one task searches (``vectors.similar``, unfiltered, limit 20, a random seed, then a 50 ms pause) and one
writes (a new track and its vector, then a 50 ms pause), each on a connection of its own. Printed: the rebuild's
wall time and phases, and the latency of the searches and writes that started during it (p50 / p95 / max), with the
searches' latency before it (old index) and after it (new index) for reference, and how much of the new indexes
the operating system's page cache holds right after the rebuild (``fincore``, util-linux; before any search).

Run: ``python -m scripts.bench_index_swap --tracks 20000 --dim 1506 --scenario type`` (from the repository root).
Prints Markdown.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import logging
import os
import platform
import random
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from psycopg import sql

from scripts.bench_vectors import fresh_database, percentile
from sidecar.demo.vectors import clustered_unit_vector_chunks
from sidecar.embedded import embedded_postgres_url
from sidecar.storage import synthetic, vectors
from sidecar.storage.db import Connection, Pool, close_pool, connection, open_pool, transaction
from sidecar.storage.migrate import migrate

MODEL = "bench-swap"
PAUSE_S = 0.05


@dataclass
class Load:
    """Latencies (ms) of the searches and writes that started while ``running``."""

    searches: list[float] = field(default_factory=list)
    writes: list[float] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


class Phases(logging.Handler):
    """The time of each log record of ``sidecar.storage.vectors`` (the rebuild's progress)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.records: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((time.perf_counter(), record.getMessage()))

    def first(self, prefix: str) -> float | None:
        return next((t for t, message in self.records if message.startswith(prefix)), None)


async def previous_rebuild(conn: Connection, mem_mb: int) -> None:
    """The rebuild before indexes were built beside the old ones (replayed from its code: same statements)."""
    found = await vectors._model_index(conn, MODEL)
    names = sorted(await vectors._hnsw_indexes(conn, MODEL))
    await conn.commit()
    copy = (
        "UPDATE embeddings e SET camelot = f.camelot FROM track_features f"
        " WHERE e.model = %s AND f.track_id = e.track_id AND e.camelot IS DISTINCT FROM f.camelot"
    )
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('sonantica:embedding_models'))")
        await conn.execute(sql.SQL("DROP INDEX {}").format(sql.SQL(", ").join(sql.Identifier(n) for n in names)))
        await conn.execute("UPDATE embedding_models SET key_indexed = false WHERE model = %s", (MODEL,))
        await conn.execute(copy, (MODEL,))
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext('sonantica:embedding_models'))")
        await conn.execute("SELECT set_config('maintenance_work_mem', %s, true)", (f"{mem_mb}MB",))
        await conn.execute(
            "UPDATE embedding_models SET index_type = 'halfvec', key_indexed = true, keeps_camelot = true"
            " WHERE model = %s",
            (MODEL,),
        )
        await conn.execute(copy, (MODEL,))
        for name, camelot in vectors._generation(MODEL, found.dim, found.index, found.generation, key_indexes=True):
            create = vectors._create_index(
                MODEL, found.dim, name, index_type="halfvec", m=16, ef_construction=128, camelot=camelot
            )
            await conn.execute(create)


async def reset(pool: Pool, mem_mb: int, scenario: str) -> None:
    """The upgrade's starting state, vacuumed: a single-precision main index and, for ``type``, the 24 per-key ones
    and the key on the rows; for ``keys``, no per-key index and no key on the rows."""
    async with transaction(pool) as conn:
        await vectors.drop_index(conn, MODEL)  # first: updating indexed rows would insert them into the graph
        if scenario == "keys":
            await conn.execute("UPDATE embeddings SET camelot = NULL WHERE model = %s", (MODEL,))
    async with connection(pool) as conn:
        await vectors.build_index(
            conn, MODEL, key_indexes=scenario == "type", index_type="vector", maintenance_work_mem_mb=mem_mb
        )
        await conn.set_autocommit(True)
        await conn.execute("VACUUM ANALYZE embeddings")
        await conn.set_autocommit(False)


async def index_files(pool: Pool) -> list[Path]:
    """The files of the model's HNSW indexes in use (every 1 GB segment)."""
    async with transaction(pool) as conn:
        cur = await conn.execute("SELECT current_setting('data_directory')")
        row = await cur.fetchone()
        assert row is not None
        data_dir = Path(str(row[0]))
        names = [name for name, _ in (await vectors._model_index(conn, MODEL)).indexes(MODEL)]
        cur = await conn.execute("SELECT pg_relation_filepath(n::regclass) FROM unnest(%s::text[]) n", (names,))
        files = [data_dir / str(r[0]) for r in await cur.fetchall()]
    return [f for base in files for f in [base, *sorted(base.parent.glob(f"{base.name}.[0-9]*"))] if f.exists()]


def page_cache_residency(files: list[Path]) -> str:
    """How much of ``files`` the operating system's page cache holds now (``fincore``); pages still only in
    PostgreSQL's ``shared_buffers`` are not counted."""
    resident, size = 0, 0
    for path in files:
        out = subprocess.run(
            ["fincore", "--bytes", "--noheadings", "--output", "RES,SIZE", str(path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        resident, size = resident + int(out[0]), size + int(out[1])
    return f"{resident / 2**20:.0f} of {size / 2**20:.0f} MB ({100 * resident / max(size, 1):.0f} %)"


async def search_latencies(pool: Pool, seeds: list[int], count: int) -> list[float]:
    out = []
    for seed in random.sample(seeds, count):
        t0 = time.perf_counter()
        async with transaction(pool) as conn:
            await vectors.similar(conn, [seed], model=MODEL, limit=20)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def searcher(pool: Pool, seeds: list[int], load: Load, stop: asyncio.Event) -> None:
    while not stop.is_set():
        t0 = time.perf_counter()
        try:
            async with transaction(pool) as conn:
                await vectors.similar(conn, [random.choice(seeds)], model=MODEL, limit=20)
            load.searches.append((time.perf_counter() - t0) * 1000)
        except Exception as exc:  # reported in the table; the run goes on
            load.failures.append(f"search: {exc}")
        await asyncio.sleep(PAUSE_S)


async def writer(pool: Pool, dim: int, load: Load, stop: asyncio.Event, host: str) -> None:
    rng = np.random.default_rng(7)
    for n in itertools.count():
        if stop.is_set():
            return
        vector = rng.standard_normal(dim).astype(np.float32)
        t0 = time.perf_counter()
        try:
            async with transaction(pool) as conn:
                track, _ = await synthetic.insert_tracks(conn, 1, host=f"{host}-{n}")
                await vectors.upsert_embedding(conn, track, MODEL, vector / np.linalg.norm(vector))
            load.writes.append((time.perf_counter() - t0) * 1000)
        except Exception as exc:
            load.failures.append(f"write: {exc}")
        await asyncio.sleep(PAUSE_S)


def figures(values: list[float]) -> str:
    if not values:
        return "none"
    return f"{len(values)}: {percentile(values, 0.5):.0f} / {percentile(values, 0.95):.0f} / {max(values):.0f} ms"


async def measured(
    pool: Pool, seeds: list[int], dim: int, name: str, rebuild: Callable[[Connection], Awaitable[object]]
) -> tuple[float, Load, Phases]:
    """Run ``rebuild`` on a connection of its own with the searcher and the writer going; wall seconds, load."""
    load, stop, phases = Load(), asyncio.Event(), Phases()
    logger = logging.getLogger("sidecar.storage.vectors")
    logger.addHandler(phases)
    logger.setLevel(logging.INFO)
    tasks = [
        asyncio.create_task(searcher(pool, seeds, load, stop)),
        asyncio.create_task(writer(pool, dim, load, stop, f"{name}-{time.time_ns()}")),
    ]
    await asyncio.sleep(1.0)  # both going before the rebuild starts
    load.searches.clear()
    load.writes.clear()
    try:
        async with connection(pool) as conn:
            phases.records.append((time.perf_counter(), "start"))
            started = time.perf_counter()
            await rebuild(conn)
            wall_s = time.perf_counter() - started
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        logger.removeHandler(phases)
    return wall_s, load, phases


async def run(url: str, args: argparse.Namespace) -> None:
    await migrate(url)
    pool = await open_pool(url, min_size=3, max_size=4)
    try:
        async with transaction(pool) as conn:
            first, last = await synthetic.insert_tracks(conn, args.tracks)
            await vectors.register_model(conn, MODEL, dim=args.dim, build_index=False)
        offset = 0
        for chunk in clustered_unit_vector_chunks(args.tracks, args.dim, seed=1):
            async with transaction(pool) as conn:
                ids = range(first + offset, first + offset + len(chunk))
                await vectors.copy_embeddings(conn, MODEL, ids, chunk)
            offset += len(chunk)
        seeds = list(range(first, last + 1))
        print(
            f"scenario {args.scenario}: {args.tracks} tracks x {args.dim} dims, m 16, ef_construction 128,"
            f" maintenance_work_mem {args.mem_mb} MB; {platform.machine()}, {os.cpu_count()} CPUs, load average before"
            f" {os.getloadavg()[0]:.1f}"
        )
        print()
        print(
            "| round | procedure | rebuild wall | phases | searches during it: n: p50 / p95 / max |"
            " writes during it: n: p50 / p95 / max | searches before / after: p50 / p95 |"
            " new indexes in the page cache right after |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for round_ in range(1, args.rounds + 1):
            for name in ("previous", "beside"):
                await reset(pool, args.mem_mb, args.scenario)
                before = await search_latencies(pool, seeds, args.searches)

                async def beside(conn: Connection) -> object:
                    return await vectors.ensure_indexes(conn, MODEL, maintenance_work_mem_mb=args.mem_mb)

                async def previous(conn: Connection) -> object:
                    await previous_rebuild(conn, args.mem_mb)
                    return None

                wall_s, load, phases = await measured(
                    pool, seeds, args.dim, name, beside if name == "beside" else previous
                )
                cached = page_cache_residency(await index_files(pool))
                after = await search_latencies(pool, seeds, args.searches)
                start = phases.records[0][0]
                built, switched = phases.first("building HNSW index 1 of"), phases.first(f"{MODEL} now searches")
                steps = (
                    f"key copy {built - start:.1f} s, builds {switched - built:.1f} s,"
                    f" drop {start + wall_s - switched:.1f} s"
                    if built is not None and switched is not None
                    else "drop + copy, then build, in two transactions"
                )
                failures = f" ({len(load.failures)} failed: {load.failures[0]})" if load.failures else ""
                print(
                    f"| {round_} | {name} | {wall_s:.1f} s | {steps} | {figures(load.searches)}{failures} |"
                    f" {figures(load.writes)} | {percentile(before, 0.5):.1f} / {percentile(before, 0.95):.1f},"
                    f" {percentile(after, 0.5):.1f} / {percentile(after, 0.95):.1f} ms | {cached} |"
                )
        print(f"\nload average after: {os.getloadavg()[0]:.1f}")
    finally:
        await close_pool(pool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tracks", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=1506)
    parser.add_argument("--mem-mb", type=int, default=1024, help="maintenance_work_mem of the builds")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument(
        "--scenario",
        choices=("type", "keys"),
        default="type",
        help="type: single -> half precision, per-key indexes already there (no key copy); keys: also no per-key"
        " indexes and no key on the rows yet (the key is copied onto every row)",
    )
    parser.add_argument("--searches", type=int, default=200, help="searches before and after each rebuild")
    parser.add_argument("--work-dir", type=Path, help="the embedded server's directory (default: a temporary one)")
    args = parser.parse_args()
    random.seed(3)
    with tempfile.TemporaryDirectory(prefix="bench-swap-", ignore_cleanup_errors=True) as temporary:
        work = args.work_dir or Path(temporary)
        asyncio.run(run(fresh_database(embedded_postgres_url(work / "pg")), args))


if __name__ == "__main__":
    main()
