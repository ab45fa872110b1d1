"""The beat grid's phase is stored with the tempo group and returned by the analysis route's schema."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.api.schemas import TrackAnalysisPublic
from sidecar.domain import TempoResult
from sidecar.storage import analyses, status, tracks
from sidecar.storage.db import Pool, transaction


async def test_beat_offset_round_trips_and_is_null_without_beats(pool: Pool) -> None:
    async with transaction(pool) as conn:
        upsert = tracks.TrackUpsert(host="navidrome", host_track_id="grid", title="Grid", path="/music/grid.flac")
        track_id = (await tracks.upsert_track(conn, upsert)).track_id
        await status.ensure_status(conn, {"tempo": 2})
    beats = TempoResult(bpm=120.0, bpm_confidence=0.9, beat_times_s=0.125 + 0.5 * np.arange(40, dtype=np.float64))
    for result, expected in (
        (beats, 0.125),
        (TempoResult(bpm=None, bpm_confidence=0.0, beat_times_s=np.zeros(0)), None),
    ):
        async with transaction(pool) as conn:
            await analyses.store_results(conn, track_id, results={"tempo": result}, versions={"tempo": 2})
            summary = await analyses.get_analysis(conn, track_id)
        assert summary is not None
        assert summary["beat_offset_s"] == (None if expected is None else pytest.approx(expected))
        assert TrackAnalysisPublic.of(summary).beat_offset_s == summary["beat_offset_s"]
