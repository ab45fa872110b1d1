"""Similar tracks under strict filters at 10 000 tracks: ``limit`` rows, every one passing the filters."""

from __future__ import annotations

import numpy as np

from sidecar.demo.vectors import clustered_unit_vector_chunks
from sidecar.domain import KeySignature
from sidecar.storage import synthetic, vectors
from sidecar.storage.db import Pool, transaction
from sidecar.storage.vectors import SimilarFilters

TRACKS = 10_000
DIM = 32
MODEL = "scale-test-32"
STRICT = SimilarFilters(bpm_window_pct=8.0, half_double=True, camelot_compatible=True, max_per_artist=2)


async def test_strict_filters_still_return_limit_rows(pool: Pool) -> None:
    async with transaction(pool) as conn:
        first, last = await synthetic.insert_tracks(conn, TRACKS, missing_every=97)
        await vectors.register_model(conn, MODEL, dim=DIM, build_index=False)
        data = np.concatenate(list(clustered_unit_vector_chunks(TRACKS, DIM, chunk=4000, seed=5)))
        await vectors.copy_embeddings(conn, MODEL, range(first, last + 1), data)
    async with transaction(pool) as conn:
        await vectors.build_index(conn, MODEL, m=8, ef_construction=32)
        cur = await conn.execute("SELECT id, bpm, key FROM tracks JOIN track_features ON track_id = id")
        features = {int(i): (float(bpm), KeySignature.parse(str(key))) for i, bpm, key in await cur.fetchall()}
        seeds = [first + 17, first + 4242, first + 9001]
        answers = [await vectors.similar(conn, [seed], model=MODEL, limit=20, filters=STRICT) for seed in seeds]
    for seed, rows in zip(seeds, answers, strict=True):
        seed_bpm, seed_key = features[seed]
        assert len(rows) == 20  # 400 HNSW candidates alone leave 19 for one seed: the widening fills it
        for row in rows:
            bpm, key = features[row.track_id]
            assert any(abs(b - seed_bpm) <= 0.08 * seed_bpm + 1e-9 for b in (bpm, bpm * 2, bpm / 2))
            assert key.camelot in seed_key.compatible_camelot()
            assert (row.track_id - first + 1) % 97 != 0  # never a missing track
            assert row.track_id != seed
        artists = [row.artist for row in rows]
        assert max(artists.count(a) for a in artists) <= 2


async def test_unfiltered_similar_searches_with_the_default_candidates(pool: Pool) -> None:
    async with transaction(pool) as conn:
        first, last = await synthetic.insert_tracks(conn, TRACKS, missing_every=97)
        await vectors.register_model(conn, MODEL, dim=DIM, build_index=False)
        data = np.concatenate(list(clustered_unit_vector_chunks(TRACKS, DIM, chunk=4000, seed=5)))
        await vectors.copy_embeddings(conn, MODEL, range(first, last + 1), data)
    async with transaction(pool) as conn:
        await vectors.build_index(conn, MODEL)  # the product's parameters: m 16, ef_construction 128
    present = np.array([(i + 1) % 97 != 0 for i in range(TRACKS)])
    hits = 0
    seeds = range(0, TRACKS, 250)
    for index in seeds:
        scores = data @ data[index]
        scores[~present] = -2.0
        scores[index] = -2.0
        exact = {first + int(i) for i in np.argpartition(-scores, 10)[:10]}
        async with transaction(pool) as conn:
            rows = await vectors.similar(conn, [first + index], model=MODEL, limit=10)
            cur = await conn.execute("SELECT current_setting('hnsw.ef_search')")
            ef_search = await cur.fetchone()
        assert ef_search is not None
        assert int(ef_search[0]) == vectors.UNFILTERED_CANDIDATES  # max(UNFILTERED_CANDIDATES, 5 * 10)
        hits += len({r.track_id for r in rows} & exact)
    assert hits / (10 * len(seeds)) >= 0.95
