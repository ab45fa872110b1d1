"""``search3`` pages decoded by msgspec straight into typed structs: the fast path of a library listing.

A well-formed ``ok`` answer is decoded in C into :class:`Song` structs holding only the fields the sidecar reads
(no dicts, no per-field type checks in Python). Anything else (a failed status, an unexpected type in any field, a
JSON extension such as ``NaN``) makes :func:`decode_page` return ``None``, and the caller takes the lenient path
through :func:`adapters.navidrome.parsers.parse_child`, which gives the same tracks or the same error.
"""

from __future__ import annotations

from dataclasses import dataclass

import msgspec

from adapters.base import HostTrack
from adapters.navidrome import const
from adapters.navidrome.parsers import created_at


class _Genre(msgspec.Struct, frozen=True):
    name: str | None = None


class _ReplayGain(msgspec.Struct, frozen=True, rename="camel"):
    track_gain: float | None = None  # dB


class Song(msgspec.Struct, frozen=True, rename="camel"):
    """One Subsonic ``Child`` as the listing reads it (other fields are skipped while decoding)."""

    id: str
    title: str | None = None
    artist: str | None = None
    album: str | None = None
    display_album_artist: str | None = None
    genre: str | None = None
    genres: list[_Genre] | None = None
    duration: float | None = None  # seconds
    path: str | None = None
    suffix: str | None = None
    size: int | None = None  # bytes
    music_brainz_id: str | None = None
    created: str | None = None
    bpm: float | None = None
    replay_gain: _ReplayGain | None = None
    is_dir: bool | None = None
    is_video: bool | None = None
    type: str | None = None

    @property
    def is_audio(self) -> bool:
        """False for directories and videos (as :func:`~adapters.navidrome.parsers.is_audio`)."""
        return self.is_dir is not True and self.is_video is not True and self.type in (None, "music")


class _SearchResult(msgspec.Struct, frozen=True):
    song: list[Song] | Song | None = None


class _Body(msgspec.Struct, frozen=True, rename="camel"):
    status: str | None = None
    search_result3: _SearchResult = msgspec.field(default_factory=_SearchResult)


class _Answer(msgspec.Struct, frozen=True):
    body: _Body = msgspec.field(name=const.RESPONSE_KEY)


_DECODER = msgspec.json.Decoder(_Answer)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """The entries of one ``search3`` page: ``listed`` counts every entry (audio or not), for paging."""

    listed: int
    songs: list[Song]


def decode_page(content: bytes) -> SearchPage | None:
    """The audio songs of a well-formed ``ok`` ``search3`` answer, ``None`` for any other answer."""
    try:
        body = _DECODER.decode(content).body
    except msgspec.MsgspecError:
        return None
    if body.status != "ok":
        return None
    found = body.search_result3.song
    entries = [] if found is None else [found] if isinstance(found, Song) else found
    if any(not entry.id for entry in entries):
        return None
    return SearchPage(len(entries), [entry for entry in entries if entry.is_audio])


def song_track(song: Song, *, local_path: str | None, path_problem: str | None) -> HostTrack:
    """``song`` as a :class:`HostTrack` (the values of ``parse_child``), with its file on the mount or why not."""
    genres = tuple(genre.name for genre in song.genres if genre.name) if song.genres else ()
    gain = song.replay_gain
    size = song.size
    return HostTrack(
        host_track_id=song.id,
        title=song.title or song.id,
        artist=song.artist or None,
        album=song.album or None,
        album_artist=song.display_album_artist or None,
        genres=genres or ((song.genre,) if song.genre else ()),
        duration_s=song.duration,
        host_path=song.path or None,
        local_path=local_path,
        path_problem=path_problem,
        container=song.suffix or None,
        size_bytes=size if size is not None and size >= 0 else None,
        musicbrainz_track_id=song.music_brainz_id or None,
        changed_at=created_at(song.created),
        host_bpm=song.bpm or None,
        host_replaygain_track_gain_db=None if gain is None else gain.track_gain,
    )
