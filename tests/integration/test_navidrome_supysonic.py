"""The Navidrome adapter against a real Subsonic server (supysonic 0.7.9) over a generated, tagged FLAC library."""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner, Result

from adapters.base import HostAuthError, HostTrack, HostUnavailableError, TrackNotFoundError
from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from sidecar.cli import app
from sidecar.demo.library import cached_corpus, tag_file
from sidecar.demo.music import tempo_key_corpus
from sidecar.demo.subsonic import SubsonicServer
from sidecar.settings import get_settings

USER = "admin"
PASSWORD = "s3cret-Pass"
N_TRACKS = 7


def make_library(root: Path, corpus_dir: Path) -> list[Path]:
    """Seven short tagged FLAC files as ``Artist/Album/NN - Title.flac`` (two artists)."""
    specs = tempo_key_corpus(N_TRACKS, duration_s=3.0, seed=5)
    files: list[Path] = []
    for number, (spec, rendered) in enumerate(zip(specs, cached_corpus(specs, corpus_dir), strict=True), start=1):
        artist = "Alpha Band" if number % 2 else "Beta Trio"
        path = root / artist / f"{artist} Album" / f"{number:02d} - {spec.title}.flac"
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(rendered, path)
        tag_file(path, title=spec.title, artist=artist, album=f"{artist} Album", track_number=number, genre="Test")
        files.append(path)
    return files


@pytest.fixture(scope="module")
def library(tmp_path_factory: pytest.TempPathFactory, corpus_dir: Path) -> Path:
    root = tmp_path_factory.mktemp("subsonic") / "music"
    make_library(root, corpus_dir)
    return root


@pytest.fixture(scope="module")
def server(library: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SubsonicServer]:
    with SubsonicServer(library, tmp_path_factory.mktemp("supysonic"), username=USER, password=PASSWORD) as running:
        yield running


def flac_files(root: Path) -> list[str]:
    return sorted(str(path) for path in root.rglob("*.flac"))


