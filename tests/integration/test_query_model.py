"""Sonic Match searches the vectors the worker actually stored: the fallback model when OpenL3 weights are absent
(chosen apart by ``query_model``, or in the seeds' round trip by ``vectors.similar_in_first_model``)."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.analyzers.embedding import OPENL3_MODEL, TIMBRE_MODEL
from sidecar.errors import NotFoundError
from sidecar.services.playlists import query_model
from sidecar.storage import tracks, vectors
from sidecar.storage.db import Pool, transaction


async def _track_with_vector(pool: Pool, name: str, model: str, dim: int) -> int:
    async with transaction(pool) as conn:
        await vectors.register_model(conn, model, dim=dim)
        saved = await tracks.upsert_track(
            conn, tracks.TrackUpsert(host="local", host_track_id=name, title=name, path=f"/music/{name}.flac")
        )
        vector = np.random.default_rng(len(name)).normal(size=dim).astype(np.float32)
        await vectors.upsert_embedding(conn, saved.track_id, model, vector / np.linalg.norm(vector))
    return saved.track_id


async def test_query_model_falls_back_to_the_stored_timbre_vectors(pool: Pool) -> None:
    seed = await _track_with_vector(pool, "seed", TIMBRE_MODEL, 109)
    async with transaction(pool) as conn:
        assert await query_model(conn, [seed], configured=OPENL3_MODEL, fallback=True) == TIMBRE_MODEL
        assert await query_model(conn, [seed], configured=OPENL3_MODEL, fallback=False) == OPENL3_MODEL


async def test_query_model_prefers_the_configured_model_when_stored(pool: Pool) -> None:
    seed = await _track_with_vector(pool, "seed", TIMBRE_MODEL, 109)
    await _track_with_vector(pool, "other", OPENL3_MODEL, 512)
    both = await _track_with_vector(pool, "seed", OPENL3_MODEL, 512)
    assert both == seed
    async with transaction(pool) as conn:
        assert await query_model(conn, [seed], configured=OPENL3_MODEL, fallback=True) == OPENL3_MODEL


async def test_similar_searches_the_first_model_the_seed_has_a_vector_of(pool: Pool) -> None:
    seed = await _track_with_vector(pool, "seed", TIMBRE_MODEL, 109)
    await _track_with_vector(pool, "near", TIMBRE_MODEL, 109)
    async with transaction(pool) as conn:
        fallen_back = await vectors.similar_in_first_model(conn, [seed], models=[OPENL3_MODEL, TIMBRE_MODEL])
        with pytest.raises(NotFoundError, match="no 'openl3-music-mel128-512' embedding for seed"):
            await vectors.similar_in_first_model(conn, [seed], models=[OPENL3_MODEL])
    assert fallen_back.model == TIMBRE_MODEL
    assert [t.title for t in fallen_back.tracks] == ["near"]
    await _track_with_vector(pool, "seed", OPENL3_MODEL, 512)
    async with transaction(pool) as conn:
        preferred = await vectors.similar_in_first_model(conn, [seed], models=[OPENL3_MODEL, TIMBRE_MODEL])
    assert preferred.model == OPENL3_MODEL


async def test_similar_names_a_seed_that_is_no_track(pool: Pool) -> None:
    seed = await _track_with_vector(pool, "seed", TIMBRE_MODEL, 109)
    async with transaction(pool) as conn:
        with pytest.raises(NotFoundError, match=r"^no track with id 999999$"):
            await vectors.similar_in_first_model(conn, [seed, 999999], models=[OPENL3_MODEL, TIMBRE_MODEL])
