"""Pure functions from Jellyfin JSON to the adapter contract's types: no I/O, no logging.

Jellyfin writes Guids in the 32-hex "N" form; webhook templates render the dashed "D" form; both are accepted
here and normalised by :func:`normalise_id` (lower case, no dashes). Anything that is not the documented shape
raises :class:`~adapters.base.HostResponseError` saying what was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath

from adapters.base import HostInfo, HostKind, HostResponseError, HostTrack, NowPlaying
from adapters.jellyfin import const

JsonObject = Mapping[str, object]

_GUID = re.compile(r"[0-9a-f]{32}")
_TASK_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
_DOTNET_MIN_YEAR = 1


def normalise_id(value: object) -> str:
    """A Jellyfin id in the normalised form: 32 lower-case hex digits, no dashes.

    Accepts the "N" form (``"4e7a0c6b..."``), the dashed "D" form and braces (``"{...}"``), in any case.
    Raises ``ValueError`` naming the value for anything else (including non-strings).
    """
    if not isinstance(value, str):
        raise ValueError(f"a Jellyfin id must be a string, got {type(value).__name__}")
    text = value.strip().strip("{}").replace("-", "").lower()
    if not _GUID.fullmatch(text):
        raise ValueError(f"{value!r} is not a Jellyfin id (32 hex digits, dashes optional)")
    return text


def dashed_id(item_id: str) -> str:
    """The dashed "D" form (``8-4-4-4-12``) of a normalised id, as webhook templates render it."""
    text = normalise_id(item_id)
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def parse_datetime(value: object) -> datetime | None:
    """A Jellyfin date (``2024-05-01T12:34:56.1234567Z``) as an aware UTC datetime.

    ``None``, an empty string and .NET's ``DateTime.MinValue`` (``0001-01-01T00:00:00``) give ``None``. A value
    without an offset is taken as UTC (Jellyfin stores UTC). Raises ``HostResponseError`` on anything else.
    """
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise HostResponseError(f"expected a date string, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as error:
        raise HostResponseError(f"{value!r} is not an ISO 8601 date") from error
    if parsed.year <= _DOTNET_MIN_YEAR:
        return None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


# --- small typed accessors -------------------------------------------------------------------------------------


def as_object(value: object, what: str) -> JsonObject:
    """``value`` as a JSON object; raises ``HostResponseError`` naming ``what`` otherwise."""
    if not isinstance(value, Mapping):
        raise HostResponseError(f"{what}: expected a JSON object, got {type(value).__name__}")
    return value


def as_list(value: object, what: str) -> list[object]:
    """``value`` as a JSON array; raises ``HostResponseError`` naming ``what`` otherwise."""
    if not isinstance(value, list):
        raise HostResponseError(f"{what}: expected a JSON array, got {type(value).__name__}")
    return value


def _opt_str(raw: JsonObject, key: str) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise HostResponseError(f"{key}: expected a string, got {type(value).__name__}")
    return value or None


def _opt_number(raw: JsonObject, key: str) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise HostResponseError(f"{key}: expected a number, got {type(value).__name__}")
    return float(value)


def _opt_int(raw: JsonObject, key: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise HostResponseError(f"{key}: expected an integer, got {type(value).__name__}")
    return value


def _strings(raw: JsonObject, key: str) -> tuple[str, ...]:
    """A list of strings, de-duplicated in the host's order; a missing or null list is empty."""
    value = raw.get(key)
    if value is None:
        return ()
    out: list[str] = []
    for entry in as_list(value, key):
        if not isinstance(entry, str):
            raise HostResponseError(f"{key}: expected strings, got {type(entry).__name__}")
        if entry and entry not in out:
            out.append(entry)
    return tuple(out)


def _id(raw: JsonObject, key: str, what: str) -> str:
    try:
        return normalise_id(raw.get(key))
    except ValueError as error:
        raise HostResponseError(f"{what}: {key} {error}") from error


# --- libraries and paths ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class MusicRoot:
    """One Jellyfin music library: its id, name and folders as the Jellyfin host sees them."""

    library_id: str
    name: str
    locations: tuple[str, ...]
    lufs_scan_enabled: bool  # LibraryOptions.EnableLUFSScan: the "Audio Normalization" task measures it


