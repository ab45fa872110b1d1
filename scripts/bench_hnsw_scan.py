"""The HNSW candidate scan alone, on a kept database: what one unfiltered Sonic Match search costs in PostgreSQL.

For ``--queries`` seeds drawn with ``--draw`` (from every 499th stored vector of ``--model``), times the query
``vectors.similar`` starts from (the ``--candidates`` nearest by ``embedding::CAST(dim) <=> seed``, with
``hnsw.ef_search`` = candidates) over one connection, and with ``--recall`` its recall@10 against an exact
float32 scan (slow: a full read of the stored vectors per seed). ``--cast`` picks which index serves it: ``vector``
or ``halfvec`` (an index over that cast must exist, e.g. one built by ``vectors.build_index``). The same draw run
twice shows the warm cache; a new draw shows seeds whose graph neighbourhoods were never read.

Run: ``python -m scripts.bench_hnsw_scan --url postgresql://... --cast halfvec --draw 21`` (from the repository
root). Prints one line per run.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import psycopg

DEFAULT_MODEL = "musicnn-msd-mtt-harmonic-pool-1506"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the kept database (e.g. bench_scale's --work-dir server)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--dim", type=int, default=1506)
    parser.add_argument("--cast", choices=("vector", "halfvec"), default="halfvec")
    parser.add_argument("--candidates", type=int, default=200)
    parser.add_argument("--draw", type=int, default=1, help="random seed of the seed-track draw")
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--recall", action="store_true", help="also recall@10 against an exact float32 scan")
    args = parser.parse_args()
    with psycopg.connect(args.url, autocommit=True) as conn:
        ids = [
            int(row[0])
            for row in conn.execute(
                "SELECT track_id FROM embeddings WHERE model = %s AND track_id %% 499 = 7", (args.model,)
            )
        ]
        seeds = random.Random(args.draw).sample(ids, args.queries)
        cast = f"::{args.cast}({args.dim})"
        seed_vector = f"(SELECT embedding{cast} FROM embeddings WHERE model = %(m)s AND track_id = %(s)s)"
        distance = f"(e.embedding{cast}) <=> {seed_vector}"
        scan = f"SELECT e.track_id, {distance} FROM embeddings e WHERE e.model = %(m)s ORDER BY {distance} LIMIT %(c)s"
        exact = (
            "SELECT track_id FROM embeddings WHERE model = %(m)s ORDER BY embedding <=>"
            " (SELECT embedding FROM embeddings WHERE model = %(m)s AND track_id = %(s)s) LIMIT 11"
        )
        latencies_ms: list[float] = []
        recalls: list[float] = []
        for seed in seeds:
            params = {"m": args.model, "s": seed, "c": args.candidates}
            with conn.transaction():
                conn.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(args.candidates),))
                started = time.perf_counter()
                found = [int(row[0]) for row in conn.execute(scan, params).fetchall()]
                latencies_ms.append((time.perf_counter() - started) * 1000)
            if args.recall:
                with conn.transaction():
                    conn.execute("SET LOCAL enable_indexscan = off")
                    truth = {int(row[0]) for row in conn.execute(exact, params).fetchall()} - {seed}
                recalls.append(len(truth & set([t for t in found if t != seed][:10])) / 10)
    latencies_ms.sort()
    recall = f"; recall@10 {statistics.mean(recalls):.3f}" if recalls else ""
    print(
        f"{args.cast} index, {args.candidates} candidates, draw {args.draw}, {args.queries} seeds: p50"
        f" {latencies_ms[len(latencies_ms) // 2]:.1f} / p95 {latencies_ms[int(len(latencies_ms) * 0.95)]:.1f} /"
        f" max {latencies_ms[-1]:.1f} ms{recall}"
    )


if __name__ == "__main__":
    main()
