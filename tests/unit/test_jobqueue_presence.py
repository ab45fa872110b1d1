"""The reconciler's compact set of queued tracks and the cheap read of an entry's track."""

from __future__ import annotations

import datetime as dt

import numpy as np

from sidecar.domain import Priority, TrackKey
from sidecar.jobqueue.messages import AnalyzeTrack, SyncLibrary, encode_job, job_track_key
from sidecar.jobqueue.presence import TrackPresence, track_digest, track_digests

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def test_job_track_key_reads_analyze_jobs_and_refuses_the_rest() -> None:
    job = AnalyzeTrack(
        host="jellyfin", host_track_id="a b", priority=Priority.SCAN, analyzers=("key",), enqueued_at=NOW
    )

    assert job_track_key(encode_job(job)) == TrackKey("jellyfin", "a b")
    assert job_track_key(encode_job(SyncLibrary(host="jellyfin", priority=Priority.SCAN, enqueued_at=NOW))) is None
    assert job_track_key("not json") is None
    assert job_track_key("[1, 2]") is None
    assert job_track_key('{"type": "analyze_track", "host": "jellyfin", "host_track_id": 7}') is None


def test_presence_answers_membership_for_pages_of_digests() -> None:
    keys = [TrackKey("navidrome", f"t{i}") for i in range(1000)]
    presence = TrackPresence([track_digests(keys[:600]), track_digests(keys[400:]), track_digests([])])

    assert len(presence) == 1000
    assert all(key in presence for key in keys)
    assert TrackKey("navidrome", "t1000") not in presence
    assert TrackKey("jellyfin", "t1") not in presence
    assert "navidrome:t1" not in presence
    assert len(TrackPresence([])) == 0


def test_digest_separates_host_from_id() -> None:
    assert track_digest(TrackKey("ab", "c")) != track_digest(TrackKey("a", "bc"))
    assert track_digests([TrackKey("a", "b")]).dtype == np.uint64
