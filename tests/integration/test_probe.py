"""``python -m sidecar.probe``: the worker and scheduler liveness checks against a real Redis."""

from __future__ import annotations

import socket

import pytest

from sidecar.jobqueue import JobQueue, Keys, RedisClient, TokenLock, new_worker_id
from sidecar.probe import check, main
from sidecar.settings import Settings, get_settings


@pytest.fixture
def settings(redis_url: str, keys: Keys) -> Settings:
    return Settings(redis_url=redis_url, redis={"key_prefix": keys.prefix})


async def test_worker_is_live_while_its_lease_exists(redis: RedisClient, settings: Settings) -> None:
    queue = JobQueue.from_settings(redis, settings)
    worker_id = new_worker_id()  # "<hostname>:<pid>:<suffix>", as the worker registers itself
    assert (
        await check("worker", settings, socket.gethostname())
        == f"no worker lease for host {socket.gethostname()!r} in Redis"
    )
    await queue.heartbeat(worker_id)
    assert await check("worker", settings, socket.gethostname()) is None
    assert await check("worker", settings, "another-pod") is not None  # another host's lease does not count
    await queue.unregister_worker(worker_id)
    assert await check("worker", settings, socket.gethostname()) is not None


async def test_scheduler_is_live_while_the_lock_is_held(redis: RedisClient, keys: Keys, settings: Settings) -> None:
    assert "scheduler lock" in (await check("scheduler", settings, "pod") or "")
    lock = TokenLock(redis, keys.scheduler_lock, ttl_s=30)
    assert await lock.acquire()
    assert await check("scheduler", settings, "pod") is None
    await lock.release()
    assert await check("scheduler", settings, "pod") is not None


async def test_unreachable_redis_is_not_live(keys: Keys) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(redis_url=f"redis://127.0.0.1:{port}/0", redis={"key_prefix": keys.prefix})
    reason = await check("worker", settings, "pod")
    assert reason is not None
    assert reason.startswith("Redis cannot be asked")


def test_main_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gardener"]) == 2
    get_settings.cache_clear()  # no SONANTICA_REDIS_URL in this test's environment
    assert main(["scheduler"]) == 1
    assert "SONANTICA_REDIS_URL is unset" in capsys.readouterr().err
