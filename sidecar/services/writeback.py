"""Write analysis results back to the host as far as its API allows (Jellyfin: item tags; Navidrome: nothing).

The worker writes right after a track is analysed; ``sonantica host write-back`` (re)writes every analysed track,
which also catches writes missed while the host was down. Writes are idempotent: the adapter skips a track whose
host values are already current.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from adapters.base import Capability, HostAdapter, HostError, TrackTags, WriteBackOutcome
from sidecar.analyzers.tags import HOST_LABELS, host_labels
from sidecar.domain import TrackKey
from sidecar.services.runtime import Runtime
from sidecar.settings import TagsSettings
from sidecar.storage import analyses, tracks
from sidecar.storage.analyses import AnalysisSummary
from sidecar.storage.db import transaction

log = logging.getLogger(__name__)


@dataclass
class WriteBackReport:
    """Counts per outcome, and the tracks whose write failed with the reason."""

    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)


def tags_from_summary(summary: AnalysisSummary, config: TagsSettings) -> TrackTags:
    """The values offered to the host for one analysed track: BPM, key, loudness, and the ``config.max_tags``
    most probable mood/genre tags at or above ``config.min_probability`` as labels (``mood:chill``)."""
    return TrackTags(
        bpm=summary["bpm"],
        key=summary["key"],
        camelot=summary["camelot"],
        replaygain_track_gain_db=summary["replaygain_track_gain_db"],
        loudness_lufs=summary["loudness_lufs"],
        labels=host_labels(summary["tags"], min_probability=config.min_probability, max_tags=config.max_tags),
        label_vocabulary=HOST_LABELS,
    )


def writes_tags(adapter: HostAdapter | None) -> bool:
    """Whether ``adapter``'s host accepts tags at all (Navidrome's API does not)."""
    return adapter is not None and Capability.TAG_WRITE in adapter.capabilities


async def write_back_track(runtime: Runtime, adapter: HostAdapter, track: TrackKey) -> WriteBackOutcome | None:
    """Write one track's stored analysis to the host; ``None`` when the track is not this host's or not analysed.

    Host errors propagate (the caller logs them; the next write-back pass retries).
    """
    if track.host != adapter.kind.value:
        return None
    async with transaction(runtime.pool) as conn:
        record = await tracks.get_track_by_key(conn, track)
        summary = None if record is None else await analyses.get_analysis(conn, record.id)
    if summary is None or not summary["analyzer_versions"]:
        return None
    return await adapter.write_back(track.host_track_id, tags_from_summary(summary, runtime.settings.tags))


async def write_back_all(runtime: Runtime, adapter: HostAdapter, *, batch: int = 500) -> WriteBackReport:
    """Write every analysed track of the adapter's host (unchanged ones are skipped by the adapter)."""
    report = WriteBackReport()
    after_id = 0
    while True:
        async with transaction(runtime.pool) as conn:
            page = await tracks.list_tracks(conn, host=adapter.kind.value, after_id=after_id, limit=batch)
        if not page:
            return report
        after_id = page[-1].id
        for record in page:
            try:
                outcome = await write_back_track(runtime, adapter, record.key)
            except (HostError, ValueError) as exc:
                report.failures.append((record.host_track_id, str(exc)))
                log.warning("tags of %s not written: %s", record.host_track_id, exc)
                continue
            if outcome is not None:
                report.outcomes[outcome.value] = report.outcomes.get(outcome.value, 0) + 1
