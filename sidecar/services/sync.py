"""Library sync: pull the host's tracks, store them, mark vanished ones missing, queue what needs analysis.

Each page of tracks is saved in one transaction, then its analyses are queued at scan priority; a full sync
(no ``changed_since``) marks tracks the host no longer lists as missing, and only after the host listed every
track. When the host stays unavailable the sync retries the listing with back-off, then raises
:class:`SyncError`; the pages already saved are complete tracks and nothing is marked missing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from adapters.base import HostAdapter, HostTrack, HostUnavailableError
from sidecar.domain import Priority
from sidecar.errors import SidecarError
from sidecar.services.enqueue import enqueue_track_ids
from sidecar.services.runtime import Runtime
from sidecar.storage import analyses, status, tracks
from sidecar.storage.db import Connection, transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

EXAMPLES_KEPT = 10
"""Examples of each kind of problem or disagreement kept in a :class:`SyncReport`."""


class SyncError(SidecarError):
    """The host could not be listed to the end; the message says what was saved and what was not done."""


@dataclass(frozen=True, slots=True)
class PathProblem:
    """A track whose file the sidecar cannot read: why, and the fix."""

    host_track_id: str
    host_path: str | None
    problem: str


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A value the host reports that differs from our analysis (``host - ours`` is ``difference``)."""

    host_track_id: str
    title: str
    host_value: float
    our_value: float

    @property
    def difference(self) -> float:
        """``host_value - our_value`` in the value's unit."""
        return self.host_value - self.our_value


@dataclass(slots=True)
class SyncReport:
    """What one sync did. Counts are tracks; example lists hold at most :data:`EXAMPLES_KEPT` entries."""

    host: str
    full: bool
    seen: int = 0
    created: int = 0
    updated: int = 0  # known tracks whose file changed (size or mtime): their analyses were reset
    missing: int = 0  # tracks marked missing by a full sync
    unmappable: int = 0
    queued: int = 0  # tracks with at least one analysis queued at scan priority
    attempts: int = 1
    duration_s: float = 0.0
    path_problems: list[PathProblem] = field(default_factory=list)
    bpm_disagreements: int = 0
    bpm_examples: list[Disagreement] = field(default_factory=list)
    replaygain_disagreements: int = 0
    replaygain_examples: list[Disagreement] = field(default_factory=list)


def file_stat(path: str | None) -> tuple[int, int] | None:
    """``(size_bytes, mtime_ns)`` of a mapped file (``os.stat`` only, never opened), ``None`` when unreadable or
    not a regular file (a directory, FIFO, socket or device is never tracked)."""
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    return info.st_size, info.st_mtime_ns


def _keep(examples: list[T], item: T) -> None:
    if len(examples) < EXAMPLES_KEPT:
        examples.append(item)


