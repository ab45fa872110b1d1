"""A stateful fake Jellyfin server for tests, served through ``httpx.MockTransport``.

It answers only the requests the adapter is meant to send, in Jellyfin's real JSON shapes (nulls omitted, ids in
the 32-hex form, dates with seven fractional digits), and refuses everything else by raising
:class:`UnfakedRequestError`: an unknown path, method or query parameter is a test failure, never a silent 404.
It keeps state (items with their tags, playlists and their entries, sessions, users and tokens, the loudness
task) so write-back and playlist round trips are real, and it reproduces the traps of hosts.md §1:

* an API key is not a user: ``GET /Items/{id}`` without ``userId``, ``POST /Playlists/{id}`` and playlist calls
  without ``userId`` fail with HTTP 500, as ``GetUserById(Guid.Empty)`` throws on the real server;
* ``POST /Items/{id}`` replaces every field it knows, and a missing or null ``Tags``/``ProviderIds`` is a 500;
* Jellyfin 12.0 ignores ``X-Emby-Token``, ``X-MediaBrowser-Token`` and ``?api_key=`` (legacy auth off);
* ``dashed_ids=True`` answers with dashed ids, which the adapter must normalise.

Every exchange is validated as it happens against the official OpenAPI spec of the fake's version (request, and a
successful answer with a body; :class:`SpecViolationError` otherwise), whoever sends it: adapter tests, library
sync, the worker's write-back, the API's webhook fetch. It is also recorded in :attr:`FakeJellyfin.exchanges`.
It lives under tests/ because only adapters/*/client.py and adapters/http.py may import httpx in production code.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

import httpx

from adapters.jellyfin import const
from adapters.jellyfin.parsers import dashed_id, normalise_id
from tests.contract.jellyfin_spec import SPEC_VERSIONS, load_spec, validate_exchange

Json = dict[str, Any]

AUTH_PROVIDER = "Jellyfin.Server.Implementations.Users.DefaultAuthenticationProvider"
RESET_PROVIDER = "Jellyfin.Server.Implementations.Users.DefaultPasswordResetProvider"
_HEADER_FIELD = re.compile(r'(\w+)="([^"]*)"')
_ID_KEYS = frozenset({"Id", "ParentId", "AlbumId", "ServerId", "UserId", "ItemId", "DisplayPreferencesId"})
# BaseItemDto fields a list query returns only when asked for with fields= (a subset of ItemFields).
_OPTIONAL_FIELDS = frozenset(
    {
        "Path",
        "Genres",
        "DateCreated",
        "MediaSources",
        "ProviderIds",
        "Tags",
        "SortName",
        "Overview",
        "ExternalUrls",
        "Taglines",
        "Studios",
        "People",
        "RemoteTrailers",
        "MediaStreams",
        "CanDelete",
        "CanDownload",
        "Etag",
        "ParentId",
    }
)
_FIELD_ALIASES = {"Genres": ("Genres", "GenreItems")}
# What POST /Items/{id} copies from the body onto the item (UpdateItem assigns them, null or not).
_UPDATED_FIELDS = (
    "Name",
    "OriginalTitle",
    "ForcedSortName",
    "Overview",
    "Genres",
    "Tags",
    "ProviderIds",
    "LockedFields",
    "LockData",
    "ProductionYear",
    "IndexNumber",
    "ParentIndexNumber",
    "PremiereDate",
    "Album",
    "AlbumArtist",
    "Artists",
    "Taglines",
    "Studios",
)
# Left out of SessionInfoDto.NowPlayingItem by SessionManager.GetItemInfo.
_NOT_IN_NOW_PLAYING = ("Tags", "MediaSources", "People", "SortName", "CanDelete")


class UnfakedRequestError(AssertionError):
    """The adapter sent a request this fake does not know: a bug in the adapter or a missing fake."""


class SpecViolationError(AssertionError):
    """A request (or the fake's successful answer) that the official Jellyfin OpenAPI spec rejects."""


@dataclass
class Exchange:
    """One request and the answer the fake gave."""

    request: httpx.Request
    response: httpx.Response

    @property
    def route(self) -> str:
        """``METHOD /path`` of the request."""
        return f"{self.request.method} {self.request.url.path}"


@dataclass
class FakeUser:
    """A Jellyfin account."""

    user_id: str
    name: str
    password: str = field(repr=False)
    is_admin: bool


@dataclass
class FakeLibrary:
    """A library ("virtual folder")."""

    library_id: str
    name: str
    locations: list[str]
    collection_type: str
    lufs_scan: bool


@dataclass
class FakePlaylist:
    """A playlist: its owner and its entries as (PlaylistItemId, item id) pairs."""

    playlist_id: str
    name: str
    owner_id: str
    entries: list[tuple[str, str]]
    is_public: bool = False


@dataclass
class FakeSession:
    """A client session, optionally playing an item."""

    session_id: str
    user_id: str
    client: str
    device_name: str
    device_id: str
    item_id: str | None
    position_ticks: int
    paused: bool
    last_activity: datetime


@dataclass
class _Principal:
    api_key: bool
    user_id: str | None
    is_admin: bool


@dataclass
class _Fault:
    path_contains: str | None
    status: int | None
    error: type[httpx.TransportError] | None
    times: int


def dotnet_date(moment: datetime) -> str:
    """A UTC date as Jellyfin writes it: ``2026-01-01T12:00:00.0000000Z`` (seven fractional digits)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def _new_id() -> str:
    return uuid.uuid4().hex


def _drop_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _drop_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_drop_nulls(item) for item in value]
    return value


def _dash_ids(value: Any) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _ID_KEYS and isinstance(item, str) and re.fullmatch(r"[0-9a-f]{32}", item):
                out[key] = dashed_id(item)
            else:
                out[key] = _dash_ids(item)
        return out
    if isinstance(value, list):
        return [_dash_ids(item) for item in value]
    return value


def _join(location: str, relative: str) -> str:
    if re.match(r"^[A-Za-z]:\\", location):
        return str(PureWindowsPath(location, *relative.split("/")))
    return str(PurePosixPath(location, relative))


class _ReplyError(Exception):
    """Stop handling and answer with ``status`` and a body."""

    def __init__(self, status: int, body: Any = None, text: str | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.text = text


class FakeJellyfin:
    """In-memory Jellyfin. Seed it, hand :meth:`transport` to the adapter, then inspect the state.

    ``version`` is reported by ``/System/Info``; ``legacy_auth`` defaults to on before 12.0 and off from 12.0.
    """

    def __init__(
        self,
        *,
        version: str = "10.11.11",
        server_name: str = "Fake Jellyfin",
        legacy_auth: bool | None = None,
        dashed_ids: bool = False,
        validate: bool = True,
    ) -> None:
        self.version = version
        self.validate = validate  # every exchange against the official spec of ``version``, as it happens
        self.server_name = server_name
        self.server_id = _new_id()
        self.legacy_auth = legacy_auth if legacy_auth is not None else not version.startswith("12.")
        self.dashed_ids = dashed_ids
        self.now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
        self.api_keys: set[str] = set()
        self.users: dict[str, FakeUser] = {}
        self.tokens: dict[str, str] = {}
        self.libraries: dict[str, FakeLibrary] = {}
        self.items: dict[str, Json] = {}
        self.playlists: dict[str, FakePlaylist] = {}
        self.sessions: list[FakeSession] = []
        self.exchanges: list[Exchange] = []
        self.normalization_task_id = hashlib.md5(b"AudioNormalizationTask", usedforsecurity=False).hexdigest()
        self.normalization_task_state = "Idle"
        self.normalization_runs = 0
        self._saved_at: dict[str, datetime] = {}
        self._library_of: dict[str, str] = {}
        self._faults: list[_Fault] = []
        self._created = 0

    # --- seeding ---------------------------------------------------------------------------------------------

    def add_api_key(self, key: str | None = None) -> str:
        """Register an API key (Dashboard -> API Keys) and return it."""
        token = key or _new_id()
        self.api_keys.add(token)
        return token

    def add_user(self, name: str, password: str, *, admin: bool = False) -> str:
        """Create an account; return its id."""
        user_id = _new_id()
        self.users[user_id] = FakeUser(user_id=user_id, name=name, password=password, is_admin=admin)
        return user_id

    def add_library(
        self, name: str, locations: Iterable[str], *, collection_type: str = "music", lufs_scan: bool = True
    ) -> str:
        """Create a library over host folders; return its id."""
        library_id = _new_id()
        self.libraries[library_id] = FakeLibrary(
            library_id=library_id,
            name=name,
            locations=list(locations),
            collection_type=collection_type,
            lufs_scan=lufs_scan,
        )
        return library_id

    def add_track(
        self,
        library_id: str,
        relative_path: str,
        *,
        title: str,
        artist: str = "Artist",
        album: str = "Album",
        duration_s: float = 180.0,
        genres: Iterable[str] = (),
        tags: Iterable[str] | None = (),
        normalization_gain_db: float | None = None,
        musicbrainz_track_id: str | None = None,
        size_bytes: int = 4_000_000,
    ) -> str:
        """Add an audio track under the library's first folder; return its id. ``tags=None`` omits Tags."""
        item_id = _new_id()
        location = self.libraries[library_id].locations[0]
        path = _join(location, relative_path)
        ticks = round(duration_s * const.TICKS_PER_SECOND)
        album_id = hashlib.md5(f"{artist}/{album}".encode(), usedforsecurity=False).hexdigest()
        artist_id = hashlib.md5(artist.encode(), usedforsecurity=False).hexdigest()
        container = PurePosixPath(relative_path).suffix.lstrip(".").lower() or "flac"
        stream = {
            "Codec": container,
            "TimeBase": "1/44100",
            "DisplayTitle": f"{container.upper()} - Stereo",
            "IsInterlaced": False,
            "ChannelLayout": "stereo",
            "BitRate": 900000,
            "BitDepth": 16,
            "Channels": 2,
            "SampleRate": 44100,
            "IsDefault": False,
            "IsForced": False,
            "IsHearingImpaired": False,
            "Type": "Audio",
            "Index": 0,
            "IsExternal": False,
            "IsTextSubtitleStream": False,
            "SupportsExternalStream": False,
            "Level": 0,
        }
        self._created += 1
        item: Json = {
            "Name": title,
            "ServerId": self.server_id,
            "Id": item_id,
            "Etag": hashlib.md5(item_id.encode(), usedforsecurity=False).hexdigest(),
            "DateCreated": dotnet_date(self.now + timedelta(microseconds=self._created)),
            "CanDelete": True,
            "CanDownload": True,
            "HasLyrics": False,
            "Container": container,
            "SortName": title.lower(),
            "ExternalUrls": [],
            "MediaSources": [
                {
                    "Protocol": "File",
                    "Id": item_id,
                    "Path": path,
                    "Type": "Default",
                    "Container": container,
                    "Size": size_bytes,
                    "Name": PurePosixPath(relative_path).stem,
                    "IsRemote": False,
                    "ETag": hashlib.md5(path.encode(), usedforsecurity=False).hexdigest(),
                    "RunTimeTicks": ticks,
                    "ReadAtNativeFramerate": False,
                    "IgnoreDts": False,
                    "IgnoreIndex": False,
                    "GenPtsInput": False,
                    "SupportsTranscoding": True,
                    "SupportsDirectStream": True,
                    "SupportsDirectPlay": True,
                    "IsInfiniteStream": False,
                    "UseMostCompatibleTranscodingProfile": False,
                    "RequiresOpening": False,
                    "RequiresClosing": False,
                    "RequiresLooping": False,
                    "SupportsProbing": True,
                    "MediaStreams": [stream],
                    "MediaAttachments": [],
                    "Formats": [],
                    "Bitrate": 900000,
                    "RequiredHttpHeaders": {},
                    "DefaultAudioStreamIndex": 0,
                    "HasSegments": False,
                }
            ],
            "Path": path,
            "EnableMediaSourceDisplay": True,
            "Taglines": [],
            "Genres": list(genres),
            "RunTimeTicks": ticks,
            "PlayAccess": "Full",
            "ProductionYear": 2024,
            "IndexNumber": 1,
            "ParentIndexNumber": 1,
            "RemoteTrailers": [],
            "ProviderIds": {"MusicBrainzTrack": musicbrainz_track_id} if musicbrainz_track_id else {},
            "IsFolder": False,
            "ParentId": album_id,
            "Type": "Audio",
            "People": [],
            "Studios": [],
            "GenreItems": [
                {"Name": genre, "Id": hashlib.md5(genre.encode(), usedforsecurity=False).hexdigest()}
                for genre in genres
            ],
            "LocalTrailerCount": 0,
            "SpecialFeatureCount": 0,
            "Tags": list(tags) if tags is not None else None,
            "Artists": [artist],
            "ArtistItems": [{"Name": artist, "Id": artist_id}],
            "Album": album,
            "AlbumId": album_id,
            "AlbumArtist": artist,
            "AlbumArtists": [{"Name": artist, "Id": artist_id}],
            "MediaStreams": [stream],
            "ImageTags": {},
            "BackdropImageTags": [],
            "ImageBlurHashes": {},
            "LocationType": "FileSystem",
            "MediaType": "Audio",
            "LockedFields": [],
            "LockData": False,
            "NormalizationGain": normalization_gain_db,
        }
        return self.add_item(item, library_id=library_id)

    def add_item(self, raw: Mapping[str, Any], *, library_id: str | None = None) -> str:
        """Store a recorded item (any id form) as it is; return its normalised id."""
        item = _drop_nulls(copy.deepcopy(dict(raw)))
        item_id = normalise_id(item["Id"])
        item["Id"] = item_id
        self.items[item_id] = item
        self._saved_at[item_id] = self.now
        if library_id is not None:
            self._library_of[item_id] = library_id
        return item_id

    def add_playlist(self, name: str, owner_id: str, item_ids: Iterable[str], *, public: bool = False) -> str:
        """Create a playlist directly (as another client would); return its id."""
        playlist_id = _new_id()
        entries = [(_new_id(), normalise_id(item_id)) for item_id in item_ids]
        self.playlists[playlist_id] = FakePlaylist(playlist_id, name, owner_id, entries, is_public=public)
        return playlist_id

    def start_playing(
        self,
        user_id: str,
        item_id: str,
        *,
        position_s: float = 0.0,
        paused: bool = False,
        client: str = "Jellyfin Web",
        device_name: str = "Firefox",
    ) -> str:
        """A session of ``user_id`` now playing ``item_id``; return the session id."""
        session = FakeSession(
            session_id=_new_id(),
            user_id=user_id,
            client=client,
            device_name=device_name,
            device_id=_new_id(),
            item_id=normalise_id(item_id),
            position_ticks=round(position_s * const.TICKS_PER_SECOND),
            paused=paused,
            last_activity=self.now,
        )
        self.sessions.append(session)
        return session.session_id

    def touch(self, item_id: str) -> None:
        """Mark an item's metadata as saved now (what a rescan or an edit does)."""
        self._saved_at[normalise_id(item_id)] = self.now

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward."""
        self.now += timedelta(seconds=seconds)

    def fail_next(
        self,
        *,
        status: int | None = None,
        error: type[httpx.TransportError] | None = None,
        times: int = 1,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` or raise ``error`` (a network fault)."""
        if (status is None) == (error is None):
            raise ValueError("give exactly one of status and error")
        self._faults.append(_Fault(path_contains=path_contains, status=status, error=error, times=times))

    # --- inspection ------------------------------------------------------------------------------------------

    def tags_of(self, item_id: str) -> list[str] | None:
        """The item's Tags as stored (``None`` when it has none)."""
        tags = self.items[normalise_id(item_id)].get("Tags")
        return list(tags) if tags is not None else None

    def playlist_named(self, name: str, owner_id: str | None = None) -> FakePlaylist | None:
        """The playlist with this exact name (and owner, if given)."""
        for playlist in self.playlists.values():
            if playlist.name == name and (owner_id is None or playlist.owner_id == owner_id):
                return playlist
        return None

    def requests_to(self, method: str, path_pattern: str) -> list[httpx.Request]:
        """Recorded requests whose method matches and whose path matches the regular expression."""
        return [
            exchange.request
            for exchange in self.exchanges
            if exchange.request.method == method and re.fullmatch(path_pattern, exchange.request.url.path)
        ]

    def transport(self) -> httpx.MockTransport:
        """The transport to give :class:`~adapters.jellyfin.client.JellyfinAdapter`."""
        return httpx.MockTransport(self.handle)

    # --- request handling ------------------------------------------------------------------------------------

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request (the MockTransport handler)."""
        fault = self._take_fault(request)
        if fault is not None and fault.error is not None:
            raise fault.error("injected fault", request=request)
        if fault is not None and fault.status is not None:
            response = httpx.Response(fault.status, text="injected fault")
        else:
            response = self._route(request)
        self.exchanges.append(Exchange(request=request, response=response))
        if self.validate:
            self._validate(request, response)
        return response

    def _validate(self, request: httpx.Request, response: httpx.Response) -> None:
        """Raise :class:`SpecViolationError` when the official spec rejects the request or a successful answer
        (the spec of this fake's version; every published one for a version without its own)."""
        versions = (self.version,) if self.version in SPEC_VERSIONS else SPEC_VERSIONS
        for version in versions:
            try:
                validate_exchange(load_spec(version), request, response)
            except Exception as error:
                message = f"Jellyfin {version} spec rejects {request.method} {request.url}: {error}"
                raise SpecViolationError(message) from error

    def _take_fault(self, request: httpx.Request) -> _Fault | None:
        for fault in self._faults:
            if fault.path_contains is None or fault.path_contains in request.url.path:
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _route(self, request: httpx.Request) -> httpx.Response:
        routes: list[tuple[str, str, Callable[..., Any], frozenset[str]]] = [
            ("GET", r"/System/Info", self._system_info, frozenset()),
            ("POST", r"/Users/AuthenticateByName", self._authenticate, frozenset()),
            ("GET", r"/Users", self._get_users, frozenset()),
            ("GET", r"/Library/VirtualFolders", self._virtual_folders, frozenset()),
            ("GET", r"/Items", self._get_items, _ITEMS_PARAMS),
            ("GET", r"/Items/(?P<ident>[^/]+)", self._get_item, frozenset({"userId"})),
            ("POST", r"/Items/(?P<ident>[^/]+)", self._update_item, frozenset()),
            ("GET", r"/Sessions", self._get_sessions, frozenset({"activeWithinSeconds", "controllableByUserId"})),
            ("GET", r"/ScheduledTasks", self._get_tasks, frozenset({"isHidden", "isEnabled"})),
            ("POST", r"/ScheduledTasks/Running/(?P<ident>[^/]+)", self._run_task, frozenset()),
            ("POST", r"/Playlists", self._create_playlist, frozenset()),
            ("POST", r"/Playlists/(?P<ident>[^/]+)", self._update_playlist, frozenset()),
            ("GET", r"/Playlists/(?P<ident>[^/]+)/Items", self._playlist_items, _PLAYLIST_ITEMS_PARAMS),
            ("POST", r"/Playlists/(?P<ident>[^/]+)/Items", self._add_to_playlist, frozenset({"ids", "userId"})),
            ("DELETE", r"/Playlists/(?P<ident>[^/]+)/Items", self._remove_from_playlist, frozenset({"entryIds"})),
        ]
        path = request.url.path
        for method, pattern, handler, allowed in routes:
            match = re.fullmatch(pattern, path)
            if match is None or method != request.method:
                continue
            unknown = {name for name in request.url.params if name not in allowed}
            if self.legacy_auth:
                unknown.discard("api_key")
            unknown.discard("ApiKey")
            if unknown:
                raise UnfakedRequestError(f"{method} {path}: unknown query parameters {sorted(unknown)}")
            try:
                principal = None if handler == self._authenticate else self._require_auth(request)
                body = handler(request, principal, **match.groupdict())
            except _ReplyError as reply:
                if reply.text is not None:
                    return httpx.Response(reply.status, text=reply.text)
                return self._json(reply.status, reply.body) if reply.body is not None else httpx.Response(reply.status)
            return self._json(200, body) if body is not None else httpx.Response(204)
        raise UnfakedRequestError(f"unfaked request {request.method} {request.url}")

    def _json(self, status: int, body: Any) -> httpx.Response:
        payload = _drop_nulls(body)
        if self.dashed_ids:
            payload = _dash_ids(payload)
        return httpx.Response(
            status, content=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
        )

    def _require_auth(self, request: httpx.Request) -> _Principal:
        token = self._token_of(request)
        if token in self.api_keys:
            return _Principal(api_key=True, user_id=None, is_admin=True)
        if token in self.tokens:
            user = self.users[self.tokens[token]]
            return _Principal(api_key=False, user_id=user.user_id, is_admin=user.is_admin)
        raise _ReplyError(401, text="")

    def _token_of(self, request: httpx.Request) -> str | None:
        header = request.headers.get("Authorization", "")
        schemes = ("MediaBrowser ", "Emby ") if self.legacy_auth else ("MediaBrowser ",)
        if header.startswith(schemes):
            fields: dict[str, str] = dict(_HEADER_FIELD.findall(header))
            if fields.get("Token"):
                return fields["Token"]
        if "ApiKey" in request.url.params:
            return str(request.url.params["ApiKey"])
        if self.legacy_auth:
            legacy: str | None = (
                request.headers.get("X-Emby-Token")
                or request.headers.get("X-MediaBrowser-Token")
                or request.url.params.get("api_key")
            )
            return legacy
        return None

    @staticmethod
    def _require_admin(principal: _Principal) -> None:
        if not principal.is_admin:
            raise _ReplyError(403, text="")

    @staticmethod
    def _ids(request: httpx.Request, name: str) -> list[str]:
        values = [part for value in request.url.params.get_list(name) for part in value.split(",") if part]
        try:
            return [normalise_id(value) for value in values]
        except ValueError as error:
            raise _ReplyError(400, {"title": "One or more validation errors occurred.", "status": 400}) from error

    @staticmethod
    def _json_body(request: httpx.Request) -> Json:
        try:
            body = json.loads(request.content)
        except json.JSONDecodeError as error:
            raise _ReplyError(400, {"title": "One or more validation errors occurred.", "status": 400}) from error
        if not isinstance(body, dict):
            raise _ReplyError(400, {"title": "One or more validation errors occurred.", "status": 400})
        return body

    def _user_of_request(self, request: httpx.Request, principal: _Principal) -> str:
        """The user a request acts for: ``userId``, else the caller; an API key without one is Guid.Empty."""
        raw = request.url.params.get("userId")
        if raw:
            user_id = normalise_id(raw)
            if user_id not in self.users:
                raise _ReplyError(404, text="User not found")
            if not principal.is_admin and user_id != principal.user_id:
                raise _ReplyError(403, text="")
            return user_id
        if principal.user_id is None:
            raise _ReplyError(500, text="Error processing request.")  # GetUserById(Guid.Empty) throws
        return principal.user_id

    # --- handlers --------------------------------------------------------------------------------------------

    def _system_info(self, request: httpx.Request, principal: _Principal) -> Json:
        return {
            "ServerName": self.server_name,
            "Version": self.version,
            "ProductName": "Jellyfin Server",
            "OperatingSystem": "Linux",
            "Id": self.server_id,
            "StartupWizardCompleted": True,
            "LocalAddress": "http://172.17.0.2:8096",
        }

    def _user_dto(self, user: FakeUser) -> Json:
        return {
            "Name": user.name,
            "ServerId": self.server_id,
            "Id": user.user_id,
            "HasPassword": True,
            "HasConfiguredPassword": True,
            "HasConfiguredEasyPassword": False,
            "EnableAutoLogin": False,
            "LastLoginDate": dotnet_date(self.now),
            "LastActivityDate": dotnet_date(self.now),
            "Policy": {
                "IsAdministrator": user.is_admin,
                "IsHidden": False,
                "IsDisabled": False,
                "EnableAllFolders": True,
                "EnableContentDeletion": user.is_admin,
                "AuthenticationProviderId": AUTH_PROVIDER,
                "PasswordResetProviderId": RESET_PROVIDER,
            },
        }

    def _authenticate(self, request: httpx.Request, principal: None) -> Json:
        fields = dict(_HEADER_FIELD.findall(request.headers.get("Authorization", "")))
        if not all(fields.get(name) for name in ("Client", "Device", "DeviceId", "Version")):
            raise _ReplyError(400, text="Client, Device, DeviceId and Version are required")
        body = self._json_body(request)
        for user in self.users.values():
            if user.name.casefold() == str(body.get("Username", "")).casefold() and user.password == body.get("Pw"):
                token = _new_id()
                self.tokens[token] = user.user_id
                session = {
                    "PlayState": {"CanSeek": False, "IsPaused": False, "IsMuted": False, "RepeatMode": "RepeatNone"},
                    "Id": _new_id(),
                    "UserId": user.user_id,
                    "UserName": user.name,
                    "Client": fields["Client"],
                    "LastActivityDate": dotnet_date(self.now),
                    "LastPlaybackCheckIn": "0001-01-01T00:00:00.0000000Z",
                    "DeviceName": fields["Device"],
                    "DeviceId": fields["DeviceId"],
                    "ApplicationVersion": fields["Version"],
                    "IsActive": True,
                    "SupportsMediaControl": False,
                    "SupportsRemoteControl": False,
                    "HasCustomDeviceName": False,
                    "ServerId": self.server_id,
                    "PlayableMediaTypes": [],
                    "SupportedCommands": [],
                }
                return {
                    "User": self._user_dto(user),
                    "SessionInfo": session,
                    "AccessToken": token,
                    "ServerId": self.server_id,
                }
        raise _ReplyError(401, text="Error processing request.")

    def _get_users(self, request: httpx.Request, principal: _Principal) -> list[Json]:
        visible = [u for u in self.users.values() if principal.is_admin or u.user_id == principal.user_id]
        return [self._user_dto(user) for user in visible]

    def _virtual_folders(self, request: httpx.Request, principal: _Principal) -> list[Json]:
        self._require_admin(principal)
        return [
            {
                "Name": library.name,
                "Locations": library.locations,
                "CollectionType": library.collection_type,
                "LibraryOptions": {
                    "Enabled": True,
                    "EnableRealtimeMonitor": True,
                    "EnableLUFSScan": library.lufs_scan,
                    "PathInfos": [{"Path": location} for location in library.locations],
                    "SaveLocalMetadata": False,
                    "EnableInternetProviders": True,
                    "PreferNonstandardArtistsTag": False,
                    "UseCustomTagDelimiters": False,
                    "CustomTagDelimiters": ["/", "|", ";", "\\"],
                    "DelimiterWhitelist": [],
                    "TypeOptions": [],
                },
                "ItemId": library.library_id,
                "RefreshStatus": "Idle",
            }
            for library in self.libraries.values()
        ]

    def _shape(self, item: Json, fields: set[str] | None) -> Json:
        """An item as a list query returns it: optional fields only when asked for."""
        if fields is None:
            return copy.deepcopy(item)
        wanted = {alias for name in fields for alias in _FIELD_ALIASES.get(name, (name,))}
        return {
            key: copy.deepcopy(value) for key, value in item.items() if key not in _OPTIONAL_FIELDS or key in wanted
        }

    def _playlist_dto(self, playlist: FakePlaylist) -> Json:
        return {
            "Name": playlist.name,
            "ServerId": self.server_id,
            "Id": playlist.playlist_id,
            "CanDelete": True,
            "SortName": playlist.name.lower(),
            "ChannelId": None,
            "IsFolder": True,
            "Type": "Playlist",
            "ChildCount": len(playlist.entries),
            "LocationType": "FileSystem",
            "MediaType": "Audio",
            "ImageTags": {},
            "BackdropImageTags": [],
        }

    def _get_items(self, request: httpx.Request, principal: _Principal) -> Json:
        params = request.url.params
        fields = set(params.get_list("fields"))
        types = {part for value in params.get_list("includeItemTypes") for part in value.split(",")}
        user_id = self._user_of_request(request, principal) if "userId" in params or not principal.api_key else None
        ids = self._ids(request, "ids")
        candidates: list[tuple[Json, str]] = []
        if not types or "Audio" in types:
            candidates += [(self._shape(item, fields), item_id) for item_id, item in self.items.items()]
        if not types or "Playlist" in types:
            for playlist in self.playlists.values():
                if user_id is None or playlist.owner_id == user_id or playlist.is_public:
                    candidates.append((self._playlist_dto(playlist), playlist.playlist_id))
        if ids:
            candidates = [(dto, item_id) for dto, item_id in candidates if item_id in ids]
        if params.get("parentId"):
            parent = normalise_id(params["parentId"])
            candidates = [(dto, item_id) for dto, item_id in candidates if self._library_of.get(item_id) == parent]
        if params.get("minDateLastSaved"):
            since = datetime.fromisoformat(params["minDateLastSaved"])
            candidates = [
                (dto, item_id) for dto, item_id in candidates if self._saved_at.get(item_id, self.now) >= since
            ]
        sort_by = params.get_list("sortBy")
        for key in reversed(sort_by):
            candidates.sort(key=functools.partial(self._sort_key, key))
        if params.get_list("sortOrder")[:1] == ["Descending"]:
            candidates.reverse()
        start = int(params.get("startIndex", "0"))
        limit = int(params["limit"]) if "limit" in params else len(candidates)
        page = [dto for dto, _ in candidates[start : start + limit]]
        return {"Items": page, "TotalRecordCount": len(candidates), "StartIndex": start}

    def _sort_key(self, key: str, pair: tuple[Json, str]) -> str:
        return self._sort_value(pair[1], key)

    def _sort_value(self, item_id: str, key: str) -> str:
        if item_id in self.items:
            item = self.items[item_id]
            return str(item.get(key, item.get("Name", "")))
        playlist = self.playlists[item_id]
        return playlist.name.lower() if key in ("SortName", "Name") else playlist.playlist_id

    def _get_item(self, request: httpx.Request, principal: _Principal, ident: str) -> Json:
        self._user_of_request(request, principal)
        item_id = self._known_item(ident)
        return copy.deepcopy(self.items[item_id])

    def _known_item(self, ident: str) -> str:
        try:
            item_id = normalise_id(ident)
        except ValueError as error:
            raise _ReplyError(400, text="Invalid id") from error
        if item_id not in self.items:
            raise _ReplyError(404, text="Item not found")
        return item_id

    def _update_item(self, request: httpx.Request, principal: _Principal, ident: str) -> None:
        self._require_admin(principal)
        item_id = self._known_item(ident)
        body = self._json_body(request)
        if body.get("Tags") is None or body.get("ProviderIds") is None:
            raise _ReplyError(500, text="Error processing request.")  # NullReferenceException in UpdateItem
        item = self.items[item_id]
        for key in _UPDATED_FIELDS:
            if body.get(key) is None:
                item.pop(key, None)
            else:
                item[key] = copy.deepcopy(body[key])
        if "Genres" in item:
            item["GenreItems"] = [
                {"Name": genre, "Id": hashlib.md5(genre.encode(), usedforsecurity=False).hexdigest()}
                for genre in item["Genres"]
            ]
        self._saved_at[item_id] = self.now

    def _get_sessions(self, request: httpx.Request, principal: _Principal) -> list[Json]:
        window = request.url.params.get("activeWithinSeconds")
        out: list[Json] = []
        for session in self.sessions:
            if not principal.is_admin and session.user_id != principal.user_id:
                continue
            if window is not None and session.last_activity < self.now - timedelta(seconds=int(window)):
                continue
            user = self.users[session.user_id]
            dto: Json = {
                "PlayState": {
                    "PositionTicks": session.position_ticks,
                    "CanSeek": True,
                    "IsPaused": session.paused,
                    "IsMuted": False,
                    "VolumeLevel": 100,
                    "MediaSourceId": session.item_id,
                    "PlayMethod": "DirectPlay",
                    "RepeatMode": "RepeatNone",
                    "PlaybackOrder": "Default",
                },
                "AdditionalUsers": [],
                "RemoteEndPoint": "192.168.1.20",
                "PlayableMediaTypes": ["Audio", "Video"],
                "Id": session.session_id,
                "UserId": session.user_id,
                "UserName": user.name,
                "Client": session.client,
                "LastActivityDate": dotnet_date(session.last_activity),
                "LastPlaybackCheckIn": dotnet_date(session.last_activity),
                "DeviceName": session.device_name,
                "DeviceId": session.device_id,
                "ApplicationVersion": self.version,
                "IsActive": True,
                "SupportsMediaControl": True,
                "SupportsRemoteControl": True,
                "NowPlayingQueue": [],
                "HasCustomDeviceName": False,
                "ServerId": self.server_id,
                "SupportedCommands": [],
            }
            if session.item_id is not None and session.item_id in self.items:
                playing = copy.deepcopy(self.items[session.item_id])
                for key in _NOT_IN_NOW_PLAYING:
                    playing.pop(key, None)
                dto["NowPlayingItem"] = playing
            out.append(dto)
        return out

    def _get_tasks(self, request: httpx.Request, principal: _Principal) -> list[Json]:
        self._require_admin(principal)
        return [
            {
                "Name": "Scan Media Library",
                "State": "Idle",
                "Id": hashlib.md5(b"RefreshMediaLibraryTask", usedforsecurity=False).hexdigest(),
                "Triggers": [],
                "Description": "Scans your media library for new files and refreshes metadata.",
                "Category": "Library",
                "IsHidden": False,
                "Key": "RefreshLibrary",
            },
            {
                "Name": "Audio Normalization",
                "State": self.normalization_task_state,
                "Id": self.normalization_task_id,
                "Triggers": [{"Type": "IntervalTrigger", "IntervalTicks": 864000000000}],
                "Description": "Scans library for audio normalization data.",
                "Category": "Library",
                "IsHidden": False,
                "Key": const.AUDIO_NORMALIZATION_TASK_KEY,
            },
        ]

    def _run_task(self, request: httpx.Request, principal: _Principal, ident: str) -> None:
        self._require_admin(principal)
        if ident != self.normalization_task_id:
            raise _ReplyError(404, text="Task not found")
        self.normalization_task_state = "Running"
        self.normalization_runs += 1

    def _create_playlist(self, request: httpx.Request, principal: _Principal) -> Json:
        body = self._json_body(request)
        if not isinstance(body.get("Name"), str):
            raise _ReplyError(400, {"title": "One or more validation errors occurred.", "status": 400})
        owner = normalise_id(body["UserId"]) if body.get("UserId") else principal.user_id
        if owner is None:
            raise _ReplyError(500, text="Error processing request.")
        if owner not in self.users:
            raise _ReplyError(404, text="User not found")
        if not principal.is_admin and owner != principal.user_id:
            raise _ReplyError(403, text="")
        item_ids = [normalise_id(item_id) for item_id in body.get("Ids") or []]
        missing = [item_id for item_id in item_ids if item_id not in self.items]
        if missing:
            raise _ReplyError(500, text="Error processing request.")
        playlist_id = self.add_playlist(body["Name"], owner, item_ids, public=bool(body.get("IsPublic")))
        return {"Id": playlist_id}

    def _playlist(self, ident: str) -> FakePlaylist:
        playlist = self.playlists.get(normalise_id(ident))
        if playlist is None:
            raise _ReplyError(404, text="Playlist not found")
        return playlist

    def _require_edit(self, playlist: FakePlaylist, principal: _Principal) -> None:
        if not principal.api_key and principal.user_id != playlist.owner_id:
            raise _ReplyError(403, text="")

    def _update_playlist(self, request: httpx.Request, principal: _Principal, ident: str) -> None:
        if principal.api_key:
            raise _ReplyError(500, text="Error processing request.")  # UpdatePlaylist uses the caller's user id
        playlist = self._playlist(ident)
        self._require_edit(playlist, principal)
        body = self._json_body(request)
        unknown = set(body) - {"Name", "Ids", "Users", "IsPublic"}
        if unknown:
            raise _ReplyError(400, {"title": "One or more validation errors occurred.", "status": 400})
        if body.get("Name") is not None:
            playlist.name = body["Name"]
        if body.get("Ids") is not None:
            playlist.entries = [(_new_id(), normalise_id(item_id)) for item_id in body["Ids"]]
        if body.get("IsPublic") is not None:
            playlist.is_public = bool(body["IsPublic"])

    def _playlist_items(self, request: httpx.Request, principal: _Principal, ident: str) -> Json:
        playlist = self._playlist(ident)
        user_id = self._user_of_request(request, principal)
        if user_id != playlist.owner_id and not playlist.is_public and not principal.is_admin:
            raise _ReplyError(403, text="")
        params = request.url.params
        start = int(params.get("startIndex", "0"))
        limit = int(params["limit"]) if "limit" in params else len(playlist.entries)
        page: list[Json] = []
        for entry_id, item_id in playlist.entries[start : start + limit]:
            dto = self._shape(self.items[item_id], set(params.get_list("fields")))
            dto["PlaylistItemId"] = entry_id
            page.append(dto)
        return {"Items": page, "TotalRecordCount": len(playlist.entries), "StartIndex": start}

    def _add_to_playlist(self, request: httpx.Request, principal: _Principal, ident: str) -> None:
        playlist = self._playlist(ident)
        self._user_of_request(request, principal)
        self._require_edit(playlist, principal)
        playlist.entries += [(_new_id(), item_id) for item_id in self._ids(request, "ids")]

    def _remove_from_playlist(self, request: httpx.Request, principal: _Principal, ident: str) -> None:
        playlist = self._playlist(ident)
        self._require_edit(playlist, principal)
        remove = {part for value in request.url.params.get_list("entryIds") for part in value.split(",")}
        playlist.entries = [(entry_id, item_id) for entry_id, item_id in playlist.entries if entry_id not in remove]


_ITEMS_PARAMS = frozenset(
    {
        "userId",
        "ids",
        "parentId",
        "recursive",
        "includeItemTypes",
        "fields",
        "sortBy",
        "sortOrder",
        "startIndex",
        "limit",
        "enableTotalRecordCount",
        "enableImages",
        "enableUserData",
        "minDateLastSaved",
        "searchTerm",
    }
)
_PLAYLIST_ITEMS_PARAMS = frozenset({"userId", "startIndex", "limit", "fields", "enableImages", "enableUserData"})
