"""Sonic Match right after a restart: the first searches with and without the index warm-up the API does at start.

Run it against a kept database right after restarting PostgreSQL and emptying the OS page cache (as a reboot
does), e.g. for the 1M database ``bench_scale --work-dir`` keeps::

    pg_ctl -D WORK/pg/postgres -m fast stop; sync; echo 3 > /proc/sys/vm/drop_caches; pg_ctl ... start
    python -m scripts.bench_cold_start --url postgresql://... --draw 401 [--warm index|index+vectors]

``--warm index`` first calls :func:`sidecar.storage.vectors.warm_index` (what the API does when
``SONANTICA_DB__WARM_INDEX_ON_START`` is on); ``index+vectors`` then also reads every stored vector of the model
once (not something the product does: measured to show what the remaining first-search time is). Then it times
``vectors.similar`` (limit 20, no filter, the default candidates) on ``--queries`` seeds drawn with ``--draw``
(every 499th track of the model), one transaction each, and prints one line per step.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import time

import psycopg
from pgvector.psycopg import register_vector_async

from sidecar.storage import vectors

DEFAULT_MODEL = "musicnn-msd-mtt-harmonic-pool-1506"  # the model the kept 1M database holds (synthetic vectors)


async def run(args: argparse.Namespace) -> None:
    conn = await psycopg.AsyncConnection.connect(args.url)
    async with conn:
        await register_vector_async(conn)
        if args.warm in ("index", "index+vectors"):
            started = time.perf_counter()
            warmed = await vectors.warm_index(conn, args.model)
            await conn.commit()
            read = "nothing read" if warmed is None else f"{warmed.rows_visited} of {warmed.rows} rows visited"
            print(f"vectors.warm_index: {read} in {time.perf_counter() - started:.1f} s", flush=True)
        if args.warm == "index+vectors":
            started = time.perf_counter()
            cur = await conn.execute(
                "SELECT count(*), sum(vector_dims(embedding)) FROM embeddings WHERE model = %s", (args.model,)
            )
            await cur.fetchone()
            await conn.commit()
            print(f"every stored vector read once: {time.perf_counter() - started:.1f} s", flush=True)
        cur = await conn.execute(
            "SELECT track_id FROM embeddings WHERE model = %s AND track_id %% 499 = 0 ORDER BY track_id", (args.model,)
        )
        ids = [int(row[0]) for row in await cur.fetchall()]
        await conn.commit()
        seeds = random.Random(args.draw).sample(ids, args.queries)
        latencies_ms = []
        for seed in seeds:
            started = time.perf_counter()
            async with conn.transaction():
                rows = await vectors.similar(conn, [seed], model=args.model, limit=20)
            latencies_ms.append((time.perf_counter() - started) * 1000)
            if len(rows) != 20:
                raise SystemExit(f"seed {seed}: {len(rows)} rows, not 20")
    first = statistics.mean(latencies_ms[:10])
    latencies_ms.sort()
    print(
        f"warm-up {args.warm}, draw {args.draw}: vectors.similar limit 20, {args.queries} fresh seeds: p50"
        f" {latencies_ms[len(latencies_ms) // 2]:.1f} / p95 {latencies_ms[int(len(latencies_ms) * 0.95) - 1]:.1f} ms"
        f" (first 10: mean {first:.1f} ms)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the kept database (e.g. bench_scale's --work-dir server)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--draw", type=int, default=1, help="random seed of the seed-track draw")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--warm", choices=("none", "index", "index+vectors"), default="none")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
