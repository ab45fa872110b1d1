"""Jellyfin answer fixtures (tests/fixtures/jellyfin/, one file per quirk) replayed to the adapter.

The fixtures are hand-written after the server's DTOs and the official specs, with placeholder ids; they were
not captured from a real server (see tests/fixtures/jellyfin/README.md). "Recorded" in the names below means
"stored". Every successful answer validates against the official specs 10.10.7, 10.11.11 and 12.0.0 (only the
uuid format relaxed), and so does every request the adapter sends while replaying them. The replay transport
answers only requests a fixture describes and fails the test on anything else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from openapi_core.exceptions import OpenAPIError

from adapters.base import HostUnavailableError, TrackTags, WriteBackOutcome
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from tests.contract.jellyfin_spec import (
    SPEC_VERSIONS,
    assert_exchanges_valid,
    load_spec,
    validate_exchange,
    validate_response,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "jellyfin"
ALL_FIXTURES = sorted(path.stem for path in FIXTURES.glob("*.json"))


def _fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return data


def _response(fixture: dict[str, Any]) -> httpx.Response:
    body = fixture["body"]
    if body is None:
        return httpx.Response(fixture["status"])
    if isinstance(body, str):
        return httpx.Response(fixture["status"], text=body)
    return httpx.Response(fixture["status"], json=body)


class ReplayTransport(httpx.MockTransport):
    """Serve recorded fixtures; the first fixture whose request description matches wins, anything else fails."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(self._handle)
        self.fixtures = [_fixture(name) for name in names]
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    @staticmethod
    def _matches(spec: dict[str, Any], request: httpx.Request) -> bool:
        if (spec["method"], spec["path"]) != (request.method, request.url.path):
            return False
        params = request.url.params
        if any(params.get(key) != value for key, value in spec["query"].items()):
            return False
        if any(key in params for key in spec.get("absent", [])):
            return False
        if "null_in_body" in spec:
            body = json.loads(request.content)
            return any(body.get(key) is None for key in spec["null_in_body"])
        return True

    def _handle(self, request: httpx.Request) -> httpx.Response:
        for fixture in self.fixtures:
            if self._matches(fixture["request"], request):
                response = _response(fixture)
                self.exchanges.append((request, response))
                return response
        raise AssertionError(f"no recorded answer for {request.method} {request.url}")


@pytest.fixture
def replay() -> Iterator[ReplayTransport]:
    transport = ReplayTransport(ALL_FIXTURES)
    yield transport
    assert_exchanges_valid(transport.exchanges)


def _adapter(transport: httpx.AsyncBaseTransport, tmp_path: Path, **overrides: Any) -> JellyfinAdapter:
    values: dict[str, Any] = {
        "url": "http://jellyfin:8096",
        "api_key": "0123456789abcdef0123456789abcdef",
        "library_dir": tmp_path,
        "retry_base_s": 0.0,
        "retry_max_s": 0.0,
        "max_attempts": 2,
    }
    values.update(overrides)
    return JellyfinAdapter(JellyfinConfig(**values), transport=transport)


def _request_of(fixture: dict[str, Any]) -> httpx.Request:
    spec = fixture["request"]
    return httpx.Request(spec["method"], "http://localhost" + spec["path"], params=spec["query"])


@pytest.mark.parametrize("version", SPEC_VERSIONS)
@pytest.mark.parametrize("name", [name for name in ALL_FIXTURES if _fixture(name)["status"] == 200])
def test_recorded_response_validates_against_spec(name: str, version: str) -> None:
    fixture = _fixture(name)
    validate_response(load_spec(version), _request_of(fixture), _response(fixture))


def test_recorded_response_validation_rejects_wrong_types() -> None:
    fixture = _fixture("items_page1_undashed_ids")
    fixture["body"]["TotalRecordCount"] = "four"
    with pytest.raises(OpenAPIError):
        validate_response(load_spec("10.11.11"), _request_of(fixture), _response(fixture))


