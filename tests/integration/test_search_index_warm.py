"""Warming the Sonic Match indexes at API start-up, against the embedded PostgreSQL + pgvector 0.8."""

from __future__ import annotations

import asyncio
import logging

import httpx
import pytest

from sidecar.api.app import create_app
from sidecar.demo.vectors import clustered_unit_vectors
from sidecar.services.runtime import Runtime
from sidecar.services.search_index import warm_search_indexes
from sidecar.settings import get_settings
from tests.integration.test_storage_vectors import load_clustered


async def test_models_without_vectors_or_not_registered_are_skipped(
    runtime: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="sidecar.services.search_index"):
        assert await warm_search_indexes(runtime) == []
    assert "the timbre-v1 index is not warmed: the model is not registered yet" in caplog.text
    assert "warmed the" not in caplog.text


async def _load(runtime: Runtime) -> str:
    """400 vectors of the configured model, with its indexes."""
    model = runtime.settings.embedding.model
    await load_clustered(runtime.pool, model, clustered_unit_vectors(400, 1506, clusters=8, seed=2))
    return model


async def test_the_configured_model_index_is_read_whole(runtime: Runtime, caplog: pytest.LogCaptureFixture) -> None:
    model = await _load(runtime)
    with caplog.at_level(logging.INFO, logger="sidecar.services.search_index"):
        warmed = await warm_search_indexes(runtime)
    assert [(w.model, w.rows, w.rows_visited) for w in warmed] == [(model, 400, 400)]
    assert f"warmed the {model} index" in caplog.text


@pytest.mark.parametrize("on", [True, False])
async def test_the_api_warms_the_index_when_it_starts_unless_told_not_to(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, on: bool
) -> None:
    model = await _load(runtime)
    monkeypatch.setenv("SONANTICA_DB__WARM_INDEX_ON_START", str(on).lower())
    get_settings.cache_clear()
    app = create_app(get_settings())
    with caplog.at_level(logging.INFO, logger="sidecar.services.search_index"):
        async with app.router.lifespan_context(app):
            warming = [task for task in asyncio.all_tasks() if task.get_name() == "warm-search-indexes"]
            assert len(warming) == on
            for task in warming:  # it runs beside the requests; here it is waited for
                await asyncio.wait_for(asyncio.shield(task), 30)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                assert (await client.get("/health/live")).status_code == 200
    assert (f"warmed the {model} index" in caplog.text) is on
