"""Protocol semantics every host adapter must keep, run against each adapter on its fake host.

A :class:`Harness` wraps one adapter with a seeded fake: its track ids (each backed by a real file on a temporary
mount), a way to start a play, and a way to make the host fail. To add an adapter, add a harness factory to
``HARNESSES``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.base import (
    Capability,
    HostAdapter,
    HostUnavailableError,
    TrackNotFoundError,
    TrackTags,
    WriteBackOutcome,
)
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from tests.contract.jellyfin_fake import FakeJellyfin
from tests.contract.navidrome_fake import FakeNavidrome


@dataclass
class Harness:
    """One adapter on a seeded fake host."""

    adapter: HostAdapter
    track_ids: list[str]
    mount: Path
    start_play: Callable[[str], object]  # make the host's user play this track now
    break_host: Callable[[], None]  # every following request fails with a 5xx


async def navidrome_harness(tmp_path: Path) -> Harness:
    fake = FakeNavidrome()
    mount = tmp_path / "mount"
    ids: list[str] = []
    for number in range(1, 6):
        relative = f"Artist/Album/{number:02d} - Song {number}.flac"
        (mount / relative).parent.mkdir(parents=True, exist_ok=True)
        (mount / relative).write_bytes(b"fLaC")
        ids.append(fake.add_song(relative, title=f"Song {number}"))
    config = NavidromeConfig(
        url="http://navidrome.test",
        username=fake.username,
        password=fake.password,
        library_dir=mount,
        path_map=((fake.library_path, str(mount)),),
        retry_base_s=0.0,
        retry_max_s=0.0,
    )

    def break_host() -> None:
        fake.fail_next = 1000

    return Harness(
        adapter=NavidromeAdapter(config, transport=fake.transport()),
        track_ids=ids,
        mount=mount,
        start_play=lambda track_id: fake.play(track_id, user="alice", minutes_ago=0),
        break_host=break_host,
    )


async def jellyfin_harness(tmp_path: Path) -> Harness:
    fake = FakeJellyfin()
    listener = fake.add_user("listener", "pw")
    fake.add_user("admin", "adminpw", admin=True)
    library = fake.add_library("Music", ["/data/music"])
    mount = tmp_path / "mount"
    ids: list[str] = []
    for number in range(1, 6):
        relative = f"Artist/Album/{number:02d} - Song {number}.flac"
        (mount / relative).parent.mkdir(parents=True, exist_ok=True)
        (mount / relative).write_bytes(b"fLaC")
        ids.append(fake.add_track(library, relative, title=f"Song {number}"))
    config = JellyfinConfig(
        url="http://jellyfin.test",
        api_key=fake.add_api_key(),
        library_dir=mount,
        path_map=(("/data/music", str(mount)),),
        retry_base_s=0.0,
        retry_max_s=0.0,
    )

    def break_host() -> None:
        fake.fail_next(status=503, times=1000)

    return Harness(
        adapter=JellyfinAdapter(config, transport=fake.transport()),
        track_ids=ids,
        mount=mount,
        start_play=lambda track_id: fake.start_playing(listener, track_id),
        break_host=break_host,
    )


HARNESSES: dict[str, Callable[[Path], Awaitable[Harness]]] = {
    "jellyfin": jellyfin_harness,
    "navidrome": navidrome_harness,
}


@pytest.fixture(params=sorted(HARNESSES))
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    built = await HARNESSES[request.param](tmp_path)
    yield built
    await built.adapter.aclose()


async def test_adapter_satisfies_protocol(harness: Harness) -> None:
    assert isinstance(harness.adapter, HostAdapter)


async def test_adapter_ping_reports_its_kind(harness: Harness) -> None:
    info = await harness.adapter.ping()
    assert (info.kind, bool(info.version)) == (harness.adapter.kind, True)


async def test_adapter_iter_tracks_yields_each_track_once_across_pages(harness: Harness) -> None:
    tracks = [track async for track in harness.adapter.iter_tracks(page_size=2)]
    assert sorted(t.host_track_id for t in tracks) == sorted(harness.track_ids)


async def test_adapter_iter_tracks_maps_onto_readable_mount_files(harness: Harness) -> None:
    tracks = [track async for track in harness.adapter.iter_tracks()]
    mapped = [Path(t.local_path) for t in tracks if t.local_path is not None]
    inside = [path.is_relative_to(harness.mount) and path.read_bytes() == b"fLaC" for path in mapped]
    assert inside == [True] * len(harness.track_ids)


async def test_adapter_get_track_matches_listing(harness: Harness) -> None:
    listed = {track.host_track_id: track async for track in harness.adapter.iter_tracks()}
    one = await harness.adapter.get_track(harness.track_ids[2])
    assert one == listed[harness.track_ids[2]]


async def test_adapter_get_unknown_track_raises_not_found(harness: Harness) -> None:
    with pytest.raises(TrackNotFoundError):
        await harness.adapter.get_track("0" * 32)


async def test_adapter_now_playing_reports_a_started_play(harness: Harness) -> None:
    before = await harness.adapter.now_playing()
    harness.start_play(harness.track_ids[1])
    after = await harness.adapter.now_playing()
    assert (before, [play.host_track_id for play in after]) == ([], [harness.track_ids[1]])


async def test_adapter_upsert_playlist_keeps_id_when_replacing(harness: Harness) -> None:
    first = await harness.adapter.upsert_playlist("Sonic Match: contract", harness.track_ids[:2])
    second = await harness.adapter.upsert_playlist("Sonic Match: contract", harness.track_ids[3:])
    other = await harness.adapter.upsert_playlist("Sonic Match: other", harness.track_ids[:1])
    assert (second == first, other != first) == (True, True)


async def test_adapter_write_back_outcome_follows_capability(harness: Harness) -> None:
    outcome = await harness.adapter.write_back(harness.track_ids[0], TrackTags(bpm=120.0, key="A minor"))
    supported = Capability.TAG_WRITE in harness.adapter.capabilities
    assert (outcome == WriteBackOutcome.UNSUPPORTED) is not supported


async def test_adapter_failing_host_raises_unavailable(harness: Harness) -> None:
    harness.break_host()
    with pytest.raises(HostUnavailableError):
        await harness.adapter.ping()
