"""Job messages, notifications and cache entries (JSON form, strict decoding), keys, back-off and retrying."""

from __future__ import annotations

import datetime as dt
import json
import os
import socket
from typing import Any

import pytest
from pydantic import ValidationError

from sidecar.domain import KeySignature, Priority, TrackKey
from sidecar.errors import InvalidJobError, QueueUnavailableError
from sidecar.jobqueue.connection import queue_retrying
from sidecar.jobqueue.keys import Keys
from sidecar.jobqueue.messages import (
    AnalysisReady,
    AnalyzeTrack,
    CachedAnalysis,
    Job,
    SyncLibrary,
    decode_analysis_ready,
    decode_cached_analysis,
    decode_failed_entry,
    decode_job,
    encode_analysis_ready,
    encode_cached_analysis,
    encode_failed_entry,
    encode_job,
)
from sidecar.jobqueue.queue import backoff_s, new_worker_id
from sidecar.settings import Settings

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)


def analyze(**overrides: Any) -> AnalyzeTrack:
    fields: dict[str, Any] = {
        "host": "jellyfin",
        "host_track_id": "a1b2",
        "priority": Priority.ON_PLAY,
        "analyzers": ("tempo", "key", "loudness", "tempo"),
        "enqueued_at": NOW,
    }
    fields.update(overrides)
    return AnalyzeTrack(**fields)


def test_analyze_track_encodes_the_documented_message() -> None:
    raw = encode_job(analyze())

    assert json.loads(raw) == {
        "type": "analyze_track",
        "id": "analyze:jellyfin:a1b2",
        "priority": "on_play",
        "attempt": 1,
        "enqueued_at": "2026-05-01T12:00:00+00:00",
        "host": "jellyfin",
        "host_track_id": "a1b2",
        "analyzers": ["key", "loudness", "tempo"],
    }


def test_jobs_round_trip_through_json() -> None:
    jobs: list[Job] = [
        analyze(),
        analyze(attempt=4, priority=Priority.SCAN),
        SyncLibrary(host="navidrome", enqueued_at=NOW),
    ]

    decoded = [decode_job(encode_job(job)) for job in jobs]

    assert decoded == jobs
    assert [job.id for job in decoded] == ["analyze:jellyfin:a1b2", "analyze:jellyfin:a1b2", "sync:navidrome"]


def test_job_id_is_deterministic_for_duplicates() -> None:
    assert encode_job(analyze(analyzers=("key", "tempo"))) == encode_job(analyze(analyzers=("tempo", "key", "key")))


