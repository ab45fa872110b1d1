"""``sonantica host sync`` and now-playing polling through the Navidrome adapter on a real Subsonic server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import psycopg
import pytest
from typer.testing import CliRunner

from sidecar.analyzers.versions import enabled_versions
from sidecar.cli import app
from sidecar.demo.encode import write_audio
from sidecar.demo.library import tag_file
from sidecar.demo.subsonic import SubsonicServer
from sidecar.services.hosts import make_adapter
from sidecar.services.playback import NowPlayingTracker, poll_now_playing
from sidecar.services.runtime import open_runtime
from sidecar.settings import get_settings

USER = "admin"
PASSWORD = "sync-Pass-1"


@pytest.fixture
def music(tmp_path: Path) -> Path:
    root = tmp_path / "music"
    rng = np.random.default_rng(3)
    for number in range(1, 4):
        path = root / "Band" / "Album" / f"{number:02d} - Piece {number}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_audio((0.1 * rng.standard_normal((22050, 2))).astype(np.float32), 44100, path)
        tag_file(path, title=f"Piece {number}", artist="Band", album="Album", track_number=number, genre="Test")
    return root


@pytest.fixture
def server(music: Path, tmp_path: Path) -> Iterator[SubsonicServer]:
    with SubsonicServer(music, tmp_path / "supysonic", username=USER, password=PASSWORD) as running:
        yield running


@pytest.fixture
def env(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, server: SubsonicServer, music: Path
) -> None:
    values = {
        "SONANTICA_DATABASE_URL": database_url,
        "SONANTICA_REDIS_URL": redis_url,
        "SONANTICA_REDIS__KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
        "SONANTICA_ANALYSIS__ENABLED": "loudness,tempo,key",
        "SONANTICA_HOST": "navidrome",
        "SONANTICA_NAVIDROME__URL": server.url,
        "SONANTICA_NAVIDROME__USERNAME": USER,
        "SONANTICA_NAVIDROME__PASSWORD": PASSWORD,
        "SONANTICA_LIBRARY_DIR": str(music),
        "SONANTICA_PATH_MAP": f"{music}:{music}",
        "SONANTICA_SCHEDULER__SYNC_RETRY_BASE_S": "0.1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def test_sync_cli_navidrome_stores_mapped_tracks_and_queues_once(env: None, database_url: str, music: Path) -> None:
    first = CliRunner().invoke(app, ["host", "sync"])

    assert first.exit_code == 0, first.output
    assert "navidrome full sync" in first.output
    assert "3 tracks seen, 3 new, 0 updated, 0 missing, 0 unmappable, 3 queued for analysis" in first.output
    with psycopg.connect(database_url) as conn:
        paths = {row[0] for row in conn.execute("SELECT path FROM tracks WHERE host = 'navidrome'").fetchall()}
    assert paths == {str(path) for path in music.rglob("*.flac")}

    again = CliRunner().invoke(app, ["host", "sync"])

    assert again.exit_code == 0, again.output
    assert "3 tracks seen, 0 new, 0 updated, 0 missing, 0 unmappable, 0 queued for analysis" in again.output


async def test_now_playing_on_subsonic_unknown_track_jumps_to_on_play_once(env: None, server: SubsonicServer) -> None:
    settings = get_settings()
    adapter = make_adapter(settings)
    assert adapter is not None
    versions = enabled_versions(settings)
    tracker = NowPlayingTracker()
    try:
        async with open_runtime(settings) as runtime:
            track = await anext(aiter(adapter.iter_tracks(page_size=1)))
            params = {"u": USER, "p": PASSWORD, "v": "1.12.0", "c": "listener", "f": "json", "id": track.host_track_id}
            async with httpx.AsyncClient() as player:
                assert (await player.get(f"{server.url}/rest/stream", params=params)).status_code == 200

            first = await poll_now_playing(runtime, adapter, versions, tracker)
            second = await poll_now_playing(runtime, adapter, versions, tracker)

            assert [(item.host_track_id, len(item.analyzers)) for item in first] == [
                (track.host_track_id, len(versions))
            ]
            assert second == []
            assert (await runtime.queue.depths())["on_play"] == 1
    finally:
        await adapter.aclose()
