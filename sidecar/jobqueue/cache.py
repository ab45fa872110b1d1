"""The result cache: a track's analysis summary under ``result:{host}:{host_track_id}`` (JSON, ``SET EX``).

The seed's cache-hit path: BPM, key and loudness answered without touching PostgreSQL. Entries carry the
analyzer versions that computed them, so an entry older than the current analyzers reads as a miss. The cache is
derived state: losing it costs one database read per track.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from redis.asyncio import Redis

from sidecar.domain import TrackKey
from sidecar.errors import InvalidJobError
from sidecar.jobqueue.connection import as_optional_text, translate_errors
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.messages import CachedAnalysis, decode_cached_analysis, encode_cached_analysis

log = logging.getLogger(__name__)


class ResultCache:
    """Read and write cached analysis summaries; entries expire after ``ttl_s`` seconds."""

    def __init__(self, redis: Redis, keys: Keys, *, ttl_s: float) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s must be positive, got {ttl_s}")
        self.redis = redis
        self.keys = keys
        self.ttl_s = ttl_s

    @translate_errors
    async def set(self, entry: CachedAnalysis) -> None:
        """Store ``entry`` for its track, replacing any previous one and restarting the expiry."""
        await self.redis.set(
            self.keys.result(entry.track), encode_cached_analysis(entry), px=max(1, round(self.ttl_s * 1000))
        )

    @translate_errors
    async def get(self, track: TrackKey, *, required_versions: Mapping[str, int]) -> CachedAnalysis | None:
        """The cached summary of ``track`` if it is current, else ``None`` (a miss).

        Parameters
        ----------
        required_versions
            Analyzer name -> the version the caller needs. An entry lacking one of them, or holding an older
            version, is a miss (it is left in place; the next analysis overwrites it). An empty mapping accepts
            any entry. An unreadable entry (written by an incompatible version) is deleted and is a miss.
        """
        raw = as_optional_text(await self.redis.get(self.keys.result(track)))
        if raw is None:
            return None
        try:
            entry = decode_cached_analysis(raw)
        except InvalidJobError as exc:
            log.warning("dropping unreadable cache entry for %s: %s", track, exc)
            await self.redis.delete(self.keys.result(track))
            return None
        if entry.track != track or not entry.is_current(required_versions):
            return None
        return entry

    @translate_errors
    async def invalidate(self, track: TrackKey) -> bool:
        """Delete the entry of ``track`` (e.g. its file changed); ``True`` when there was one."""
        return bool(await self.redis.delete(self.keys.result(track)))
