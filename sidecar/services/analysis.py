"""Analyse one track for a claimed job (§H.6 flow step 3): status check, lock, decode once, store, announce.

Outcomes, each leaving PostgreSQL consistent and the job acknowledged exactly once:

- nothing due (a duplicate delivery, or another worker finished first): acknowledged, nothing runs;
- the track lock is held elsewhere: deferred briefly without counting an attempt;
- attempts exhausted (a poison track that keeps killing workers): ``failed`` with the last reason;
- longer than ``analysis.max_duration_s`` (audiobooks, DJ sets): ``failed`` with that reason, nothing decoded;
- a file that cannot be decoded: retried with back-off, ``failed`` with the decoder's reason after
  ``worker.max_attempts`` attempts; an analyzer's own error is ``failed`` at once (it is deterministic);
- results: stored with the ``done`` rows in one transaction, then cached, announced and acknowledged together.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
from collections.abc import Iterable, Mapping, MutableSet
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sidecar.analyzers.audio import declared_duration_s
from sidecar.analyzers.executor import AnalysisExecutor
from sidecar.domain import KeySignature, TrackKey
from sidecar.errors import SidecarError, StorageError
from sidecar.jobqueue import AnalysisReady, AnalyzeTrack, CachedAnalysis, ClaimedJob, TokenLock, TrackLock, backoff_s
from sidecar.services.enqueue import LOCAL_HOST
from sidecar.services.runtime import Runtime
from sidecar.storage import analyses, status, tracks, vectors
from sidecar.storage.analyses import AnalysisSummary
from sidecar.storage.db import Connection, connection, transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """What handling one job did (for logs, progress and tests)."""

    host_track_id: str
    action: str  # "analyzed", "current", "deferred", "retry", "failed", "skipped", "dropped"
    analyzers: tuple[str, ...] = ()
    detail: str = ""


@runtime_checkable
class EmbeddingModel(Protocol):
    """An analyzer that produces vectors: its model name and dimension (the embedding analyzer)."""

    @property
    def model(self) -> str: ...

    @property
    def dim(self) -> int: ...


async def register_embedding_models(runtime: Runtime, analyzers: Iterable[object]) -> list[str]:
    """Declare the embedding model of every vector-producing analyzer (and build its HNSW indexes when new).

    Call once at start-up, before any result is stored; returns the models that were new.
    """
    new: list[str] = []
    for analyzer in analyzers:
        if isinstance(analyzer, EmbeddingModel):
            async with transaction(runtime.pool) as conn:
                if await vectors.register_model(conn, analyzer.model, dim=analyzer.dim):
                    new.append(analyzer.model)
    return new


REBUILD_RETRY_S = 30.0
"""How often :func:`ensure_embedding_indexes` tries a model again while another session holds the rebuild lock."""


async def ensure_embedding_indexes(
    runtime: Runtime, analyzers: Iterable[object], *, retry_s: float = REBUILD_RETRY_S
) -> None:
    """Rebuild the HNSW indexes of each vector-producing analyzer's model when they predate per-key or
    half-precision indexes, when the model was registered without them (during another session's rebuild), or what
    an interrupted rebuild left (:func:`sidecar.storage.vectors.ensure_indexes`: a one-time upgrade, minutes for a
    large library, during which Sonic Match answers from the old indexes and new vectors are stored;
    docs/operations.md). Call after :func:`register_embedding_models`; cancelling it leaves the old indexes in use
    and the next call starts again.

    While another session holds the rebuild lock, a model whose indexes still need work is tried again every
    ``retry_s`` seconds (that session rebuilds only its own models). Every model is tried even when an earlier
    one fails: each failure is logged with the model and the reason, and once all were tried one
    ``StorageError`` names every model that failed (the old indexes of those keep serving).
    """
    failed: list[str] = []
    for model in dict.fromkeys(a.model for a in analyzers if isinstance(a, EmbeddingModel)):
        try:
            await _ensure_model_indexes(runtime, model, retry_s=retry_s)
        except SidecarError as exc:
            log.warning("rebuilding the HNSW indexes of %s failed: %s", model, exc)
            failed.append(f"{model} ({exc})")
    if failed:
        raise StorageError(f"the HNSW indexes of {len(failed)} model(s) were not rebuilt: {'; '.join(failed)}")


async def _ensure_model_indexes(runtime: Runtime, model: str, *, retry_s: float) -> None:
    """:func:`ensure_embedding_indexes` for one model: tried until it rebuilt or has nothing to do."""
    memory_mb = runtime.settings.db.index_build_memory_mb
    while True:
        async with connection(runtime.pool) as conn:  # not in a transaction: the rebuild commits on its own
            if await vectors.ensure_indexes(conn, model, maintenance_work_mem_mb=memory_mb):
                return
            if await vectors.indexes_ready(conn, model):
                return
        log.info("the HNSW indexes of %s wait for another session's rebuild; trying again in %.0f s", model, retry_s)
        await asyncio.sleep(retry_s)


def cached_from_summary(summary: AnalysisSummary) -> CachedAnalysis:
    """The result-cache entry for a stored analysis (the API's cache-hit answer)."""
    key = summary["key"]
    return CachedAnalysis(
        track=TrackKey(summary["host"], summary["host_track_id"]),
        versions=summary["analyzer_versions"],
        computed_at=dt.datetime.now(dt.UTC),
        bpm=summary["bpm"],
        key=None if key is None else KeySignature.parse(key),
        loudness_lufs=summary["loudness_lufs"],
        loudness_range_lu=summary["loudness_range_lu"],
        true_peak_dbtp=summary["true_peak_dbtp"],
        replaygain_track_gain_db=summary["replaygain_track_gain_db"],
    )


async def analyze_job(
    runtime: Runtime,
    executor: AnalysisExecutor,
    worker_id: str,
    claimed: ClaimedJob,
    versions: Mapping[str, int],
    *,
    held_locks: MutableSet[TokenLock],
) -> JobOutcome:
    """Handle one claimed :class:`AnalyzeTrack` job; transient errors propagate (the caller retries the job)."""
    job = claimed.job
    assert isinstance(job, AnalyzeTrack)
    settings = runtime.settings
    queue = runtime.queue
    wanted = {name: versions[name] for name in job.analyzers if name in versions}
    async with transaction(runtime.pool) as conn:
        record = await tracks.get_track_by_key(conn, job.track)
        if record is None or record.is_missing or record.path is None:
            await queue.ack(worker_id, claimed)
            return JobOutcome(job.host_track_id, "dropped", detail="track unknown, missing or without a local path")
        await _notice_changed_file(conn, record)
        await status.ensure_status(conn, wanted, track_ids=[record.id])
        given_up = await status.fail_exhausted(conn, record.id, max_attempts=settings.worker.max_attempts)
        due = await status.list_due_analyzers(conn, record.id, wanted)
    if not due:
        await queue.ack(worker_id, claimed)
        action = "failed" if given_up else "current"
        return JobOutcome(job.host_track_id, action, tuple(given_up))
    too_long = await _longer_than_allowed(settings.analysis.max_duration_s, record)
    if too_long is not None:
        async with transaction(runtime.pool) as conn:
            await status.mark_failed(conn, record.id, dict.fromkeys(due, too_long))
        await queue.ack(worker_id, claimed)
        return JobOutcome(job.host_track_id, "skipped", tuple(due), too_long)
    lock = TrackLock(
        runtime.redis, runtime.keys, job.track, ttl_s=settings.worker.lock_s, held=held_locks, worker_id=worker_id
    )
    if not await lock.acquire():
        await queue.retry_later(worker_id, claimed, settings.worker.retry_base_s, count_attempt=False)
        return JobOutcome(job.host_track_id, "deferred", tuple(due), "another worker holds the track lock")
    try:
        return await _run_locked(runtime, executor, worker_id, claimed, record.id, record.path, due, wanted)
    finally:
        await lock.release()


async def _longer_than_allowed(limit_s: float | None, record: tracks.TrackRecord) -> str | None:
    """Why the track is not analysed when it is longer than ``analysis.max_duration_s`` (host length, else the
    file header's); ``None`` when it may be analysed."""
    if limit_s is None:
        return None
    assert record.path is not None
    length_s = record.duration_s or await asyncio.to_thread(declared_duration_s, record.path)
    if length_s is None or length_s <= limit_s:
        return None
    return f"not analysed: {length_s:.0f} s is longer than SONANTICA_ANALYSIS__MAX_DURATION_S ({limit_s:g} s)"


async def _notice_changed_file(conn: Connection, record: tracks.TrackRecord) -> None:
    """A file whose size or modification time changed since it was recorded gets all its analyses redone."""
    assert record.path is not None
    try:
        stat = os.stat(record.path)
    except OSError:
        return  # the decoder reports a missing or unreadable file with its reason
    await tracks.record_file_stat(conn, record.id, size_bytes=stat.st_size, mtime_ns=stat.st_mtime_ns)


async def _run_locked(
    runtime: Runtime,
    executor: AnalysisExecutor,
    worker_id: str,
    claimed: ClaimedJob,
    track_id: int,
    path: str,
    due: list[str],
    wanted: Mapping[str, int],
) -> JobOutcome:
    settings = runtime.settings
    queue = runtime.queue
    job = claimed.job
    assert isinstance(job, AnalyzeTrack)
    async with transaction(runtime.pool) as conn:
        due = await status.list_due_analyzers(conn, track_id, wanted)  # again, now that the lock is ours
        if due:
            running = {name: wanted[name] for name in due}
            attempts = await status.mark_running(conn, track_id, running)
    if not due:
        await queue.ack(worker_id, claimed)
        return JobOutcome(job.host_track_id, "current")
    library_root = None if job.host == LOCAL_HOST or settings.library_dir is None else str(settings.library_dir)
    analysis = await executor.analyze(path, due, library_root=library_root)
    if analysis.error is not None:
        reason = analysis.error
        if max(attempts.values()) >= settings.worker.max_attempts:
            async with transaction(runtime.pool) as conn:
                await status.mark_failed(
                    conn, track_id, {name: f"failed {attempts[name]} times: {reason}" for name in due}
                )
            await queue.ack(worker_id, claimed)
            log.warning("giving up on %s: %s", path, reason)
            return JobOutcome(job.host_track_id, "failed", tuple(due), reason)
        async with transaction(runtime.pool) as conn:
            await status.mark_error(conn, track_id, due, reason)
        delay_s = backoff_s(
            max(attempts.values()), base_s=settings.worker.retry_base_s, max_s=settings.worker.retry_max_s
        )
        await queue.retry_later(worker_id, claimed, delay_s)
        return JobOutcome(job.host_track_id, "retry", tuple(due), reason)
    failures = {name: failure.error for name, failure in analysis.failures.items()}
    async with transaction(runtime.pool) as conn:
        await analyses.store_results(
            conn, track_id, results=analysis.results, versions=running, failures=failures or None, info=analysis.info
        )
        summary = await analyses.get_analysis(conn, track_id)
    assert summary is not None
    await queue.complete(
        worker_id,
        claimed,
        ready=AnalysisReady(host=job.host, host_track_id=job.host_track_id, analyzers=tuple(due)),
        cached=cached_from_summary(summary),
        cache_ttl_s=settings.api.result_cache_s,
    )
    return JobOutcome(job.host_track_id, "analyzed", tuple(sorted(analysis.results)), "; ".join(failures.values()))