def file_head(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(4)


async def sync_stopping_after(client: NavidromeAdapter, server: SubsonicServer, seen: list[str], count: int) -> None:
    """List tracks into ``seen`` in pages of ``count``, stopping the server after the first ``count``."""
    async for track in client.iter_tracks(page_size=count):
        seen.append(track.host_track_id)
        if len(seen) == count:
            server.stop()


def config_for(url: str, library: Path, **overrides: Any) -> NavidromeConfig:
    values: dict[str, Any] = {
        "url": url,
        "username": USER,
        "password": PASSWORD,
        "library_dir": library,
        "retry_base_s": 0.01,
        "retry_max_s": 0.05,
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return NavidromeConfig(**values)


@pytest.fixture
async def adapter(server: SubsonicServer, library: Path) -> AsyncIterator[NavidromeAdapter]:
    async with NavidromeAdapter(config_for(server.url, library)) as client:
        yield client


async def test_navidrome_supysonic_ping_falls_back_to_password_auth(adapter: NavidromeAdapter) -> None:
    info = await adapter.ping()
    assert (info.version, info.details["auth"], info.details["open_subsonic"]) == ("1.12.0", "password", "false")


async def test_navidrome_supysonic_wrong_password_raises_auth_error(server: SubsonicServer, library: Path) -> None:
    async with NavidromeAdapter(config_for(server.url, library, password="wrong")) as client:
        with pytest.raises(HostAuthError, match="SONANTICA_NAVIDROME__PASSWORD"):
            await client.ping()


async def test_navidrome_supysonic_iter_tracks_pages_through_every_file(
    adapter: NavidromeAdapter, library: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="adapters.navidrome.client")
    tracks = [track async for track in adapter.iter_tracks(page_size=2)]
    pages = [r for r in caplog.records if r.getMessage().startswith("search3 ->")]
    expected = flac_files(library)
    assert (sorted(t.local_path or "" for t in tracks), len({t.host_track_id for t in tracks}), len(pages)) == (
        expected,
        N_TRACKS,
        4,
    )


async def test_navidrome_supysonic_mapped_paths_are_readable(adapter: NavidromeAdapter) -> None:
    tracks = [track async for track in adapter.iter_tracks()]
    readable = [file_head(t.local_path) for t in tracks if t.local_path is not None]
    assert readable == [b"fLaC"] * N_TRACKS


async def test_navidrome_supysonic_get_track_matches_listing(adapter: NavidromeAdapter) -> None:
    first: HostTrack = await anext(aiter(adapter.iter_tracks(page_size=1)))
    assert await adapter.get_track(first.host_track_id) == first


async def test_navidrome_supysonic_get_unknown_track_raises_not_found(adapter: NavidromeAdapter) -> None:
    with pytest.raises(TrackNotFoundError):
        await adapter.get_track(str(uuid.uuid4()))


async def test_navidrome_supysonic_now_playing_after_stream(adapter: NavidromeAdapter, server: SubsonicServer) -> None:
    track = await anext(aiter(adapter.iter_tracks(page_size=1)))
    params = {"u": USER, "p": PASSWORD, "v": "1.12.0", "c": "listener", "f": "json", "id": track.host_track_id}
    async with httpx.AsyncClient() as player:
        response = await player.get(f"{server.url}/rest/stream", params=params)
    plays = await adapter.now_playing()
    assert (response.status_code, [(p.user, p.host_track_id) for p in plays]) == (200, [(USER, track.host_track_id)])


async def test_navidrome_supysonic_playlist_replace_keeps_id(adapter: NavidromeAdapter) -> None:
    ids = [track.host_track_id async for track in adapter.iter_tracks()]
    created = await adapter.upsert_playlist("Sonic Match: test", ids[:3])
    replaced = await adapter.upsert_playlist("Sonic Match: test", list(reversed(ids[2:6])))
    assert (replaced, await adapter.playlist_tracks(replaced)) == (created, list(reversed(ids[2:6])))


async def test_navidrome_supysonic_long_playlist_round_trip(adapter: NavidromeAdapter) -> None:
    ids = [track.host_track_id async for track in adapter.iter_tracks()]
    long_list = ids * 20  # 140 entries: a form body far longer than a sensible URL
    playlist_id = await adapter.upsert_playlist("Sonic Match: long", long_list)
    assert await adapter.playlist_tracks(playlist_id) == long_list


async def test_navidrome_supysonic_server_stopped_mid_sync_raises_unavailable(
    library: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="adapters.navidrome.client")
    server = SubsonicServer(library, tmp_path / "supysonic", username=USER, password=PASSWORD)
    seen: list[str] = []
    with server:
        async with NavidromeAdapter(config_for(server.url, library, max_attempts=3)) as client:
            with pytest.raises(HostUnavailableError, match="cannot reach"):
                await sync_stopping_after(client, server, seen, 3)
    retries = [r for r in caplog.records if "retrying" in r.getMessage()]
    with server:  # the server comes back: a new sync sees the whole library again
        async with NavidromeAdapter(config_for(server.url, library)) as client:
            again = [track.host_track_id async for track in client.iter_tracks(page_size=3)]
    assert (len(seen), len(retries), set(seen) <= set(again), len(again)) == (3, 2, True, N_TRACKS)


def run_host_check(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Result:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return CliRunner().invoke(app, ["host", "check", "--samples", "3"])


def navidrome_env(server: SubsonicServer, library: Path, **changes: str) -> dict[str, str]:
    env = {
        "SONANTICA_HOST": "navidrome",
        "SONANTICA_NAVIDROME__URL": server.url,
        "SONANTICA_NAVIDROME__USERNAME": USER,
        "SONANTICA_NAVIDROME__PASSWORD": PASSWORD,
        "SONANTICA_LIBRARY_DIR": str(library),
    }
    env.update(changes)
    return env


def test_cli_host_check_reports_server_and_readable_tracks(
    server: SubsonicServer, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_host_check(monkeypatch, navidrome_env(server, library))
    lines = result.output.splitlines()
    assert (result.exit_code, lines[0].startswith("server: subsonic 1.12.0"), "playlist_write" in lines[1]) == (
        0,
        True,
        True,
    )
    assert [line.split()[0] for line in lines[3:]] == ["OK", "OK", "OK"]


def test_cli_host_check_wrong_password_exits_with_fix(
    server: SubsonicServer, library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_host_check(monkeypatch, navidrome_env(server, library, SONANTICA_NAVIDROME__PASSWORD="bad"))
    assert (result.exit_code, "fix: credentials refused" in result.output, "bad" in result.output) == (1, True, False)


def test_cli_host_check_wrong_mount_exits_with_fix(
    server: SubsonicServer, library: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = run_host_check(monkeypatch, navidrome_env(server, library, SONANTICA_LIBRARY_DIR=str(tmp_path)))
    assert (result.exit_code, result.output.count("FAIL"), "fix:" in result.output) == (1, 3, True)


def test_cli_host_check_missing_settings_names_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_host_check(monkeypatch, {"SONANTICA_HOST": "navidrome"})
    assert (result.exit_code, "SONANTICA_NAVIDROME__URL" in result.output) == (2, True)
