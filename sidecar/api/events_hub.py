"""One Redis subscription for every ``/api/events`` client: :class:`EventsHub` reads the all-tracks
``AnalysisReady`` and ``StemsReady`` channels once and fans each message out to bounded per-client queues.

A client costs an ``asyncio.Queue``, not a Redis connection, so open streams can no longer exhaust the Redis
pool the rest of the API needs. Clients are capped (``api.sse_max_clients``): one more is answered 503 with
``Retry-After``. A client that falls ``api.sse_client_queue`` events behind is dropped (its stream ends; it
reconnects and re-reads the analysis it waits for). When the subscription is lost every stream ends the same
way and the hub subscribes again with back-off. The reader is a :class:`~sidecar.background.BackgroundTask`: the
API's shutdown stops it, and so closes the subscription's connection, within ``STOP_WAIT_S`` even when the stop
lands in a Redis write (where a plain ``task.cancel()`` can be lost on Python 3.11).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Self

import anyio
from starlette.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from sidecar.background import BackgroundTask
from sidecar.domain import TrackKey
from sidecar.errors import QueueUnavailableError
from sidecar.jobqueue import AnalysisReady, EventBus, HubEvent

log = logging.getLogger(__name__)

KEEPALIVE_S = 15.0
"""A comment line is sent after this many seconds without an event (keeps proxies from closing the stream)."""
SUBSCRIBE_WAIT_S = 5.0
"""How long a new client waits for the hub's subscription (after a Redis outage) before a 503."""
RESUBSCRIBE_MAX_S = 30.0
CUT_GRACE_S = 1.0
"""A dropped client's stream ends on its own; one still blocked on a stalled reader after this long is cut."""
STOP_WAIT_S = 10.0
"""The most the hub's stop waits for its reader (which takes milliseconds; closing the subscription is bounded by
:data:`~sidecar.jobqueue.pubsub.CLOSE_WAIT_S`), so a shutdown ends within a container's grace period."""


class EventClient:
    """One open stream: its filter (``None``: every track's analyses; stems are announced to every stream), its
    queue, and whether the hub dropped it."""

    def __init__(self, track: TrackKey | None, queue_size: int) -> None:
        self.track = track
        self.queue: asyncio.Queue[HubEvent | None] = asyncio.Queue(queue_size + 1)  # + the end marker
        self.queue_size = queue_size
        self.closed = asyncio.Event()
        self.reason = ""

    def wants(self, event: HubEvent) -> bool:
        """Whether this stream carries ``event``: every ``StemsReady`` (stems are named by the sidecar's track id),
        the ``AnalysisReady`` of the followed track (every track's when none is followed)."""
        if self.closed.is_set():
            return False
        if not isinstance(event, AnalysisReady) or self.track is None:
            return True
        return self.track == TrackKey(event.host, event.host_track_id)

    def offer(self, event: HubEvent) -> bool:
        """Queue ``event``; ``False`` when ``queue_size`` events already wait."""
        if self.queue.qsize() >= self.queue_size:
            return False
        self.queue.put_nowait(event)
        return True

    def close(self, reason: str) -> None:
        """End this client's stream: what it has not read is discarded, the stream ends (the client reconnects)."""
        if self.closed.is_set():
            return
        self.reason = reason
        self.closed.set()
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(None)


