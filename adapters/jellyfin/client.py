"""The Jellyfin host adapter: HTTP only (auth, paging, retries, error mapping); parsing lives in parsers.py.

Every request carries ``Authorization: MediaBrowser Client=..., Device=..., DeviceId=..., Version=...,
Token="..."``, the only scheme Jellyfin 12.0 accepts by default (hosts.md §1.1). Array parameters are sent in
the repeated form (``fields=Path&fields=Genres``) that the official OpenAPI specs declare.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from datetime import UTC, datetime
from typing import ClassVar

import httpx

from adapters.base import (
    Capability,
    HostAuthError,
    HostError,
    HostInfo,
    HostKind,
    HostResponseError,
    HostTrack,
    HostUser,
    NowPlaying,
    TrackNotFoundError,
    TrackTags,
    WriteBackOutcome,
)
from adapters.http import HttpAdapter, Params, decode_json, fetch, new_client, raise_for_error_status, retrying
from adapters.jellyfin import const
from adapters.jellyfin.config import JellyfinConfig
from adapters.jellyfin.parsers import (
    ItemsPage,
    JellyfinUser,
    JsonObject,
    Login,
    MusicRoot,
    PlaylistEntry,
    as_object,
    automatic_path_prefixes,
    find_playlist,
    find_scheduled_task,
    is_audio_item,
    library_for_path,
    normalise_id,
    parse_authentication,
    parse_created_playlist,
    parse_items_page,
    parse_now_playing,
    parse_playlist_entries,
    parse_system_info,
    parse_track,
    parse_users,
    parse_virtual_folders,
)
from adapters.jellyfin.tags import plan_tag_update
from adapters.pathmap import PathMapper, with_local_path

log = logging.getLogger(__name__)

_HOST = "Jellyfin"


class _UnauthorizedError(HostAuthError):
    """HTTP 401: the credential is unknown or expired (a user token can be renewed by logging in again)."""


def _batches(values: Sequence[str], size: int) -> list[Sequence[str]]:
    return [values[start : start + size] for start in range(0, len(values), size)]


def _iso_utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("changed_since must be timezone-aware (UTC)")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class JellyfinAdapter(HttpAdapter):
    """:class:`~adapters.base.HostAdapter` for Jellyfin 10.9 to 12.0.

    Parameters
    ----------
    config
        Server, credentials, mount and behaviour.
    transport
        An httpx transport to use instead of the network (tests pass a fake host's ``MockTransport``).

    Besides the protocol it offers :meth:`trigger_loudness_scan` (Jellyfin's own "Audio Normalization" task,
    the only way to get ReplayGain into Jellyfin: its API cannot set ``NormalizationGain``).
    """

    kind: ClassVar[HostKind] = HostKind.JELLYFIN

    def __init__(self, config: JellyfinConfig, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self._config = config
        self._client = new_client(config.url, config, transport)
        self._login: Login | None = None
        self._login_lock = asyncio.Lock()
        self._owner_id: str | None = None
        self._roots: list[MusicRoot] | None = None
        self._mapper: PathMapper | None = None

    @property
    def capabilities(self) -> frozenset[Capability]:
        """Server-side ``changed_since``, playlists, tags (unless disabled), loudness scan trigger, NormalizationGain
        as the host's ReplayGain, and webhook pushes (the Webhook plugin)."""
        caps = {
            Capability.CHANGED_SINCE,
            Capability.PLAYLIST_WRITE,
            Capability.LOUDNESS_SCAN_TRIGGER,
            Capability.HOST_REPLAYGAIN,
            Capability.NOW_PLAYING_PUSH,
        }
        if self._config.write_tags:
            caps.add(Capability.TAG_WRITE)
        return frozenset(caps)

    # --- protocol ------------------------------------------------------------------------------------------------

    async def login(self) -> HostUser:
        """Log in with the configured user name and password (``AuthenticateByName``) and return the user.

        Raises ``HostAuthError`` when Jellyfin refuses the password (and ``ValueError`` with an API key config)."""
        if self._config.uses_api_key:
            raise ValueError("login() needs a username and password config, not an API key")
        login = await self._ensure_login()
        return HostUser(name=login.user_name or str(self._config.username), user_id=login.user_id)

    async def ping(self) -> HostInfo:
        """``GET /System/Info`` (authenticated): server name, version and id, and how the adapter is logged in."""
        raw = await self._get_json(const.SYSTEM_INFO)
        details = {"auth": "api_key" if self._config.uses_api_key else "user"}
        if self._login is not None:
            details["user"] = self._login.user_name
        return parse_system_info(raw, details=details)

    async def iter_tracks(
        self, *, changed_since: datetime | None = None, page_size: int = const.DEFAULT_PAGE_SIZE, mapped: bool = True
    ) -> AsyncGenerator[HostTrack, None]:
        """Every audio track of every music library, paged with ``GET /Items`` and mapped onto the mount
        (``mapped=False``: not mapped, see :meth:`map_track`).

        ``changed_since`` (timezone-aware) becomes ``minDateLastSaved``: Jellyfin returns tracks whose metadata
        was saved since then (our own tag write-back counts as a save). A track that cannot be parsed is logged
        and skipped; a track whose file cannot be mapped is yielded with ``path_problem`` set. With
        ``trigger_normalization`` configured, a full pass that met tracks without ``NormalizationGain`` ends by
        starting Jellyfin's loudness scan.
        """
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        since = _iso_utc(changed_since) if changed_since is not None else None
        roots = await self._refresh_libraries()
        if not roots:
            log.warning("Jellyfin has no music library (Dashboard -> Libraries, content type Music)")
        seen: set[str] = set()
        without_gain = 0
        for root in roots:
            start = 0
            while True:
                page = await self._items_page(root.library_id, start=start, limit=page_size, since=since)
                for raw in page.items:
                    track = self._track_or_none(raw, library_id=root.library_id, mapped=mapped)
                    if track is None or track.host_track_id in seen:
                        continue
                    seen.add(track.host_track_id)
                    without_gain += track.host_replaygain_track_gain_db is None
                    yield track
                start += len(page.items)
                total = page.total_record_count
                if len(page.items) < page_size or (total is not None and start >= total):
                    break
        if self._config.trigger_normalization and without_gain:
            log.info("%d Jellyfin tracks have no NormalizationGain; starting Jellyfin's loudness scan", without_gain)
            try:
                await self.trigger_loudness_scan()
            except HostError as error:
                log.warning("could not start Jellyfin's loudness scan: %s", error)

    async def get_track(self, host_track_id: str) -> HostTrack:
        """One track by id (``GET /Items?ids=``, which needs no user even with an API key)."""
        item_id = self._track_id(host_track_id)
        roots = await self._libraries()
        params = [("ids", item_id), *self._track_fields()]
        page = parse_items_page(await self._get_json(const.ITEMS, params))
        if not page.items:
            raise TrackNotFoundError(f"Jellyfin has no item {item_id}")
        raw = page.items[0]
        if not is_audio_item(raw):
            raise TrackNotFoundError(f"Jellyfin item {item_id} is a {raw.get('Type')}, not an audio track")
        host_path = raw.get("Path")
        track = parse_track(raw, library_id=library_for_path(roots, host_path if isinstance(host_path, str) else None))
        return with_local_path(track, self._mapper, host=_HOST)

    async def now_playing(self) -> list[NowPlaying]:
        """Audio playing in sessions active in the last 16 minutes (``GET /Sessions``; no plugin needed)."""
        params = [("activeWithinSeconds", str(const.SESSIONS_ACTIVE_WITHIN_S))]
        return parse_now_playing(await self._get_json(const.SESSIONS, params))

    async def write_back(self, host_track_id: str, tags: TrackTags) -> WriteBackOutcome:
        """Store BPM, key, Camelot and ReplayGain as item Tags (format in :mod:`adapters.jellyfin.tags`).

        Reads the full item (``GET /Items/{id}?userId=``), replaces only our tags, locks the Tags field and
        posts the whole item back (``POST /Items/{id}`` replaces every field). Returns ``UNCHANGED`` without
        writing when the item already carries exactly these tags, ``UNSUPPORTED`` when tag writing is disabled.
        Raises ``ValueError`` for values that cannot be written.
        """
        if not self._config.write_tags:
            return WriteBackOutcome.UNSUPPORTED
        item_id = self._track_id(host_track_id)
        user_id = await self._default_user_id()
        path = const.ITEM.format(item_id=item_id)
        missing = f"Jellyfin has no item {item_id}"
        raw = as_object(await self._get_json(path, [("userId", user_id)], missing=missing), "item")
        if not is_audio_item(raw):
            raise TrackNotFoundError(f"Jellyfin item {item_id} is a {raw.get('Type')}, not an audio track")
        updated = plan_tag_update(raw, tags)
        if updated is None:
            return WriteBackOutcome.UNCHANGED
        await self._call("POST", path, body=updated, missing=missing)
        log.debug("wrote tags %s to Jellyfin item %s", updated["Tags"], item_id)
        return WriteBackOutcome.WRITTEN

    async def upsert_playlist(self, name: str, host_track_ids: Sequence[str], *, user: str | None = None) -> str:
        """Create the playlist ``name`` or replace its tracks in place; return its id.

        The owner is ``user`` (an id or a user name) or else the configured/default user. Creation is one
        ``POST /Playlists``. A replacement is one ``POST /Playlists/{id}`` when logged in as the owner; with an API
        key (which is not a user, so Jellyfin refuses that call) it removes every entry and adds the tracks in
        batches. Nothing is written when the playlist already holds exactly these tracks. Duplicate ids are
        dropped (first occurrence kept).
        """
        if not name.strip():
            raise ValueError("a playlist needs a name")
        item_ids = list(dict.fromkeys(self._track_id(track_id) for track_id in host_track_ids))
        owner = await self._resolve_user(user) if user else await self._default_user_id()
        matches = await self._find_playlists(name, owner)
        if not matches:
            body = {"Name": name, "Ids": item_ids, "UserId": owner, "MediaType": "Audio", "IsPublic": False}
            created = await self._call("POST", const.PLAYLISTS, body=body, idempotent=False)
            playlist_id = parse_created_playlist(decode_json(created, what="POST " + const.PLAYLISTS, host=_HOST))
            log.info("created Jellyfin playlist %r (%d tracks) for user %s", name, len(item_ids), owner)
            return playlist_id
        if len(matches) > 1:
            log.warning("user %s has %d Jellyfin playlists named %r; replacing the first", owner, len(matches), name)
        playlist_id = matches[0]
        entries = await self._playlist_entries(playlist_id, owner)
        if [entry.item_id for entry in entries] == item_ids:
            return playlist_id
        if self._login is not None and self._login.user_id == owner:
            await self._call("POST", const.PLAYLIST.format(playlist_id=playlist_id), body={"Ids": item_ids})
        else:
            await self._replace_entries(playlist_id, owner, entries, item_ids)
        log.info("replaced Jellyfin playlist %r (%d tracks) for user %s", name, len(item_ids), owner)
        return playlist_id

    # --- Jellyfin-only -----------------------------------------------------------------------------------------

    async def trigger_loudness_scan(self) -> bool:
        """Start Jellyfin's "Audio Normalization" task (Key ``AudioNormalization``, Jellyfin 10.9+).

        It measures tracks without NormalizationGain in libraries with "LUFS scan" enabled. Returns False (and
        logs why) when the task is missing or already running. Needs an administrator or an API key.
        """
        roots = await self._libraries()
        if roots and not any(root.lufs_scan_enabled for root in roots):
            log.warning("no Jellyfin music library has 'LUFS scan' enabled; the loudness task will skip them")
        task = find_scheduled_task(await self._get_json(const.SCHEDULED_TASKS), const.AUDIO_NORMALIZATION_TASK_KEY)
        if task is None:
            log.warning("Jellyfin has no Audio Normalization task (it needs Jellyfin 10.9 or later)")
            return False
        if task.state != "Idle":
            log.info("Jellyfin's Audio Normalization task is already %s", task.state.lower())
            return False
        await self._call("POST", const.RUN_SCHEDULED_TASK.format(task_id=task.task_id))
        return True

    # --- library helpers -------------------------------------------------------------------------------------

    def _track_fields(self) -> list[tuple[str, str]]:
        return [
            *(("fields", field) for field in const.TRACK_FIELDS),
            ("enableImages", "false"),
            ("enableUserData", "false"),
        ]

    async def _items_page(self, parent_id: str, *, start: int, limit: int, since: str | None) -> ItemsPage:
        params: list[tuple[str, str]] = [
            ("parentId", parent_id),
            ("recursive", "true"),
            ("includeItemTypes", const.AUDIO_ITEM_TYPE),
            *self._track_fields(),
            *(("sortBy", key) for key in const.TRACK_SORT_BY),
            *(("sortOrder", "Ascending") for _ in const.TRACK_SORT_BY),
            ("startIndex", str(start)),
            ("limit", str(limit)),
            ("enableTotalRecordCount", "true"),
        ]
        if since is not None:
            params.append(("minDateLastSaved", since))
        return parse_items_page(await self._get_json(const.ITEMS, params))

    def map_track(self, track: HostTrack) -> HostTrack:
        """``track`` with ``local_path`` on the mount, or with ``path_problem`` saying why not."""
        return with_local_path(track, self._mapper, host=_HOST)

    @property
    def path_mapping(self) -> str:
        """The mount and the prefixes (the libraries' folders, or ``path_map``) as of the last listing."""
        prefixes = None if self._mapper is None else self._mapper.prefixes
        return repr((str(self._config.library_dir), prefixes))

    def _track_or_none(self, item: JsonObject, *, library_id: str, mapped: bool) -> HostTrack | None:
        if not is_audio_item(item):
            return None
        try:
            track = parse_track(item, library_id=library_id)
        except HostResponseError as error:
            log.warning("skipping a Jellyfin item that cannot be read (id %r): %s", item.get("Id"), error)
            return None
        return self.map_track(track) if mapped else track

    async def _refresh_libraries(self) -> list[MusicRoot]:
        roots = parse_virtual_folders(await self._get_json(const.VIRTUAL_FOLDERS))
        mount = self._config.library_dir
        mapper = None
        if mount is not None:
            prefixes = list(self._config.path_map) or automatic_path_prefixes(roots, mount)
            mapper = PathMapper(mount, prefixes)
        self._roots, self._mapper = roots, mapper
        return roots

    async def _libraries(self) -> list[MusicRoot]:
        if self._roots is None:
            return await self._refresh_libraries()
        return self._roots

    @staticmethod
    def _track_id(host_track_id: str) -> str:
        try:
            return normalise_id(host_track_id)
        except ValueError as error:
            raise TrackNotFoundError(str(error)) from error

    # --- users -----------------------------------------------------------------------------------------------

    async def _default_user_id(self) -> str:
        """The configured user, else the logged-in user, else (API key) the first administrator."""
        if self._owner_id is None:
            if self._config.user_id:
                self._owner_id = await self._resolve_user(self._config.user_id)
            elif not self._config.uses_api_key:
                self._owner_id = (await self._ensure_login()).user_id
            else:
                admins = [user for user in await self._users() if user.is_admin]
                if not admins:
                    raise HostResponseError("Jellyfin has no administrator; set SONANTICA_JELLYFIN__USER_ID")
                self._owner_id = admins[0].user_id
        return self._owner_id

    async def _resolve_user(self, user: str) -> str:
        """A user id from an id (dashed or not) or a user name (case-insensitive)."""
        try:
            return normalise_id(user)
        except ValueError:
            pass
        for candidate in await self._users():
            if candidate.name.casefold() == user.casefold():
                return candidate.user_id
        raise HostResponseError(f"Jellyfin has no user named {user!r}")

    async def _users(self) -> list[JellyfinUser]:
        return parse_users(await self._get_json(const.USERS))

    # --- playlists ---------------------------------------------------------------------------------------------

    async def _find_playlists(self, name: str, owner: str) -> list[str]:
        matches: list[str] = []
        start = 0
        while True:
            params = [
                ("userId", owner),
                ("recursive", "true"),
                ("includeItemTypes", const.PLAYLIST_ITEM_TYPE),
                ("sortBy", "SortName"),
                ("sortOrder", "Ascending"),
                ("startIndex", str(start)),
                ("limit", str(const.DEFAULT_PAGE_SIZE)),
                ("enableTotalRecordCount", "true"),
                ("enableImages", "false"),
                ("enableUserData", "false"),
            ]
            page = parse_items_page(await self._get_json(const.ITEMS, params))
            matches.extend(find_playlist(page, name))
            start += len(page.items)
            total = page.total_record_count
            if len(page.items) < const.DEFAULT_PAGE_SIZE or (total is not None and start >= total):
                return matches

    async def _playlist_entries(self, playlist_id: str, owner: str) -> list[PlaylistEntry]:
        entries: list[PlaylistEntry] = []
        path = const.PLAYLIST_ITEMS.format(playlist_id=playlist_id)
        while True:
            params = [
                ("userId", owner),
                ("startIndex", str(len(entries))),
                ("limit", str(const.DEFAULT_PAGE_SIZE)),
                ("enableImages", "false"),
                ("enableUserData", "false"),
            ]
            page = parse_items_page(await self._get_json(path, params))
            entries.extend(parse_playlist_entries(page))
            total = page.total_record_count
            if len(page.items) < const.DEFAULT_PAGE_SIZE or (total is not None and len(entries) >= total):
                return entries

    async def _replace_entries(
        self, playlist_id: str, owner: str, entries: Sequence[PlaylistEntry], item_ids: Sequence[str]
    ) -> None:
        path = const.PLAYLIST_ITEMS.format(playlist_id=playlist_id)
        size = self._config.playlist_batch_size
        for batch in _batches([entry.entry_id for entry in entries], size):
            await self._call("DELETE", path, params=[("entryIds", entry_id) for entry_id in batch])
        for batch in _batches(item_ids, size):
            params = [*(("ids", item_id) for item_id in batch), ("userId", owner)]
            await self._call("POST", path, params=params, idempotent=False)

    # --- HTTP --------------------------------------------------------------------------------------------------

    async def _token(self) -> str:
        if self._config.api_key:
            return self._config.api_key
        return (await self._ensure_login()).access_token

    async def _ensure_login(self) -> Login:
        async with self._login_lock:
            if self._login is None:
                self._login = await self._authenticate()
            return self._login

    async def _authenticate(self) -> Login:
        body = {"Username": self._config.username, "Pw": self._config.password}
        try:
            content = await self._send("POST", const.AUTHENTICATE_BY_NAME, (), body, None, True, None)
        except HostAuthError as error:
            raise HostAuthError(
                f"Jellyfin refused the login of user {self._config.username!r}: check SONANTICA_JELLYFIN__USERNAME "
                "and SONANTICA_JELLYFIN__PASSWORD"
            ) from error
        login = parse_authentication(decode_json(content, what="POST " + const.AUTHENTICATE_BY_NAME, host=_HOST))
        log.info("logged in to Jellyfin as %s", login.user_name or login.user_id)
        return login

    async def _get_json(self, path: str, params: Params = (), *, missing: str | None = None) -> object:
        content = await self._call("GET", path, params=params, missing=missing)
        return decode_json(content, what=f"GET {path}", host=_HOST)

    async def _call(
        self,
        method: str,
        path: str,
        *,
        params: Params = (),
        body: object = None,
        idempotent: bool = True,
        missing: str | None = None,
    ) -> bytes:
        """Send one request with retries; log in again once when a user token is refused (expired, revoked)."""
        token = await self._token()
        try:
            return await self._send(method, path, params, body, token, idempotent, missing)
        except _UnauthorizedError:
            if self._config.uses_api_key:
                raise
            async with self._login_lock:
                if self._login is not None and self._login.access_token == token:
                    self._login = None
            log.info("Jellyfin refused the user token; logging in again")
            token = await self._token()
            return await self._send(method, path, params, body, token, idempotent, missing)

    async def _send(
        self,
        method: str,
        path: str,
        params: Params,
        body: object,
        token: str | None,
        idempotent: bool,
        missing: str | None,
    ) -> bytes:
        policy = retrying(self._config, idempotent=idempotent, label=_HOST, log=log)
        return await policy(self._send_once, method, path, params, body, token, missing)

    async def _send_once(
        self, method: str, path: str, params: Params, body: object, token: str | None, missing: str | None
    ) -> bytes:
        what = f"{method} {path}"
        request = self._client.build_request(
            method,
            path,
            params=list(params),
            json=body,
            headers={"Authorization": self._authorization(token)},
        )
        status, content = await fetch(
            self._client, request, what=what, host=_HOST, max_bytes=self._config.max_response_bytes, log=log
        )
        self._raise_for_status(status, content, what, missing)
        return content

    def _raise_for_status(self, status: int, content: bytes, what: str, missing: str | None) -> None:
        if 200 <= status < 300:
            return
        credential = "API key" if self._config.uses_api_key else "user token"
        if status == httpx.codes.UNAUTHORIZED:
            raise _UnauthorizedError(f"Jellyfin refused the {credential} (HTTP 401) for {what}")
        if status == httpx.codes.FORBIDDEN:
            raise HostAuthError(
                f"Jellyfin denied {what} (HTTP 403): the account needs to be an administrator, or use an API key"
            )
        if status == httpx.codes.NOT_FOUND and missing is not None:
            raise TrackNotFoundError(missing)
        detail = self._redact(content[: const.MAX_ERROR_TEXT_CHARS].decode("utf-8", "replace")).strip()
        raise_for_error_status(status, what=what, host=_HOST, detail=detail)

    def _authorization(self, token: str | None) -> str:
        parts = [
            f'Client="{const.CLIENT_NAME}"',
            f'Device="{const.DEVICE_NAME}"',
            f'DeviceId="{self._config.device_id}"',
            f'Version="{const.CLIENT_VERSION}"',
        ]
        if token:
            parts.append(f'Token="{token}"')
        return f"{const.AUTH_SCHEME} {', '.join(parts)}"

    def _redact(self, text: str) -> str:
        secrets = [self._config.api_key, self._config.password, self._login.access_token if self._login else None]
        for secret in secrets:
            if secret:
                text = text.replace(secret, "***")
        return text
