"""Why the tempo or key analyzer found no value: stored with its group, returned in the analysis record, cleared by
a reading that has a value, set aside by an override and put back when the override is removed."""

from __future__ import annotations

import typing

import numpy as np
import psycopg
import pytest

from sidecar.api.schemas import TrackAnalysisPublic
from sidecar.domain import BpmMissingReason, KeyMissingReason, KeyResult, KeySignature, TempoResult
from sidecar.storage import analyses, overrides
from sidecar.storage.db import Pool, transaction
from tests.integration.library_rows import add_track

VERSIONS = {"tempo": 5, "key": 2}


def _tempo(bpm: float | None, reason: BpmMissingReason | None = None) -> TempoResult:
    return TempoResult(
        bpm=bpm, bpm_confidence=0.0 if bpm is None else 0.8, bpm_missing_reason=reason, beat_times_s=np.zeros(0)
    )


def _key(key: str | None, reason: KeyMissingReason | None = None) -> KeyResult:
    return KeyResult(
        key=None if key is None else KeySignature.parse(key),
        key_confidence=0.0 if key is None else 0.7,
        key_missing_reason=reason,
    )


async def _store(pool: Pool, track_id: int, tempo: TempoResult, key: KeyResult) -> analyses.AnalysisSummary:
    async with transaction(pool) as conn:
        await analyses.store_results(conn, track_id, results={"tempo": tempo, "key": key}, versions=VERSIONS)
        summary = await analyses.get_analysis(conn, track_id)
    assert summary is not None
    return summary


@pytest.mark.parametrize("bpm_reason", typing.get_args(BpmMissingReason))
@pytest.mark.parametrize("key_reason", typing.get_args(KeyMissingReason))
async def test_every_reason_round_trips_and_a_found_value_clears_it(
    pool: Pool, bpm_reason: BpmMissingReason, key_reason: KeyMissingReason
) -> None:
    track_id = await add_track(pool, VERSIONS, f"{bpm_reason}-{key_reason}")
    summary = await _store(pool, track_id, _tempo(None, bpm_reason), _key(None, key_reason))
    assert (summary["bpm"], summary["bpm_missing_reason"]) == (None, bpm_reason)
    assert (summary["key"], summary["key_missing_reason"]) == (None, key_reason)
    public = TrackAnalysisPublic.of(summary)
    assert (public.bpm_missing_reason, public.key_missing_reason) == (bpm_reason, key_reason)
    summary = await _store(pool, track_id, _tempo(120.0), _key("A minor"))  # analysed again, found both
    assert (summary["bpm"], summary["bpm_missing_reason"]) == (120.0, None)
    assert (summary["key"], summary["key_missing_reason"]) == ("A minor", None)


async def test_the_schema_refuses_an_unknown_reason_and_a_reason_beside_a_value(pool: Pool) -> None:
    track_id = await add_track(pool, VERSIONS, "bad")
    await _store(pool, track_id, _tempo(None, "no_onsets"), _key(None, "weak_tonality"))
    for assignment in (
        "bpm_missing_reason = 'too_quiet'",
        "key_missing_reason = 'no_onsets'",
        "bpm = 120.0",  # a BPM with the reason there is none
        "key = 'A minor'",
    ):
        with pytest.raises(psycopg.errors.CheckViolation):
            async with transaction(pool) as conn:
                await conn.execute(f"UPDATE track_features SET {assignment} WHERE track_id = %s", (track_id,))


async def test_an_override_sets_the_reason_aside_and_its_removal_puts_it_back(pool: Pool) -> None:
    track_id = await add_track(pool, VERSIONS, "override")
    await _store(pool, track_id, _tempo(None, "no_onsets"), _key(None, "few_tonal_frames"))
    async with transaction(pool) as conn:
        await overrides.update_overrides(conn, track_id, {"bpm": 70.0})
        summary = await analyses.get_analysis(conn, track_id)
    assert summary is not None
    assert (summary["bpm"], summary["bpm_missing_reason"], summary["overridden"]) == (70.0, None, ["bpm"])
    assert summary["analyzed"]["bpm_missing_reason"] == "no_onsets"
    assert summary["key_missing_reason"] == "few_tonal_frames"  # the key is still the analyzer's

    summary = await _store(pool, track_id, _tempo(None, "no_periodicity"), _key("C major"))  # a later analysis
    assert (summary["bpm"], summary["bpm_missing_reason"]) == (70.0, None)
    assert summary["analyzed"]["bpm_missing_reason"] == "no_periodicity"
    assert (summary["key"], summary["key_missing_reason"]) == ("C major", None)

    async with transaction(pool) as conn:
        await overrides.update_overrides(conn, track_id, {"bpm": None})
        summary = await analyses.get_analysis(conn, track_id)
    assert summary is not None
    assert (summary["bpm"], summary["bpm_missing_reason"], summary["overridden"]) == (None, "no_periodicity", [])


async def test_an_override_made_before_reasons_were_recorded_gives_back_no_reason(pool: Pool) -> None:
    """Overrides saved before migration 0030 keep no reason in their analyzer values: removing one writes NULL."""
    track_id = await add_track(pool, VERSIONS, "old-override")
    await _store(pool, track_id, _tempo(None, "too_short"), _key("A minor"))
    async with transaction(pool) as conn:
        await overrides.update_overrides(conn, track_id, {"bpm": 90.0})
        await conn.execute(
            "UPDATE track_overrides SET analyzed = analyzed - 'bpm_missing_reason' WHERE track_id = %s", (track_id,)
        )
        await overrides.update_overrides(conn, track_id, {"bpm": None})
        summary = await analyses.get_analysis(conn, track_id)
    assert summary is not None
    assert (summary["bpm"], summary["bpm_missing_reason"]) == (None, None)
