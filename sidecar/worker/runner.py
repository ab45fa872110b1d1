"""The worker: claim jobs (on-play strictly before scan), analyse, and survive every failure around it.

A worker registers with a lease it refreshes (heartbeat), re-delivers the jobs of workers whose lease expired,
rebuilds the queues from PostgreSQL when Redis has lost its data, and backs off (never crash-loops) while
PostgreSQL or Redis is unreachable. ``drain`` mode returns once no work is left (tests and batch runs).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from adapters.base import HostAdapter, HostError
from sidecar.analyzers.executor import AnalysisExecutor
from sidecar.background import BackgroundTask
from sidecar.domain import Priority
from sidecar.errors import QueueUnavailableError, RetryLaterError, StorageUnavailableError
from sidecar.jobqueue import AnalyzeTrack, ClaimedJob, TokenLock, backoff_s, get_epoch, new_worker_id
from sidecar.services.analysis import JobOutcome, analyze_job
from sidecar.services.reconcile import rebuild_from_database
from sidecar.services.runtime import Runtime
from sidecar.services.writeback import write_back_track, writes_tags
from sidecar.settings import parse_scan_hours
from sidecar.worker.stems import StemsLane

log = logging.getLogger(__name__)

_TRANSIENT = (QueueUnavailableError, StorageUnavailableError, RetryLaterError)
HEARTBEAT_STOP_WAIT_S = 10.0
"""The most a stopping worker waits for its heartbeat to end (a beat is one bounded Redis round trip)."""


def scan_allowed(hours: str | None, now: dt.datetime) -> bool:
    """Whether scan work may run at local time ``now`` given ``worker.scan_hours`` (``"HH:MM-HH:MM"``, may wrap
    midnight; ``None`` = always)."""
    if not hours:
        return True
    start, end = parse_scan_hours(hours)
    current = now.time()
    return start <= current < end if start <= end else current >= start or current < end


@dataclass
class WorkerStats:
    """Counts of job outcomes, by action."""

    outcomes: dict[str, int] = field(default_factory=dict)

    def add(self, outcome: JobOutcome) -> None:
        self.outcomes[outcome.action] = self.outcomes.get(outcome.action, 0) + 1


class Worker:
    """One worker process: ``concurrency`` jobs at a time, analysed in as many processes.

    Parameters
    ----------
    runtime
        Open database pool, Redis client and queue.
    versions
        ``{analyzer: current version}`` of the analyzers this worker runs.
    queues
        Priorities this worker takes (dedicated pools: on-play only, scan only).
    on_outcome
        Called after every job (progress bars, tests).
    adapter
        The host, when its API accepts tags: results are written back right after each analysis (a failed write
        is logged; ``sonantica host write-back`` catches up).
    """

    def __init__(
        self,
        runtime: Runtime,
        executor: AnalysisExecutor,
        versions: dict[str, int],
        *,
        queues: Collection[Priority] = (Priority.ON_PLAY, Priority.SCAN),
        on_outcome: Callable[[JobOutcome], None] | None = None,
        worker_id: str | None = None,
        adapter: HostAdapter | None = None,
        stems: StemsLane | None = None,
    ) -> None:
        self.runtime = runtime
        self.executor = executor
        self.versions = versions
        self.queues = tuple(p for p in (Priority.ON_PLAY, Priority.SCAN) if p in queues)
        self.on_outcome = on_outcome
        self.adapter = adapter if writes_tags(adapter) else None
        self.stems = stems  # the separation lane (``stems`` queue), beside the analysis slots
        self.worker_id = worker_id or new_worker_id()
        self.stats = WorkerStats()
        self._held_locks: set[TokenLock] = set()
        self._running: list[str] = []  # raw entries of the jobs this process is handling now
        self._ghost_suspects: set[str] = set()
        self._busy = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        """Finish the jobs in progress, then return from :meth:`run` (signal handlers call this)."""
        self._stop.set()

    async def run(self, *, drain: bool = False) -> WorkerStats:
        """Process jobs until :meth:`stop` (or, with ``drain``, until no work is left); returns the outcome counts."""
        queue = self.runtime.queue
        await self._start()
        beat = BackgroundTask(self._heartbeat, name=f"heartbeat of {self.worker_id}")
        try:
            count = self.runtime.settings.worker.concurrency if self.queues else 0
            slots = [asyncio.create_task(self._slot(drain)) for _ in range(count)]
            if self.stems is not None:
                lane = self.stems.run(
                    self.worker_id, self._held_locks, self._stop, analysis_queues=self._active_queues, drain=drain
                )
                slots.append(asyncio.create_task(lane))
            await asyncio.gather(*slots)
        finally:
            try:
                await beat.stop(wait_s=HEARTBEAT_STOP_WAIT_S)  # first: a beat after the unregistering registers again
            finally:
                try:
                    await queue.unregister_worker(self.worker_id)
                except QueueUnavailableError:
                    log.warning("could not unregister %s; its jobs return when its lease expires", self.worker_id)
        return self.stats

    async def _start(self) -> None:
        """Register, re-deliver dead workers' jobs and rebuild lost queues; waits (with back-off) while PostgreSQL
        or Redis is unreachable instead of failing."""
        settings = self.runtime.settings.worker
        attempt = 0
        while True:
            try:
                await self.runtime.queue.register_worker(self.worker_id)
                await self.runtime.queue.reap_dead_workers()
                await self._rebuild_if_lost()
                break
            except _TRANSIENT as exc:
                attempt += 1
                delay_s = backoff_s(attempt, base_s=settings.retry_base_s, max_s=settings.retry_max_s)
                log.warning("%s; retrying in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)
        taken = [str(q) for q in self.queues] + (["stems"] if self.stems is not None else [])
        log.info("worker %s started (queues: %s)", self.worker_id, ", ".join(taken))

    async def _rebuild_if_lost(self) -> None:
        if await get_epoch(self.runtime.redis, self.runtime.keys) is None:
            outcome = await rebuild_from_database(self.runtime, self.versions)
            if outcome.ran:
                log.warning("Redis had no queue epoch: re-enqueued %d tracks from PostgreSQL", outcome.jobs_pushed)

    async def _heartbeat(self) -> None:
        queue = self.runtime.queue
        period_s = queue.lease_s / 3
        beats = 0
        while True:
            await asyncio.sleep(period_s)
            beats += 1
            try:
                if not await queue.heartbeat(self.worker_id, self._held_locks):
                    log.warning("worker %s was declared dead and re-registered", self.worker_id)
                if beats % 3 == 0:
                    await queue.reap_dead_workers()
                await self._rebuild_if_lost()
                await self._requeue_ghosts()
            except _TRANSIENT as exc:
                log.warning("heartbeat: %s", exc)

    async def _requeue_ghosts(self) -> None:
        """Give back entries of this worker's processing list that it is not running (a Redis restored from its
        append-only file can hold a claim whose acknowledgement it lost). An entry must be seen unheld at two
        beats in a row, so a claim whose reply is still on its way is never taken for a ghost."""
        unheld = {raw for raw in await self.runtime.queue.processing(self.worker_id) if raw not in self._running}
        ghosts = unheld & self._ghost_suspects
        self._ghost_suspects = unheld - ghosts
        if ghosts:
            moved = await self.runtime.queue.requeue_entries(self.worker_id, ghosts)
            log.warning("worker %s held %d claim(s) it was not running; requeued them", self.worker_id, moved)

    def _active_queues(self) -> tuple[Priority, ...]:
        settings = self.runtime.settings.worker
        scan_ok = not settings.scan_paused and scan_allowed(settings.scan_hours, dt.datetime.now())
        return tuple(p for p in self.queues if p is Priority.ON_PLAY or scan_ok)

    async def _idle(self) -> bool:
        await self._rebuild_if_lost()  # an empty Redis may just have lost its data
        depths = await self.runtime.queue.depths()
        waiting = sum(depths.get(str(p), 0) for p in self._active_queues())
        waiting += depths.get("delayed", 0) + depths.get("processing", 0)  # a dead worker's jobs come back
        return self._busy == 0 and waiting == 0

    async def _slot(self, drain: bool) -> None:
        poll_s = self.runtime.settings.worker.poll_s
        failures = 0
        while not self._stop.is_set():
            active = self._active_queues()
            try:
                claimed = (
                    await self.runtime.queue.claim(self.worker_id, queues=active, block_s=0.0 if drain else poll_s)
                    if active
                    else None
                )
                if claimed is None:
                    if drain and await self._idle():
                        return
                    await asyncio.sleep(0.1 if drain or active else poll_s)
                    continue
                failures = 0
                self._busy += 1
                self._running.append(claimed.raw)
                try:
                    await self._handle(claimed)
                finally:
                    self._running.remove(claimed.raw)
                    self._busy -= 1
            except QueueUnavailableError as exc:
                failures += 1
                delay_s = backoff_s(failures, base_s=0.2, max_s=self.runtime.settings.worker.retry_max_s)
                log.warning("Redis unavailable (%s); retrying in %.1f s", exc, delay_s)
                await asyncio.sleep(delay_s)

    async def _write_back(self, job: AnalyzeTrack) -> None:
        assert self.adapter is not None
        try:
            await write_back_track(self.runtime, self.adapter, job.track)
        except (HostError, ValueError, StorageUnavailableError) as exc:
            log.warning("tags of %s not written (%s); `sonantica host write-back` retries", job.id, exc)

    async def _handle(self, claimed: ClaimedJob) -> None:
        job = claimed.job
        settings = self.runtime.settings.worker
        if not isinstance(job, AnalyzeTrack):
            await self.runtime.queue.fail(self.worker_id, claimed, f"this worker does not run {job.type} jobs")
            return
        if job.priority is Priority.ON_PLAY:
            await self.runtime.queue.release_on_play(job.track)  # taken: a new play may queue the track again
        try:
            outcome = await analyze_job(
                self.runtime, self.executor, self.worker_id, claimed, self.versions, held_locks=self._held_locks
            )
        except (StorageUnavailableError, RetryLaterError) as exc:
            delay_s = getattr(exc, "delay_s", None) or backoff_s(
                job.attempt, base_s=settings.retry_base_s, max_s=settings.retry_max_s
            )
            log.warning("%s: %s; retrying in %.1f s", job.id, exc, delay_s)
            await self.runtime.queue.retry_later(self.worker_id, claimed, delay_s)
            outcome = JobOutcome(job.host_track_id, "retry", job.analyzers, str(exc))
            await asyncio.sleep(min(delay_s, settings.poll_s))
        except QueueUnavailableError:
            raise
        except Exception as exc:  # a bug must not kill the worker nor leave the claim behind: retried, then failed
            log.exception("%s: unexpected error", job.id)
            reason = f"internal error: {type(exc).__name__}: {exc}"
            if job.attempt >= settings.max_attempts:
                await self.runtime.queue.fail(self.worker_id, claimed, reason)
                outcome = JobOutcome(job.host_track_id, "failed", job.analyzers, reason)
            else:
                delay_s = backoff_s(job.attempt, base_s=settings.retry_base_s, max_s=settings.retry_max_s)
                await self.runtime.queue.retry_later(self.worker_id, claimed, delay_s)
                outcome = JobOutcome(job.host_track_id, "retry", job.analyzers, reason)
        self.stats.add(outcome)
        if self.adapter is not None and outcome.action == "analyzed":
            await self._write_back(job)
        log.info("%s: %s %s %s", job.id, outcome.action, ",".join(outcome.analyzers), outcome.detail)
        if self.on_outcome is not None:
            self.on_outcome(outcome)
