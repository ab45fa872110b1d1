"""scripts/bench_hnsw_scan.py on a small real library: the line it prints comes from a real index scan."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

from sidecar.demo.vectors import clustered_unit_vectors
from sidecar.storage import synthetic, vectors
from sidecar.storage.db import Pool, connection, transaction

ROOT = Path(__file__).resolve().parents[2]
MODEL = "scan-bench-16"


async def test_the_scan_benchmark_times_the_halfvec_index_and_finds_the_exact_neighbours(
    pool: Pool, database_url: str
) -> None:
    async with transaction(pool) as conn:
        first, last = await synthetic.insert_tracks(conn, 5000, missing_every=0)
        await vectors.register_model(conn, MODEL, dim=16, build_index=False)
        await vectors.copy_embeddings(
            conn, MODEL, range(first, last + 1), clustered_unit_vectors(5000, 16, latent_dim=8, seed=4)
        )
    async with connection(pool) as conn:
        await vectors.build_index(conn, MODEL, m=8, ef_construction=32, key_indexes=False)
    command = [sys.executable, "-m", "scripts.bench_hnsw_scan", "--url", database_url, "--model", MODEL]
    command += ["--dim", "16", "--queries", "5", "--recall", "--candidates", "100"]
    result = await asyncio.to_thread(
        subprocess.run, command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith("halfvec index, 100 candidates, draw 1, 5 seeds: p50 "), line
    recall = re.search(r"recall@10 ([0-9.]+)$", line)
    assert recall is not None
    assert float(recall.group(1)) >= 0.9
