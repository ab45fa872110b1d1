"""The host-adapter contract: what the sidecar needs from a media server, and nothing host-specific.

Every adapter raises only :class:`HostError` subclasses, so callers decide retry versus drop in one place:
:class:`HostUnavailableError` is retried with back-off, :class:`HostAuthError` is fatal and shown in
``/health/ready``, :class:`TrackNotFoundError` drops the work. What differs between hosts is data
(:class:`Capability`), never a comparison of host names outside ``adapters/``.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Protocol, runtime_checkable


class HostKind(enum.StrEnum):
    """Supported media servers; the value is stored with every track."""

    JELLYFIN = "jellyfin"
    NAVIDROME = "navidrome"


class Capability(enum.StrEnum):
    """Semantic differences between hosts."""

    CHANGED_SINCE = "changed_since"  # iter_tracks(changed_since=...) is filtered server-side
    PLAYLIST_WRITE = "playlist_write"  # upsert_playlist works with the configured credentials
    TAG_WRITE = "tag_write"  # write_back stores BPM/key/Camelot on the host item
    LOUDNESS_WRITE = "loudness_write"  # the host API accepts ReplayGain/loudness values (no host does today)
    LOUDNESS_SCAN_TRIGGER = "loudness_scan_trigger"  # the host can be asked to measure loudness itself
    HOST_BPM = "host_bpm"  # HostTrack.host_bpm is reported from the host's own tags
    HOST_REPLAYGAIN = "host_replaygain"  # HostTrack.host_replaygain_track_gain_db is reported
    NOW_PLAYING_PUSH = "now_playing_push"  # the host can push playback events (webhook) besides polling


@dataclass(frozen=True, slots=True, kw_only=True)
class HostTrack:
    """One audio track as the host reports it, with its file mapped onto the sidecar's read-only mount."""

    host_track_id: str  # normalised: Jellyfin ids lower-case without dashes
    title: str
    artist: str | None = None
    album: str | None = None
    album_artist: str | None = None
    genres: tuple[str, ...] = ()
    library_id: str | None = None  # host library / music folder the track belongs to
    duration_s: float | None = None
    host_path: str | None = None  # the path as the host reports it
    local_path: str | None = None  # the same file on the sidecar's mount; None when it cannot be mapped
    path_problem: str | None = None  # why local_path is None, with the fix, e.g. "enable Report Real Path"
    container: str | None = None  # "flac", "mp3", ...
    size_bytes: int | None = None
    musicbrainz_track_id: str | None = None
    changed_at: datetime | None = None
    host_bpm: float | None = None  # BPM from the host's tags (None when unknown or 0)
    host_replaygain_track_gain_db: float | None = None  # track gain the host reports (tags or its own scan)

    def located(self, *, local_path: str | None = None, path_problem: str | None = None) -> HostTrack:
        """This track with its file on the mount, or with why it has none (``dataclasses.replace`` costs several
        times more, once per track of a library listing)."""
        return HostTrack(
            host_track_id=self.host_track_id,
            title=self.title,
            artist=self.artist,
            album=self.album,
            album_artist=self.album_artist,
            genres=self.genres,
            library_id=self.library_id,
            duration_s=self.duration_s,
            host_path=self.host_path,
            local_path=local_path,
            path_problem=path_problem,
            container=self.container,
            size_bytes=self.size_bytes,
            musicbrainz_track_id=self.musicbrainz_track_id,
            changed_at=self.changed_at,
            host_bpm=self.host_bpm,
            host_replaygain_track_gain_db=self.host_replaygain_track_gain_db,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class HostInfo:
    """Identity of the server behind an adapter."""

    kind: HostKind
    server_name: str
    version: str
    details: dict[str, str] = field(default_factory=dict)  # e.g. {"open_subsonic": "true", "auth": "token"}


@dataclass(frozen=True, slots=True, kw_only=True)
class NowPlaying:
    """One user playing one track now. (user, host_track_id, started_at) identifies a play."""

    user: str
    host_track_id: str
    started_at: datetime  # UTC; estimated from the host's "minutes ago" / position when it gives no start
    player: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TrackTags:
    """Analysis values offered to the host. ``None`` means "not known": existing values are removed."""

    bpm: float | None = None
    key: str | None = None  # canonical spelling, e.g. "A minor"
    camelot: str | None = None  # e.g. "8A"
    replaygain_track_gain_db: float | None = None
    loudness_lufs: float | None = None
    labels: tuple[str, ...] = ()  # mood/genre labels to write, e.g. ("genre:rock", "mood:chill"), most probable first
    label_vocabulary: frozenset[str] = frozenset()  # every label the sidecar may write (lower case): those are ours


@dataclass(frozen=True, slots=True, kw_only=True)
class HostUser:
    """A host account whose password the host itself just accepted (web sign-in): its name and the host's id."""

    name: str
    user_id: str


class WriteBackOutcome(enum.StrEnum):
    """What ``write_back`` did."""

    WRITTEN = "written"
    UNCHANGED = "unchanged"  # the host already had exactly these values: no write was sent
    UNSUPPORTED = "unsupported"  # the host's API accepts none of these values


class HostError(Exception):
    """Base of every adapter error."""


class HostUnavailableError(HostError):
    """Network error, timeout or 5xx: retry later."""


class HostAuthError(HostError):
    """Credentials refused (401/403 or the protocol's auth error): fatal until configuration changes."""


class TrackNotFoundError(HostError):
    """The host does not know this track (deleted, or a bad id): drop the work."""


class HostResponseError(HostError):
    """The host answered with something the adapter cannot use (malformed, oversized, or a protocol error)."""


class PathMappingError(HostError):
    """A host path cannot be mapped onto the read-only mount, or the mapping would escape it."""


@runtime_checkable
class HostAdapter(Protocol):
    """What every host adapter provides. Async; one instance per process; close with :meth:`aclose`."""

    kind: ClassVar[HostKind]

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this host (with these credentials) supports."""

    async def ping(self) -> HostInfo:
        """Authenticate and return the server's identity."""

    def iter_tracks(
        self, *, changed_since: datetime | None = None, page_size: int = 500, mapped: bool = True
    ) -> AsyncGenerator[HostTrack, None]:
        """Yield every audio track, paging internally; with ``changed_since`` only tracks changed after it
        (server-side when CHANGED_SINCE is a capability, otherwise every track). ``mapped=False``: tracks come
        with ``host_path`` only (no ``local_path``, no ``path_problem``); :meth:`map_track` maps the ones needed,
        before the listing ends. Close the generator (``aclose``) when stopping early: it may hold a page
        requested ahead."""

    def map_track(self, track: HostTrack) -> HostTrack:
        """``track`` with ``local_path`` on the mount, or with ``path_problem`` saying why not."""

    @property
    def path_mapping(self) -> str:
        """What mapping a host path depends on besides the path (mount, prefixes, kind of server), as text: when it
        changes, the same host path may map elsewhere. Read it once a listing has begun."""

    async def get_track(self, host_track_id: str) -> HostTrack:
        """One track; raises TrackNotFoundError when the host does not know it."""

    async def now_playing(self) -> list[NowPlaying]:
        """Every user's current plays."""

    async def upsert_playlist(self, name: str, host_track_ids: Sequence[str], *, user: str | None = None) -> str:
        """Create the playlist ``name`` or replace its tracks in place (its id is kept); return the host id."""

    async def write_back(self, host_track_id: str, tags: TrackTags) -> WriteBackOutcome:
        """Store what the host's API accepts of ``tags`` on the track, touching nothing else."""

    async def aclose(self) -> None:
        """Close network resources."""
