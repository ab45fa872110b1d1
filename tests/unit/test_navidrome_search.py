"""The msgspec fast path of ``search3`` pages gives exactly the tracks of the lenient ``parse_child`` path, and
refuses (returns ``None``) every answer it cannot read the same way."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from adapters.navidrome.parsers import is_audio, parse_child
from adapters.navidrome.search import decode_page, song_track

RECORDED = json.loads(
    (Path(__file__).parents[1] / "fixtures/navidrome/search3_bpm_replaygain_real_path.json").read_text("utf-8")
)
SONG: dict[str, Any] = RECORDED["subsonic-response"]["searchResult3"]["song"][0]

READ_THE_SAME = {
    "recorded": {},
    "empty strings": {"title": "", "artist": "", "album": "", "displayAlbumArtist": "", "suffix": "", "path": ""},
    "no genres list, a genre": {"genres": [], "genre": "Rock"},
    "empty genre names skipped": {"genres": [{"name": ""}, {"name": "Jazz"}, {}]},
    "negative size": {"size": -1},
    "bpm 0 is unknown": {"bpm": 0},
    "float duration and bpm": {"duration": 241.5, "bpm": 123.4},
    "created without a zone": {"created": "2024-03-10T12:34:56"},
    "unreadable created": {"created": "yesterday"},
    "replayGain without trackGain": {"replayGain": {"albumGain": -6.8}},
    "nulls": {"artist": None, "bpm": None, "replayGain": None, "genres": None, "size": None, "created": None},
}


def answer(*songs: object, **body: object) -> bytes:
    result = {"status": "ok", "version": "1.16.1", "searchResult3": {"song": list(songs)}, **body}
    return json.dumps({"subsonic-response": result}).encode()


def with_changes(changes: dict[str, object]) -> dict[str, Any]:
    entry = copy.deepcopy(SONG)
    entry.update(changes)
    return entry


@pytest.mark.parametrize("changes", READ_THE_SAME.values(), ids=READ_THE_SAME.keys())
def test_the_fast_path_reads_a_song_as_parse_child_does(changes: dict[str, object]) -> None:
    entry = with_changes(changes)
    page = decode_page(answer(entry))
    assert page is not None
    assert [song_track(s, local_path=None, path_problem=None) for s in page.songs] == [parse_child(entry)]


def test_entries_that_are_not_audio_are_counted_but_not_listed() -> None:
    entries = [SONG, with_changes({"isDir": True}), with_changes({"isVideo": True}), with_changes({"type": "podcast"})]
    page = decode_page(answer(*entries))
    assert page is not None
    assert (page.listed, [s.id for s in page.songs]) == (4, [SONG["id"]])
    assert [is_audio(e) for e in entries] == [True, False, False, False]


def test_one_song_collapsed_into_an_object_and_no_song_list() -> None:
    one = {"subsonic-response": {"status": "ok", "searchResult3": {"song": SONG}}}
    none = {"subsonic-response": {"status": "ok", "version": "1.16.1"}}
    collapsed, empty = decode_page(json.dumps(one).encode()), decode_page(json.dumps(none).encode())
    assert collapsed is not None
    assert empty is not None
    assert ([s.id for s in collapsed.songs], empty.listed) == ([SONG["id"]], 0)


REFUSED = {
    "numeric id": answer(with_changes({"id": 42})),
    "empty id": answer(with_changes({"id": ""})),
    "no id": answer({k: v for k, v in SONG.items() if k != "id"}),
    "bpm true": answer(with_changes({"bpm": True})),
    "size as text": answer(with_changes({"size": "12"})),
    "NaN duration": answer(SONG).replace(b'"duration": 241', b'"duration": NaN'),
    "genres not a list": answer(with_changes({"genres": {"name": "Rock"}})),
    "a null song": answer(SONG, None),
    "searchResult3 null": json.dumps({"subsonic-response": {"status": "ok", "searchResult3": None}}).encode(),
    "failed": json.dumps({"subsonic-response": {"status": "failed", "error": {"code": 40, "message": "no"}}}).encode(),
    "no envelope": b'{"status": "ok"}',
    "not JSON": b"<html>proxy error</html>",
}


@pytest.mark.parametrize("content", REFUSED.values(), ids=REFUSED.keys())
def test_answers_the_fast_path_cannot_read_alike_are_left_to_the_lenient_path(content: bytes) -> None:
    assert decode_page(content) is None
