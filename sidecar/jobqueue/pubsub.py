"""One Redis pub/sub connection on one or more channels, each with its own message decoder.

Pub/sub is fire-and-forget: a subscriber that was disconnected misses messages, so a client that reconnects
re-reads the status (API or database) instead of waiting for a message that may already have gone by.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Generic, Self, TypeVar

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from sidecar.errors import InvalidJobError
from sidecar.jobqueue.connection import transient_redis_errors

log = logging.getLogger(__name__)

T = TypeVar("T")


class Subscription(Generic[T]):
    """An open subscription: an async iterator of decoded messages from every channel in ``decoders``.

    Use it as ``async with Subscription(redis, {channel: decode}) as sub: async for event in sub: ...``; every
    channel is confirmed by Redis when ``__aenter__`` returns, so a message published afterwards is received.
    A payload its decoder refuses (``InvalidJobError``) is logged and skipped; a lost connection raises
    ``QueueUnavailableError``.
    """

    def __init__(self, redis: Redis, decoders: Mapping[str, Callable[[str], T]]) -> None:
        if not decoders:
            raise ValueError("a subscription needs at least one channel")
        self.decoders = dict(decoders)
        self._pubsub: PubSub = redis.pubsub()

    async def __aenter__(self) -> Self:
        with transient_redis_errors():
            await self._pubsub.subscribe(*self.decoders)
            confirmed = 0
            while confirmed < len(self.decoders):  # wait for every confirmation: nothing published later is missed
                message = await self._pubsub.get_message(timeout=None)
                if message is not None and message["type"] == "subscribe":
                    confirmed += 1
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py 8.1

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> T:
        while True:
            with transient_redis_errors():
                message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            event = self._decode(message)
            if event is not None:
                return event

    async def get(self, *, timeout_s: float) -> T | None:
        """The next message, or ``None`` when none arrives within ``timeout_s`` seconds."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self.__anext__()
        except TimeoutError:
            return None

    def _decode(self, message: dict[str, str] | None) -> T | None:
        if message is None or message.get("type") != "message":
            return None
        channel = message["channel"]
        decode = self.decoders.get(channel)
        if decode is None:
            return None
        try:
            return decode(message["data"])
        except InvalidJobError as exc:
            log.warning("skipping unreadable message on %s: %s", channel, exc)
            return None
