"""Re-analysis of finished results (``sonantica reanalyze``): after switching the embedding model, or to redo what one
model produced, without resetting the database.

Matching ``done`` rows become ``queued`` in PostgreSQL first, then their jobs are pushed at scan priority, one
batch at a time (§H.6 order: if a push fails, the rows stay ``queued`` and the reconciler pushes them). Rows that
are already waiting are not matched again, so running the command twice queues nothing the second time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from sidecar.domain import Priority
from sidecar.errors import NotFoundError, SidecarError
from sidecar.jobqueue import get_epoch
from sidecar.services.jobs import jobs_for
from sidecar.services.reconcile import rebuild_from_database
from sidecar.services.runtime import Runtime
from sidecar.storage import status, vectors
from sidecar.storage.db import transaction

MODEL_ANALYZERS: frozenset[str] = frozenset({"embedding"})
"""Analyzers whose results carry a model name (vectors, tags): the only ones ``--model`` applies to."""


class ReanalysisError(SidecarError):
    """A re-analysis request that cannot apply (unknown or disabled analyzer, a model for a model-less one)."""


@dataclass(frozen=True, slots=True)
class ReanalysisReport:
    """``matched``: done results found; ``queued``: of those, queued now (fewer only when another process took
    some meanwhile)."""

    analyzer: str
    version: int
    matched: int
    queued: int


async def reanalyze(
    runtime: Runtime,
    analyzer: str,
    versions: Mapping[str, int],
    *,
    model: str | None = None,
    since: dt.datetime | None = None,
    batch_size: int = 1000,
    progress: Callable[[int], object] | None = None,
) -> ReanalysisReport:
    """Queue again, at scan priority, every ``done`` result of ``analyzer`` (finished at or after ``since``; of
    tracks with stored results of ``model``), to be redone at the analyzer's current version with the current
    settings. ``progress`` is called with the number of tracks queued by each batch.

    Raises :class:`ReanalysisError` when ``analyzer`` is not in ``versions`` (the enabled analyzers), ``model``
    is given for an analyzer without models, or ``model`` was never registered (a typo).
    """
    if analyzer not in versions:
        enabled = ", ".join(sorted(versions)) or "none"
        raise ReanalysisError(
            f"analyzer {analyzer!r} is not enabled (SONANTICA_ANALYSIS__ENABLED); enabled analyzers: {enabled}"
        )
    if model is not None and analyzer not in MODEL_ANALYZERS:
        raise ReanalysisError(f"analyzer {analyzer!r} has no models; --model applies to: {', '.join(MODEL_ANALYZERS)}")
    if model is not None:
        async with transaction(runtime.pool) as conn:
            try:
                await vectors.model_dim(conn, model)
            except NotFoundError:
                raise ReanalysisError(f"unknown embedding model {model!r}: never registered here") from None
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=dt.UTC)
    version = versions[analyzer]
    async with transaction(runtime.pool) as conn:
        matched, started = await status.count_done_matching(conn, analyzer, model=model, since=since)
    if matched and await get_epoch(runtime.redis, runtime.keys) is None:
        await rebuild_from_database(runtime, versions)  # Redis lost its queues: refill them before adding ours
    queued = 0
    while True:
        async with transaction(runtime.pool) as conn:
            batch = await status.requeue_done(
                conn, analyzer, version, model=model, since=since, before=started, limit=batch_size
            )
        if not batch:
            break
        await runtime.queue.enqueue_many(jobs_for(batch, priority=Priority.SCAN))
        queued += len(batch)
        if progress is not None:
            progress(len(batch))
    return ReanalysisReport(analyzer=analyzer, version=version, matched=matched, queued=queued)
