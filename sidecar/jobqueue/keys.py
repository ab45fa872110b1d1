"""Every Redis key and pub/sub channel the sidecar uses, built from one configurable prefix.

Nothing else in the code base spells a key. The design assumes a single Redis node (not Redis Cluster): the Lua
scripts touch several of these keys at once.
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.domain import Priority, TrackKey
from sidecar.settings import Settings


@dataclass(frozen=True, slots=True)
class Keys:
    """Key and channel names under ``prefix`` (``settings.redis.key_prefix``, default ``"sonantica:"``).

    Two deployments (or two tests) with different prefixes never see each other's keys on one Redis.
    """

    prefix: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Keys:
        """Keys under ``settings.redis.key_prefix``."""
        return cls(settings.redis.key_prefix)

    def queue(self, priority: Priority) -> str:
        """The list of waiting jobs of one priority (producers push left, workers take from the right)."""
        return f"{self.prefix}queue:{priority.value}"

    @property
    def delayed(self) -> str:
        """Sorted set of jobs waiting for a retry; score = due time in epoch seconds."""
        return f"{self.prefix}queue:delayed"

    @property
    def failed(self) -> str:
        """List of failed or unreadable queue entries with their reason (newest first, capped)."""
        return f"{self.prefix}queue:failed"

    @property
    def epoch(self) -> str:
        """Written after a rebuild; its absence means Redis lost its data (or never had any)."""
        return f"{self.prefix}queue:epoch"

    def processing(self, worker_id: str) -> str:
        """The jobs ``worker_id`` has claimed and not yet acknowledged."""
        return f"{self.prefix}processing:{worker_id}"

    @property
    def workers(self) -> str:
        """Set of registered worker ids."""
        return f"{self.prefix}workers"

    def lease(self, worker_id: str) -> str:
        """Liveness of ``worker_id``: a string with an expiry refreshed by its heartbeat."""
        return f"{self.prefix}lease:{worker_id}"

    def track_lock(self, track: TrackKey) -> str:
        """At most one analysis of ``track`` at a time (the mission's ``lock:analyze:<id>``)."""
        return f"{self.prefix}lock:analyze:{track.host}:{track.host_track_id}"

    def on_play_waiting(self, track: TrackKey) -> str:
        """Set (``SET NX``) while an on-play job of ``track`` waits, so repeated plays push one job."""
        return f"{self.prefix}lock:on-play:{track.host}:{track.host_track_id}"

    @property
    def rebuild_lock(self) -> str:
        """Held by the one worker refilling the queues after a data loss."""
        return f"{self.prefix}lock:rebuild"

    @property
    def scheduler_lock(self) -> str:
        """Held by the one active ``sonantica scheduler``."""
        return f"{self.prefix}lock:scheduler"

    def result(self, track: TrackKey) -> str:
        """Cached analysis summary of ``track`` (JSON with analyzer versions)."""
        return f"{self.prefix}result:{track.host}:{track.host_track_id}"

    def analysis_ready_channel(self, track: TrackKey) -> str:
        """Pub/sub channel for one track's ``AnalysisReady`` messages (the mission's ``AnalysisReady:<id>``)."""
        return f"{self.prefix}AnalysisReady:{track.host}:{track.host_track_id}"

    @property
    def analysis_ready_all_channel(self) -> str:
        """Pub/sub channel carrying every track's ``AnalysisReady`` message."""
        return f"{self.prefix}analysis-ready"