def track_upsert(host: str, track: HostTrack, *, path: str | None, stat: tuple[int, int] | None) -> tracks.TrackUpsert:
    """The row for ``track``: ``path`` is its readable file on the mount (``None``: none), ``stat`` its
    ``(size_bytes, mtime_ns)``."""
    return tracks.TrackUpsert(
        host=host,
        host_track_id=track.host_track_id,
        title=track.title,
        path=path,
        host_path=track.host_path,
        size_bytes=None if stat is None else stat[0],
        mtime_ns=None if stat is None else stat[1],
        artist=track.artist,
        album=track.album,
        album_artist=track.album_artist,
        genres=track.genres,
        duration_s=track.duration_s,
        library=track.library_id,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tolerances:
    bpm: float
    replaygain_db: float


async def _save_page(
    runtime: Runtime,
    host: str,
    page: Sequence[HostTrack],
    report: SyncReport,
    tolerances: _Tolerances,
    versions: Mapping[str, int],
) -> list[int]:
    """Store one page in one transaction; return the ids of readable tracks with analyses to queue."""
    stats = await asyncio.to_thread(lambda: [file_stat(track.local_path) for track in page])
    to_queue: list[int] = []
    problems: list[PathProblem] = []
    upserts = []
    for track, file_facts in zip(page, stats, strict=True):
        path = track.local_path if file_facts is not None else None
        if path is None:
            problem = track.path_problem or (
                f"mapped file {track.local_path} is not a readable regular file on the mount: check"
                " SONANTICA_LIBRARY_DIR and SONANTICA_PATH_MAP"
            )
            problems.append(PathProblem(track.host_track_id, track.host_path, problem))
        upserts.append(track_upsert(host, track, path=path, stat=file_facts))
    async with transaction(runtime.pool) as conn:
        outcomes = await tracks.upsert_tracks(conn, upserts)
        known = [o.track_id for o in outcomes if not o.created and not o.file_changed]
        waiting = await status.waiting_for_queue(conn, known, versions) if known else set()
        for track, upsert, outcome in zip(page, upserts, outcomes, strict=True):
            report.created += outcome.created
            report.updated += outcome.file_changed
            is_known = not outcome.created and not outcome.file_changed
            if upsert.path is not None and (not is_known or outcome.track_id in waiting):
                to_queue.append(outcome.track_id)
            if is_known:
                await _compare(conn, outcome.track_id, track, report, tolerances)
    report.seen += len(page)
    report.unmappable += len(problems)
    for item in problems:
        _keep(report.path_problems, item)
    return to_queue


async def _compare(
    conn: Connection, track_id: int, track: HostTrack, report: SyncReport, tolerances: _Tolerances
) -> None:
    """Count host BPM / ReplayGain values that differ from our stored analysis by more than the tolerances."""
    if track.host_bpm is None and track.host_replaygain_track_gain_db is None:
        return
    ours = await analyses.get_analysis(conn, track_id)
    if ours is None:
        return
    if track.host_bpm is not None and ours["bpm"] is not None and abs(track.host_bpm - ours["bpm"]) > tolerances.bpm:
        report.bpm_disagreements += 1
        _keep(report.bpm_examples, Disagreement(track.host_track_id, track.title, track.host_bpm, ours["bpm"]))
    gain = track.host_replaygain_track_gain_db
    our_gain = ours["replaygain_track_gain_db"]
    if gain is not None and our_gain is not None and abs(gain - our_gain) > tolerances.replaygain_db:
        report.replaygain_disagreements += 1
        _keep(report.replaygain_examples, Disagreement(track.host_track_id, track.title, gain, our_gain))


async def sync_library(
    runtime: Runtime,
    adapter: HostAdapter,
    versions: Mapping[str, int],
    *,
    changed_since: datetime | None = None,
    page_size: int = 200,
    attempts: int = 3,
    retry_base_s: float = 2.0,
    bpm_tolerance: float = 1.0,
    replaygain_tolerance_db: float = 1.0,
    progress: Callable[[int], None] | None = None,
) -> SyncReport:
    """Sync the host's library into PostgreSQL and queue missing or stale analyses at scan priority.

    Parameters
    ----------
    changed_since
        Incremental sync: only tracks the host changed after this moment (timezone-aware); nothing is marked
        missing. ``None``: a full sync, after which tracks the host no longer lists are marked missing.
    page_size
        Tracks saved per transaction (and asked of the host per request).
    attempts
        Listings tried when the host is unavailable (the adapter already retries each request); the wait before
        attempt ``n + 1`` is ``retry_base_s * 2 ** (n - 1)`` seconds. Saved pages are idempotent, so a retry
        starts the listing again.
    bpm_tolerance, replaygain_tolerance_db
        Differences (BPM, dB) between the host's tags and our analysis above which a disagreement is reported.
    progress
        Called with the number of tracks just saved, after each page (for a progress bar).

    Raises
    ------
    SyncError
        The host stayed unavailable for ``attempts`` listings.
    HostAuthError
        The credentials were refused (not retried).
    """
    if page_size < 1 or attempts < 1:
        raise ValueError("page_size and attempts must be at least 1")
    host = adapter.kind.value
    tolerances = _Tolerances(bpm=bpm_tolerance, replaygain_db=replaygain_tolerance_db)
    started = time.monotonic()
    attempt = 1
    while True:
        report = SyncReport(host=host, full=changed_since is None, attempts=attempt)
        present: set[str] = set()
        try:
            await _list_and_save(
                runtime, adapter, report, present, changed_since, page_size, tolerances, versions, progress
            )
        except HostUnavailableError as error:
            if attempt >= attempts:
                raise SyncError(
                    f"{host} is unavailable after {attempts} attempts ({error}); {report.seen} tracks of the last"
                    " attempt were saved, nothing was marked missing; the next sync continues"
                ) from error
            delay_s = retry_base_s * 2 ** (attempt - 1)
            log.warning("%s unavailable during sync (%s); retrying in %.1f s", host, error, delay_s)
            await asyncio.sleep(delay_s)
            attempt += 1
            continue
        break
    if report.full:
        async with transaction(runtime.pool) as conn:
            report.missing = await tracks.mark_missing(conn, host, present_host_track_ids=present)
    report.duration_s = time.monotonic() - started
    log.info(
        "%s sync: %d seen, %d new, %d changed, %d missing, %d unmappable, %d queued",
        host,
        report.seen,
        report.created,
        report.updated,
        report.missing,
        report.unmappable,
        report.queued,
    )
    return report


async def _list_and_save(
    runtime: Runtime,
    adapter: HostAdapter,
    report: SyncReport,
    present: set[str],
    changed_since: datetime | None,
    page_size: int,
    tolerances: _Tolerances,
    versions: Mapping[str, int],
    progress: Callable[[int], None] | None,
) -> None:
    """One pass over the host's listing: save it page by page, collecting the ids seen into ``present``."""
    page: list[HostTrack] = []
    async for track in adapter.iter_tracks(changed_since=changed_since, page_size=page_size):
        page.append(track)
        present.add(track.host_track_id)
        if len(page) >= page_size:
            await _finish_page(runtime, report.host, page, report, tolerances, versions, progress)
            page = []
    await _finish_page(runtime, report.host, page, report, tolerances, versions, progress)


async def _finish_page(
    runtime: Runtime,
    host: str,
    page: Sequence[HostTrack],
    report: SyncReport,
    tolerances: _Tolerances,
    versions: Mapping[str, int],
    progress: Callable[[int], None] | None,
) -> None:
    if not page:
        return
    to_queue = await _save_page(runtime, host, page, report, tolerances, versions)
    if to_queue:
        queued = await enqueue_track_ids(runtime, to_queue, versions, priority=Priority.SCAN)
        report.queued += sum(1 for item in queued if item.analyzers)
    if progress is not None:
        progress(len(page))
