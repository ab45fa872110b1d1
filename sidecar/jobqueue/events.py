"""``AnalysisReady`` notifications on pub/sub: one channel per track and one channel for every track.

Pub/sub is fire-and-forget: a subscriber that was disconnected misses messages, so a client that reconnects
re-reads the status (API or database) instead of waiting for a message that may already have gone by.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from types import TracebackType
from typing import Self

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from sidecar.domain import TrackKey
from sidecar.errors import InvalidJobError
from sidecar.jobqueue.connection import transient_redis_errors, translate_errors
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.messages import AnalysisReady, decode_analysis_ready, encode_analysis_ready

log = logging.getLogger(__name__)


class EventBus:
    """Publish and subscribe to ``AnalysisReady`` messages."""

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
        return AnalysisReadySubscription(self.redis, channel)


class AnalysisReadySubscription:
    """An open subscription to one channel: an async iterator of :class:`AnalysisReady` messages.

    Unreadable payloads are logged and skipped. A lost connection raises ``QueueUnavailableError``.
    """

    def __init__(self, redis: Redis, channel: str) -> None:
        self.channel = channel
        self._pubsub: PubSub = redis.pubsub()

    async def __aenter__(self) -> Self:
        with transient_redis_errors():
            await self._pubsub.subscribe(self.channel)
            while True:  # wait for the server's confirmation, so nothing published afterwards is missed
                message = await self._pubsub.get_message(timeout=None)
                if message is not None and message["type"] == "subscribe":
                    return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py 8.1

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> AnalysisReady:
        while True:
            with transient_redis_errors():
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            event = self._decode(message)
            if event is not None:
                return event

    async def get(self, *, timeout_s: float) -> AnalysisReady | None:
        """The next message, or ``None`` when none arrives within ``timeout_s`` seconds."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self.__anext__()
        except TimeoutError:
            return None

    def _decode(self, message: dict[str, str] | None) -> AnalysisReady | None:
        if message is None or message.get("type") != "message":
            return None
        try:
            return decode_analysis_ready(message["data"])
        except InvalidJobError as exc:
            log.warning("skipping unreadable message on %s: %s", self.channel, exc)
            return None
