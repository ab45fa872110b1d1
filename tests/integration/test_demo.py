"""The demo flow end to end, on a smaller library: real Subsonic server, Navidrome adapter, embedded services."""

from __future__ import annotations

from pathlib import Path

from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from sidecar.demo.flow import BPM_RANGE, DEMO_PASSWORD, DEMO_USER, run_demo
from sidecar.demo.subsonic import SubsonicServer
from sidecar.settings import get_settings


async def test_demo_runs_the_whole_flow(tmp_path: Path) -> None:
    lines: list[str] = []
    report = await run_demo(get_settings(), n_tracks=10, out=lines.append)
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
    assert effective == sorted(effective)  # type: ignore[type-var]
    assert any(line.startswith("6. A user plays") for line in lines)
    steps = [line.split(".", 1)[0] for line in lines if line[:1].isdigit()]
    assert steps == ["1", "2", "3", "4", "5", "6", "7", "8"]  # each step once, in order


async def test_demo_playlists_are_on_the_server(tmp_path: Path) -> None:
    report = await run_demo(get_settings(), n_tracks=6, out=lambda _line: None)
    demo_dir = get_settings().data_dir / "demo"
    with SubsonicServer(demo_dir / "library", demo_dir / "subsonic", username=DEMO_USER, password=DEMO_PASSWORD) as srv:
        config = NavidromeConfig(
            url=srv.url, username=DEMO_USER, password=DEMO_PASSWORD, library_dir=demo_dir / "library"
        )
        async with NavidromeAdapter(config) as adapter:
            for name, (playlist_id, rows) in report.playlists.items():
                assert await adapter.find_playlist(name) == playlist_id
                assert await adapter.playlist_tracks(playlist_id) == [r.host_track_id for r in rows]
