"""Pure playlist ordering: BPM-range order with half/double time, the harmonic-mix path."""

from __future__ import annotations

from dataclasses import replace

from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.domain import KeySignature
from sidecar.services.playlists import harmonic_path, order_by_bpm
from sidecar.storage.catalog import TempoTrack


def _track(track_id: int, bpm: float, key: str | None) -> TempoTrack:
    return TempoTrack(
        track_id=track_id,
        host="navidrome",
        host_track_id=f"t{track_id}",
        title=f"T{track_id}",
        artist=None,
        album=None,
        duration_s=200.0,
        bpm=bpm,
        key=key,
        camelot=None if key is None else KeySignature.parse(key).camelot,
    )


def test_order_by_bpm_folds_half_and_double_time_into_the_range() -> None:
    tracks = [_track(1, 140.0, None), _track(2, 62.0, None), _track(3, 260.0, None), _track(4, 125.0, None)]
    entries = order_by_bpm(tracks, bpm_min=120, bpm_max=140)
    assert [e.track_id for e in entries] == [2, 4, 3, 1]  # felt as 124, 125, 130, 140
    assert "felt as 124.0 BPM" in entries[0].reason
    assert "felt as" not in entries[1].reason


def test_order_by_bpm_says_when_the_tempo_is_uncertain() -> None:
    unsure = replace(_track(1, 120.0, None), bpm_alternative=60.03)
    entries = order_by_bpm([unsure, _track(2, 130.0, None)], bpm_min=120, bpm_max=140)
    assert entries[0].reason == "120.0 BPM in 120-140 (uncertain: may be 60.0 BPM)"
    assert entries[1].reason == "130.0 BPM in 120-140"


def test_harmonic_path_takes_the_smallest_compatible_step_and_stops() -> None:
    seed = _track(1, 120.0, "A minor")  # 8A
    candidates = [
        seed,
        _track(2, 120.5, "F# major"),  # 2B: nearest BPM but not compatible
        _track(3, 123.0, "E minor"),  # 9A
        _track(4, 121.0, "C major"),  # 8B (relative)
        _track(5, 140.0, "A minor"),  # compatible key, BPM jump too large
    ]
    path = harmonic_path(seed, candidates, limit=10, max_bpm_step_pct=3)
    assert [e.track_id for e in path] == [1, 4]  # 8A -> 8B; from 8B (121): 9A at 123 is not a neighbour of 8B
    assert [e.camelot for e in path] == ["8A", "8B"]
    assert "+0.8 %" in path[1].reason


def test_harmonic_path_respects_the_limit() -> None:
    seed = _track(1, 100.0, "A minor")
    candidates = [_track(i, 100.0 + i, "A minor") for i in range(2, 12)]
    path = harmonic_path(seed, candidates, limit=4, max_bpm_step_pct=5)
    assert [e.track_id for e in path] == [1, 2, 3, 4]


def test_serve_command_is_registered() -> None:
    result = CliRunner().invoke(app, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--port" in result.output