class EventsHub:
    """The shared subscription and its clients. Use as ``async with EventsHub(...) as hub`` (starts the reader)."""

    def __init__(self, events: EventBus, *, max_clients: int, queue_size: int) -> None:
        self.events = events
        self.max_clients = max_clients
        self.queue_size = queue_size
        self.clients: set[EventClient] = set()
        self.subscribed = asyncio.Event()
        self.dropped_total = 0
        self._reader: BackgroundTask | None = None

    async def __aenter__(self) -> Self:
        self._reader = BackgroundTask(self._run, name="sse-hub")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop the reader first (its subscription is closed as it ends), then end every client's stream."""
        if self._reader is not None:
            await self._reader.stop(wait_s=STOP_WAIT_S)
        self.subscribed.clear()
        self._close_all("the server is stopping")

    def register(self, track: TrackKey | None) -> EventClient | None:
        """A new client following ``track`` (``None``: all), or ``None`` when the cap is reached."""
        if len(self.clients) >= self.max_clients:
            return None
        client = EventClient(track, self.queue_size)
        self.clients.add(client)
        return client

    def unregister(self, client: EventClient) -> None:
        """Forget a client whose stream ended (idempotent)."""
        self.clients.discard(client)

    def deliver(self, event: HubEvent) -> None:
        """Hand ``event`` to every client that wants it; drop the clients whose queue is full."""
        for client in list(self.clients):
            if not client.wants(event):
                continue
            if not client.offer(event):
                self.dropped_total += 1
                self.clients.discard(client)
                client.close(f"more than {self.queue_size} events behind")

    async def _run(self) -> None:
        wait_s = 0.5
        while True:
            try:
                async with self.events.subscribe_everything() as subscription:
                    self.subscribed.set()
                    wait_s = 0.5
                    log.info("events hub: subscribed to AnalysisReady and StemsReady")
                    async for event in subscription:
                        self.deliver(event)
            except QueueUnavailableError as exc:
                log.warning("events hub: subscription lost (%s); retrying in %.1f s", exc, wait_s)
            self.subscribed.clear()
            self._close_all("the event subscription was lost")  # they may have missed events: make them re-read
            await asyncio.sleep(wait_s)
            wait_s = min(wait_s * 2, RESUBSCRIBE_MAX_S)

    def _close_all(self, reason: str) -> None:
        for client in list(self.clients):
            client.close(reason)
        self.clients.clear()


def _event_text(event: HubEvent) -> str:
    if isinstance(event, AnalysisReady):
        data = {"host": event.host, "host_track_id": event.host_track_id, "analyzers": list(event.analyzers)}
        return f"event: AnalysisReady\ndata: {json.dumps(data)}\n\n"
    return f"event: StemsReady\ndata: {event.encode()}\n\n"


class EventStreamResponse(StreamingResponse):
    """``text/event-stream`` of one hub client. The client is registered when the response starts (503 with
    ``Retry-After`` when the cap is reached or the hub is not subscribed) and unregistered when it ends, however
    it ends; a client the hub drops has its stream cut even while a send is blocked on a stalled reader."""

    def __init__(self, hub: EventsHub, track: TrackKey | None, *, retry_after_s: int) -> None:
        super().__init__(
            (), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        )  # the body iterator is made when the response starts
        self.hub = hub
        self.track = track
        self.retry_after_s = retry_after_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = await self._register()
        if client is None:
            busy = JSONResponse(
                {"detail": "too many open event streams, or the event subscription is down; retry later"},
                status_code=503,
                headers={"Retry-After": str(self.retry_after_s)},
            )
            await busy(scope, receive, send)
            return
        self.body_iterator = self._events(client)
        try:
            async with anyio.create_task_group() as group:

                async def cut_when_dropped() -> None:
                    await client.closed.wait()
                    await asyncio.sleep(CUT_GRACE_S)
                    log.info("event stream cut: %s", client.reason)
                    group.cancel_scope.cancel()

                group.start_soon(cut_when_dropped)
                await super().__call__(scope, receive, send)
                group.cancel_scope.cancel()
        finally:
            self.hub.unregister(client)

    async def _register(self) -> EventClient | None:
        if not self.hub.subscribed.is_set():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(SUBSCRIBE_WAIT_S):
                    await self.hub.subscribed.wait()
            if not self.hub.subscribed.is_set():
                return None
        return self.hub.register(self.track)

    @staticmethod
    async def _events(client: EventClient) -> AsyncIterator[str]:
        yield ": subscribed\n\n"  # the hub's subscription is live: nothing published from now on is missed
        while True:
            try:
                async with asyncio.timeout(KEEPALIVE_S):
                    event = await client.queue.get()
            except TimeoutError:
                yield ": keep-alive\n\n"
                continue
            if event is None:  # dropped by the hub
                return
            yield _event_text(event)