def test_next_attempt_counts_up() -> None:
    assert analyze().next_attempt().next_attempt().attempt == 3


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
        ('{"type": "dance"}', "job type 'dance'"),
        (encode_job(analyze()).replace('"attempt":1', '"attempt":"1"'), "'attempt' is not an integer"),
        (encode_job(analyze()).replace('"attempt":1', '"attempt":0'), "attempt must be >= 1"),
        (encode_job(analyze()).replace('"on_play"', '"urgent"'), "'priority' is not one of"),
        (encode_job(analyze()).replace(',"host":"jellyfin"', ""), "no field 'host'"),
        (encode_job(analyze()).replace('"analyze:jellyfin:a1b2"', '"analyze:jellyfin:zzz"'), "does not match"),
        (encode_job(analyze()).replace("+00:00", ""), "timezone-aware"),
        (encode_job(analyze())[:-1] + ',"extra":1}', "unknown fields ['extra']"),
        (encode_job(analyze()).replace('["key","loudness","tempo"]', "[]"), "at least one analyzer"),
    ],
)
def test_decode_job_refuses_anything_else_naming_the_problem(raw: str, message: str) -> None:
    with pytest.raises(InvalidJobError, match=message.replace("[", r"\[").replace("]", r"\]")):
        decode_job(raw)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"host": "Jelly Fin"}, "lower-case name"),
        ({"host_track_id": ""}, "printable characters"),
        ({"analyzers": ("Tempo",)}, "registry key"),
        ({"enqueued_at": dt.datetime(2026, 1, 1)}, "timezone-aware"),
    ],
)
def test_analyze_track_refuses_bad_fields(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        analyze(**overrides)


def test_analysis_ready_round_trips() -> None:
    event = AnalysisReady(host="navidrome", host_track_id="x", analyzers=("tempo", "embedding"))

    raw = encode_analysis_ready(event)

    assert json.loads(raw) == {"host": "navidrome", "host_track_id": "x", "analyzers": ["embedding", "tempo"]}
    assert decode_analysis_ready(raw) == event


def test_cached_analysis_round_trips_and_checks_versions() -> None:
    entry = CachedAnalysis(
        track=TrackKey("navidrome", "x"),
        versions={"tempo": 2, "key": 1},
        computed_at=NOW,
        bpm=None,
        key=KeySignature.parse("F# major"),
        loudness_lufs=-14.2,
    )

    decoded = decode_cached_analysis(encode_cached_analysis(entry))

    assert decoded == entry
    assert decoded.is_current({"tempo": 2}) is True
    assert decoded.is_current({"tempo": 3}) is False
    assert decoded.is_current({"embedding": 1}) is False


def test_failed_entry_keeps_unreadable_raw_without_job() -> None:
    good = decode_failed_entry(encode_failed_entry(encode_job(analyze()), reason="poison", failed_at=NOW))
    bad = decode_failed_entry(encode_failed_entry("garbage", reason="unreadable", failed_at=NOW))

    assert good.job == analyze()
    assert good.reason == "poison"
    assert bad.job is None
    assert bad.raw == "garbage"


def test_keys_follow_the_documented_names() -> None:
    keys = Keys("sonantica:")
    track = TrackKey("jellyfin", "abc")

    assert keys.queue(Priority.ON_PLAY) == "sonantica:queue:on_play"
    assert keys.queue(Priority.SCAN) == "sonantica:queue:scan"
    assert keys.delayed == "sonantica:queue:delayed"
    assert keys.processing("w1") == "sonantica:processing:w1"
    assert keys.workers == "sonantica:workers"
    assert keys.lease("w1") == "sonantica:lease:w1"
    assert keys.track_lock(track) == "sonantica:lock:analyze:jellyfin:abc"
    assert keys.result(track) == "sonantica:result:jellyfin:abc"
    assert keys.epoch == "sonantica:queue:epoch"
    assert keys.rebuild_lock == "sonantica:lock:rebuild"


def test_settings_refuse_a_poll_longer_than_the_socket_timeout() -> None:
    with pytest.raises(ValidationError, match="poll_s must be shorter"):
        Settings(worker={"poll_s": 5.0}, redis={"socket_timeout_s": 5.0})


def test_backoff_doubles_up_to_the_ceiling() -> None:
    delays = [backoff_s(attempt, base_s=2.0, max_s=30.0) for attempt in range(1, 7)]

    assert delays == [2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert backoff_s(10_000, base_s=2.0, max_s=300.0) == 300.0


def test_backoff_refuses_attempt_zero() -> None:
    with pytest.raises(ValueError, match="attempt must be >= 1"):
        backoff_s(0, base_s=1.0, max_s=10.0)


def test_worker_ids_are_unique_per_call_and_name_the_process() -> None:
    first, second = new_worker_id(), new_worker_id()

    assert first != second
    assert first.split(":")[1] == str(os.getpid())
    assert first.split(":")[0] == socket.gethostname()


async def call_retrying(settings: Settings, failures: list[Exception], *, stop_after_s: float | None = None) -> int:
    """Run an operation that raises each of ``failures`` in turn, then succeeds; returns how many calls it took."""
    calls = 0
    async for attempt in queue_retrying(settings, stop_after_s=stop_after_s):
        with attempt:
            calls += 1
            if calls <= len(failures):
                raise failures[calls - 1]
    return calls


async def test_queue_retrying_retries_queue_unavailable_until_success() -> None:
    settings = Settings(worker={"retry_base_s": 0.001, "retry_max_s": 0.002})

    calls = await call_retrying(settings, [QueueUnavailableError("down"), QueueUnavailableError("still down")])

    assert calls == 3


async def test_queue_retrying_gives_up_after_its_deadline() -> None:
    settings = Settings(worker={"retry_base_s": 0.001, "retry_max_s": 0.002})

    with pytest.raises(QueueUnavailableError, match=r"down \d+") as raised:
        await call_retrying(settings, [QueueUnavailableError(f"down {i}") for i in range(1000)], stop_after_s=0.05)

    assert int(str(raised.value).split()[-1]) < 999  # stopped by the deadline, not by running out of failures


async def test_queue_retrying_passes_other_errors_at_once() -> None:
    settings = Settings(worker={"retry_base_s": 0.001, "retry_max_s": 0.002})

    with pytest.raises(InvalidJobError, match="not retried"):
        await call_retrying(settings, [InvalidJobError("not retried")])
