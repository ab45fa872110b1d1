"""The tempo alternative (runner-up metrical level) is stored, returned and cleared with the tempo group."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest

from sidecar.api.schemas import TrackAnalysisPublic
from sidecar.domain import TempoResult
from sidecar.storage import analyses, status, tracks
from sidecar.storage.db import Pool, transaction


async def _store(pool: Pool, track_id: int, result: TempoResult, version: int) -> analyses.AnalysisSummary:
    async with transaction(pool) as conn:
        await analyses.store_results(
            conn, track_id, results={"tempo": result}, versions={"tempo": version}, failures={}, info=None
        )
        summary = await analyses.get_analysis(conn, track_id)
    assert summary is not None
    return summary


async def test_bpm_alternative_round_trips_and_is_cleared_by_a_confident_result(pool: Pool) -> None:
    async with transaction(pool) as conn:
        upsert = tracks.TrackUpsert(
            host="navidrome", host_track_id="alt", title="Alt", path="/music/alt.flac", size_bytes=1, mtime_ns=1
        )
        track_id = (await tracks.upsert_track(conn, upsert)).track_id
        await status.ensure_status(conn, {"tempo": 2})
    ambiguous = TempoResult(bpm=85.5, bpm_confidence=0.52, bpm_alternative=171.0, beat_times_s=np.zeros(0))
    summary = await _store(pool, track_id, ambiguous, 2)
    assert (summary["bpm"], summary["bpm_confidence"], summary["bpm_alternative"]) == (85.5, 0.52, 171.0)
    assert TrackAnalysisPublic.of(summary).bpm_alternative == 171.0
    confident = TempoResult(bpm=171.0, bpm_confidence=0.97, beat_times_s=np.zeros(0))
    summary = await _store(pool, track_id, confident, 2)
    assert (summary["bpm"], summary["bpm_alternative"]) == (171.0, None)


async def test_bpm_alternative_must_be_positive(pool: Pool) -> None:
    async with transaction(pool) as conn:
        upsert = tracks.TrackUpsert(
            host="navidrome", host_track_id="neg", title="Neg", path="/music/neg.flac", size_bytes=1, mtime_ns=1
        )
        track_id = (await tracks.upsert_track(conn, upsert)).track_id
    bad = TempoResult(bpm=120.0, bpm_confidence=0.5, bpm_alternative=-60.0, beat_times_s=np.zeros(0))
    with pytest.raises(psycopg.errors.CheckViolation):
        await _store(pool, track_id, bad, 2)
