"""Library sync: pull the host's tracks, store them, mark vanished ones missing, queue what needs analysis.

Each page of tracks is saved in one transaction, then its analyses are queued at scan priority; a full sync
(no ``changed_since``) marks tracks the host no longer lists as missing, and only after the host listed every
track. When the host stays unavailable the sync retries the listing with back-off, then raises
:class:`SyncError`; the pages already saved are complete tracks and nothing is marked missing.

A track whose host facts hash to the fingerprint stored by an earlier sync (:func:`host_fingerprint`) is
*unchanged*: its path is not mapped, its file is not stat-ed and its row is neither compared nor written. Only new
and changed tracks take the full path (mapping onto the mount, stat, upsert, reset of the analyses of a changed
file, queue). A file that changed on the mount (or a symlink on the mount that now leads elsewhere) while the host
still reports the same facts is caught by the next *deep* sync, which checks every track in full (every
``SONANTICA_SCHEDULER__DEEP_SYNC_INTERVAL_S``, or ``sonantica host sync --deep``). The fingerprint is written in
the page's transaction; analyses a crash left unqueued are pending in PostgreSQL, where the scheduler's
reconcile job finds and queues them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import stat
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import msgspec
import numpy as np
import numpy.typing as npt

from adapters.base import Capability, HostAdapter, HostTrack, HostUnavailableError
from sidecar.domain import Priority
from sidecar.errors import SidecarError
from sidecar.services.enqueue import enqueue_track_ids
from sidecar.services.runtime import Runtime
from sidecar.storage import analyses, status, sync_state, tracks
from sidecar.storage.db import transaction

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
    deep: bool = False  # every track checked in full (fingerprints ignored)
    seen: int = 0
    unchanged: int = 0  # tracks whose host fingerprint matched: not stat-ed, not compared, not written
    stated: int = 0  # files stat-ed on the mount
    written: int = 0  # rows inserted or updated
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


_FINGERPRINT_PERSON = b"sonantica-fp-v3"
"""Salt of :func:`host_fingerprint`; a new value (a change of what the hash covers or how) makes the next sync check
every track in full (v1 hashed a joined text with the mapped path; v2 hashes the facts' MessagePack encoding with
the path mapping instead, so that unchanged tracks need not be mapped; v3 adds the host's BPM, now stored)."""
_FACTS = msgspec.msgpack.Encoder()


def host_fingerprint(track: HostTrack, path_mapping: str) -> int:
    """A signed 64-bit BLAKE2b hash of what the host reports about ``track`` and of how its path maps: id, title,
    artist, album, album artist, genres, library, duration, host path, container, size, MusicBrainz id,
    created/changed time, the host's BPM (stored with the track) and the adapter's ``path_mapping`` (mount and
    prefixes: with the host path they decide the mapped path). Not the host's ReplayGain, which is only compared
    with ours. The facts are hashed in their MessagePack encoding, which keeps types and boundaries apart (``None``
    is not ``""``)."""
    facts = _FACTS.encode(
        (
            track.host_track_id,
            track.title,
            track.artist,
            track.album,
            track.album_artist,
            track.genres,
            track.library_id,
            track.duration_s,
            track.host_path,
            path_mapping,
            track.container,
            track.size_bytes,
            track.musicbrainz_track_id,
            track.changed_at,
            track.host_bpm,
        )
    )
    digest = hashlib.blake2b(facts, digest_size=8, person=_FINGERPRINT_PERSON).digest()
    return int.from_bytes(digest, "big", signed=True)


class _Fingerprints:
    """The host fingerprints stored by earlier syncs, as one sorted array (8 bytes each), for membership tests a
    page at a time."""

    def __init__(self, stored: Sequence[int]) -> None:
        self._sorted: npt.NDArray[np.int64] = np.sort(np.asarray(stored, dtype=np.int64))

    def contains(self, fingerprints: Sequence[int]) -> list[bool]:
        """Whether each of ``fingerprints`` is stored."""
        if not len(self._sorted) or not fingerprints:
            return [False] * len(fingerprints)
        wanted = np.asarray(fingerprints, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted, wanted), len(self._sorted) - 1)
        return [bool(hit) for hit in self._sorted[at] == wanted]


def _keep(examples: list[T], item: T) -> None:
    if len(examples) < EXAMPLES_KEPT:
        examples.append(item)


def track_upsert(
    host: str,
    track: HostTrack,
    *,
    path: str | None,
    stat: tuple[int, int] | None,
    fingerprint: int | None = None,
) -> tracks.TrackUpsert:
    """The row for ``track``: ``path`` is its readable file on the mount (``None``: none), ``stat`` its
    ``(size_bytes, mtime_ns)``, ``fingerprint`` its :func:`host_fingerprint` (``None``: check it in full next
    time)."""
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
        host_fingerprint=fingerprint,
        host_bpm=track.host_bpm,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Tolerances:
    bpm: float
    replaygain_db: float


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pass:
    """What every page of one listing needs."""

    runtime: Runtime
    adapter: HostAdapter
    host: str
    report: SyncReport
    tolerances: _Tolerances
    versions: Mapping[str, int]
    known: _Fingerprints | None  # None: a deep sync, every track checked in full
    progress: Callable[[int], None] | None


