"""Navidrome-only behaviour on recorded answers (tests/fixtures/navidrome/), checked against the OpenSubsonic spec,
and the adapter's defences against hostile, oversized and malformed answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.base import (
    Capability,
    HostAuthError,
    HostResponseError,
    HostUnavailableError,
    TrackNotFoundError,
    TrackTags,
    WriteBackOutcome,
)
from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from adapters.navidrome.parsers import parse_child, parse_now_playing
from tests.contract.navidrome_fake import FIXTURES, FakeNavidrome, fixture
from tests.contract.navidrome_spec import request_errors, response_errors

FIXTURE_ENDPOINTS = {
    "ping_opensubsonic_navidrome": "ping",
    "error_41_token_auth_unsupported": "ping",
    "error_40_wrong_credentials": "ping",
    "error_70_not_found": "getSong",
    "search3_bpm_replaygain_real_path": "search3",
    "get_song_fake_path_report_real_path_off": "getSong",
    "now_playing_integer_minutes_ago": "getNowPlaying",
    "create_playlist_returns_playlist": "createPlaylist",
}


def make_config(fake: FakeNavidrome, mount: Path, **overrides: Any) -> NavidromeConfig:
    values: dict[str, Any] = {
        "url": "http://navidrome.test:4533",
        "username": fake.username,
        "password": fake.password,
        "library_dir": mount,
        "path_map": ((fake.library_path, str(mount)),),
        "retry_base_s": 0.0,
        "retry_max_s": 0.0,
    }
    values.update(overrides)
    return NavidromeConfig(**values)


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    root = tmp_path / "mount"
    for relative in ("Velvet Keys/Coastline/01 - One.flac", "Velvet Keys/Coastline/02 - Two.flac"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(b"fLaC")
    return root


@pytest.fixture
def fake() -> FakeNavidrome:
    server = FakeNavidrome()
    server.add_song("Velvet Keys/Coastline/01 - One.flac", title="One", bpm=124, track_gain_db=-7.12)
    server.add_song("Velvet Keys/Coastline/02 - Two.flac", title="Two")
    return server


@pytest.fixture
async def adapter(fake: FakeNavidrome, mount: Path) -> AsyncIterator[NavidromeAdapter]:
    async with NavidromeAdapter(make_config(fake, mount), transport=fake.transport()) as client:
        yield client


def test_navidrome_fixtures_cover_every_file() -> None:
    assert sorted(FIXTURE_ENDPOINTS) == sorted(path.stem for path in FIXTURES.glob("*.json"))


@pytest.mark.parametrize(("name", "endpoint"), sorted(FIXTURE_ENDPOINTS.items()))
def test_navidrome_fixture_conforms_to_opensubsonic_spec(name: str, endpoint: str) -> None:
    assert response_errors(endpoint, fixture(name)) == []


def test_navidrome_spec_check_rejects_float_minutes_ago() -> None:
    answer = fixture("now_playing_integer_minutes_ago")
    answer["subsonic-response"]["nowPlaying"]["entry"][0]["minutesAgo"] = 1.5
    assert response_errors("getNowPlaying", answer) != []


async def test_navidrome_session_exchanges_conform_to_spec(adapter: NavidromeAdapter, fake: FakeNavidrome) -> None:
    ids = [track.host_track_id async for track in adapter.iter_tracks(page_size=1)]
    fake.play(ids[0], user="alice", minutes_ago=2)
    await adapter.now_playing()
    await adapter.get_track(ids[1])
    await adapter.upsert_playlist("Sonic Match: One", ids)
    await adapter.upsert_playlist("Sonic Match: One", ids[:1])
    problems = [
        (exchange.endpoint, error)
        for exchange in fake.exchanges
        for error in request_errors(exchange.endpoint, exchange.fields)
        + response_errors(exchange.endpoint, exchange.answer)
    ]
    assert (problems, len(fake.exchanges) > 8) == ([], True)


async def test_navidrome_token_auth_sends_fresh_salt_and_no_password(
    adapter: NavidromeAdapter, fake: FakeNavidrome
) -> None:
    info = await adapter.ping()
    await adapter.ping()
    salts = [exchange.fields["s"][0] for exchange in fake.exchanges]
    assert (info.details["auth"], any("p" in e.fields for e in fake.exchanges), len(set(salts))) == ("token", False, 2)


async def test_navidrome_token_refused_falls_back_to_encoded_password(fake: FakeNavidrome, mount: Path) -> None:
    fake.token_auth = False
    async with NavidromeAdapter(make_config(fake, mount), transport=fake.transport()) as client:
        info = await client.ping()
        tracks = [track async for track in client.iter_tracks()]
    last = fake.exchanges[-1].fields
    assert (info.details["auth"], len(tracks), last["p"][0], "t" in last) == (
        "password",
        2,
        "enc:" + fake.password.encode().hex(),
        False,
    )


async def test_navidrome_wrong_password_raises_auth_error(fake: FakeNavidrome, mount: Path) -> None:
    async with NavidromeAdapter(make_config(fake, mount, password="nope"), transport=fake.transport()) as client:
        with pytest.raises(HostAuthError, match="Wrong username or password"):
            await client.ping()


async def test_navidrome_ping_reports_server_and_capabilities(adapter: NavidromeAdapter) -> None:
    info = await adapter.ping()
    assert (info.server_name, info.version, info.details["open_subsonic"], adapter.capabilities) == (
        "navidrome",
        "0.53.3 (13af8ed4)",
        "true",
        frozenset({Capability.PLAYLIST_WRITE, Capability.HOST_BPM, Capability.HOST_REPLAYGAIN}),
    )


async def test_navidrome_search3_sends_quoted_empty_query(adapter: NavidromeAdapter, fake: FakeNavidrome) -> None:
    [track async for track in adapter.iter_tracks()]
    assert [e.fields["query"] for e in fake.exchanges if e.endpoint == "search3"] == [['""']]


async def test_navidrome_search3_falls_back_to_empty_query_once(adapter: NavidromeAdapter, fake: FakeNavidrome) -> None:
    fake.quoted_query_lists_nothing = True
    first = [track async for track in adapter.iter_tracks()]
    second = [track async for track in adapter.iter_tracks()]
    queries = [e.fields["query"][0] for e in fake.exchanges if e.endpoint == "search3"]
    assert (len(first), len(second), queries) == (2, 2, ['""', "", ""])


async def test_navidrome_iter_tracks_reads_bpm_and_replaygain(adapter: NavidromeAdapter, mount: Path) -> None:
    tracks = [track async for track in adapter.iter_tracks()]
    assert [(t.host_bpm, t.host_replaygain_track_gain_db, t.local_path) for t in tracks] == [
        (124.0, -7.12, str(mount / "Velvet Keys/Coastline/01 - One.flac")),
        (None, None, str(mount / "Velvet Keys/Coastline/02 - Two.flac")),
    ]


def test_navidrome_parse_child_reads_nanosecond_created() -> None:
    song = fixture("search3_bpm_replaygain_real_path")["subsonic-response"]["searchResult3"]["song"][0]
    assert parse_child(song).changed_at == datetime(2024, 3, 10, 12, 34, 56, 789012, tzinfo=UTC)


def test_navidrome_now_playing_integer_minutes_ago_gives_stable_start() -> None:
    body = fixture("now_playing_integer_minutes_ago")["subsonic-response"]
    now = datetime(2026, 5, 1, 12, 30, 41, tzinfo=UTC)
    first = parse_now_playing(body, now=now)
    later = parse_now_playing(body, now=now + timedelta(seconds=9))
    assert (first, [(p.user, p.player, p.started_at) for p in first]) == (
        later,
        [("alice", "Feishin", datetime(2026, 5, 1, 12, 28, tzinfo=UTC))],
    )


async def test_navidrome_fake_paths_report_the_fix(adapter: NavidromeAdapter, fake: FakeNavidrome) -> None:
    fake.report_real_path = False
    tracks = [track async for track in adapter.iter_tracks()]
    problems = {(t.local_path, "Report Real Path" in (t.path_problem or "")) for t in tracks}
    assert (problems, tracks[0].host_path) == ({(None, True)}, "Velvet Keys/Coastline/01 - One.flac")


async def test_navidrome_get_unknown_track_raises_not_found(adapter: NavidromeAdapter) -> None:
    with pytest.raises(TrackNotFoundError):
        await adapter.get_track("nope")


async def test_navidrome_create_playlist_uses_returned_id(adapter: NavidromeAdapter, fake: FakeNavidrome) -> None:
    ids = [track.host_track_id async for track in adapter.iter_tracks()]
    fake.exchanges.clear()
    playlist_id = await adapter.upsert_playlist("Sonic Match: new", ids)
    assert ([e.endpoint for e in fake.exchanges], fake.playlists[playlist_id]["entry"]) == (
        ["getPlaylists", "createPlaylist"],
        ids,
    )


async def test_navidrome_write_back_is_unsupported_without_request(
    adapter: NavidromeAdapter, fake: FakeNavidrome
) -> None:
    outcome = await adapter.write_back("x", TrackTags(bpm=120.0))
    assert (outcome, fake.exchanges, Capability.TAG_WRITE in adapter.capabilities) == (
        WriteBackOutcome.UNSUPPORTED,
        [],
        False,
    )


async def test_navidrome_server_errors_are_retried(adapter: NavidromeAdapter, fake: FakeNavidrome) -> None:
    fake.fail_next = 2
    info = await adapter.ping()
    assert (info.server_name, len(fake.exchanges)) == ("navidrome", 3)


async def test_navidrome_persistent_server_error_is_unavailable(adapter: NavidromeAdapter, fake: FakeNavidrome) -> None:
    fake.fail_next = 10
    with pytest.raises(HostUnavailableError, match="HTTP 503"):
        await adapter.ping()


@pytest.mark.parametrize(
    "relative",
    ["../../etc/passwd.flac", "Velvet Keys/../../../etc/shadow.flac", "Velvet Keys/Coastline/link/secret.flac"],
)
async def test_navidrome_hostile_paths_are_refused(
    fake: FakeNavidrome, mount: Path, tmp_path: Path, relative: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.flac").write_bytes(b"fLaC")
    (mount / "Velvet Keys/Coastline/link").symlink_to(outside)
    evil = fake.add_song(relative, title="evil")
    async with NavidromeAdapter(make_config(fake, mount), transport=fake.transport()) as client:
        tracks = {track.host_track_id: track async for track in client.iter_tracks()}
    assert (tracks[evil].local_path, "refusing" in (tracks[evil].path_problem or "")) == (None, True)


async def test_navidrome_oversized_answer_is_refused(fake: FakeNavidrome, mount: Path) -> None:
    fake.raw_answers["ping"] = b'{"subsonic-response":{"status":"ok","version":"1.16.1","pad":"' + b"x" * 5000 + b'"}}'
    config = make_config(fake, mount, max_response_bytes=4096)
    async with NavidromeAdapter(config, transport=fake.transport()) as client:
        with pytest.raises(HostResponseError, match="4096-byte limit"):
            await client.ping()


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"<html>proxy error</html>", "malformed JSON"),
        (b'{"status":"ok"}', "not a Subsonic JSON response"),
        (b'{"subsonic-response":{"status":"weird"}}', "unknown status"),
        (b'{"subsonic-response":{"status":"ok","version":"1.16.1","searchResult3":{"song":"x"}}}', "not a list"),
    ],
)
async def test_navidrome_malformed_answer_raises_response_error(
    adapter: NavidromeAdapter, fake: FakeNavidrome, raw: bytes, message: str
) -> None:
    await adapter.ping()
    fake.raw_answers["search3"] = raw
    with pytest.raises(HostResponseError, match=message):
        [track async for track in adapter.iter_tracks()]


async def test_navidrome_secrets_never_reach_logs_or_errors(
    fake: FakeNavidrome, mount: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake.token_auth = False
    errors: list[str] = []
    async with NavidromeAdapter(make_config(fake, mount), transport=fake.transport()) as client:
        [track async for track in client.iter_tracks()]
        fake.fail_next = 10
        try:
            await client.now_playing()
        except HostUnavailableError as error:
            errors.append(str(error))
    fake.fail_next = 0
    async with NavidromeAdapter(make_config(fake, mount, password="wrong"), transport=fake.transport()) as bad:
        try:
            await bad.ping()
        except HostAuthError as error:
            errors.append(str(error))
    secrets = {fake.password, fake.password.encode().hex(), "wrong"}
    secrets |= {value for e in fake.exchanges for key in ("t", "s", "p") for value in e.fields.get(key, [])}
    text = "\n".join([r.getMessage() for r in caplog.records] + errors + [repr(make_config(fake, mount))])
    assert (len(caplog.records) > 5, [secret for secret in secrets if secret in text]) == (True, [])


async def test_navidrome_upsert_playlist_with_no_tracks_empties_it(
    adapter: NavidromeAdapter, fake: FakeNavidrome
) -> None:
    ids = [track.host_track_id async for track in adapter.iter_tracks()]
    first = await adapter.upsert_playlist("Sonic Match: empty", ids)
    second = await adapter.upsert_playlist("Sonic Match: empty", [])
    assert (second, fake.playlists[first]["entry"]) == (first, [])


async def test_navidrome_upsert_playlist_for_another_user_is_refused(
    adapter: NavidromeAdapter, fake: FakeNavidrome
) -> None:
    with pytest.raises(ValueError, match="belong to the logged-in user"):
        await adapter.upsert_playlist("Sonic Match: x", [], user="bob")
    assert fake.exchanges == []


def search3_requests(fake: FakeNavidrome) -> int:
    return sum(exchange.endpoint == "search3" for exchange in fake.exchanges)


async def test_navidrome_listing_asks_one_page_ahead(adapter: NavidromeAdapter, fake: FakeNavidrome) -> None:
    listing = adapter.iter_tracks(page_size=1)
    first = await anext(listing)
    for _ in range(5):
        await asyncio.sleep(0)  # the page asked ahead is fetched while the caller works
    ahead = search3_requests(fake)
    rest = [track.host_track_id async for track in listing]
    assert (first.title, ahead, rest, search3_requests(fake)) == ("One", 2, [fake.songs[1]["id"]], 3)


async def test_navidrome_error_of_the_page_ahead_comes_after_the_current_page(
    adapter: NavidromeAdapter, fake: FakeNavidrome
) -> None:
    listing = adapter.iter_tracks(page_size=1)
    first = await anext(listing)
    fake.fail_next = 10
    with pytest.raises(HostUnavailableError):
        await anext(listing)
    assert first.title == "One"


async def test_navidrome_closing_a_listing_early_cancels_the_page_ahead(
    adapter: NavidromeAdapter, fake: FakeNavidrome
) -> None:
    listing = adapter.iter_tracks(page_size=1)
    await anext(listing)
    await listing.aclose()
    for _ in range(5):
        await asyncio.sleep(0)
    assert search3_requests(fake) == 1