def parse_virtual_folders(raw: object) -> list[MusicRoot]:
    """Music libraries from ``GET /Library/VirtualFolders``; other collection types are left out."""
    roots: list[MusicRoot] = []
    for index, entry in enumerate(as_list(raw, "VirtualFolders")):
        folder = as_object(entry, f"VirtualFolders[{index}]")
        if (_opt_str(folder, "CollectionType") or "").lower() != const.MUSIC_COLLECTION_TYPE:
            continue
        options = folder.get("LibraryOptions")
        lufs = isinstance(options, Mapping) and options.get("EnableLUFSScan") is True
        roots.append(
            MusicRoot(
                library_id=_id(folder, "ItemId", f"VirtualFolders[{index}]"),
                name=_opt_str(folder, "Name") or "",
                locations=_strings(folder, "Locations"),
                lufs_scan_enabled=lufs,
            )
        )
    return roots


def _comparable(path: str) -> str:
    """Forward slashes, no trailing slash; Windows paths (``D:\\``) compare case-insensitively."""
    text = path.replace("\\", "/").rstrip("/")
    return text.lower() if len(text) >= 2 and text[1] == ":" else text


def library_for_path(roots: Sequence[MusicRoot], host_path: str | None) -> str | None:
    """The id of the music library whose folder holds ``host_path`` (longest folder wins), or ``None``."""
    if not host_path:
        return None
    path = _comparable(host_path)
    best: tuple[int, str] | None = None
    for root in roots:
        for location in root.locations:
            prefix = _comparable(location)
            if prefix and (path == prefix or path.startswith(prefix + "/")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), root.library_id)
    return best[1] if best else None


def automatic_path_prefixes(roots: Sequence[MusicRoot], mount: Path) -> list[tuple[str, str]]:
    """(host folder, mount folder) pairs mapping every music library folder onto ``mount``.

    One folder in all music libraries maps onto ``mount`` itself. Several folders map onto sub-directories of
    ``mount`` named after each folder's last component (``/data/music`` -> ``<mount>/music``); a last component
    shared by two folders is ambiguous and left out, so its tracks report a path problem until SONANTICA_PATH_MAP
    names them.
    """
    locations = [location for root in roots for location in root.locations if location]
    if len(locations) == 1:
        return [(locations[0], str(mount))]
    names: dict[str, list[str]] = {}
    for location in locations:
        name = PurePosixPath(location.replace("\\", "/").rstrip("/")).name
        names.setdefault(name, []).append(location)
    return [(group[0], str(mount / name)) for name, group in names.items() if name and len(group) == 1]


# --- tracks ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemsPage:
    """One page of ``GET /Items``: the raw items and the server's total (``None`` when not counted)."""

    items: list[JsonObject]
    total_record_count: int | None


def parse_items_page(raw: object) -> ItemsPage:
    """A ``BaseItemDtoQueryResult`` (``{"Items": [...], "TotalRecordCount": n, "StartIndex": i}``)."""
    result = as_object(raw, "items query result")
    items = [as_object(item, f"Items[{i}]") for i, item in enumerate(as_list(result.get("Items", []), "Items"))]
    return ItemsPage(items=items, total_record_count=_opt_int(result, "TotalRecordCount"))


def _container(raw: JsonObject, host_path: str | None) -> str | None:
    container = _opt_str(raw, "Container")
    if container:
        return container.split(",")[0].strip().lower() or None
    if host_path:
        suffix = PurePosixPath(host_path.replace("\\", "/")).suffix
        return suffix[1:].lower() or None
    return None


def _size_bytes(raw: JsonObject) -> int | None:
    sources = raw.get("MediaSources")
    if not sources:
        return None
    first = as_object(as_list(sources, "MediaSources")[0], "MediaSources[0]")
    return _opt_int(first, "Size")


def _musicbrainz_track_id(raw: JsonObject) -> str | None:
    providers = raw.get("ProviderIds")
    if not providers:
        return None
    for key, value in as_object(providers, "ProviderIds").items():
        if key.lower() == const.MUSICBRAINZ_TRACK_PROVIDER and isinstance(value, str) and value:
            return value
    return None


