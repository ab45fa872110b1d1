"""A stateful fake Navidrome (Subsonic API) for tests, served through ``httpx.MockTransport``.

It answers in Navidrome's real shapes, built from the recorded answers in ``tests/fixtures/navidrome/``
(OpenSubsonic ``type``/``serverVersion``, ``bpm`` and ``replayGain`` on every song, nanosecond ``created``,
integer ``minutesAgo``), and it reproduces what differs from supysonic: salted-token auth (error 41 for LDAP-style
users when ``token_auth=False``), ``query=""`` listing everything, made-up relative paths when Report Real Path is
off, and ``createPlaylist`` answering with the playlist. Anything it does not know (endpoint, method, field)
raises :class:`UnfakedRequestError`; every exchange is kept in :attr:`FakeNavidrome.exchanges` for checks against
the OpenSubsonic spec. It lives under tests/ because only adapters/*/client.py and adapters/http.py may import
httpx in production.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

Json = dict[str, Any]
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "navidrome"
COMMON = frozenset({"u", "t", "s", "p", "v", "c", "f"})
FIELDS: dict[str, frozenset[str]] = {
    "ping": frozenset(),
    "search3": frozenset({"query", "artistCount", "albumCount", "songCount", "songOffset"}),
    "getSong": frozenset({"id"}),
    "getNowPlaying": frozenset(),
    "getPlaylists": frozenset(),
    "getPlaylist": frozenset({"id"}),
    "createPlaylist": frozenset({"name", "playlistId", "songId"}),
}
_ENDPOINT = re.compile(r"^/rest/(\w+?)(?:\.view)?$")


class UnfakedRequestError(AssertionError):
    """The adapter sent a request the fake does not know: a test failure, never a silent 404."""


def fixture(name: str) -> Json:
    """One recorded answer from tests/fixtures/navidrome/ (a fresh copy)."""
    loaded: Json = json.loads((FIXTURES / f"{name}.json").read_text(encoding="utf-8"))
    return loaded


@dataclass
class Exchange:
    """One request the fake answered: its endpoint, form fields and the JSON it sent back."""

    endpoint: str
    fields: dict[str, list[str]]
    answer: Json | None


@dataclass
class FakeNavidrome:
    """Navidrome 0.53+ as the sidecar sees it. ``library_path`` is the host's music folder."""

    username: str = "navi"
    password: str = "nd-pass-7"
    library_path: str = "/music"
    report_real_path: bool = True
    token_auth: bool = True
    quoted_query_lists_nothing: bool = False  # like supysonic: search3 query="" finds nothing, query= finds all
    songs: list[Json] = field(default_factory=list)
    playlists: dict[str, Json] = field(default_factory=dict)
    plays: list[Json] = field(default_factory=list)
    exchanges: list[Exchange] = field(default_factory=list)
    fail_next: int = 0  # answer this many requests with HTTP 503
    raw_answers: dict[str, bytes] = field(default_factory=dict)  # endpoint -> bytes sent instead of JSON

    def transport(self) -> httpx.MockTransport:
        """A transport answering like this server."""
        return httpx.MockTransport(self.handle)

    def add_song(self, relative_path: str, *, title: str, bpm: int = 0, track_gain_db: float | None = None) -> str:
        """Add a song (from the recorded shape) at ``library_path/relative_path``; return its id."""
        template = fixture("search3_bpm_replaygain_real_path")["subsonic-response"]["searchResult3"]["song"][0]
        song = copy.deepcopy(template)
        song_id = uuid.uuid4().hex[:22]
        parts = relative_path.split("/")
        song.update(
            id=song_id,
            title=title,
            track=len(self.songs) + 1,
            bpm=bpm,
            replayGain={} if track_gain_db is None else {"trackGain": track_gain_db, "trackPeak": 0.98},
            suffix=relative_path.rsplit(".", 1)[-1],
            artist=parts[0],
            album=parts[1] if len(parts) > 2 else "",
        )
        song["_relative"] = relative_path
        self.songs.append(song)
        return song_id

    def play(self, song_id: str, *, user: str, minutes_ago: int) -> None:
        """Make ``user`` play ``song_id`` (what a client's ``scrobble?submission=false`` does)."""
        recorded = fixture("now_playing_integer_minutes_ago")["subsonic-response"]["nowPlaying"]["entry"][0]
        extra = {k: recorded[k] for k in ("playerId", "playerName", "state", "positionMs", "playbackRate")}
        self.plays.append({"id": song_id, "username": user, "minutesAgo": minutes_ago, **extra})

    def handle(self, request: httpx.Request) -> httpx.Response:
        match = _ENDPOINT.match(request.url.path)
        if match is None or request.method not in ("GET", "POST"):
            raise UnfakedRequestError(f"unknown request {request.method} {request.url.path}")
        endpoint = match.group(1)
        if endpoint not in FIELDS:
            raise UnfakedRequestError(f"unknown endpoint {endpoint}")
        fields = parse_qs(request.url.query.decode(), keep_blank_values=True)
        if request.method == "POST":
            if request.headers.get("Content-Type", "") != "application/x-www-form-urlencoded":
                raise UnfakedRequestError(f"{endpoint}: POST without a form body")
            for key, values in parse_qs(request.content.decode(), keep_blank_values=True).items():
                fields.setdefault(key, []).extend(values)
        unknown = set(fields) - FIELDS[endpoint] - COMMON
        if unknown:
            raise UnfakedRequestError(f"{endpoint}: unknown fields {sorted(unknown)}")
        if self.fail_next > 0:
            self.fail_next -= 1
            self.exchanges.append(Exchange(endpoint, fields, None))
            return httpx.Response(503, text="Service Unavailable")
        if endpoint in self.raw_answers:
            self.exchanges.append(Exchange(endpoint, fields, None))
            return httpx.Response(200, content=self.raw_answers[endpoint])
        answer = self._auth_failure(fields) or self._answer(endpoint, fields)
        self.exchanges.append(Exchange(endpoint, fields, answer))
        return httpx.Response(200, json=answer)

    def _auth_failure(self, fields: dict[str, list[str]]) -> Json | None:
        for name in ("v", "c", "f"):
            if not fields.get(name):
                raise UnfakedRequestError(f"request without {name}=")
        if fields["f"] != ["json"]:
            raise UnfakedRequestError("only f=json is faked")
        user = fields.get("u", [""])[0]
        if "t" in fields or "s" in fields:
            if not self.token_auth:
                return fixture("error_41_token_auth_unsupported")
            salt = fields.get("s", [""])[0]
            expected = hashlib.md5((self.password + salt).encode(), usedforsecurity=False).hexdigest()
            ok = user == self.username and fields.get("t", [""])[0] == expected and len(salt) >= 6
        elif "p" in fields:
            given = fields["p"][0]
            password = bytes.fromhex(given[4:]).decode() if given.startswith("enc:") else given
            ok = user == self.username and password == self.password
        else:
            raise UnfakedRequestError("request without credentials")
        return None if ok else fixture("error_40_wrong_credentials")

    def _ok(self, **body: object) -> Json:
        answer = fixture("ping_opensubsonic_navidrome")
        answer["subsonic-response"].update(body)
        return answer

    def _child(self, song: Json) -> Json:
        child = {k: v for k, v in song.items() if not k.startswith("_")}
        relative = song["_relative"]
        if self.report_real_path:
            child["path"] = f"{self.library_path.rstrip('/')}/{relative}"
        else:
            parts = relative.split("/")
            album = parts[1] if len(parts) > 2 else "[Unknown Album]"
            child["path"] = f"{parts[0]}/{album}/{song['track']:02d} - {song['title']}.{song['suffix']}"
        return child

    def _song(self, song_id: str) -> Json | None:
        return next((song for song in self.songs if song["id"] == song_id), None)

    def _answer(self, endpoint: str, fields: dict[str, list[str]]) -> Json:
        one = {key: values[0] for key, values in fields.items()}
        if endpoint == "ping":
            return self._ok()
        if endpoint == "search3":
            if one["query"] not in ("", '""'):
                raise UnfakedRequestError("only full-library search3 is faked")
            offset, count = int(one.get("songOffset", "0")), int(one.get("songCount", "20"))
            if self.quoted_query_lists_nothing and one["query"] == '""':
                return self._ok(searchResult3={})
            page = [self._child(song) for song in self.songs[offset : offset + count]]
            return self._ok(searchResult3={"song": page} if page else {})
        if endpoint == "getSong":
            song = self._song(one["id"])
            return fixture("error_70_not_found") if song is None else self._ok(song=self._child(song))
        if endpoint == "getNowPlaying":
            entries = [{**self._child(s), **play} for play in self.plays if (s := self._song(play["id"])) is not None]
            return self._ok(nowPlaying={"entry": entries} if entries else {})
        if endpoint == "getPlaylists":
            listed = [{k: v for k, v in p.items() if k != "entry"} for p in self.playlists.values()]
            return self._ok(playlists={"playlist": listed} if listed else {})
        if endpoint == "getPlaylist":
            playlist = self.playlists.get(one["id"])
            return fixture("error_70_not_found") if playlist is None else self._ok(playlist=self._playlist(playlist))
        return self._create_playlist(one, fields.get("songId", []))

    def _playlist(self, playlist: Json) -> Json:
        entries = [self._child(song) for sid in playlist["entry"] if (song := self._song(sid)) is not None]
        return {**playlist, "entry": entries, "songCount": len(entries)}

    def _create_playlist(self, one: dict[str, str], song_ids: list[str]) -> Json:
        if "playlistId" in one:
            playlist = self.playlists.get(one["playlistId"])
            if playlist is None:
                return fixture("error_70_not_found")
        elif "name" in one:
            template = fixture("create_playlist_returns_playlist")["subsonic-response"]["playlist"]
            playlist = {**template, "id": str(uuid.uuid4()), "name": one["name"], "owner": self.username}
            self.playlists[playlist["id"]] = playlist
        else:
            raise UnfakedRequestError("createPlaylist without name or playlistId")
        playlist["entry"] = list(song_ids)
        return self._ok(playlist=self._playlist(playlist))
