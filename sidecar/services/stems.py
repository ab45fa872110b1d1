"""Stems on demand: ask for them (once per track, however many ask), serve them, delete them, evict them.

The separation itself runs in a worker (:mod:`sidecar.worker.stems`); this module is what the API, the CLI and the
scheduler share. Files live under ``settings.stems_root`` only; every path is checked to be inside it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path

from sidecar.errors import NotFoundError
from sidecar.jobqueue.stems import SeparateStems, StemsQueue
from sidecar.services.runtime import Runtime
from sidecar.stems import STEM_NAMES, SUFFIX
from sidecar.stems.files import StemsPathError, clear_partials, disk_usage, remove, stem_file
from sidecar.storage import stems, tracks
from sidecar.storage.db import transaction
from sidecar.storage.stems import StemsRecord

log = logging.getLogger(__name__)

PURPOSES = ("studio", "karaoke")
"""Why a user asks: "Studio Mode" (the four stems) or "Karaoke Ready" (the instrumental); both make every file."""

PARTIAL_MAX_AGE_S = 24 * 3600.0
"""Temporary folders older than this are leftovers of a crash; eviction removes them."""


def stems_queue(runtime: Runtime) -> StemsQueue:
    """The separation queue on the runtime's Redis."""
    return StemsQueue(runtime.redis, runtime.keys)


