"""``AnalysisReady`` notifications on pub/sub: one channel per track and one channel for every track.

Pub/sub is fire-and-forget (see :mod:`sidecar.jobqueue.pubsub`): a client that reconnects re-reads the status.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from redis.asyncio import Redis

from sidecar.domain import TrackKey
from sidecar.jobqueue.connection import translate_errors
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.messages import AnalysisReady, decode_analysis_ready, encode_analysis_ready
from sidecar.jobqueue.pubsub import Subscription
from sidecar.jobqueue.stems import StemsKeys, StemsReady

AnalysisReadySubscription = Subscription[AnalysisReady]
"""Subscription to one track's, or every track's, ``AnalysisReady`` messages."""

HubEvent = AnalysisReady | StemsReady
"""What the API's event stream carries: analyses committed and stems made, for every track."""


class EventBus:
    """Publish and subscribe to ``AnalysisReady`` messages (and, for the API's hub, ``StemsReady`` too)."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys

    @translate_errors
    async def publish(self, track: TrackKey, analyzers: Iterable[str]) -> int:
        """Announce that ``analyzers`` just committed results for ``track``, on its channel and on the all-tracks one.

        Returns the number of subscribers reached (both channels together; 0 is normal when nobody listens).
        """
        payload = encode_analysis_ready(
            AnalysisReady(host=track.host, host_track_id=track.host_track_id, analyzers=tuple(analyzers))
        )
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.publish(self.keys.analysis_ready_channel(track), payload)
            pipe.publish(self.keys.analysis_ready_all_channel, payload)
            receivers = await pipe.execute()
        return sum(int(n) for n in receivers)

    def subscribe(self, track: TrackKey | None = None) -> AnalysisReadySubscription:
        """A subscription to one track's messages, or to every track's when ``track`` is ``None``.

        Use it as ``async with events.subscribe(track) as sub: async for ready in sub: ...``; the subscription is
        confirmed by Redis when ``__aenter__`` returns, so a message published afterwards is received.
        """
        channel = self.keys.analysis_ready_all_channel if track is None else self.keys.analysis_ready_channel(track)
        return Subscription(self.redis, {channel: decode_analysis_ready})

    def subscribe_everything(self) -> Subscription[HubEvent]:
        """One subscription to every track's ``AnalysisReady`` and ``StemsReady`` messages (the API's hub)."""
        decoders: dict[str, Callable[[str], HubEvent]] = {
            self.keys.analysis_ready_all_channel: decode_analysis_ready,
            StemsKeys.of(self.keys).ready_all_channel: StemsReady.decode,
        }
        return Subscription(self.redis, decoders)