def parse_track(raw: JsonObject, *, library_id: str | None = None) -> HostTrack:
    """A ``BaseItemDto`` of type ``Audio`` as a :class:`HostTrack` (``local_path`` is left to the caller).

    ``changed_at`` is ``DateCreated``: the DTO carries no modification date (``DateLastSaved`` is only a filter).
    ``host_replaygain_track_gain_db`` is ``NormalizationGain`` (from REPLAYGAIN_TRACK_GAIN tags or Jellyfin's own
    loudness scan). Raises ``HostResponseError`` for another item type or a malformed item.
    """
    item_id = _id(raw, "Id", "item")
    item_type = _opt_str(raw, "Type")
    if item_type is not None and item_type != const.AUDIO_ITEM_TYPE:
        raise HostResponseError(f"item {item_id} is a {item_type}, not an audio track")
    host_path = _opt_str(raw, "Path")
    artists = _strings(raw, "Artists")
    album_artist = _opt_str(raw, "AlbumArtist")
    ticks = _opt_number(raw, "RunTimeTicks")
    return HostTrack(
        host_track_id=item_id,
        title=_opt_str(raw, "Name") or (PurePosixPath(host_path.replace("\\", "/")).stem if host_path else item_id),
        artist=", ".join(artists) if artists else album_artist,
        album=_opt_str(raw, "Album"),
        album_artist=album_artist,
        genres=_strings(raw, "Genres"),
        library_id=library_id,
        duration_s=ticks / const.TICKS_PER_SECOND if ticks is not None else None,
        host_path=host_path,
        container=_container(raw, host_path),
        size_bytes=_size_bytes(raw),
        musicbrainz_track_id=_musicbrainz_track_id(raw),
        changed_at=parse_datetime(raw.get("DateCreated")),
        host_replaygain_track_gain_db=_opt_number(raw, "NormalizationGain"),
    )


def is_audio_item(raw: JsonObject) -> bool:
    """True for an item of type ``Audio``."""
    return raw.get("Type") == const.AUDIO_ITEM_TYPE


# --- server, users, sessions -----------------------------------------------------------------------------------