async def _save_page(run: _Pass, page: Sequence[HostTrack], fingerprints: Sequence[int | None]) -> list[int]:
    """Store one page of new or changed tracks in one transaction; return the ids of readable tracks with analyses
    to queue. A track whose file is readable is stored with its fingerprint, any other with none."""
    report = run.report
    stats = await asyncio.to_thread(lambda: [file_stat(track.local_path) for track in page])
    report.stated += sum(track.local_path is not None for track in page)
    to_queue: list[int] = []
    problems: list[PathProblem] = []
    upserts = []
    for track, file_facts, fingerprint in zip(page, stats, fingerprints, strict=True):
        path = track.local_path if file_facts is not None else None
        if path is None:
            problem = track.path_problem or (
                f"mapped file {track.local_path} is not a readable regular file on the mount: check"
                " SONANTICA_LIBRARY_DIR and SONANTICA_PATH_MAP"
            )
            problems.append(PathProblem(track.host_track_id, track.host_path, problem))
        kept = fingerprint if path is not None else None
        upserts.append(track_upsert(run.host, track, path=path, stat=file_facts, fingerprint=kept))
    async with transaction(run.runtime.pool) as conn:
        outcomes = await tracks.upsert_tracks(conn, upserts)
        known = [o.track_id for o in outcomes if not o.created and not o.file_changed]
        waiting = await status.waiting_for_queue(conn, known, run.versions) if known else set()
    compared = []
    for track, upsert, outcome in zip(page, upserts, outcomes, strict=True):
        report.created += outcome.created
        report.updated += outcome.file_changed
        report.written += outcome.written
        is_known = not outcome.created and not outcome.file_changed
        if upsert.path is not None and (not is_known or outcome.track_id in waiting):
            to_queue.append(outcome.track_id)
        if is_known:
            compared.append(track)
    await _compare(run, compared)
    report.unmappable += len(problems)
    for item in problems:
        _keep(report.path_problems, item)
    return to_queue


async def _compare(run: _Pass, known: Sequence[HostTrack]) -> None:
    """Count host BPM / ReplayGain values of known tracks that differ from our stored analysis by more than the
    tolerances (one query for the page)."""
    reported = [t for t in known if t.host_bpm is not None or t.host_replaygain_track_gain_db is not None]
    if not reported:
        return
    async with transaction(run.runtime.pool) as conn:
        ours = await analyses.bpm_and_gain(conn, run.host, [t.host_track_id for t in reported])
    report, tolerances = run.report, run.tolerances
    for track in reported:
        our_bpm, our_gain = ours.get(track.host_track_id, (None, None))
        if track.host_bpm is not None and our_bpm is not None and abs(track.host_bpm - our_bpm) > tolerances.bpm:
            report.bpm_disagreements += 1
            _keep(report.bpm_examples, Disagreement(track.host_track_id, track.title, track.host_bpm, our_bpm))
        gain = track.host_replaygain_track_gain_db
        if gain is not None and our_gain is not None and abs(gain - our_gain) > tolerances.replaygain_db:
            report.replaygain_disagreements += 1
            _keep(report.replaygain_examples, Disagreement(track.host_track_id, track.title, gain, our_gain))


LISTING_OVERLAP = timedelta(minutes=10)
"""How far before the start of the last complete listing an incremental sync asks from: covers a difference between
the sidecar's and the host's clocks, and tracks saved while that listing ran."""


async def scheduled_since(runtime: Runtime, adapter: HostAdapter) -> datetime | None:
    """The ``changed_since`` of the scheduler's next sync of ``adapter``'s host.

    ``None`` (a full listing, which also marks removed tracks missing) when the host cannot list changes
    (Navidrome), when it never had a complete full listing, or when its last one began
    ``settings.scheduler.full_sync_interval_s`` ago or more; otherwise the start of its last complete listing minus
    :data:`LISTING_OVERLAP` (Jellyfin: only items saved since then are listed).
    """
    if Capability.CHANGED_SINCE not in adapter.capabilities:
        return None
    async with transaction(runtime.pool) as conn:
        state = await sync_state.get_sync_state(conn, adapter.kind.value)
    full_interval = timedelta(seconds=runtime.settings.scheduler.full_sync_interval_s)
    if state.listed_at is None or state.full_listed_at is None or _now() - state.full_listed_at >= full_interval:
        return None
    return state.listed_at - LISTING_OVERLAP


def _now() -> datetime:
    return datetime.now(UTC)


def _continues(state: sync_state.SyncState, changed_since: datetime | None) -> bool:
    """Whether an incremental listing from ``changed_since`` leaves no gap after the last complete listing (a later
    ``--since`` would: what changed between the two was never listed)."""
    return state.listed_at is not None and changed_since is not None and changed_since <= state.listed_at


