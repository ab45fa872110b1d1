"""The worker's separation lane: takes ``stems`` jobs only, one at a time, in its own process.

In a worker that also analyses, the lane claims a separation only while no analysis is waiting, and runs it in a
lower-priority process beside the analysis slots, so a separation never holds up an on-play analysis. A worker
started with ``--queues stems`` (a GPU pod) runs only this lane.

Outcomes, each leaving PostgreSQL consistent and the job acknowledged once:

- stems ready already, deleted or never asked for (a duplicate delivery): acknowledged, nothing runs;
- the track's separation lock is held elsewhere: deferred briefly without counting an attempt;
- a model that cannot be had or read, or an original that cannot be decoded: ``failed`` with the reason;
- the separation process died: retried with back-off until ``worker.max_attempts``, then ``failed``;
- success: files renamed into place, the row ``ready``, ``StemsReady`` published, acknowledged.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from collections.abc import Callable, Collection, MutableSet
from dataclasses import dataclass

from sidecar.domain import Priority
from sidecar.errors import (
    AudioDecodeError,
    InvalidJobError,
    QueueUnavailableError,
    RetryLaterError,
    StorageUnavailableError,
)
from sidecar.jobqueue import TokenLock, backoff_s
from sidecar.jobqueue.stems import ClaimedSeparation, StemsQueue, StemsReady
from sidecar.services.runtime import Runtime
from sidecar.services.stems import requeue_lost
from sidecar.stems.executor import StemsExecutor
from sidecar.stems.files import clear_partials, new_partial_dir, publish
from sidecar.stems.models import StemsModelError, model_version
from sidecar.storage import stems, tracks
from sidecar.storage.db import transaction

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StemsOutcome:
    """What handling one separation job did."""

    track_id: int
    action: str  # "separated", "current", "deferred", "retry", "failed"
    detail: str = ""


class StemsLane:
    """Claims and runs separations for one worker (its id, lease and held locks)."""

    def __init__(
        self,
        runtime: Runtime,
        executor: StemsExecutor,
        *,
        on_outcome: Callable[[StemsOutcome], None] | None = None,
    ) -> None:
        self.runtime = runtime
        self.executor = executor
        self.queue = StemsQueue(runtime.redis, runtime.keys)
        self.on_outcome = on_outcome
        self.outcomes: dict[str, int] = {}

    async def run(
        self,
        worker_id: str,
        held_locks: MutableSet[TokenLock],
        stop: asyncio.Event,
        *,
        analysis_queues: Callable[[], Collection[Priority]] = tuple,
        drain: bool = False,
    ) -> None:
        """Take separations until ``stop`` is set (or, with ``drain``, until none is left), while no analysis in
        ``analysis_queues()`` is waiting; puts unfinished ones back on exit."""
        poll_s = self.runtime.settings.worker.poll_s
        reap_every_s = self.runtime.settings.worker.lease_s
        last_reap = 0.0
        failures = 0
        try:
            while not stop.is_set():
                try:
                    if time.monotonic() - last_reap >= reap_every_s:
                        await self.queue.reap_dead_workers()
                        await requeue_lost(self.runtime)
                        last_reap = time.monotonic()
                    if await self._analysis_waiting(analysis_queues()):
                        await asyncio.sleep(0.1 if drain else poll_s)
                        continue
                    try:
                        claimed = await self.queue.claim(worker_id, block_s=0.0 if drain else poll_s)
                    except InvalidJobError as exc:
                        log.error("dropped an unreadable stems queue entry: %s", exc)
                        continue
                    failures = 0
                    if claimed is None:
                        if drain and not any((await self.queue.depths()).values()):
                            return
                        await asyncio.sleep(0.1 if drain else 0.0)
                        continue
                    outcome = await self.handle(worker_id, claimed, held_locks)
                    self.outcomes[outcome.action] = self.outcomes.get(outcome.action, 0) + 1
                    log.info("stems of track %d: %s %s", outcome.track_id, outcome.action, outcome.detail)
                    if self.on_outcome is not None:
                        self.on_outcome(outcome)
                except (QueueUnavailableError, StorageUnavailableError) as exc:
                    failures += 1
                    delay_s = backoff_s(failures, base_s=0.2, max_s=self.runtime.settings.worker.retry_max_s)
                    log.warning("stems lane: %s; retrying in %.1f s", exc, delay_s)
                    await asyncio.sleep(delay_s)
        finally:
            try:
                await self.queue.release_worker(worker_id)
            except QueueUnavailableError:
                log.warning("could not put back the separations of %s; they return when its lease expires", worker_id)

    async def _analysis_waiting(self, queues: Collection[Priority]) -> bool:
        if not queues:
            return False
        depths = await self.runtime.queue.depths()
        return any(depths.get(str(p), 0) for p in queues)

    async def handle(
        self, worker_id: str, claimed: ClaimedSeparation, held_locks: MutableSet[TokenLock]
    ) -> StemsOutcome:
        """Run one claimed separation under the track's lock."""
        settings = self.runtime.settings
        track_id = claimed.job.track_id
        lock = TokenLock(
            self.runtime.redis, self.queue.keys.lock(track_id), ttl_s=settings.worker.lock_s, held=held_locks
        )
        if not await lock.acquire():
            await self.queue.retry_later(worker_id, claimed, settings.worker.retry_base_s, count_attempt=False)
            return StemsOutcome(track_id, "deferred", "another worker holds the separation lock")
        try:
            return await self._locked(worker_id, claimed)
        finally:
            await lock.release()

    async def _locked(self, worker_id: str, claimed: ClaimedSeparation) -> StemsOutcome:
        settings = self.runtime.settings
        root = settings.stems_root
        track_id = claimed.job.track_id
        async with transaction(self.runtime.pool) as conn:
            track = await tracks.get_track(conn, track_id)
            attempt = await stems.start_separation(conn, track_id)
            if attempt is not None and (track is None or track.path is None or track.is_missing):
                await stems.mark_failed(conn, track_id, "the track is unknown, missing or has no local file")
                attempt = None
            if attempt is not None and attempt > settings.worker.max_attempts:
                row = await stems.get_stems(conn, track_id)
                reason = row.last_error if row is not None and row.last_error else "the separation kept failing"
                await stems.mark_failed(conn, track_id, f"failed {attempt - 1} times: {reason}")
                await self.queue.ack(worker_id, claimed)
                return StemsOutcome(track_id, "failed", reason)
        if attempt is None or track is None or track.path is None:
            await self.queue.ack(worker_id, claimed)
            return StemsOutcome(track_id, "current", "nothing to separate")
        await asyncio.to_thread(clear_partials, root, track_id)  # a killed worker's half-written set
        partial = await asyncio.to_thread(new_partial_dir, root, track_id)
        try:
            result = await self.executor.separate(track.path, partial)
        except (StemsModelError, AudioDecodeError, ValueError) as exc:
            await asyncio.to_thread(shutil.rmtree, partial, True)
            async with transaction(self.runtime.pool) as conn:
                await stems.mark_failed(conn, track_id, str(exc))
            await self.queue.ack(worker_id, claimed)
            return StemsOutcome(track_id, "failed", str(exc))
        except RetryLaterError as exc:
            await asyncio.to_thread(shutil.rmtree, partial, True)
            async with transaction(self.runtime.pool) as conn:
                await stems.mark_retry(conn, track_id, str(exc))
            delay_s = backoff_s(attempt, base_s=settings.worker.retry_base_s, max_s=settings.worker.retry_max_s)
            await self.queue.retry_later(worker_id, claimed, delay_s)
            return StemsOutcome(track_id, "retry", str(exc))
        location = await asyncio.to_thread(publish, root, partial, track_id)
        async with transaction(self.runtime.pool) as conn:
            await stems.record_stems(
                conn,
                track_id,
                location=str(location),
                size_bytes=sum(result.files.values()),
                model=settings.stems.model,
                model_version=model_version(settings),
                format=settings.stems.format,
                files=result.files,
            )
        await self.queue.complete(worker_id, claimed, StemsReady(track_id, tuple(result.files)))
        return StemsOutcome(track_id, "separated", f"{result.duration_s:.1f} s, {sum(result.files.values())} bytes")
