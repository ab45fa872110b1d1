"""Generated library-scale hosts for ``httpx.MockTransport``: songs made on the fly from their number, none held.

:class:`GeneratedSubsonic` (Navidrome-shaped ``search3`` pages) and :class:`GeneratedJellyfin` (``/Items`` pages
in the shape of tests/fixtures/jellyfin) serve ``count`` songs behind the real adapters, for the scale benchmark
(``scripts/bench_scale.py``) and the 10k sync tests. Song ``g`` (1 to ``count``) lives at
``<root>/a{g // 1000}/{g}.flac``; :func:`make_mount` makes those files. A song in ``changed`` reports a new size
(and on Jellyfin a new save time); a song in ``removed`` is not listed. Both refuse any request they do not answer.
Neither sends the host's BPM, and only Jellyfin a ReplayGain (``NormalizationGain``), as the recorded responses do.
It lives under tests/ because only adapters/*/client.py and adapters/http.py may import httpx in production code.
"""

from __future__ import annotations

import abc
import os
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs

import httpx

SUBSONIC_ROOT = "/music"
JELLYFIN_ROOT = "/data/music"
JELLYFIN_LIBRARY_ID = "7e64e319657a9516ec78490da03edccb"
_CREATED = "2024-03-10T12:34:56.789012345Z"


class UnansweredRequestError(AssertionError):
    """The generated host was asked something it does not serve."""


def song_path(root: str | os.PathLike[str], g: int) -> str:
    """The path of song ``g`` under ``root`` (the host's music root or the sidecar's mount)."""
    return f"{root}/a{g // 1000}/{g}.flac"


def make_mount(root: Path, count: int) -> None:
    """``root/a{g // 1000}/{g}.flac`` for g in 1..count: hard links to one small file per folder (stat-able, no
    data; ext4 allows 65 000 links per file)."""
    for g in range(1, count + 1):
        folder = root / f"a{g // 1000}"
        source = folder / "source.bin"
        if not source.exists():
            folder.mkdir(parents=True, exist_ok=True)
            source.write_bytes(b"fLaC")
        target = folder / f"{g}.flac"
        if not target.exists():
            os.link(source, target)


def rewrite_file(root: Path, g: int) -> None:
    """Give song ``g`` a new file on the mount (own inode): new size and mtime."""
    target = Path(song_path(root, g))
    target.unlink()
    target.write_bytes(b"fLaC changed")


def moved_path(root: str | os.PathLike[str], g: int) -> str:
    """Where song ``g`` lives once moved (:func:`move_file`)."""
    return f"{root}/a{g // 1000}/{g}-moved.flac"


def move_file(root: Path, g: int) -> None:
    """Rename song ``g``'s file to :func:`moved_path` (same inode, size and mtime)."""
    Path(song_path(root, g)).rename(moved_path(root, g))


