"""The Redis job queue against a real Redis (§H.6): priority, locks, at-least-once delivery, retries, rebuild.

Each test works under its own key prefix and deletes its keys afterwards, so tests never see each other's data.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sidecar.domain import Priority, TrackKey
from sidecar.errors import QueueUnavailableError
from sidecar.jobqueue.connection import RedisClient, as_text, connect
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.locks import TokenLock, TrackLock
from sidecar.jobqueue.messages import AnalyzeTrack, decode_job, encode_job
from sidecar.jobqueue.queue import JobQueue
from sidecar.jobqueue.rebuild import get_epoch, rebuild_queues, set_epoch
from sidecar.settings import Settings
from tests.integration.redis_server import RestartableRedis

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
REPO_ROOT = Path(__file__).resolve().parents[2]


class ManualClock:
    """A clock the test advances by hand (epoch seconds)."""

    def __init__(self, start_s: float = 1_800_000_000.0) -> None:
        self.now_s = start_s

    def __call__(self) -> float:
        return self.now_s


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def queue(redis: RedisClient, keys: Keys, clock: ManualClock) -> JobQueue:
    return JobQueue(redis, keys, lease_s=30.0, clock=clock)


def analyze(track_id: str, priority: Priority = Priority.SCAN) -> AnalyzeTrack:
    return AnalyzeTrack(
        host="navidrome", host_track_id=track_id, priority=priority, analyzers=("tempo", "key"), enqueued_at=NOW
    )


async def wait_until_gone(redis: RedisClient, key: str, *, limit_s: float = 5.0) -> None:
    async with asyncio.timeout(limit_s):
        while True:
            if not await redis.exists(key):
                return
            await asyncio.sleep(0.02)


async def test_claim_takes_on_play_before_500_scan_jobs(queue: JobQueue) -> None:
    await queue.enqueue_many(analyze(f"scan-{i}") for i in range(500))
    await queue.enqueue(analyze("played", Priority.ON_PLAY))

    first = await queue.claim("w1")
    second = await queue.claim("w1")

    assert first is not None
    assert first.job == analyze("played", Priority.ON_PLAY)
    assert second is not None
    assert second.job == analyze("scan-0")  # scan keeps FIFO order behind it


async def test_claim_respects_queue_selection(queue: JobQueue) -> None:
    await queue.enqueue(analyze("scan-only"))

    on_play_only = await queue.claim("w1", queues=(Priority.ON_PLAY,))
    any_queue = await queue.claim("w1")

    assert on_play_only is None
    assert any_queue is not None
    assert any_queue.job.id == "analyze:navidrome:scan-only"


async def test_claim_blocking_wakes_for_a_new_on_play_job(queue: JobQueue) -> None:
    waiting = asyncio.create_task(queue.claim("w1", block_s=3.0))
    await asyncio.sleep(0.1)
    await queue.enqueue(analyze("now-playing", Priority.ON_PLAY))

    claimed = await waiting

    assert claimed is not None
    assert claimed.job.id == "analyze:navidrome:now-playing"


async def test_claim_blocking_notices_a_scan_job_after_the_wait(queue: JobQueue) -> None:
    waiting = asyncio.create_task(queue.claim("w1", block_s=0.3))
    await asyncio.sleep(0.05)
    await queue.enqueue(analyze("late-scan"))

    claimed = await waiting

    assert claimed is not None
    assert claimed.job.id == "analyze:navidrome:late-scan"


async def test_claim_nothing_waiting_returns_none_without_blocking(queue: JobQueue) -> None:
    assert await queue.claim("w1") is None


async def test_claim_moves_job_into_processing_until_ack(queue: JobQueue) -> None:
    await queue.enqueue(analyze("t1"))

    claimed = await queue.claim("w1")
    assert claimed is not None
    held = await queue.processing("w1")
    acked = await queue.ack("w1", claimed)
    acked_again = await queue.ack("w1", claimed)

    assert held == [claimed.raw]
    assert acked is True
    assert acked_again is False
    assert await queue.processing("w1") == []


async def test_claim_unreadable_entry_goes_to_failed_list(queue: JobQueue, redis: RedisClient, keys: Keys) -> None:
    await redis.lpush(keys.queue(Priority.SCAN), '{"type":"mystery"}')
    await queue.enqueue(analyze("good"))

    claimed = await queue.claim("w1")
    failed = await queue.failed_entries()

    assert claimed is not None
    assert claimed.job.id == "analyze:navidrome:good"
    assert [entry.raw for entry in failed] == ['{"type":"mystery"}']
    assert "mystery" in failed[0].reason
    assert failed[0].job is None
    assert await queue.processing("w1") == [claimed.raw]


async def test_concurrent_enqueues_and_claimers_analyse_a_track_once(
    queue: JobQueue, redis: RedisClient, keys: Keys
) -> None:
    """20 producers push the same track; 4 claimers race; the lock plus a status check let one analysis happen."""
    track = TrackKey("navidrome", "dup")
    done: set[TrackKey] = set()  # stands in for the PostgreSQL status rows the real worker reads
    analyses: list[str] = []
    holders = 0
    max_holders = 0

    async def claimer(worker_id: str) -> None:
        nonlocal holders, max_holders
        idle_rounds = 0
        while idle_rounds < 3:
            claimed = await queue.claim(worker_id)
            if claimed is None:
                idle_rounds += 1
                await asyncio.sleep(0.02)
                continue
            idle_rounds = 0
            if track in done:
                await queue.ack(worker_id, claimed)
                continue
            lock = TrackLock(redis, keys, track, ttl_s=10.0)
            if not await lock.acquire():
                await queue.retry_later(worker_id, claimed, 0.0, count_attempt=False)
                continue
            holders += 1
            max_holders = max(max_holders, holders)
            if track not in done:
                await asyncio.sleep(0.05)  # the analysis
                analyses.append(worker_id)
                done.add(track)
            holders -= 1
            await lock.release()
            await queue.ack(worker_id, claimed)

    await asyncio.gather(*(queue.enqueue(analyze("dup", Priority.ON_PLAY)) for _ in range(20)))
    await asyncio.gather(*(claimer(f"w{i}") for i in range(4)))

    assert len(analyses) == 1
    assert max_holders == 1
    depths = await queue.depths()
    assert (depths["on_play"], depths["scan"], depths["delayed"]) == (0, 0, 0)
    assert all([await queue.processing(f"w{i}") == [] for i in range(4)])
    assert await redis.exists(keys.track_lock(track)) == 0


async def test_dead_worker_jobs_redelivered_exactly_once_with_concurrent_reapers(
    redis: RedisClient, keys: Keys
) -> None:
    queue = JobQueue(redis, keys, lease_s=30.0)
    short_lived = JobQueue(redis, keys, lease_s=0.3)
    await short_lived.register_worker("doomed")
    await queue.register_worker("alive")
    await queue.enqueue_many([analyze("a"), analyze("b"), analyze("c", Priority.ON_PLAY)])
    claims = [await queue.claim("doomed") for _ in range(3)]
    assert all(c is not None for c in claims)
    await queue.enqueue(analyze("kept"))
    kept = await queue.claim("alive")
    assert kept is not None

    await wait_until_gone(redis, keys.lease("doomed"))
    redelivered = await asyncio.gather(*(queue.reap_dead_workers() for _ in range(5)))

    assert sum(redelivered) == 3
    assert await queue.processing("doomed") == []
    assert await queue.processing("alive") == [kept.raw]
    assert await queue.workers_alive() == ["alive"]
    ids = []
    while (job := await queue.claim("alive")) is not None:
        ids.append(job.job.id)
    assert ids == ["analyze:navidrome:c", "analyze:navidrome:a", "analyze:navidrome:b"]


async def test_heartbeat_after_being_reaped_reports_it_and_registers_again(redis: RedisClient, keys: Keys) -> None:
    queue = JobQueue(redis, keys, lease_s=0.2)
    await queue.register_worker("slow")
    await wait_until_gone(redis, keys.lease("slow"))
    await queue.reap_dead_workers()

    first = await queue.heartbeat("slow")
    second = await queue.heartbeat("slow")

    assert first is False
    assert second is True
    assert await queue.workers_alive() == ["slow"]


async def test_heartbeat_renews_the_locks_a_worker_holds(redis: RedisClient, keys: Keys) -> None:
    queue = JobQueue(redis, keys, lease_s=30.0)
    held: set[TokenLock] = set()
    lock = TrackLock(redis, keys, TrackKey("navidrome", "long"), ttl_s=2.0, held=held)
    await queue.register_worker("w1")
    assert await lock.acquire()
    await redis.pexpire(keys.track_lock(lock.track), 100)  # as if most of the lock time had passed

    await queue.heartbeat("w1", held)

    assert await redis.pttl(keys.track_lock(lock.track)) > 1000
    assert held == {lock}


async def test_unregister_requeues_unfinished_jobs_at_the_front(
    queue: JobQueue, redis: RedisClient, keys: Keys
) -> None:
    await queue.register_worker("w1")
    await queue.enqueue_many([analyze("first"), analyze("second"), analyze("waiting")])
    assert await queue.claim("w1") is not None
    assert await queue.claim("w1") is not None

    requeued = await queue.unregister_worker("w1")

    assert requeued == 2
    assert await queue.workers_alive() == []
    assert await redis.exists(keys.lease("w1")) == 0
    order = [(await queue.claim("w2")) for _ in range(3)]
    assert [c.job.id if c else None for c in order] == [
        "analyze:navidrome:first",
        "analyze:navidrome:second",
        "analyze:navidrome:waiting",
    ]


async def test_requeue_unfinished_keeps_the_worker_registered(queue: JobQueue) -> None:
    await queue.register_worker("w1")
    await queue.enqueue(analyze("t1", Priority.ON_PLAY))
    assert await queue.claim("w1") is not None

    requeued = await queue.requeue_unfinished("w1")

    assert requeued == 1
    assert await queue.workers_alive() == ["w1"]
    assert (await queue.depths())["on_play"] == 1


async def test_retry_later_becomes_due_at_its_time(queue: JobQueue, clock: ManualClock) -> None:
    await queue.enqueue(analyze("flaky", Priority.ON_PLAY))
    claimed = await queue.claim("w1")
    assert claimed is not None

    delayed = await queue.retry_later("w1", claimed, 10.0)
    too_early = await queue.claim("w1")
    clock.now_s += 10.0
    due = await queue.claim("w1")

    assert delayed.attempt == 2
    assert too_early is None
    assert due is not None
    assert due.job == claimed.job.next_attempt()
    assert await queue.processing("w1") == [due.raw]


async def test_retry_later_without_counting_keeps_the_attempt(queue: JobQueue, clock: ManualClock) -> None:
    await queue.enqueue(analyze("locked"))
    claimed = await queue.claim("w1")
    assert claimed is not None

    await queue.retry_later("w1", claimed, 1.0, count_attempt=False)
    clock.now_s += 1.0
    due = await queue.claim("w1")

    assert due is not None
    assert due.raw == claimed.raw


async def test_promote_due_moves_each_entry_once_under_concurrency(
    queue: JobQueue, redis: RedisClient, keys: Keys, clock: ManualClock
) -> None:
    jobs = [analyze(f"d{i}") for i in range(2500)]
    await redis.zadd(keys.delayed, {encode_job(job): clock() - 1 for job in jobs})
    await redis.zadd(keys.delayed, {encode_job(analyze("later")): clock() + 60})

    moved = await asyncio.gather(*(queue.promote_due() for _ in range(4)))

    assert sum(moved) == 2500
    queued = await redis.lrange(keys.queue(Priority.SCAN), 0, -1)
    assert sorted(decode_job(as_text(raw)).id for raw in queued) == sorted(job.id for job in jobs)
    assert await redis.zcard(keys.delayed) == 1


async def test_depths_and_fail_report_every_place(queue: JobQueue, clock: ManualClock) -> None:
    await queue.register_worker("w1")
    await queue.enqueue_many([analyze("p", Priority.ON_PLAY), analyze("s1"), analyze("s2"), analyze("s3")])
    first = await queue.claim("w1")
    second = await queue.claim("w1")
    assert first is not None
    assert second is not None
    await queue.retry_later("w1", first, 5.0)
    await queue.fail("w1", second, "poison: decoder crashed")
    assert await queue.claim("w1") is not None

    depths = await queue.depths()

    assert depths == {"on_play": 0, "scan": 1, "delayed": 1, "processing": 1, "failed": 1}
    assert (await queue.failed_entries())[0].job == second.job


async def test_tracks_with_jobs_finds_every_place_across_pages(
    queue: JobQueue, redis: RedisClient, keys: Keys, clock: ManualClock
) -> None:
    await queue.register_worker("w1")
    await queue.enqueue_many(
        [analyze(f"s{i}") for i in range(23)] + [analyze(f"p{i}", Priority.ON_PLAY) for i in range(7)]
    )
    claimed = [await queue.claim("w1") for _ in range(9)]  # the 7 on-play jobs and 2 scan jobs
    assert all(claimed)
    retried = claimed[0]
    assert retried is not None
    await queue.retry_later("w1", retried, 60.0)
    await redis.lpush(keys.queue(Priority.SCAN), "not a job", '{"type": "sync_library", "host": "navidrome"}')

    presence = await queue.tracks_with_jobs(page_size=4)

    expected = {f"s{i}" for i in range(23)} | {f"p{i}" for i in range(7)}
    assert len(presence) == 30
    assert all(TrackKey("navidrome", name) in presence for name in expected)
    assert TrackKey("navidrome", "s23") not in presence
    assert TrackKey("jellyfin", "s1") not in presence


async def test_track_lock_renew_and_release_only_by_its_token(redis: RedisClient, keys: Keys) -> None:
    track = TrackKey("jellyfin", "abc")
    mine = TrackLock(redis, keys, track, ttl_s=5.0)
    theirs = TrackLock(redis, keys, track, ttl_s=5.0)

    assert await mine.acquire() is True
    assert await theirs.acquire() is False
    assert await theirs.renew() is False
    assert await theirs.release() is False
    assert await mine.holder() == mine.token
    assert await mine.renew() is True
    assert await mine.release() is True
    assert await mine.holder() is None


async def test_track_lock_expired_cannot_touch_the_next_holder(redis: RedisClient, keys: Keys) -> None:
    track = TrackKey("jellyfin", "expiring")
    first = TrackLock(redis, keys, track, ttl_s=0.1)
    second = TrackLock(redis, keys, track, ttl_s=5.0)
    assert await first.acquire()
    await wait_until_gone(redis, keys.track_lock(track))

    taken = await second.acquire()
    renewed = await first.renew()
    released = await first.release()

    assert taken is True
    assert renewed is False
    assert released is False
    assert await second.holder() == second.token


async def test_lock_whose_release_failed_is_released_at_the_next_heartbeat(
    restartable_redis: RestartableRedis, keys: Keys
) -> None:
    client = connect(restartable_redis.url, Settings(redis_url=restartable_redis.url))
    queue = JobQueue(client, keys, lease_s=30.0)
    held: set[TokenLock] = set()
    lock = TrackLock(client, keys, TrackKey("navidrome", "done-while-redis-died"), ttl_s=600.0, held=held)
    await queue.register_worker("w1")
    assert await lock.acquire()

    restartable_redis.kill()
    with pytest.raises(QueueUnavailableError):
        await lock.release()
    restartable_redis.start()
    await client.set(lock.key, lock.token, px=600_000)  # what a Redis restored from its append-only file holds
    await queue.heartbeat("w1", held)

    assert held == set()
    assert await client.exists(lock.key) == 0
    assert await lock.acquire()  # the same object can be taken again, and is renewed again, not released
    assert await lock.renew() is True
    await client.aclose()


async def test_epoch_absent_after_flushall(redis: RedisClient, keys: Keys) -> None:
    written = await set_epoch(redis, keys)
    before = await get_epoch(redis, keys)

    await redis.flushall()

    assert before == written
    assert await get_epoch(redis, keys) is None


async def test_rebuild_pushes_scan_jobs_and_writes_epoch_once(redis: RedisClient, keys: Keys) -> None:
    async def pending() -> AsyncIterator[tuple[str, str, list[str]]]:
        for i in range(2500):
            yield ("navidrome", f"t{i}", ["tempo", "key"])

    first = await rebuild_queues(redis, keys, pending(), lock_s=30.0, batch_size=1000)
    second = await rebuild_queues(redis, keys, pending(), lock_s=30.0)

    assert first.ran is True
    assert first.jobs_pushed == 2500
    assert first.epoch == await get_epoch(redis, keys)
    assert second.ran is False
    queued = await redis.lrange(keys.queue(Priority.SCAN), 0, -1)
    assert len(queued) == 2500
    assert {decode_job(as_text(raw)).id for raw in queued} == {f"analyze:navidrome:t{i}" for i in range(2500)}


async def test_rebuild_concurrent_callers_rebuild_once(redis: RedisClient, keys: Keys) -> None:
    items = [("jellyfin", f"t{i}", ["loudness"]) for i in range(300)]

    outcomes = await asyncio.gather(*(rebuild_queues(redis, keys, items, lock_s=30.0, batch_size=50) for _ in range(3)))

    assert sorted(o.ran for o in outcomes) == [False, False, True]
    assert await redis.llen(keys.queue(Priority.SCAN)) == 300
    assert await redis.exists(keys.rebuild_lock) == 0


async def test_rebuild_invalid_item_leaves_epoch_unset(redis: RedisClient, keys: Keys) -> None:
    items = [("jellyfin", "ok", ["tempo"]), ("jellyfin", "bad", [])]

    with pytest.raises(ValueError, match="at least one analyzer"):
        await rebuild_queues(redis, keys, items, lock_s=30.0)

    assert await get_epoch(redis, keys) is None
    assert await redis.exists(keys.rebuild_lock) == 0


CLAIMER = """
import asyncio, sys, time
from sidecar.jobqueue.connection import connect
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.queue import JobQueue
from sidecar.settings import Settings
from tests.integration.redis_server import RestartableRedis

