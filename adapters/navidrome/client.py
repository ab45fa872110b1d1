"""The Navidrome host adapter over the Subsonic / OpenSubsonic REST API: HTTP, auth, paging, retries, errors.

Every request is a form POST to ``/rest/<endpoint>`` (Navidrome copies form fields into the query from 0.53 on,
supysonic reads both), so the credentials never appear in a URL, in httpx's request log or in a proxy's access
log, and long playlists fit. Auth is the salted token (``u``, ``t``, ``s``); when the server answers that it
cannot check tokens (error 41/42, or 10 from servers that require ``p``), the adapter switches to
``p=enc:<hex>`` for the rest of its life. Parsing lives in :mod:`adapters.navidrome.parsers`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections.abc import AsyncGenerator, Callable, Sequence
from datetime import UTC, datetime
from typing import ClassVar, TypeVar

import httpx

from adapters.base import (
    Capability,
    HostAuthError,
    HostInfo,
    HostKind,
    HostResponseError,
    HostTrack,
    NowPlaying,
    TrackNotFoundError,
    TrackTags,
    WriteBackOutcome,
)
from adapters.http import HttpAdapter, Params, decode_json, fetch, new_client, raise_for_error_status, retrying
from adapters.navidrome import const
from adapters.navidrome.config import NavidromeConfig
from adapters.navidrome.parsers import (
    JsonObject,
    ServerIdentity,
    SubsonicApiError,
    created_playlist_id,
    envelope,
    find_playlist,
    host_info,
    is_audio,
    is_fake_path,
    parse_child,
    parse_identity,
    parse_now_playing,
    playlist_song_ids,
    search_songs,
    song,
)
from adapters.navidrome.search import SearchPage, Song, decode_page, song_track
from adapters.pathmap import PathMapper, locate

log = logging.getLogger(__name__)

_HOST = "the server"

T = TypeVar("T")


def _json_body(content: bytes, endpoint: str) -> JsonObject:
    """The ``subsonic-response`` body of an answer (raises for a failed status or an unusable answer)."""
    return envelope(decode_json(content, what=endpoint, host=_HOST), endpoint)


def _search_answer(content: bytes, endpoint: str) -> SearchPage | list[JsonObject]:
    """A ``search3`` answer through msgspec's typed fast path, or its song entries as JSON objects when the fast
    path does not take it (then parsed leniently, or refused with the same error as any answer)."""
    page = decode_page(content)
    return page if page is not None else search_songs(_json_body(content, endpoint))


def _discard(task: asyncio.Task[object]) -> None:
    """Cancel a page fetched ahead that nobody will read, and retrieve its outcome (no "never retrieved" log)."""
    task.cancel()
    task.add_done_callback(lambda done: done.cancelled() or done.exception())


class NavidromeAdapter(HttpAdapter):
    """:class:`~adapters.base.HostAdapter` for Navidrome 0.53+ and other Subsonic servers (supysonic).

    Parameters
    ----------
    config
        Server, credentials, mount and behaviour.
    transport
        An httpx transport to use instead of the network (tests pass a fake server's ``MockTransport``).

    Capabilities: PLAYLIST_WRITE always; HOST_BPM and HOST_REPLAYGAIN once :meth:`ping` found an OpenSubsonic
    server (its songs carry ``bpm`` and ``replayGain``). No Subsonic server accepts tags, so :meth:`write_back`
    returns UNSUPPORTED without a request.
    """

    kind: ClassVar[HostKind] = HostKind.NAVIDROME

    def __init__(self, config: NavidromeConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._client = new_client(config.url.rstrip("/") + "/rest/", config, transport)
        self._mapper = PathMapper(config.library_dir, config.path_map) if config.library_dir is not None else None
        self._use_token = True
        self._auth_confirmed = False
        self._auth_lock = asyncio.Lock()
        self._identity: ServerIdentity | None = None
        self._empty_query: str | None = None  # the search3 query that lists everything on this server

    def __repr__(self) -> str:
        return f"NavidromeAdapter(url={self._config.url!r}, username={self._config.username!r})"

    @property
    def capabilities(self) -> frozenset[Capability]:
        """PLAYLIST_WRITE, plus HOST_BPM and HOST_REPLAYGAIN on OpenSubsonic servers (known after :meth:`ping`)."""
        found = {Capability.PLAYLIST_WRITE}
        if self._identity is not None and self._identity.open_subsonic:
            found |= {Capability.HOST_BPM, Capability.HOST_REPLAYGAIN}
        return frozenset(found)

    @property
    def auth_method(self) -> str:
        """ "token" (salted md5) or "password" (``p=enc:``, after the server refused tokens)."""
        return "token" if self._use_token else "password"

    async def ping(self) -> HostInfo:
        """Authenticate and return the server's identity (type and version on OpenSubsonic servers)."""
        self._identity = parse_identity(await self._call("ping"))
        return host_info(self._identity, auth=self.auth_method)

    async def iter_tracks(
        self, *, changed_since: datetime | None = None, page_size: int = const.DEFAULT_PAGE_SIZE, mapped: bool = True
    ) -> AsyncGenerator[HostTrack, None]:
        """Every song, through ``search3`` pages of ``page_size``; ``changed_since`` is ignored (the Subsonic API
        cannot filter by change, so every track is yielded). A track whose file cannot be mapped is yielded with
        ``path_problem`` set (``mapped=False``: not mapped, see :meth:`map_track`); entries that are not audio are
        skipped.

        The next page is requested while the caller handles the current one (one page ahead, in order); its error
        is raised once the current page has been yielded, and closing the iterator early cancels it.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        identity = await self._ensure_identity()
        if self._mapper is not None:
            self._mapper.forget_directories()
        query = self._empty_query if self._empty_query is not None else ('""' if identity.open_subsonic else "")
        listed, tracks = await self._search_page(query, page_size, 0, mapped)
        if not listed and query and self._empty_query is None:
            log.info('search3 with query="" listed nothing; retrying with an empty query')
            query = ""
            listed, tracks = await self._search_page(query, page_size, 0, mapped)
        self._empty_query = query
        offset = 0
        while True:
            ahead = None
            if listed >= page_size:
                ahead = asyncio.ensure_future(self._search_page(query, page_size, offset + page_size, mapped))
            try:
                for track in tracks:
                    yield track
            except BaseException:
                if ahead is not None:
                    _discard(ahead)
                raise
            if ahead is None:
                return
            listed, tracks = await ahead
            offset += page_size

    async def get_track(self, host_track_id: str) -> HostTrack:
        """One song by id; raises TrackNotFoundError when the server does not know it."""
        if not host_track_id:
            raise TrackNotFoundError("empty track id")
        await self._ensure_identity()
        body = await self._call("getSong", [("id", host_track_id)], missing=f"track {host_track_id!r}")
        return self.map_track(parse_child(song(body)))

    async def now_playing(self) -> list[NowPlaying]:
        """Every user's current plays (``getNowPlaying`` lists all users, not only the caller)."""
        body = await self._call("getNowPlaying")
        return parse_now_playing(body, now=datetime.now(UTC))

    async def find_playlist(self, name: str) -> str | None:
        """Id of the configured user's playlist called ``name``, or None."""
        body = await self._call("getPlaylists")
        return find_playlist(body, name, owner=self._config.username)

    async def playlist_tracks(self, playlist_id: str) -> list[str]:
        """Song ids of a playlist, in order."""
        body = await self._call("getPlaylist", [("id", playlist_id)], missing=f"playlist {playlist_id!r}")
        return playlist_song_ids(body)

    async def upsert_playlist(self, name: str, host_track_ids: Sequence[str], *, user: str | None = None) -> str:
        """Create the playlist ``name`` of the configured user, or replace its tracks in one ``createPlaylist``
        with ``playlistId`` (atomic on Navidrome and supysonic; the id is kept). Nothing is sent when the playlist
        already holds exactly these tracks. ``user`` may only name the configured user: Subsonic playlists
        belong to the account that creates them."""
        if not name:
            raise ValueError("a playlist needs a name")
        if user is not None and user != self._config.username:
            raise ValueError(f"Subsonic playlists belong to the logged-in user {self._config.username!r}, not {user!r}")
        songs = [("songId", track_id) for track_id in host_track_ids]
        existing = await self.find_playlist(name)
        if existing is not None:
            if await self.playlist_tracks(existing) == list(host_track_ids):
                return existing
            await self._call("createPlaylist", [("playlistId", existing), *songs])
            return existing
        body = await self._call("createPlaylist", [("name", name), *songs], idempotent=False)
        created = created_playlist_id(body) or await self.find_playlist(name)
        if created is None:
            raise HostResponseError(f"createPlaylist for {name!r} succeeded but the playlist is not listed")
        return created

    async def write_back(self, host_track_id: str, tags: TrackTags) -> WriteBackOutcome:
        """UNSUPPORTED: the Subsonic API (Navidrome included) has no call that stores tags, BPM or ReplayGain."""
        return WriteBackOutcome.UNSUPPORTED

    def map_track(self, track: HostTrack) -> HostTrack:
        """``track`` with ``local_path`` on the mount, or with ``path_problem`` saying why not and how to fix it."""
        local_path, path_problem = self._locate(track.host_path)
        return track.located(local_path=local_path, path_problem=path_problem)

    @property
    def path_mapping(self) -> str:
        """The mount, the prefixes and whether the server is Navidrome (whose relative paths are made up)."""
        navidrome = self._identity is not None and self._identity.is_navidrome
        prefixes = None if self._mapper is None else self._mapper.prefixes
        return repr((str(self._config.library_dir), prefixes, navidrome))

    def _locate(self, host_path: str | None) -> tuple[str | None, str | None]:
        """``(local_path, None)`` on the mount, or ``(None, path_problem)`` with the fix."""
        navidrome = self._identity is not None and self._identity.is_navidrome
        if host_path is not None and is_fake_path(host_path, navidrome=navidrome):
            return None, const.REPORT_REAL_PATH_FIX
        return locate(host_path, self._mapper, host=_HOST)

    def _song_track(self, entry: Song, mapped: bool) -> HostTrack:
        if not mapped:
            return song_track(entry, local_path=None, path_problem=None)
        local_path, path_problem = self._locate(entry.path or None)
        return song_track(entry, local_path=local_path, path_problem=path_problem)

    async def _ensure_identity(self) -> ServerIdentity:
        if self._identity is None:
            await self.ping()
        assert self._identity is not None
        return self._identity

    async def _search_page(self, query: str, page_size: int, offset: int, mapped: bool) -> tuple[int, list[HostTrack]]:
        """``(entries listed, audio tracks, mapped onto the mount when mapped)`` of one ``search3`` page."""
        params = [
            ("query", query),
            ("artistCount", "0"),
            ("albumCount", "0"),
            ("songCount", str(page_size)),
            ("songOffset", str(offset)),
        ]
        answer = await self._call_decoded("search3", params, _search_answer)
        if isinstance(answer, SearchPage):
            return answer.listed, [self._song_track(entry, mapped) for entry in answer.songs]
        tracks = [parse_child(entry) for entry in answer if is_audio(entry)]
        return len(answer), [self.map_track(track) for track in tracks] if mapped else tracks

    async def _call(
        self, endpoint: str, params: Params = (), *, missing: str | None = None, idempotent: bool = True
    ) -> JsonObject:
        """The ``subsonic-response`` body of ``endpoint``; protocol errors become HostError subclasses."""
        return await self._call_decoded(endpoint, params, _json_body, missing=missing, idempotent=idempotent)

    async def _call_decoded(
        self,
        endpoint: str,
        params: Params,
        decode: Callable[[bytes, str], T],
        *,
        missing: str | None = None,
        idempotent: bool = True,
    ) -> T:
        """``decode(content, endpoint)`` of the answer to ``endpoint``; protocol errors become HostError
        subclasses."""
        if not self._auth_confirmed:
            async with self._auth_lock:
                return await self._call_checked(endpoint, params, decode, missing, idempotent)
        return await self._call_checked(endpoint, params, decode, missing, idempotent)

    async def _call_checked(
        self, endpoint: str, params: Params, decode: Callable[[bytes, str], T], missing: str | None, idempotent: bool
    ) -> T:
        try:
            body = decode(await self._request(endpoint, params, idempotent), endpoint)
        except SubsonicApiError as error:
            if self._use_token and not self._auth_confirmed and error.code in const.TOKEN_FALLBACK_ERRORS:
                log.info("the server refused token authentication (error %d); using the password form", error.code)
                self._use_token = False
                return await self._call_checked(endpoint, params, decode, missing, idempotent)
            raise self._translate(error, endpoint, missing) from None
        self._auth_confirmed = True
        return body

    def _translate(self, error: SubsonicApiError, endpoint: str, missing: str | None) -> Exception:
        if error.code in const.AUTH_ERRORS:
            return HostAuthError(
                f"the server refused user {self._config.username!r} ({error.code}: {self._redact(error.message)}) "
                f"for {endpoint}: check SONANTICA_NAVIDROME__USERNAME and SONANTICA_NAVIDROME__PASSWORD"
            )
        if error.code == const.ERROR_NOT_FOUND and missing is not None:
            return TrackNotFoundError(f"the server does not know {missing}")
        return HostResponseError(f"{endpoint} failed with Subsonic error {error.code}: {self._redact(error.message)}")

    async def _request(self, endpoint: str, params: Params, idempotent: bool) -> bytes:
        policy = retrying(self._config, idempotent=idempotent, label="Subsonic", log=log)
        content: bytes = await policy(self._send_once, endpoint, params)
        return content

    def _auth_params(self) -> list[tuple[str, str]]:
        common = [
            ("u", self._config.username),
            ("v", const.API_VERSION),
            ("c", self._config.client_name),
            ("f", "json"),
        ]
        if self._use_token:
            salt = secrets.token_hex(const.SALT_BYTES // 2)
            token = hashlib.md5((self._config.password + salt).encode(), usedforsecurity=False).hexdigest()
            return [*common, ("t", token), ("s", salt)]
        return [*common, ("p", "enc:" + self._config.password.encode().hex())]

    async def _send_once(self, endpoint: str, params: Params) -> bytes:
        form: dict[str, list[str]] = {}
        for key, value in [*self._auth_params(), *params]:
            form.setdefault(key, []).append(value)
        request = self._client.build_request("POST", endpoint, data=form)
        status, content = await fetch(
            self._client, request, what=endpoint, host=_HOST, max_bytes=self._config.max_response_bytes, log=log
        )
        self._raise_for_status(status, content, endpoint)
        return content

    def _raise_for_status(self, status: int, content: bytes, endpoint: str) -> None:
        if 200 <= status < 300:
            return
        if status in (httpx.codes.UNAUTHORIZED, httpx.codes.FORBIDDEN):
            raise HostAuthError(f"the server denied {endpoint} (HTTP {status}): check the Navidrome credentials")
        if status == httpx.codes.NOT_FOUND:
            raise HostResponseError(
                f"the server has no {endpoint} endpoint (HTTP 404): check SONANTICA_NAVIDROME__URL ({self._config.url})"
            )
        detail = self._redact(content[: const.MAX_ERROR_TEXT_CHARS].decode("utf-8", "replace")).strip()
        raise_for_error_status(status, what=endpoint, host=_HOST, detail=detail)

    def _redact(self, text: str) -> str:
        for secret in (self._config.password, self._config.password.encode().hex()):
            text = text.replace(secret, "***")
        return text
