"""Pure functions from Subsonic / OpenSubsonic JSON answers to adapter values; no I/O.

Each function takes the decoded JSON of one answer and raises :class:`~adapters.base.HostResponseError` (or
:class:`SubsonicApiError`, its subclass carrying the protocol's error code) when the shape is unusable.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from adapters.base import HostInfo, HostKind, HostResponseError, HostTrack, NowPlaying
from adapters.navidrome import const

JsonObject = dict[str, Any]


class SubsonicApiError(HostResponseError):
    """The server answered ``status: "failed"``; ``code`` is the Subsonic error code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Subsonic error {code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerIdentity:
    """What ``ping`` says about the server."""

    api_version: str
    server_type: str | None  # "navidrome", ... (OpenSubsonic servers only)
    server_version: str | None
    open_subsonic: bool

    @property
    def is_navidrome(self) -> bool:
        """True when the server says it is Navidrome (its relative paths are then made up)."""
        return (self.server_type or "").lower() == const.SERVER_TYPE_NAVIDROME


def envelope(payload: object, what: str) -> JsonObject:
    """The ``subsonic-response`` object of an answer; raises :class:`SubsonicApiError` for ``status: failed``."""
    if not isinstance(payload, dict) or not isinstance(payload.get(const.RESPONSE_KEY), dict):
        raise HostResponseError(f"the answer to {what} is not a Subsonic JSON response")
    body: JsonObject = payload[const.RESPONSE_KEY]
    status = body.get("status")
    if status == "ok":
        return body
    if status == "failed":
        error = body.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            return_code = code if isinstance(code, int) and not isinstance(code, bool) else const.ERROR_GENERIC
            raise SubsonicApiError(return_code, str(message)[: const.MAX_ERROR_TEXT_CHARS] if message else "")
        raise SubsonicApiError(const.ERROR_GENERIC, "failed without an error object")
    raise HostResponseError(f"the answer to {what} has an unknown status {str(status)[:40]!r}")


def parse_identity(body: JsonObject) -> ServerIdentity:
    """Server identity from a ``ping`` answer (``type``/``serverVersion``/``openSubsonic`` only on OpenSubsonic)."""
    version = body.get("version")
    if not isinstance(version, str):
        raise HostResponseError("ping answer has no API version")
    server_type = body.get("type")
    server_version = body.get("serverVersion")
    return ServerIdentity(
        api_version=version,
        server_type=server_type if isinstance(server_type, str) else None,
        server_version=server_version if isinstance(server_version, str) else None,
        open_subsonic=body.get("openSubsonic") is True,
    )


def host_info(identity: ServerIdentity, *, auth: str) -> HostInfo:
    """:class:`HostInfo` for the identity; ``auth`` is "token" or "password"."""
    return HostInfo(
        kind=HostKind.NAVIDROME,
        server_name=identity.server_type or "subsonic",
        version=identity.server_version or identity.api_version,
        details={
            "api_version": identity.api_version,
            "open_subsonic": "true" if identity.open_subsonic else "false",
            "auth": auth,
        },
    )


def _object(value: object, what: str) -> JsonObject:
    if not isinstance(value, dict):
        raise HostResponseError(f"{what} is not a JSON object")
    return value


def _list_of_objects(value: object, what: str) -> list[JsonObject]:
    if value is None:
        return []
    if isinstance(value, dict):  # some servers collapse one-element lists
        return [value]
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise HostResponseError(f"{what} is not a list of objects")
    return value


def _text(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def created_at(value: object) -> datetime | None:
    """A song's ``created`` time (ISO 8601, ``Z`` or an offset; UTC when it has none), ``None`` when unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _genres(child: JsonObject) -> tuple[str, ...]:
    names: list[str] = []
    genres = child.get("genres")
    if isinstance(genres, list):
        names = [g["name"] for g in genres if isinstance(g, dict) and isinstance(g.get("name"), str) and g["name"]]
    if not names and isinstance(child.get("genre"), str) and child["genre"]:
        names = [child["genre"]]
    return tuple(names)


def parse_child(value: object) -> HostTrack:
    """A song (Subsonic ``Child``) as a :class:`HostTrack` with ``host_path`` but no ``local_path`` yet.

    ``bpm`` 0 (Navidrome's "unknown") becomes None; ``replayGain.trackGain`` is in dB.
    """
    child = _object(value, "a song entry")
    track_id = _text(child.get("id"))
    if track_id is None:
        raise HostResponseError("a song entry has no id")
    bpm = _number(child.get("bpm"))
    replay_gain = child.get("replayGain")
    track_gain_db = _number(replay_gain.get("trackGain")) if isinstance(replay_gain, dict) else None
    duration_s = _number(child.get("duration"))
    size = child.get("size")
    path = child.get("path")
    return HostTrack(
        host_track_id=track_id,
        title=_text(child.get("title")) or track_id,
        artist=_text(child.get("artist")),
        album=_text(child.get("album")),
        album_artist=_text(child.get("displayAlbumArtist")),
        genres=_genres(child),
        duration_s=duration_s,
        host_path=path if isinstance(path, str) and path else None,
        container=_text(child.get("suffix")),
        size_bytes=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        musicbrainz_track_id=_text(child.get("musicBrainzId")),
        changed_at=created_at(child.get("created")),
        host_bpm=bpm if bpm else None,
        host_replaygain_track_gain_db=track_gain_db,
    )


def is_audio(value: object) -> bool:
    """False for entries that are directories or videos."""
    if not isinstance(value, dict) or value.get("isDir") is True or value.get("isVideo") is True:
        return False
    kind = value.get("type")
    return kind in (None, "music")


def search_songs(body: JsonObject) -> list[JsonObject]:
    """The songs of a ``search3`` answer (an absent ``song`` list means none)."""
    result = _object(body.get("searchResult3", {}), "searchResult3")
    return _list_of_objects(result.get("song"), "searchResult3.song")


def song(body: JsonObject) -> JsonObject:
    """The song of a ``getSong`` answer."""
    return _object(body.get("song"), "getSong's song")


def parse_now_playing(body: JsonObject, *, now: datetime) -> list[NowPlaying]:
    """Every entry of ``getNowPlaying``; ``started_at`` = ``now`` minus ``minutesAgo`` (int on Navidrome, float on
    supysonic), truncated to the minute so that repeated polls of one play give the same value."""
    playing = _object(body.get("nowPlaying", {}), "nowPlaying")
    plays: list[NowPlaying] = []
    for entry in _list_of_objects(playing.get("entry"), "nowPlaying.entry"):
        track_id = _text(entry.get("id"))
        user = _text(entry.get("username"))
        if track_id is None or user is None or not is_audio(entry):
            continue
        minutes_ago = _number(entry.get("minutesAgo")) or 0.0
        started = (now - timedelta(minutes=max(minutes_ago, 0.0))).astimezone(UTC)
        player = _text(entry.get("playerName")) or _text(entry.get("playerId"))
        plays.append(
            NowPlaying(
                user=user, host_track_id=track_id, started_at=started.replace(second=0, microsecond=0), player=player
            )
        )
    return plays


def find_playlist(body: JsonObject, name: str, *, owner: str) -> str | None:
    """Id of the playlist called ``name`` owned by ``owner`` in a ``getPlaylists`` answer (newest id on ties)."""
    playlists = _object(body.get("playlists", {}), "playlists")
    matches = [
        _text(item.get("id"))
        for item in _list_of_objects(playlists.get("playlist"), "playlists.playlist")
        if item.get("name") == name and item.get("owner", owner) == owner
    ]
    ids = [match for match in matches if match is not None]
    return ids[-1] if ids else None


def playlist_song_ids(body: JsonObject) -> list[str]:
    """Song ids of a ``getPlaylist`` answer, in order."""
    playlist = _object(body.get("playlist"), "playlist")
    ids = [_text(entry.get("id")) for entry in _list_of_objects(playlist.get("entry"), "playlist.entry")]
    return [song_id for song_id in ids if song_id is not None]


def created_playlist_id(body: JsonObject) -> str | None:
    """The id in a ``createPlaylist`` answer (API 1.14+); None when the server answers an empty ok."""
    playlist = body.get("playlist")
    return _text(playlist.get("id")) if isinstance(playlist, dict) else None


def is_fake_path(path: str, *, navidrome: bool) -> bool:
    """True for Navidrome's made-up ``Artist/Album/NN - Title.ext`` paths (Report Real Path off).

    A real Navidrome path is absolute, so on Navidrome every relative path is made up; other servers (supysonic)
    report real paths relative to their music folder.
    """
    windows_absolute = len(path) >= 2 and path[1] == ":" and path[0].isalpha()
    return navidrome and not path.startswith(("/", "\\")) and not windows_absolute