def test_spec_rejects_comma_joined_fields() -> None:
    """The validator has teeth: ``fields=Path,Genres`` (what the server also accepts) breaks the published spec."""
    request = httpx.Request(
        "GET",
        "http://localhost/Items",
        params={"fields": "Path,Genres"},
        headers={"Authorization": 'MediaBrowser Token="x"'},
    )
    with pytest.raises(OpenAPIError):
        validate_exchange(load_spec("12.0.0"), request, httpx.Response(204))


async def test_recorded_paging_stops_at_total_record_count(replay: ReplayTransport, tmp_path: Path) -> None:
    async with _adapter(replay, tmp_path) as adapter:
        ids = [track.host_track_id async for track in adapter.iter_tracks(page_size=2)]
    pages = [request for request, _ in replay.exchanges if request.url.path == "/Items"]
    assert (len(ids), len(set(ids)), len(pages)) == (4, 4, 2)


async def test_recorded_tracks_map_onto_mount(replay: ReplayTransport, tmp_path: Path) -> None:
    async with _adapter(replay, tmp_path) as adapter:
        tracks = [track async for track in adapter.iter_tracks(page_size=2)]
    assert tracks[0].local_path == str(tmp_path / "Artist" / "Album" / "01 - Song 0.flac")


async def test_recorded_tracks_carry_normalization_gain(replay: ReplayTransport, tmp_path: Path) -> None:
    async with _adapter(replay, tmp_path) as adapter:
        gains = [track.host_replaygain_track_gain_db async for track in adapter.iter_tracks(page_size=2)]
    assert gains == [-6.5, -7.5, -8.5, -9.5]


async def test_recorded_dashed_ids_are_normalised(replay: ReplayTransport, tmp_path: Path) -> None:
    wanted = _fixture("items_dashed_ids")["request"]["query"]["ids"]
    async with _adapter(replay, tmp_path) as adapter:
        track = await adapter.get_track(wanted)
    assert track.host_track_id == wanted


async def test_recorded_system_info_id_is_normalised(replay: ReplayTransport, tmp_path: Path) -> None:
    async with _adapter(replay, tmp_path) as adapter:
        info = await adapter.ping()
    assert "-" not in info.details["server_id"]


async def test_recorded_write_back_names_the_admin_not_the_first_user(replay: ReplayTransport, tmp_path: Path) -> None:
    item = _fixture("item_missing_tags")
    async with _adapter(replay, tmp_path) as adapter:
        outcome = await adapter.write_back(item["body"]["Id"], TrackTags(bpm=100.0, camelot="8A"))
    assert outcome is WriteBackOutcome.WRITTEN


async def test_recorded_write_back_sends_tags_and_provider_ids_never_null(
    replay: ReplayTransport, tmp_path: Path
) -> None:
    item = _fixture("item_missing_tags")
    async with _adapter(replay, tmp_path) as adapter:
        await adapter.write_back(item["body"]["Id"], TrackTags(key="A minor"))
    posted = json.loads(next(request for request, _ in replay.exchanges if request.method == "POST").content)
    assert (posted["Tags"], posted["ProviderIds"], posted["LockedFields"]) == (["key:A minor"], {}, ["Tags"])


async def test_recorded_update_500_is_host_unavailable(tmp_path: Path) -> None:
    transport = ReplayTransport(
        [
            "users_api_key_without_user",
            "virtual_folders_music_and_movies",
            "item_missing_tags",
            "update_item_tags_null_500",
        ]
    )
    del transport.fixtures[-1]["request"]["null_in_body"]  # answer every update with the recorded 500
    item = _fixture("item_missing_tags")
    async with _adapter(transport, tmp_path) as adapter:
        with pytest.raises(HostUnavailableError, match="500"):
            await adapter.write_back(item["body"]["Id"], TrackTags(bpm=90.0))


async def test_recorded_sessions_report_only_audio(replay: ReplayTransport, tmp_path: Path) -> None:
    async with _adapter(replay, tmp_path) as adapter:
        plays = await adapter.now_playing()
    assert [(play.user, play.host_track_id, play.player) for play in plays] == [
        ("kid", "3a8d1e2f4b5c4d6e8f9a0b1c2d3e4f50", "Finamp on Pixel")
    ]
