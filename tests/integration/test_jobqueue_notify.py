"""Result cache, ``AnalysisReady`` pub/sub, job completion and the connection factory against a real Redis."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import pytest

from sidecar.domain import KeySignature, Priority, TrackKey
from sidecar.embedded import EmbeddedRedis, supervisor_exited
from sidecar.errors import QueueUnavailableError
from sidecar.jobqueue.cache import ResultCache
from sidecar.jobqueue.connection import RedisClient, connect, connect_from_settings
from sidecar.jobqueue.events import EventBus
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.messages import AnalysisReady, AnalyzeTrack, CachedAnalysis, SyncLibrary
from sidecar.jobqueue.queue import ClaimedJob, JobQueue
from sidecar.settings import Settings

TRACK = TrackKey("jellyfin", "track-1")
OTHER = TrackKey("jellyfin", "track-2")


def entry(versions: dict[str, int]) -> CachedAnalysis:
    return CachedAnalysis(
        track=TRACK,
        versions=versions,
        computed_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        bpm=128.0,
        key=KeySignature.parse("A minor"),
        loudness_lufs=-9.5,
        true_peak_dbtp=-0.3,
    )


async def test_result_cache_hit_only_at_current_versions(redis: RedisClient, keys: Keys) -> None:
    cache = ResultCache(redis, keys, ttl_s=60.0)
    await cache.set(entry({"tempo": 2, "key": 1}))

    current = await cache.get(TRACK, required_versions={"tempo": 2, "key": 1})
    older_needed = await cache.get(TRACK, required_versions={"tempo": 1})
    newer_needed = await cache.get(TRACK, required_versions={"tempo": 3})
    missing_analyzer = await cache.get(TRACK, required_versions={"loudness": 1})
    other_track = await cache.get(OTHER, required_versions={})

    assert current == entry({"tempo": 2, "key": 1})
    assert older_needed == current
    assert newer_needed is None
    assert missing_analyzer is None
    assert other_track is None


async def test_result_cache_entry_expires(redis: RedisClient, keys: Keys) -> None:
    cache = ResultCache(redis, keys, ttl_s=60.0)

    await cache.set(entry({"tempo": 1}))

    ttl_ms = await redis.pttl(keys.result(TRACK))
    assert 0 < ttl_ms <= 60_000


async def test_result_cache_unreadable_entry_is_a_miss_and_dropped(redis: RedisClient, keys: Keys) -> None:
    cache = ResultCache(redis, keys, ttl_s=60.0)
    await redis.set(keys.result(TRACK), '{"host":"jellyfin"}')

    got = await cache.get(TRACK, required_versions={})

    assert got is None
    assert await redis.exists(keys.result(TRACK)) == 0


async def test_result_cache_invalidate_removes_entry(redis: RedisClient, keys: Keys) -> None:
    cache = ResultCache(redis, keys, ttl_s=60.0)
    await cache.set(entry({"tempo": 1}))

    removed = await cache.invalidate(TRACK)
    removed_again = await cache.invalidate(TRACK)

    assert (removed, removed_again) == (True, False)
    assert await cache.get(TRACK, required_versions={}) is None


async def test_events_publish_reaches_track_and_all_channels(redis: RedisClient, keys: Keys) -> None:
    bus = EventBus(redis, keys)
    async with bus.subscribe(TRACK) as mine, bus.subscribe(OTHER) as other, bus.subscribe() as everything:
        receivers = await bus.publish(TRACK, ["tempo", "key"])
        got_mine = await mine.get(timeout_s=5.0)
        got_all = await everything.get(timeout_s=5.0)
        got_other = await other.get(timeout_s=0.2)

    expected = AnalysisReady(host="jellyfin", host_track_id="track-1", analyzers=("key", "tempo"))
    assert receivers == 2
    assert got_mine == expected
    assert got_all == expected
    assert got_other is None


async def test_events_channel_names_follow_the_issue(keys: Keys) -> None:
    assert keys.analysis_ready_all_channel == f"{keys.prefix}analysis-ready"
    assert keys.analysis_ready_channel(TRACK) == f"{keys.prefix}AnalysisReady:jellyfin:track-1"


async def test_events_async_iteration_skips_unreadable_payloads(redis: RedisClient, keys: Keys) -> None:
    bus = EventBus(redis, keys)
    async with bus.subscribe() as everything:
        await redis.publish(keys.analysis_ready_all_channel, "not json")
        await bus.publish(OTHER, ["loudness"])
        async with asyncio.timeout(5.0):
            first = await anext(aiter(everything))

    assert first.track == OTHER
    assert first.analyzers == ("loudness",)


async def test_connect_from_settings_uses_the_configured_url(redis_url: str) -> None:
    client = connect_from_settings(Settings(redis_url=redis_url))

    pong = await client.ping()

    await client.aclose()
    assert pong is True


async def test_connect_from_settings_starts_embedded_redis_without_url(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    client = connect_from_settings(Settings(data_dir=data_dir))

    pong = await client.ping()

    await client.aclose()
    assert pong is True
    assert any((data_dir / "redis").iterdir())
    await asyncio.to_thread(EmbeddedRedis(data_dir).release)  # this process was its only user: it stops
    assert await asyncio.to_thread(supervisor_exited, data_dir, timeout_s=60)


async def test_unreachable_redis_raises_queue_unavailable(tmp_path: Path, keys: Keys) -> None:
    client = connect(f"unix://{tmp_path}/missing.sock", Settings())
    cache = ResultCache(client, keys, ttl_s=60.0)

    with pytest.raises(QueueUnavailableError, match="Redis is unavailable"):
        await cache.get(TRACK, required_versions={})

    await client.aclose()


async def test_complete_caches_announces_and_acknowledges_in_one_call(redis: RedisClient, keys: Keys) -> None:
    queue = JobQueue(redis, keys, lease_s=30.0)
    bus = EventBus(redis, keys)
    cache = ResultCache(redis, keys, ttl_s=60.0)
    await queue.enqueue(
        AnalyzeTrack(
            host="jellyfin",
            host_track_id="track-1",
            priority=Priority.ON_PLAY,
            analyzers=("tempo",),
            enqueued_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        )
    )
    claimed = await queue.claim("w1")
    assert claimed is not None
    ready = AnalysisReady(host="jellyfin", host_track_id="track-1", analyzers=("tempo",))

    async with bus.subscribe(TRACK) as sub:
        acked = await queue.complete("w1", claimed, ready=ready, cached=entry({"tempo": 1}), cache_ttl_s=60.0)
        received = await sub.get(timeout_s=5.0)

    assert acked is True
    assert received == ready
    assert await cache.get(TRACK, required_versions={"tempo": 1}) == entry({"tempo": 1})
    assert await queue.processing("w1") == []


async def test_complete_refuses_a_cached_result_without_ttl(redis: RedisClient, keys: Keys) -> None:
    queue = JobQueue(redis, keys, lease_s=30.0)
    claimed = ClaimedJob("{}", SyncLibrary(host="jellyfin", enqueued_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))

    with pytest.raises(ValueError, match="cache_ttl_s"):
        await queue.complete("w1", claimed, cached=entry({"tempo": 1}))