class _Generated(abc.ABC):
    def __init__(self, count: int) -> None:
        self.count = count
        self.changed: set[int] = set()
        self.removed: frozenset[int] = frozenset()  # songs not listed (their numbers stay theirs)
        self.requests = 0
        self.cpu_s = 0.0  # CPU time spent answering (making and encoding pages), seconds
        self._present: tuple[frozenset[int], list[int]] = (frozenset(), [])  # the listing for those removed

    def listed(self, offset: int, size: int) -> list[int]:
        """The songs at positions ``offset`` to ``offset + size - 1`` of the listing."""
        if not self.removed:
            return list(range(offset + 1, min(self.count, offset + size) + 1))
        if self._present[0] != self.removed:
            self._present = (self.removed, [g for g in range(1, self.count + 1) if g not in self.removed])
        return self._present[1][offset : offset + size]

    def total(self) -> int:
        """How many songs are listed."""
        return self.count - len(self.removed)

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one adapter request (the transport's handler), counting the CPU time it takes."""
        started = time.thread_time()
        try:
            return self._answer(request)
        finally:
            self.cpu_s += time.thread_time() - started

    @abc.abstractmethod
    def _answer(self, request: httpx.Request) -> httpx.Response: ...


class GeneratedSubsonic(_Generated):
    """A Navidrome-shaped Subsonic server: ``ping`` and ``search3`` pages in the recorded shape
    (tests/fixtures/navidrome/search3_bpm_replaygain_real_path.json, without ``bpm`` and ``replayGain``). Song
    ``g`` has id ``s{g}``, path ``/music/a{g // 1000}/{g}.flac`` and size ``1000 + g``, plus 1 when changed."""

    def song(self, g: int) -> dict[str, object]:
        version = 1 if g in self.changed else 0
        return {
            "id": f"s{g}", "parent": f"al{g % 10000}", "isDir": False, "title": f"Song {g}",
            "album": f"Album {g % 10000}", "artist": f"Artist {g % 5000}", "track": g % 12 + 1, "year": 2000 + g % 25,
            "genre": "Ballad", "size": 1000 + g + version, "contentType": "audio/flac", "suffix": "flac",
            "duration": 120 + g % 240, "bitRate": 780, "path": song_path(SUBSONIC_ROOT, g), "discNumber": 1,
            "created": _CREATED, "albumId": f"al{g % 10000}", "artistId": f"ar{g % 5000}",
            "type": "music", "isVideo": False, "mediaType": "song", "genres": [{"name": "Ballad"}],
            "channelCount": 2, "samplingRate": 44100, "bitDepth": 16,
        }  # fmt: skip

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        fields = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        head = {"status": "ok", "version": "1.16.1", "type": "navidrome", "serverVersion": "0.53.3",
                "openSubsonic": True}  # fmt: skip
        endpoint = request.url.path.rsplit("/", 1)[-1].removesuffix(".view")
        if endpoint == "ping":
            return httpx.Response(200, json={"subsonic-response": head})
        if endpoint == "search3":
            songs = [self.song(g) for g in self.listed(int(fields["songOffset"]), int(fields["songCount"]))]
            return httpx.Response(200, json={"subsonic-response": {**head, "searchResult3": {"song": songs}}})
        raise UnansweredRequestError(f"the generated Subsonic host does not answer {endpoint}")


class GeneratedJellyfin(_Generated):
    """A Jellyfin server with one music library: ``/Library/VirtualFolders`` and ``/Items`` pages in the shape of
    tests/fixtures/jellyfin/items_page1_undashed_ids.json, honouring ``parentId``, ``startIndex``, ``limit`` and
    ``minDateLastSaved``. Song ``g`` has id ``{g:032x}``, path ``/data/music/a{g // 1000}/{g}.flac``, size
    ``1000 + g`` (plus 1 when changed), and was last saved at ``saved_at`` (every song) or ``changed_at`` (a
    changed one: set it before the change is listed)."""

    def __init__(self, count: int) -> None:
        super().__init__(count)
        self.saved_at = datetime(2025, 1, 1, tzinfo=UTC)
        self.changed_at = datetime(2025, 1, 2, tzinfo=UTC)

    def item(self, g: int) -> dict[str, object]:
        item_id = f"{g:032x}"
        path = song_path(JELLYFIN_ROOT, g)
        size = 1000 + g + (1 if g in self.changed else 0)
        ticks = (120 + g % 240) * 10_000_000
        return {
            "Name": f"Song {g}", "ServerId": "a9f0c1d2e3b445a6978899aabbccddee", "Id": item_id,
            "DateCreated": "2025-01-01T10:00:00.0000000Z", "Container": "flac", "SortName": f"song {g}",
            "Path": path, "Genres": ["Ballad"], "RunTimeTicks": ticks, "ProductionYear": 2000 + g % 25,
            "IndexNumber": g % 12 + 1, "IsFolder": False, "ParentId": f"{g % 10000:032x}", "Type": "Audio",
            "Artists": [f"Artist {g % 5000}"], "Album": f"Album {g % 10000}", "AlbumId": f"{g % 10000:032x}",
            "AlbumArtist": f"Artist {g % 5000}", "NormalizationGain": -6.5 - g % 7,
            "MediaSources": [{"Protocol": "File", "Id": item_id, "Path": path, "Type": "Default", "Container": "flac",
                              "Size": size, "Name": f"{g}", "IsRemote": False, "RunTimeTicks": ticks}],
            "LocationType": "FileSystem", "MediaType": "Audio",
        }  # fmt: skip

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        path = request.url.path
        if request.method == "GET" and path == "/Library/VirtualFolders":
            folder = {"Name": "Music", "Locations": [JELLYFIN_ROOT], "CollectionType": "music",
                      "ItemId": JELLYFIN_LIBRARY_ID, "RefreshStatus": "Idle",
                      "LibraryOptions": {"Enabled": True, "EnableLUFSScan": True,
                                         "PathInfos": [{"Path": JELLYFIN_ROOT}], "TypeOptions": []}}  # fmt: skip
            return httpx.Response(200, json=[folder])
        if request.method == "GET" and path == "/Items":
            return httpx.Response(200, json=self._items(request.url.params))
        raise UnansweredRequestError(f"the generated Jellyfin host does not answer {request.method} {path}")

    def _items(self, params: httpx.QueryParams) -> dict[str, object]:
        if params.get("parentId") != JELLYFIN_LIBRARY_ID or params.get("includeItemTypes") != "Audio":
            raise UnansweredRequestError(f"the generated Jellyfin host lists only its library's audio, not {params}")
        start, limit = int(params["startIndex"]), int(params["limit"])
        since = params.get("minDateLastSaved")
        moment = None if since is None else datetime.fromisoformat(since)
        if moment is None or moment <= self.saved_at:
            songs, total = self.listed(start, limit), self.total()
        else:  # only the changed songs were saved after saved_at
            saved = sorted(self.changed - self.removed) if moment <= self.changed_at else []
            songs, total = saved[start : start + limit], len(saved)
        return {"Items": [self.item(g) for g in songs], "TotalRecordCount": total, "StartIndex": start}