async def main() -> None:
    url, prefix = sys.argv[1], sys.argv[2]
    queue = JobQueue(connect(url, Settings(redis_url=url)), Keys(prefix), lease_s=1.0)
    await queue.register_worker("victim")
    claimed = await queue.claim("victim")
    sys.stdout.write(f"claimed {claimed.job.id}\\n")
    sys.stdout.flush()
    while True:
        await queue.heartbeat("victim")
        await asyncio.sleep(0.1)

asyncio.run(main())
"""


async def test_killed_claimer_job_is_redelivered_exactly_once(redis_url: str, redis: RedisClient, keys: Keys) -> None:
    queue = JobQueue(redis, keys, lease_s=30.0)
    await queue.enqueue_many([analyze("in-flight"), analyze("untouched")])
    victim = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CLAIMER, redis_url, keys.prefix, stdout=asyncio.subprocess.PIPE, cwd=REPO_ROOT
    )
    try:
        assert victim.stdout is not None
        async with asyncio.timeout(30):
            line = await victim.stdout.readline()
        assert line.decode().strip() == "claimed analyze:navidrome:in-flight"
        reaped_while_alive = await queue.reap_dead_workers()
    finally:
        victim.send_signal(signal.SIGKILL)
        await victim.wait()
    await wait_until_gone(redis, keys.lease("victim"))
    redelivered = await asyncio.gather(*(queue.reap_dead_workers() for _ in range(4)))

    assert reaped_while_alive == 0
    assert sum(redelivered) == 1
    claimed = []
    while (job := await queue.claim("survivor")) is not None:
        claimed.append(job.job.id)
    assert sorted(claimed) == ["analyze:navidrome:in-flight", "analyze:navidrome:untouched"]
    assert await queue.processing("victim") == []


async def test_job_queue_from_settings_uses_prefix_and_lease(redis_url: str, redis: RedisClient, keys: Keys) -> None:
    settings = Settings(redis_url=redis_url, redis={"key_prefix": keys.prefix}, worker={"lease_s": 7.0})
    queue = JobQueue.from_settings(redis, settings)

    await queue.register_worker("w1")

    assert 6000 < await redis.pttl(f"{keys.prefix}lease:w1") <= 7000
    assert await redis.smembers(f"{keys.prefix}workers") == {"w1"}


async def test_track_lock_context_manager_releases_on_exit(redis: RedisClient, keys: Keys) -> None:
    track = TrackKey("navidrome", "ctx")
    held: set[TokenLock] = set()

    async with TrackLock(redis, keys, track, ttl_s=5.0, held=held) as taken:
        inside = await redis.exists(keys.track_lock(track))
        held_inside = len(held)
        async with TrackLock(redis, keys, track, ttl_s=5.0) as taken_twice:
            pass

    assert (taken, taken_twice) == (True, False)
    assert (inside, held_inside) == (1, 1)
    assert await redis.exists(keys.track_lock(track)) == 0
    assert held == set()