def parse_system_info(raw: object, *, details: Mapping[str, str]) -> HostInfo:
    """``GET /System/Info`` as :class:`HostInfo` (``details`` adds what the client knows, e.g. the auth mode)."""
    info = as_object(raw, "System/Info")
    extra = dict(details)
    server_id = _opt_str(info, "Id")
    if server_id:
        extra["server_id"] = server_id.replace("-", "").lower()
    product = _opt_str(info, "ProductName")
    if product:
        extra["product"] = product
    return HostInfo(
        kind=HostKind.JELLYFIN,
        server_name=_opt_str(info, "ServerName") or "Jellyfin",
        version=_opt_str(info, "Version") or "unknown",
        details=extra,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Login:
    """What ``POST /Users/AuthenticateByName`` returns that matters: a user token and the user's id."""

    access_token: str = field(repr=False)
    user_id: str
    user_name: str


def parse_authentication(raw: object) -> Login:
    """An ``AuthenticationResult``; raises ``HostResponseError`` when the token or user is missing."""
    result = as_object(raw, "AuthenticationResult")
    token = _opt_str(result, "AccessToken")
    if not token:
        raise HostResponseError("AuthenticationResult has no AccessToken")
    user = as_object(result.get("User"), "AuthenticationResult.User")
    return Login(access_token=token, user_id=_id(user, "Id", "User"), user_name=_opt_str(user, "Name") or "")


@dataclass(frozen=True, slots=True, kw_only=True)
class JellyfinUser:
    """One account from ``GET /Users``."""

    user_id: str
    name: str
    is_admin: bool


def parse_users(raw: object) -> list[JellyfinUser]:
    """``GET /Users`` in the server's order."""
    users: list[JellyfinUser] = []
    for index, entry in enumerate(as_list(raw, "Users")):
        user = as_object(entry, f"Users[{index}]")
        policy = user.get("Policy")
        is_admin = isinstance(policy, Mapping) and policy.get("IsAdministrator") is True
        user_id = _id(user, "Id", f"Users[{index}]")
        users.append(JellyfinUser(user_id=user_id, name=_opt_str(user, "Name") or "", is_admin=is_admin))
    return users


def parse_now_playing(raw: object) -> list[NowPlaying]:
    """Audio being played in ``GET /Sessions`` (paused plays count; video and idle sessions do not).

    ``started_at`` is estimated as the last playback check-in (else the last activity) minus the position,
    rounded to whole seconds: it identifies a play only to within a few seconds, and a pause moves it.
    """
    plays: list[NowPlaying] = []
    for index, entry in enumerate(as_list(raw, "Sessions")):
        session = as_object(entry, f"Sessions[{index}]")
        item = session.get("NowPlayingItem")
        if not isinstance(item, Mapping) or not is_audio_item(item):
            continue
        user = _opt_str(session, "UserName") or _opt_str(session, "UserId")
        if not user:
            continue
        seen = parse_datetime(session.get("LastPlaybackCheckIn")) or parse_datetime(session.get("LastActivityDate"))
        state = session.get("PlayState")
        ticks = _opt_number(state, "PositionTicks") if isinstance(state, Mapping) else None
        position_s = (ticks or 0.0) / const.TICKS_PER_SECOND
        started = (seen or datetime.now(UTC)) - timedelta(seconds=position_s)
        client = _opt_str(session, "Client")
        device = _opt_str(session, "DeviceName")
        player = " on ".join(part for part in (client, device) if part) or None
        plays.append(
            NowPlaying(
                user=user,
                host_track_id=_id(item, "Id", f"Sessions[{index}].NowPlayingItem"),
                started_at=started.replace(microsecond=0),
                player=player,
            )
        )
    return plays


# --- playlists and tasks ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaylistEntry:
    """One entry of a playlist: the entry id (``PlaylistItemId``, used to remove it) and the track's id."""

    entry_id: str
    item_id: str


def parse_playlist_entries(page: ItemsPage) -> list[PlaylistEntry]:
    """Entries of ``GET /Playlists/{id}/Items``, in playlist order."""
    entries: list[PlaylistEntry] = []
    for index, item in enumerate(page.items):
        entry_id = _opt_str(item, "PlaylistItemId")
        if not entry_id:
            raise HostResponseError(f"playlist item {index} has no PlaylistItemId")
        entries.append(PlaylistEntry(entry_id=entry_id, item_id=_id(item, "Id", f"playlist item {index}")))
    return entries


def find_playlist(page: ItemsPage, name: str) -> list[str]:
    """Ids of the playlists in ``page`` named exactly ``name`` (case-sensitive), in the server's order."""
    return [
        _id(item, "Id", "playlist")
        for item in page.items
        if item.get("Type") == const.PLAYLIST_ITEM_TYPE and item.get("Name") == name
    ]


def parse_created_playlist(raw: object) -> str:
    """The new playlist's id from ``POST /Playlists`` (``{"Id": "..."}``)."""
    return _id(as_object(raw, "PlaylistCreationResult"), "Id", "PlaylistCreationResult")


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledTask:
    """A scheduled task's id (for ``POST /ScheduledTasks/Running/{id}``) and state (Idle, Running, Cancelling)."""

    task_id: str
    state: str


def find_scheduled_task(raw: object, key: str) -> ScheduledTask | None:
    """The task whose ``Key`` is ``key`` in ``GET /ScheduledTasks``, or ``None`` (e.g. before 10.9)."""
    for index, entry in enumerate(as_list(raw, "ScheduledTasks")):
        task = as_object(entry, f"ScheduledTasks[{index}]")
        if task.get("Key") == key:
            task_id = _opt_str(task, "Id")
            if not task_id or not _TASK_ID.fullmatch(task_id):
                raise HostResponseError(f"scheduled task {key} has no usable Id: {task_id!r}")
            return ScheduledTask(task_id=task_id, state=_opt_str(task, "State") or "Idle")
    return None
