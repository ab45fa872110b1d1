"""Playlists written as the signed-in web user (``UserPlaylistWriter``) on the recorded-shape Jellyfin fake: the
user's own login, the user owns the playlist; every exchange is checked against Jellyfin's OpenAPI spec."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.base import HostAuthError
from adapters.jellyfin import JellyfinConfig
from sidecar.services.hosts import UserPlaylistWriter
from tests.contract.jellyfin_fake import FakeJellyfin
from tests.contract.jellyfin_spec import assert_exchanges_valid


@pytest.fixture(params=["10.10.7", "12.0.0"])
def fake(request: pytest.FixtureRequest) -> Iterator[FakeJellyfin]:
    server = FakeJellyfin(version=request.param)
    yield server
    assert_exchanges_valid((exchange.request, exchange.response) for exchange in server.exchanges)


async def test_the_playlist_belongs_to_the_signed_in_user(fake: FakeJellyfin, tmp_path: Path) -> None:
    admin = fake.add_user("admin", "adminpw", admin=True)
    bob = fake.add_user("bob", "bob-pw")
    library = fake.add_library("Music", ["/data/music"])
    songs = [fake.add_track(library, f"A/{i}.flac", title=f"Song {i}") for i in range(3)]
    config = JellyfinConfig(url="http://jf:8096", api_key=fake.add_api_key(), library_dir=tmp_path)
    writer = UserPlaylistWriter(config, "bob", "bob-pw", transport=fake.transport())
    playlist_id = await writer.upsert("Bob's mix", songs)
    mine = fake.playlist_named("Bob's mix", bob)
    assert mine is not None
    assert mine.playlist_id == playlist_id
    assert [item for _, item in mine.entries] == songs
    assert fake.playlist_named("Bob's mix", admin) is None
    assert len(fake.requests_to("POST", "/Users/AuthenticateByName")) == 1


async def test_a_wrong_password_writes_nothing(fake: FakeJellyfin, tmp_path: Path) -> None:
    fake.add_user("bob", "bob-pw")
    library = fake.add_library("Music", ["/data/music"])
    song = fake.add_track(library, "A/1.flac", title="Song")
    config = JellyfinConfig(url="http://jf:8096", api_key=fake.add_api_key(), library_dir=tmp_path)
    with pytest.raises(HostAuthError):
        await UserPlaylistWriter(config, "bob", "changed", transport=fake.transport()).upsert("x", [song])
    assert fake.playlists == {}
