"""The API's events hub stops, and gives its Redis connection back, wherever its shutdown lands (a real Redis).

A stop that lands while the hub is still opening its subscription used to be lost on Python 3.11: redis-py bounds
every socket write with ``asyncio.wait_for``, which swallows a cancellation that arrives just as the write
completes (CPython gh-86296). The hub then subscribed and read on, and the API's shutdown waited for it forever.
"""

from __future__ import annotations

import asyncio

from sidecar.api.app import create_app
from sidecar.api.events_hub import EventsHub
from sidecar.jobqueue import EventBus, Keys, RedisClient
from sidecar.jobqueue.stems import StemsKeys
from sidecar.settings import get_settings

LOOP_STEPS = 40
"""The hub is stopped after 0, 1, ... ``LOOP_STEPS - 1`` event-loop steps: before, during and after the connection
handshake and the subscription (the old code hung in 23 to 28 of 80, docs/benchmarks/reliability.md)."""
APP_STARTS = 20
"""API lifespans started and stopped (the old code hung in 11 to 17 of 40)."""
STOP_BOUND_S = 20.0
"""Far above what a stop costs (milliseconds): only a hub that ignores being stopped reaches it."""


async def _subscribers(redis: RedisClient, keys: Keys) -> int:
    """How many connections the server has subscribed to the hub's channels, once none is or after
    ``STOP_BOUND_S`` (the server may read a closed connection's end after our question)."""
    channels = [keys.analysis_ready_all_channel, StemsKeys.of(keys).ready_all_channel]
    deadline_s = asyncio.get_running_loop().time() + STOP_BOUND_S
    while True:
        count = sum(int(n) for _, n in await redis.pubsub_numsub(*channels))
        if count == 0 or asyncio.get_running_loop().time() > deadline_s:
            return count
        await asyncio.sleep(0.01)


async def test_the_hub_stops_and_unsubscribes_wherever_its_shutdown_lands(redis: RedisClient, keys: Keys) -> None:
    for steps in range(LOOP_STEPS):
        hub = EventsHub(EventBus(redis, keys), max_clients=1, queue_size=1)
        await hub.__aenter__()
        for _ in range(steps):
            await asyncio.sleep(0)
        stopping = asyncio.ensure_future(hub.__aexit__(None, None, None))
        done, _ = await asyncio.wait({stopping}, timeout=STOP_BOUND_S)
        assert done, f"the hub ignored its stop {steps} loop steps after it started"
        await stopping
        assert await _subscribers(redis, keys) == 0, f"a subscription outlived the hub (stopped after {steps} steps)"


async def test_a_stopped_hub_ends_the_streams_of_its_clients(redis: RedisClient, keys: Keys) -> None:
    hub = EventsHub(EventBus(redis, keys), max_clients=2, queue_size=1)
    async with hub:
        await asyncio.wait_for(hub.subscribed.wait(), STOP_BOUND_S)
        client = hub.register(None)
        assert client is not None
    assert client.closed.is_set()
    assert client.reason == "the server is stopping"
    assert client.queue.get_nowait() is None
    assert await _subscribers(redis, keys) == 0


async def test_the_api_shuts_down_wherever_the_shutdown_lands(service_env: dict[str, str], redis: RedisClient) -> None:
    app = create_app(get_settings())
    keys = Keys.from_settings(get_settings())
    for start in range(APP_STARTS):
        lifespan = app.router.lifespan_context(app)
        await lifespan.__aenter__()
        for _ in range(start):
            await asyncio.sleep(0)
        stopping = asyncio.ensure_future(lifespan.__aexit__(None, None, None))
        done, _ = await asyncio.wait({stopping}, timeout=STOP_BOUND_S)
        assert done, f"the API's shutdown hung ({start} loop steps after its start-up)"
        await stopping
        assert await _subscribers(redis, keys) == 0