def _deep_sync_due(state: sync_state.SyncState, interval_s: float) -> bool:
    """Whether the last complete deep sync is older than ``interval_s`` seconds (or never ran)."""
    last = state.deep_synced_at
    return last is None or _now() - last >= timedelta(seconds=interval_s)


async def sync_library(
    runtime: Runtime,
    adapter: HostAdapter,
    versions: Mapping[str, int],
    *,
    changed_since: datetime | None = None,
    deep: bool | None = None,
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
    deep
        ``True``: check every listed track in full (stat its file, compare and write its row) even when its host
        fingerprint is unchanged; ``False``: skip unchanged tracks; ``None``: deep when the last complete deep
        sync of this host is older than ``settings.scheduler.deep_sync_interval_s`` (or there was none). A
        complete full deep sync is recorded as the host's last deep sync.
    page_size
        Tracks saved per transaction (and asked of the host per request).
    attempts
        Listings tried when the host is unavailable (the adapter already retries each request); the wait before
        attempt ``n + 1`` is ``retry_base_s * 2 ** (n - 1)`` seconds. Saved pages are idempotent, so a retry
        starts the listing again.
    bpm_tolerance, replaygain_tolerance_db
        Differences (BPM, dB) between the host's tags and our analysis above which a disagreement is reported.
    progress
        Called with the number of tracks just handled (saved or unchanged), after each page (for a progress bar).

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
    began_at = _now()
    async with transaction(runtime.pool) as conn:
        state = await sync_state.get_sync_state(conn, host)
    if deep is None:
        deep = _deep_sync_due(state, runtime.settings.scheduler.deep_sync_interval_s)
    known = None
    if not deep:
        async with transaction(runtime.pool) as conn:
            known = _Fingerprints(await tracks.host_fingerprints(conn, host))
    attempt = 1
    while True:
        report = SyncReport(host=host, full=changed_since is None, deep=deep, attempts=attempt)
        run = _Pass(
            runtime=runtime,
            adapter=adapter,
            host=host,
            report=report,
            tolerances=tolerances,
            versions=versions,
            known=known,
            progress=progress,
        )
        present: set[str] = set()
        try:
            await _list_and_save(run, adapter, present, changed_since, page_size)
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
    async with transaction(runtime.pool) as conn:
        if report.full:
            report.missing = await tracks.mark_missing(conn, host, present_host_track_ids=present)
            if deep:
                await sync_state.record_deep_sync(conn, host, _now())
        if report.full or _continues(state, changed_since):
            await sync_state.record_listing(conn, host, began_at, full=report.full)
    report.duration_s = time.monotonic() - started
    log.info(
        "%s %s sync: %d seen, %d unchanged, %d new, %d changed, %d missing, %d unmappable, %d queued",
        host,
        "deep" if deep else "quick",
        report.seen,
        report.unchanged,
        report.created,
        report.updated,
        report.missing,
        report.unmappable,
        report.queued,
    )
    return report


async def _list_and_save(
    run: _Pass, adapter: HostAdapter, present: set[str], changed_since: datetime | None, page_size: int
) -> None:
    """One pass over the host's listing: save it page by page, collecting the ids seen into ``present``. Tracks are
    listed unmapped; only new and changed ones are mapped onto the mount."""
    page: list[HostTrack] = []
    tracks = adapter.iter_tracks(changed_since=changed_since, page_size=page_size, mapped=False)
    async with contextlib.aclosing(tracks) as listing:
        async for track in listing:
            page.append(track)
            present.add(track.host_track_id)
            if len(page) >= page_size:
                await _finish_page(run, page)
                page = []
    await _finish_page(run, page)


async def _finish_page(run: _Pass, page: Sequence[HostTrack]) -> None:
    """Skip the page's unchanged tracks (unmapped: their fingerprint covers the host path and the path mapping),
    map and save the others, queue their analyses."""
    if not page:
        return
    report = run.report
    path_mapping = run.adapter.path_mapping
    fingerprints = [host_fingerprint(track, path_mapping) for track in page]
    unchanged = [False] * len(page) if run.known is None else run.known.contains(fingerprints)
    changed = [run.adapter.map_track(t) for t, same in zip(page, unchanged, strict=True) if not same]
    if len(changed) < len(page):
        report.unchanged += len(page) - len(changed)
        await _compare(run, [t for t, same in zip(page, unchanged, strict=True) if same])
    if changed:
        kept = [f for f, same in zip(fingerprints, unchanged, strict=True) if not same]
        to_queue = await _save_page(run, changed, kept)
        if to_queue:
            queued = await enqueue_track_ids(run.runtime, to_queue, run.versions, priority=Priority.SCAN)
            report.queued += sum(1 for item in queued if item.analyzers)
    report.seen += len(page)
    if run.progress is not None:
        run.progress(len(page))
