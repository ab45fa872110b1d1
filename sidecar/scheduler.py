"""``sonantica scheduler``: periodic library sync, now-playing polling and queue reconciliation.

One instance only: the active scheduler holds a Redis lock (``lock:scheduler``, ``scheduler.lock_s``) and renews
it every third of that time. A second scheduler idles, says who holds the lock, and takes over once the lock is
released or expires (the holder died). A scheduler that loses its lock stops its jobs at once and idles.

The jobs only store tracks and enqueue work: analysis always runs in the workers, never here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from adapters.base import HostAdapter, HostError
from sidecar.errors import SidecarError
from sidecar.jobqueue import TokenLock
from sidecar.services.playback import NowPlayingTracker, poll_now_playing
from sidecar.services.reconcile import rebuild_from_database, requeue_lost_jobs
from sidecar.services.runtime import Runtime
from sidecar.services.status import fold_status_counts
from sidecar.services.stems import evict_stems
from sidecar.services.sync import scheduled_since, sync_library

log = logging.getLogger(__name__)

JobFunction = Callable[[], Awaitable[object]]


class Scheduler:
    """Runs the periodic jobs while holding the single-instance lock.

    Parameters
    ----------
    runtime
        Open database, Redis and queue.
    adapter
        The host; ``None`` (no host configured) schedules reconciliation only.
    versions
        ``{analyzer: current version}`` of the enabled analyzers.
    """

    def __init__(self, runtime: Runtime, adapter: HostAdapter | None, versions: Mapping[str, int]) -> None:
        self.runtime = runtime
        self.adapter = adapter
        self.versions = dict(versions)
        self.settings = runtime.settings.scheduler
        self.lock = TokenLock(runtime.redis, runtime.keys.scheduler_lock, ttl_s=self.settings.lock_s)
        self.tracker = NowPlayingTracker()
        self._jobs: AsyncIOScheduler | None = None

    @property
    def is_active(self) -> bool:
        """True while this instance holds the lock and its jobs are scheduled."""
        return self._jobs is not None

    async def run(self, stop: asyncio.Event) -> None:
        """Take the lock (or wait for it), run the jobs while it is held, until ``stop`` is set; then release it."""
        renew_every_s = self.settings.lock_s / 3
        told_idle = False
        try:
            while not stop.is_set():
                if self.is_active:
                    if not await self._renewed():
                        log.warning("scheduler lost its lock %s; stopping jobs and idling", self.lock.key)
                        self._stop_jobs()
                elif (taken := await self._acquired()) is None:
                    told_idle = False
                elif taken:
                    log.info("scheduler active: holding %s", self.lock.key)
                    told_idle = False
                    self._start_jobs()
                elif not told_idle:
                    log.info(
                        "another scheduler is active (it holds %s); idling, taking over within %.0f s of it stopping",
                        self.lock.key,
                        self.settings.lock_s,
                    )
                    told_idle = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=renew_every_s)
        finally:
            if self.is_active:
                self._stop_jobs()
                await self.lock.release()

    async def _acquired(self) -> bool | None:
        """Whether the lock was taken; ``None`` when Redis could not be asked."""
        try:
            return await self.lock.acquire()
        except SidecarError as error:
            log.warning("scheduler could not reach Redis to take its lock: %s", error)
            return None

    async def _renewed(self) -> bool:
        try:
            return await self.lock.renew()
        except SidecarError as error:
            log.warning("scheduler could not renew its lock: %s", error)
            return False

    def _start_jobs(self) -> None:
        jobs = AsyncIOScheduler(timezone=UTC)
        now = datetime.now(UTC)
        every = self.settings
        planned: list[tuple[str, str, JobFunction, float]] = [
            ("reconcile", "reconcile", self._reconcile, every.reconcile_interval_s)
        ]
        evict_s = self.runtime.settings.stems.evict_interval_s
        planned.append(("evict_stems", "stems eviction", self._evict_stems, evict_s))
        if self.adapter is not None:
            planned.append(("sync", "library sync", self._sync, every.sync_interval_s))
            planned.append(("now_playing", "now-playing poll", self._poll, every.now_playing_interval_s))
        for job_id, name, job, interval_s in planned:
            jobs.add_job(
                self._guarded(name, job),
                "interval",
                seconds=interval_s,
                next_run_time=now,  # every job runs once at start
                id=job_id,
                name=name,  # apscheduler's "Running job ..." lines name it
                max_instances=1,
                coalesce=True,
                misfire_grace_time=None,  # a run is late, never skipped: a busy start must not put off the sync 6 h
            )
        jobs.start()
        self._jobs = jobs

    def _stop_jobs(self) -> None:
        if self._jobs is not None:
            self._jobs.shutdown(wait=False)
            self._jobs = None

    @staticmethod
    def _guarded(name: str, job: JobFunction) -> Callable[[], Awaitable[None]]:
        """``job`` with host and sidecar errors logged as one clear line (the next run tries again)."""

        async def run() -> None:
            try:
                await job()
            except (HostError, SidecarError) as error:
                log.warning("scheduler %s failed: %s: %s", name, type(error).__name__, error)

        return run

    async def _reconcile(self) -> None:
        await fold_status_counts(self.runtime)
        outcome = await rebuild_from_database(self.runtime, self.versions)
        if outcome.ran:
            log.info("scheduler rebuilt the queues from PostgreSQL (Redis had lost them)")
        else:
            await requeue_lost_jobs(self.runtime, self.versions)

    async def _evict_stems(self) -> None:
        await evict_stems(self.runtime)

    async def _sync(self) -> None:
        assert self.adapter is not None  # scheduled only with an adapter
        await sync_library(
            self.runtime,
            self.adapter,
            self.versions,
            changed_since=await scheduled_since(self.runtime, self.adapter),
            attempts=self.settings.sync_attempts,
            retry_base_s=self.settings.sync_retry_base_s,
        )

    async def _poll(self) -> None:
        assert self.adapter is not None  # scheduled only with an adapter
        await poll_now_playing(self.runtime, self.adapter, self.versions, self.tracker)
