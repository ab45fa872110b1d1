"""``sonantica reanalyze`` on real PostgreSQL + Redis: which finished results are queued again (analyzer, model,
``--since``), idempotence, the command line, and a worker redoing only what was asked."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from sidecar.analyzers.executor import AnalysisExecutor
from sidecar.analyzers.versions import VERSIONS, enabled_versions
from sidecar.cli import app
from sidecar.demo.encode import write_audio
from sidecar.domain import AnalyzerOutput, EmbeddingResult, KeyResult, KeySignature, Priority
from sidecar.services.enqueue import enqueue_track_ids, register_local_files
from sidecar.services.reanalyze import ReanalysisError, reanalyze
from sidecar.services.runtime import Runtime, open_runtime
from sidecar.settings import get_settings
from sidecar.storage import analyses, status, tracks, vectors
from sidecar.storage.db import transaction
from sidecar.worker.runner import Worker

WANTED = {"embedding": VERSIONS["embedding"], "key": VERSIONS["key"]}
OLD_MODEL = "timbre-v1"
OTHER_MODEL = "other-model"


async def _seed(runtime: Runtime) -> dict[str, int]:
    """Five tracks, each with ``key`` done: ``a``/``b`` with an ``OLD_MODEL`` vector, ``c`` with an ``OTHER_MODEL``
    one, ``d`` whose embedding failed, ``gone`` (done with ``OLD_MODEL``) missing from the library."""
    ids: dict[str, int] = {}
    async with transaction(runtime.pool) as conn:
        await vectors.register_model(conn, OLD_MODEL, dim=4)
        await vectors.register_model(conn, OTHER_MODEL, dim=4)
        for name, model in (("a", OLD_MODEL), ("b", OLD_MODEL), ("c", OTHER_MODEL), ("d", None), ("gone", OLD_MODEL)):
            saved = await tracks.upsert_track(
                conn, tracks.TrackUpsert(host="jellyfin", host_track_id=name, title=name, path=f"/music/{name}.flac")
            )
            ids[name] = saved.track_id
            results: dict[str, AnalyzerOutput] = {"key": KeyResult(key=KeySignature("A", "minor"), key_confidence=0.7)}
            if model is not None:
                results["embedding"] = EmbeddingResult(model=model, vector=np.ones(4, np.float32))
            await status.ensure_status(conn, WANTED, track_ids=[saved.track_id])
            await analyses.store_results(
                conn,
                saved.track_id,
                results=results,
                versions=WANTED,
                failures=None if model is not None else {"embedding": "could not decode"},
            )
        await tracks.mark_missing(conn, "jellyfin", present_host_track_ids=["a", "b", "c", "d"])
    return ids


async def _states(runtime: Runtime, ids: dict[str, int], analyzer: str) -> dict[str, str]:
    async with transaction(runtime.pool) as conn:
        rows = {name: (await status.get_status(conn, track_id)).get(analyzer) for name, track_id in ids.items()}
    return {name: row.state for name, row in rows.items() if row is not None}


async def test_reanalyze_one_model_queues_only_its_done_results_once(runtime: Runtime) -> None:
    ids = await _seed(runtime)
    seen: list[int] = []
    first = await reanalyze(runtime, "embedding", WANTED, model=OLD_MODEL, batch_size=1, progress=seen.append)
    again = await reanalyze(runtime, "embedding", WANTED, model=OLD_MODEL)
    assert ((first.matched, first.queued), (again.matched, again.queued), seen) == ((2, 2), (0, 0), [1, 1])
    assert await _states(runtime, ids, "embedding") == {
        "a": "queued",
        "b": "queued",
        "c": "done",
        "d": "failed",
        "gone": "done",
    }
    assert set((await _states(runtime, ids, "key")).values()) == {"done"}
    assert (await runtime.queue.depths())["scan"] == 2


async def test_reanalyze_an_analyzer_takes_every_model_and_since_limits_by_finish_time(
    runtime: Runtime, database_url: str
) -> None:
    ids = await _seed(runtime)
    with psycopg.connect(database_url) as conn:  # "a" finished its key analysis long ago
        conn.execute(
            "UPDATE analysis_status SET updated_at = now() - interval '30 days' WHERE track_id = %s", (ids["a"],)
        )
    since = dt.datetime.now(dt.UTC) - dt.timedelta(days=1)
    recent = await reanalyze(runtime, "key", WANTED, since=since)
    every = await reanalyze(runtime, "embedding", WANTED)
    assert ((recent.matched, recent.queued), (every.matched, every.queued)) == ((3, 3), (3, 3))
    assert (await _states(runtime, ids, "key"))["a"] == "done"


@pytest.mark.parametrize(
    ("analyzer", "model", "message"),
    [
        ("tempo", None, "'tempo' is not enabled"),
        ("key", OLD_MODEL, "'key' has no models"),
        ("embedding", "musicnn-nosuch", "unknown embedding model 'musicnn-nosuch'"),
    ],
)
async def test_reanalyze_refuses_what_cannot_apply(
    runtime: Runtime, analyzer: str, model: str | None, message: str
) -> None:
    with pytest.raises(ReanalysisError, match=message):
        await reanalyze(runtime, analyzer, WANTED, model=model)


def test_reanalyze_command_prints_the_count_and_is_idempotent(
    service_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SONANTICA_ANALYSIS__ENABLED", "key,embedding")
    get_settings.cache_clear()

    async def seed() -> None:
        async with open_runtime(get_settings()) as opened:
            await _seed(opened)

    asyncio.run(seed())
    runner = CliRunner()
    first = runner.invoke(app, ["reanalyze", "--analyzer", "embedding", "--model", OLD_MODEL])
    second = runner.invoke(app, ["reanalyze", "--analyzer", "embedding", "--model", OLD_MODEL])
    refused = runner.invoke(app, ["reanalyze", "--analyzer", "key", "--model", OLD_MODEL])
    assert (first.exit_code, second.exit_code, refused.exit_code) == (0, 0, 2)
    assert f"embedding: 2 done result(s) of model {OLD_MODEL} matched; queued 2 track(s)" in first.stdout
    assert "embedding: 0 done result(s)" in second.stdout
    assert "has no models" in refused.stderr


async def test_worker_redoes_only_the_reanalysed_analyzer(
    runtime: Runtime, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    files = [
        write_audio((0.1 * rng.standard_normal((44100, 2))).astype(np.float32), 44100, tmp_path / f"{i}.flac")
        for i in range(2)
    ]
    versions = enabled_versions(get_settings())  # loudness, tempo, key (tests/integration/conftest.py)
    ids = await register_local_files(runtime.pool, files)
    executor = AnalysisExecutor(get_settings(), list(versions), processes=1)

    async def drain() -> None:
        await asyncio.wait_for(Worker(runtime, executor, versions).run(drain=True), timeout=180)

    async def finished() -> dict[tuple[int, str], dt.datetime]:
        async with transaction(runtime.pool) as conn:
            rows = [await status.get_status(conn, track_id) for track_id in ids]
        return {(row.track_id, row.analyzer): row.updated_at for per_track in rows for row in per_track.values()}

    try:
        await enqueue_track_ids(runtime, ids, versions, priority=Priority.SCAN)
        await drain()
        before = await finished()
        report = await reanalyze(runtime, "tempo", versions)
        await drain()
        after = await finished()
    finally:
        executor.close()
    redone = sorted(analyzer for key, moment in after.items() if moment > before[key] for analyzer in key[1:])
    assert (report.queued, redone) == (2, ["tempo", "tempo"])
    assert set((await _states(runtime, dict(zip("xy", ids, strict=True)), "tempo")).values()) == {"done"}