async def request_stems(runtime: Runtime, track_id: int, *, purpose: str = "studio") -> tuple[StemsRecord, bool]:
    """Ask for a track's stems: ``(row, True)`` when this call queued the separation; ``(row, False)`` when they
    exist or a separation is queued or running already. Raises :class:`NotFoundError` for an unknown track and
    ``ValueError`` for an unknown purpose.

    A ``ready`` row whose folder has disappeared (deleted by hand) is forgotten and separated again.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"purpose must be one of {', '.join(PURPOSES)}, not {purpose!r}")
    async with transaction(runtime.pool) as conn:
        track = await tracks.get_track(conn, track_id)
        if track is None or track.is_missing or track.path is None:
            raise NotFoundError(f"no track with id {track_id} and a readable file; sync the library first")
        current = await stems.get_stems(conn, track_id)
        if current is not None and current.is_separated and not _folder_ok(runtime, current):
            log.warning("stems of track %d are gone from %s; separating again", track_id, current.location)
            await stems.forget_stems(conn, track_id)
        row, queued = await stems.request_stems(conn, track_id, purpose=purpose)
    if queued:
        await stems_queue(runtime).enqueue(SeparateStems(track_id))
    return row, queued


async def requeue_lost(runtime: Runtime) -> int:
    """When the stems queue is empty everywhere (waiting, delayed, claimed) but PostgreSQL has separations
    ``queued`` or ``running``, Redis lost them: queue them again; returns how many. A duplicate this may create
    in a race with a request is harmless (the worker finds the stems ready, or takes the track's lock)."""
    queue = stems_queue(runtime)
    if any((await queue.depths()).values()):
        return 0
    async with transaction(runtime.pool) as conn:
        lost = await stems.list_stems(conn, states=("queued", "running"))
    for row in lost:
        await queue.enqueue(SeparateStems(row.track_id))
    if lost:
        log.warning("re-queued %d separations Redis had lost", len(lost))
    return len(lost)


def _folder_ok(runtime: Runtime, row: StemsRecord) -> bool:
    if row.location is None or row.format is None:
        return row.location is not None and Path(row.location).is_dir()
    try:
        return all(
            stem_file(runtime.settings.stems_root, row.location, name, SUFFIX[row.format]).is_file()
            for name in STEM_NAMES
        )
    except StemsPathError:
        return False


async def get_status(runtime: Runtime, track_id: int) -> StemsRecord | None:
    """The track's stems row (``None``: never asked for). Raises :class:`NotFoundError` for an unknown track."""
    async with transaction(runtime.pool) as conn:
        if await tracks.get_track(conn, track_id) is None:
            raise NotFoundError(f"no track with id {track_id}")
        return await stems.get_stems(conn, track_id)


async def open_stem(runtime: Runtime, track_id: int, stem: str) -> Path:
    """The file of one stem, recording a use (last-used time). Raises :class:`NotFoundError` when the track has
    no stems (or not that one) and :class:`StemsPathError` when the recorded location is outside the stems folder."""
    async with transaction(runtime.pool) as conn:
        row = await stems.get_stems(conn, track_id)
        if row is None or not row.is_separated or row.location is None:
            raise NotFoundError(f"track {track_id} has no stems; POST /api/tracks/{track_id}/stems asks for them")
        path = stem_file(runtime.settings.stems_root, row.location, stem, SUFFIX[row.format or "flac"])
        if not path.is_file():
            raise NotFoundError(f"stem {stem!r} of track {track_id} is missing on disk; ask for the stems again")
        await stems.touch_stems(conn, track_id)
    return path


async def delete_stems(runtime: Runtime, track_id: int) -> int:
    """Delete a track's stems (files and flag); returns the bytes freed (0 when it had none)."""
    async with transaction(runtime.pool) as conn:
        row = await stems.get_stems(conn, track_id)
        if row is None:
            return 0
        freed = 0
        if row.location is not None:
            freed = remove(runtime.settings.stems_root, Path(row.location))
        await stems.forget_stems(conn, track_id)
    return freed


@dataclass
class EvictionReport:
    """What one eviction run deleted."""

    expired: list[int] = field(default_factory=list)  # track ids unused for longer than the TTL
    over_quota: list[int] = field(default_factory=list)  # least recently used, deleted to fit the quota
    refused: list[int] = field(default_factory=list)  # recorded outside the stems folder: flag cleared, nothing deleted
    freed_bytes: int = 0


async def _evict_one(runtime: Runtime, row: StemsRecord, report: EvictionReport) -> int:
    """Delete one track's stems; returns the recorded size it had."""
    async with transaction(runtime.pool) as conn:
        if row.location is not None:
            try:
                report.freed_bytes += remove(runtime.settings.stems_root, Path(row.location))
            except StemsPathError as exc:
                log.error("not deleting stems of track %d: %s", row.track_id, exc)
                report.refused.append(row.track_id)
        await stems.forget_stems(conn, row.track_id)
    return row.size_bytes or 0


async def evict_stems(runtime: Runtime, *, now: dt.datetime | None = None) -> EvictionReport:
    """Delete stems unused for ``stems.ttl_days`` (as of ``now``, default the database's clock), then the least
    recently used ones while the total exceeds ``stems.max_bytes``; both clear ``is_separated``."""
    config = runtime.settings.stems
    report = EvictionReport()
    async with transaction(runtime.pool) as conn:
        expired = await stems.list_unused_stems(conn, unused_days=config.ttl_days, now=now)
    for row in expired:
        await _evict_one(runtime, row, report)
        report.expired.append(row.track_id)
    if config.max_bytes is not None:
        async with transaction(runtime.pool) as conn:
            remaining = await stems.list_separated_lru(conn)
        total = sum(row.size_bytes or 0 for row in remaining)
        for row in remaining:
            if total <= config.max_bytes:
                break
            total -= await _evict_one(runtime, row, report)
            report.over_quota.append(row.track_id)
    clear_partials(runtime.settings.stems_root, older_than_s=PARTIAL_MAX_AGE_S)
    if report.expired or report.over_quota:
        log.info(
            "evicted stems of %d unused and %d over-quota tracks (%d bytes)",
            len(report.expired),
            len(report.over_quota),
            report.freed_bytes,
        )
    return report


async def stems_summary(runtime: Runtime) -> dict[str, int]:
    """``separated`` tracks, ``recorded_bytes`` (database) and ``disk_bytes`` (the folder, measured), plus the
    separation queue's depths."""
    async with transaction(runtime.pool) as conn:
        count, recorded = await stems.stems_totals(conn)
    return {
        "separated": count,
        "recorded_bytes": recorded,
        "disk_bytes": await asyncio.to_thread(disk_usage, runtime.settings.stems_root),
        **await stems_queue(runtime).depths(),
    }
