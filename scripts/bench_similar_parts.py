"""Where the time of an unfiltered similar-tracks request goes, on an existing database (the kept 1M x 1 506
database of ``scripts/bench_scale.py --work-dir DIR --reuse``, started by hand).

Each stage on its own fresh seeds (never searched before in this run), one request at a time, p50 / p95 / mean ms:

- **walk**: the HNSW graph search alone (``hnsw.ef_search`` 200): the index scan's start-up time in ``EXPLAIN
  ANALYZE``, since pgvector finds every candidate before it returns the first row;
- **scan**: the same scan returning 60 rows (the walk plus reading each row's stored vector to compute its distance
  again), ``EXPLAIN ANALYZE``'s execution time;
- **similar**: ``vectors.similar`` in this process (its queries, joins, filters, the round trips);
- **route**: ``GET /api/tracks/{id}/similar`` (limit 20) through uvicorn in this process.

Usage::

    python -m scripts.bench_similar_parts --url "postgresql://postgres@/sonantica_bench?host=/tmp/pgsock" \\
        --model musicnn-msd-mtt-harmonic-pool-1506 --queries 150 --warm-searches 600 --draw 981 --warm-index
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from pydantic import SecretStr

from scripts.bench_api import serve
from scripts.bench_queue import start_redis
from scripts.bench_scale import TOKEN, api_latencies
from sidecar.services.runtime import Runtime, open_runtime
from sidecar.settings import Settings
from sidecar.storage import vectors
from sidecar.storage.db import transaction


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[int(0.95 * (len(ordered) - 1))]
    return f"{statistics.median(ordered):.1f} / {p95:.1f} / {statistics.mean(ordered):.1f}"


async def scan_parts(runtime: Runtime, model: str, seeds: list[int]) -> tuple[list[float], list[float]]:
    """Walk and scan ms of the model's index search for each seed (``EXPLAIN ANALYZE``, 60 rows)."""
    walks, scans = [], []
    async with transaction(runtime.pool) as conn:
        cur = await conn.execute("SELECT dim, index_type FROM embedding_models WHERE model = %s", (model,))
        row = await cur.fetchone()
    if row is None:
        raise SystemExit(f"model {model!r} is not registered in this database")
    cast = f"::{row[1]}({row[0]})"
    query = (
        f"EXPLAIN (ANALYZE, FORMAT JSON) WITH q AS (SELECT embedding{cast} v FROM embeddings"
        f" WHERE model = %s AND track_id = %s) SELECT e.track_id FROM embeddings e WHERE e.model = %s"
        f" ORDER BY e.embedding{cast} <=> (SELECT v FROM q) LIMIT 60"
    )
    for seed in seeds:
        async with transaction(runtime.pool) as conn:
            await conn.execute("SET LOCAL hnsw.ef_search = 200")
            cur = await conn.execute(query, (model, seed, model))
            found = await cur.fetchone()
            assert found is not None
            plan = found[0][0]
            walks.append(plan["Plan"]["Plans"][-1]["Actual Startup Time"])
            scans.append(plan["Execution Time"])
    return walks, scans


async def run(args: argparse.Namespace, work: Path) -> None:
    (work / "redis").mkdir()
    redis_server, redis_url = start_redis(work / "redis")
    settings = Settings(
        data_dir=work / "data",
        database_url=SecretStr(args.url),
        redis_url=SecretStr(redis_url),
        api={"token": TOKEN},
        db={"warm_index_on_start": False},
        embedding={"model": args.model},
    )
    try:
        async with open_runtime(settings) as runtime:
            async with transaction(runtime.pool) as conn:
                cur = await conn.execute("SELECT min(track_id), max(track_id) FROM embeddings WHERE model = %s",
                                         (args.model,))  # fmt: skip
                bounds = await cur.fetchone()
            if bounds is None or bounds[0] is None:
                raise SystemExit(f"no vectors of {args.model!r} in this database")
            rng = np.random.default_rng(args.draw)
            count = 4 * args.queries + args.warm_searches
            drawn = rng.choice(np.arange(bounds[0], bounds[1] + 1), count, replace=False)
            seeds = [[int(s) for s in drawn[k * args.queries : (k + 1) * args.queries]] for k in range(4)]
            if args.warm_index:
                started = time.perf_counter()
                async with transaction(runtime.pool) as conn:
                    warmed = await vectors.warm_index(conn, args.model)
                print(f"warm_index: {warmed} in {time.perf_counter() - started:.1f} s")
            started = time.perf_counter()
            for seed in drawn[4 * args.queries :]:
                async with transaction(runtime.pool) as conn:
                    await vectors.similar(conn, [int(seed)], model=args.model, limit=20)
            print(f"warm-up: {args.warm_searches} searches in {time.perf_counter() - started:.1f} s")
            walks, scans = await scan_parts(runtime, args.model, seeds[0])
            similar = []
            for seed in seeds[1]:
                started = time.perf_counter()
                async with transaction(runtime.pool) as conn:
                    await vectors.similar(conn, [seed], model=args.model, limit=20)
                similar.append((time.perf_counter() - started) * 1000)
            server, thread, base_url = serve(runtime.settings)
            try:
                api_latencies(base_url, seeds[3][:10], {"limit": 20})  # the server's first requests
                route, rows = await asyncio.to_thread(api_latencies, base_url, seeds[2], {"limit": 20})
            finally:
                server.should_exit = True
                thread.join(timeout=30)
    finally:
        redis_server.terminate()
        redis_server.wait(timeout=10)
    print(f"| stage, {args.queries} fresh seeds each | p50 / p95 / mean ms |")
    print("|---|---|")
    print(f"| walk (HNSW search, ef_search 200) | {summary(walks)} |")
    print(f"| scan (walk + 60 rows read) | {summary(scans)} |")
    print(f"| `vectors.similar`, limit 20 | {summary(similar)} |")
    print(f"| `GET /api/tracks/{{id}}/similar`, limit 20 (rows min {min(rows)}) | {summary(route)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", required=True, help="PostgreSQL URL of a migrated database with vectors")
    parser.add_argument("--model", required=True)
    parser.add_argument("--queries", type=int, default=150)
    parser.add_argument("--warm-searches", type=int, default=600)
    parser.add_argument("--draw", type=int, default=981)
    parser.add_argument("--warm-index", action="store_true", help="vectors.warm_index first, as the API does")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        asyncio.run(run(args, Path(tmp)))


if __name__ == "__main__":
    main()
