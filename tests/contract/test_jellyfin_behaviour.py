"""The HostAdapter protocol semantics, run against the Jellyfin adapter and a stateful fake Jellyfin.

Every request the adapter sends in these tests, and every successful answer, is validated against the official
OpenAPI specs 10.10.7, 10.11.11 and 12.0.0 when the test ends (the ``fake`` fixture). The fake refuses requests
it does not know. The protocol checks common to every adapter also run in ``test_adapter_behaviour.py``.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapters.base import (
    Capability,
    HostAdapter,
    HostAuthError,
    HostKind,
    HostUnavailableError,
    TrackNotFoundError,
    TrackTags,
    WriteBackOutcome,
)
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from tests.contract.jellyfin_fake import FakeJellyfin, UnfakedRequestError
from tests.contract.jellyfin_spec import assert_exchanges_valid

TAGS = TrackTags(bpm=127.6, key="A minor", camelot="8A", replaygain_track_gain_db=-7.24)
OUR_TAGS = ["bpm:128", "key:A minor", "camelot:8A", "replaygain:-7.2 dB"]


@pytest.fixture(params=["10.10.7", "12.0.0"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeJellyfin]:
    server = FakeJellyfin(version=request.param)
    yield server
    assert_exchanges_valid((exchange.request, exchange.response) for exchange in server.exchanges)


@pytest.fixture
def seeded(fake: FakeJellyfin, tmp_path: Path) -> dict[str, str]:
    admin = fake.add_user("admin", "adminpw", admin=True)
    listener = fake.add_user("listener", "pw")
    library = fake.add_library("Music", ["/data/music"])
    fake.add_library("Movies", ["/data/movies"], collection_type="movies")
    (tmp_path / "Artist").mkdir()
    ids = {f"t{i}": fake.add_track(library, f"Artist/{i:02d}.flac", title=f"Song {i}") for i in range(5)}
    return {"admin": admin, "listener": listener, "library": library, "api_key": fake.add_api_key(), **ids}


def _config(tmp_path: Path, **overrides: Any) -> JellyfinConfig:
    values: dict[str, Any] = {
        "url": "http://jellyfin:8096",
        "library_dir": tmp_path,
        "retry_base_s": 0.0,
        "retry_max_s": 0.0,
    }
    values.update(overrides)
    return JellyfinConfig(**values)


@pytest.fixture
async def adapter(fake: FakeJellyfin, seeded: dict[str, str], tmp_path: Path) -> AsyncIterator[JellyfinAdapter]:
    async with JellyfinAdapter(_config(tmp_path, api_key=seeded["api_key"]), transport=fake.transport()) as client:
        yield client


async def test_jellyfin_adapter_satisfies_protocol(adapter: JellyfinAdapter) -> None:
    assert isinstance(adapter, HostAdapter)


async def test_jellyfin_ping_reports_server(adapter: JellyfinAdapter, fake: FakeJellyfin) -> None:
    info = await adapter.ping()
    assert (info.kind, info.version, info.details["auth"]) == (HostKind.JELLYFIN, fake.version, "api_key")


async def test_jellyfin_capabilities_include_tags_and_playlists(adapter: JellyfinAdapter) -> None:
    assert {Capability.TAG_WRITE, Capability.PLAYLIST_WRITE, Capability.CHANGED_SINCE} <= adapter.capabilities


async def test_jellyfin_iter_tracks_pages_through_every_track(
    adapter: JellyfinAdapter, seeded: dict[str, str], tmp_path: Path
) -> None:
    tracks = [track async for track in adapter.iter_tracks(page_size=2)]
    expected = {seeded[f"t{i}"]: str(tmp_path / "Artist" / f"{i:02d}.flac") for i in range(5)}
    assert {track.host_track_id: track.local_path for track in tracks} == expected


async def test_jellyfin_iter_tracks_sends_repeated_fields_and_explicit_sort(
    adapter: JellyfinAdapter, fake: FakeJellyfin
) -> None:
    [track async for track in adapter.iter_tracks(page_size=2)]
    first = fake.requests_to("GET", "/Items")[0]
    assert (len(first.url.params.get_list("fields")) > 1, first.url.params.get_list("sortBy")) == (
        True,
        ["DateCreated", "SortName"],
    )


async def test_jellyfin_requests_carry_only_the_authorization_header(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    await adapter.ping()
    request = fake.exchanges[-1].request
    legacy = {"x-emby-token", "x-mediabrowser-token", "x-emby-authorization"} & set(request.headers.keys())
    assert (request.headers["Authorization"].endswith(f'Token="{seeded["api_key"]}"'), legacy) == (True, set())


async def test_jellyfin_iter_tracks_changed_since_filters_server_side(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    fake.advance(3600)
    fake.touch(seeded["t3"])
    since = fake.now - timedelta(seconds=60)
    changed = [track.host_track_id async for track in adapter.iter_tracks(changed_since=since)]
    assert changed == [seeded["t3"]]


async def test_jellyfin_iter_tracks_refuses_path_escaping_the_mount(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    evil = fake.add_track(seeded["library"], "../../etc/passwd.flac", title="evil")
    tracks = {track.host_track_id: track async for track in adapter.iter_tracks()}
    assert (tracks[evil].local_path, tracks[evil].path_problem is not None) == (None, True)


async def test_jellyfin_path_map_override_wins(fake: FakeJellyfin, seeded: dict[str, str], tmp_path: Path) -> None:
    config = _config(tmp_path, api_key=seeded["api_key"], path_map=(("/data/music/Artist", str(tmp_path / "x")),))
    async with JellyfinAdapter(config, transport=fake.transport()) as client:
        track = await client.get_track(seeded["t1"])
    assert track.local_path == str(tmp_path / "x" / "01.flac")


async def test_jellyfin_get_track_accepts_dashed_ids(adapter: JellyfinAdapter, seeded: dict[str, str]) -> None:
    raw = seeded["t2"]
    dashed = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}".upper()
    assert (await adapter.get_track(dashed)).host_track_id == raw


async def test_jellyfin_get_track_unknown_raises_not_found(adapter: JellyfinAdapter) -> None:
    with pytest.raises(TrackNotFoundError):
        await adapter.get_track("0" * 32)


async def test_jellyfin_now_playing_reports_audio_sessions(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    fake.start_playing(seeded["listener"], seeded["t4"], position_s=30)
    plays = await adapter.now_playing()
    assert [(play.user, play.host_track_id, play.started_at) for play in plays] == [
        ("listener", seeded["t4"], fake.now - timedelta(seconds=30))
    ]


async def test_jellyfin_write_back_keeps_user_tags_and_locks_field(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    fake.items[seeded["t0"]]["Tags"] = ["favourite", "bpm:90"]
    outcome = await adapter.write_back(seeded["t0"], TAGS)
    stored = (outcome, fake.tags_of(seeded["t0"]), "Tags" in fake.items[seeded["t0"]].get("LockedFields", []))
    assert stored == (WriteBackOutcome.WRITTEN, ["favourite", *OUR_TAGS], True)


async def test_jellyfin_write_back_changes_nothing_but_tags_and_their_lock(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    """``POST /Items/{id}`` replaces the whole item: everything the user curated must come back as it was."""
    item = fake.items[seeded["t1"]]
    genres = ["Jazz", "Soul"]
    item.update(
        {
            "Genres": genres,
            "GenreItems": [
                {"Name": genre, "Id": hashlib.md5(genre.encode(), usedforsecurity=False).hexdigest()}
                for genre in genres
            ],
            "ProviderIds": {"MusicBrainzTrack": "8f3471b5-7e6a-48da-86a9-c1c07a0f47ae", "MusicBrainzAlbum": "x1"},
            "LockedFields": ["Genres", "Name"],
            "Tags": ["favourite"],
            "Overview": "Live at the Blue Note",
            "OriginalTitle": "Canción",
            "ForcedSortName": "Song 1, The",
            "Taglines": ["a tagline"],
            "Studios": [{"Name": "Blue Note", "Id": "b" * 32}],
            "PremiereDate": "1964-03-01T00:00:00.0000000Z",
            "ProductionYear": 1964,
            "IndexNumber": 7,
            "ParentIndexNumber": 2,
        }
    )
    before = copy.deepcopy(item)

    outcome = await adapter.write_back(seeded["t1"], TAGS)

    assert outcome is WriteBackOutcome.WRITTEN
    expected = {**before, "Tags": ["favourite", *OUR_TAGS], "LockedFields": ["Genres", "Name", "Tags"]}
    assert fake.items[seeded["t1"]] == expected


async def test_jellyfin_write_back_twice_is_unchanged_without_post(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    await adapter.write_back(seeded["t0"], TAGS)
    outcome = await adapter.write_back(seeded["t0"], TAGS)
    assert (outcome, len(fake.requests_to("POST", r"/Items/\w+"))) == (WriteBackOutcome.UNCHANGED, 1)


async def test_jellyfin_write_back_on_item_without_tags_sends_lists(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    fake.items[seeded["t1"]].pop("Tags", None)
    fake.items[seeded["t1"]].pop("ProviderIds", None)
    assert await adapter.write_back(seeded["t1"], TAGS) is WriteBackOutcome.WRITTEN


async def test_jellyfin_write_back_with_api_key_names_a_user(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    await adapter.write_back(seeded["t0"], TAGS)
    reads = fake.requests_to("GET", r"/Items/\w+")
    assert [request.url.params.get("userId") for request in reads] == [seeded["admin"]]


async def test_jellyfin_write_back_none_removes_our_tags(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    fake.items[seeded["t0"]]["Tags"] = ["mine"]
    await adapter.write_back(seeded["t0"], TAGS)
    await adapter.write_back(seeded["t0"], TrackTags())
    assert fake.tags_of(seeded["t0"]) == ["mine"]


async def test_jellyfin_upsert_playlist_creates_then_replaces_in_place(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    first = await adapter.upsert_playlist("Sonic Match · A", [seeded["t0"], seeded["t1"], seeded["t2"]])
    again = await adapter.upsert_playlist("Sonic Match · A", [seeded["t3"], seeded["t0"]])
    playlist = fake.playlist_named("Sonic Match · A")
    assert playlist is not None
    assert (again, [item for _, item in playlist.entries]) == (first, [seeded["t3"], seeded["t0"]])


async def test_jellyfin_upsert_playlist_with_api_key_deletes_then_adds_in_batches(
    fake: FakeJellyfin, seeded: dict[str, str], tmp_path: Path
) -> None:
    tracks = [seeded[f"t{i}"] for i in range(5)]
    config = _config(tmp_path, api_key=seeded["api_key"], playlist_batch_size=2)
    async with JellyfinAdapter(config, transport=fake.transport()) as client:
        await client.upsert_playlist("Mix", tracks[:3])
        await client.upsert_playlist("Mix", tracks[::-1])
    deletes = fake.requests_to("DELETE", r"/Playlists/\w+/Items")
    assert (len(deletes), len(fake.requests_to("POST", r"/Playlists/\w+"))) == (2, 0)


async def test_jellyfin_upsert_playlist_as_user_posts_update(
    fake: FakeJellyfin, seeded: dict[str, str], tmp_path: Path
) -> None:
    config = _config(tmp_path, username="listener", password="pw")
    async with JellyfinAdapter(config, transport=fake.transport()) as client:
        await client.upsert_playlist("Mine", [seeded["t0"]])
        await client.upsert_playlist("Mine", [seeded["t1"], seeded["t2"]])
    playlist = fake.playlist_named("Mine", seeded["listener"])
    assert playlist is not None
    assert ([item for _, item in playlist.entries], len(fake.requests_to("POST", r"/Playlists/\w+"))) == (
        [seeded["t1"], seeded["t2"]],
        1,
    )


async def test_jellyfin_upsert_playlist_unchanged_sends_no_write(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    await adapter.upsert_playlist("Same", [seeded["t0"], seeded["t1"]])
    writes_before = len([e for e in fake.exchanges if e.request.method in ("POST", "DELETE")])
    await adapter.upsert_playlist("Same", [seeded["t0"], seeded["t1"]])
    assert len([e for e in fake.exchanges if e.request.method in ("POST", "DELETE")]) == writes_before


async def test_jellyfin_upsert_playlist_for_named_user(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    await adapter.upsert_playlist("Theirs", [seeded["t0"]], user="listener")
    playlist = fake.playlist_named("Theirs")
    assert playlist is not None
    assert playlist.owner_id == seeded["listener"]


async def test_jellyfin_trigger_loudness_scan_starts_task(adapter: JellyfinAdapter, fake: FakeJellyfin) -> None:
    assert (await adapter.trigger_loudness_scan(), fake.normalization_runs) == (True, 1)


async def test_jellyfin_wrong_api_key_raises_auth_error(fake: FakeJellyfin, tmp_path: Path) -> None:
    async with JellyfinAdapter(_config(tmp_path, api_key="nope"), transport=fake.transport()) as client:
        with pytest.raises(HostAuthError):
            await client.ping()


async def test_jellyfin_wrong_password_raises_auth_error(
    fake: FakeJellyfin, seeded: dict[str, str], tmp_path: Path
) -> None:
    config = _config(tmp_path, username="listener", password="wrong")
    async with JellyfinAdapter(config, transport=fake.transport()) as client:
        with pytest.raises(HostAuthError, match="USERNAME"):
            await client.ping()


async def test_jellyfin_server_error_is_retried(adapter: JellyfinAdapter, fake: FakeJellyfin) -> None:
    fake.fail_next(status=503, times=2)
    info = await adapter.ping()
    assert (info.kind, len(fake.requests_to("GET", "/System/Info"))) == (HostKind.JELLYFIN, 3)


async def test_jellyfin_persistent_server_error_is_unavailable(adapter: JellyfinAdapter, fake: FakeJellyfin) -> None:
    fake.fail_next(status=500, times=5)
    with pytest.raises(HostUnavailableError):
        await adapter.ping()


async def test_jellyfin_network_error_is_unavailable(adapter: JellyfinAdapter, fake: FakeJellyfin) -> None:
    fake.fail_next(error=httpx.ConnectError, times=5)
    with pytest.raises(HostUnavailableError):
        await adapter.now_playing()


async def test_jellyfin_secrets_stay_out_of_repr_and_errors(fake: FakeJellyfin, tmp_path: Path) -> None:
    config = _config(tmp_path, api_key="topsecretkey", webhook_secret="hooksecret")
    async with JellyfinAdapter(config, transport=fake.transport()) as client:
        with pytest.raises(HostAuthError) as caught:
            await client.ping()
    text = repr(config) + str(caught.value)
    assert ("topsecretkey" in text, "hooksecret" in text) == (False, False)


def test_jellyfin_fake_refuses_unknown_requests(fake: FakeJellyfin) -> None:
    with pytest.raises(UnfakedRequestError):
        fake.handle(httpx.Request("GET", "http://jellyfin:8096/Items", params={"bogus": "1"}))


async def test_jellyfin_playlist_create_is_not_retried_after_reaching_server(
    adapter: JellyfinAdapter, fake: FakeJellyfin, seeded: dict[str, str]
) -> None:
    fake.fail_next(error=httpx.ReadTimeout, path_contains="/Playlists")
    with pytest.raises(HostUnavailableError):
        await adapter.upsert_playlist("Once", [seeded["t0"]])
    assert fake.playlist_named("Once") is None


async def test_jellyfin_expired_user_token_logs_in_again(
    fake: FakeJellyfin, seeded: dict[str, str], tmp_path: Path
) -> None:
    config = _config(tmp_path, username="admin", password="adminpw")
    async with JellyfinAdapter(config, transport=fake.transport()) as client:
        await client.ping()
        fake.tokens.clear()
        info = await client.ping()
    assert (info.details["user"], len(fake.requests_to("POST", "/Users/AuthenticateByName"))) == ("admin", 2)


async def test_jellyfin_sync_triggers_loudness_scan_when_configured(
    fake: FakeJellyfin, seeded: dict[str, str], tmp_path: Path
) -> None:
    config = _config(tmp_path, api_key=seeded["api_key"], trigger_normalization=True)
    async with JellyfinAdapter(config, transport=fake.transport()) as client:
        [track async for track in client.iter_tracks()]
    assert fake.normalization_runs == 1
