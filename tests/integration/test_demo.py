"""The demo flow end to end, on a smaller library: real Subsonic server, Navidrome adapter, embedded services.

The flow runs once per module (it takes most of a minute); each test checks one side of that run."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from sidecar.demo.flow import BPM_RANGE, DEMO_PASSWORD, DEMO_USER, DemoReport, run_demo
from sidecar.demo.subsonic import SubsonicServer
from sidecar.embedded import release_embedded_postgres, supervisor_exited
from sidecar.settings import Settings


@dataclass(frozen=True)
class DemoRun:
    report: DemoReport
    lines: list[str]
    demo_dir: Path


@pytest.fixture(scope="module")
async def demo_run(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[DemoRun]:
    """One run of the demo on 10 tracks; afterwards its embedded servers are stopped (their supervisor exits)."""
    base = Settings(data_dir=tmp_path_factory.mktemp("demo") / "data")
    lines: list[str] = []
    report = await run_demo(base, n_tracks=10, out=lines.append)
    demo_dir = base.data_dir / "demo"
    yield DemoRun(report, lines, demo_dir)
    release_embedded_postgres(demo_dir)  # Redis was released when the demo closed its runtime
    assert supervisor_exited(demo_dir, timeout_s=60), "the demo's embedded servers are still running"


def test_demo_runs_the_whole_flow(demo_run: DemoRun) -> None:
    report, lines = demo_run.report, demo_run.lines
    assert report.analyzed == 10
    # The played track was the last one of the scan backlog; with one job at a time it comes right after the job
    # in progress when it was played.
    assert report.scan_waiting_when_played >= 3  # several: plain FIFO would have played it last
    assert report.played_position <= report.finished_when_played + 2
    similar_name, bpm_name = list(report.playlists)
    _, similar = report.playlists[similar_name]
    assert similar[0].artist == "Reed Machine"  # the seed's instrumentation wins (default embedding, MusiCNN)
    assert all(row.title != report.played_title for row in similar)
    _, running = report.playlists[bpm_name]
    low, high = BPM_RANGE
    effective = [row.bpm * 2 if row.bpm is not None and row.bpm < low else row.bpm for row in running]
    assert all(bpm is not None and low <= bpm <= high for bpm in effective)
    assert effective == sorted(bpm for bpm in effective if bpm is not None)  # all known, as asserted above
    assert any(line.startswith("6. A user plays") for line in lines)
    steps = [line.split(".", 1)[0] for line in lines if line[:1].isdigit()]
    assert steps == ["1", "2", "3", "4", "5", "6", "7", "8"]  # each step once, in order


async def test_demo_playlists_are_on_the_server(demo_run: DemoRun) -> None:
    report, demo_dir = demo_run.report, demo_run.demo_dir
    with SubsonicServer(demo_dir / "library", demo_dir / "subsonic", username=DEMO_USER, password=DEMO_PASSWORD) as srv:
        config = NavidromeConfig(
            url=srv.url, username=DEMO_USER, password=DEMO_PASSWORD, library_dir=demo_dir / "library"
        )
        async with NavidromeAdapter(config) as adapter:
            for name, (playlist_id, rows) in report.playlists.items():
                assert await adapter.find_playlist(name) == playlist_id
                assert await adapter.playlist_tracks(playlist_id) == [r.host_track_id for r in rows]
