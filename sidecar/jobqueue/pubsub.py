"""One Redis pub/sub connection on one or more channels, each with its own message decoder.

Pub/sub is fire-and-forget: a subscriber that was disconnected misses messages, so a client that reconnects
re-reads the status (API or database) instead of waiting for a message that may already have gone by.

A subscription's connection is closed however it ends, a failed subscribe included, and the close is shielded from
an anyio cancellation (a :class:`~sidecar.background.BackgroundTask` being stopped) so it is never cut half-way.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Generic, Self, TypeVar

import anyio
from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from sidecar.errors import InvalidJobError
from sidecar.jobqueue.connection import transient_redis_errors

log = logging.getLogger(__name__)

T = TypeVar("T")

CLOSE_WAIT_S = 5.0
"""The most closing a subscription may take (it drops the socket without waiting for the server: milliseconds)."""


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
        try:
            with transient_redis_errors():
                await self._pubsub.subscribe(*self.decoders)
                confirmed = 0
                while confirmed < len(self.decoders):  # every confirmation: nothing published later is missed
                    message = await self._pubsub.get_message(timeout=None)
                    if message is not None and message["type"] == "subscribe":
                        confirmed += 1
        except BaseException:  # a failed or cancelled subscribe holds a connection too: give it back
            await self._close()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        """Drop the connection and give it back to the pool, shielded and bounded by :data:`CLOSE_WAIT_S`."""
        with anyio.move_on_after(CLOSE_WAIT_S, shield=True) as bound:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py 8.1
        if bound.cancelled_caught:
            log.warning("closing a Redis subscription took over %.1f s; its connection may be left open", CLOSE_WAIT_S)

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
