"""The host fingerprint a sync uses to skip unchanged tracks: every reported fact is part of it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from adapters.base import HostTrack
from sidecar.services.sync import _Fingerprints, host_fingerprint

TRACK = HostTrack(
    host_track_id="s1", title="Song", artist="Artist", album="Album", album_artist="Band", genres=("Rock", "Pop"),
    library_id="lib", duration_s=61.5, host_path="/music/a/1.flac", local_path="/mnt/a/1.flac", container="flac",
    size_bytes=1001, musicbrainz_track_id="mb", changed_at=datetime(2024, 3, 10, 12, 34, 56, tzinfo=UTC),
    host_bpm=120.0, host_replaygain_track_gain_db=-6.5,
)  # fmt: skip

CHANGES = {
    "host_track_id": "s2", "title": "Song!", "artist": None, "album": "", "album_artist": "Artist",
    "genres": ("Rock",), "library_id": "other", "duration_s": 61.0, "host_path": "/music/a/1b.flac",
    "container": "mp3", "size_bytes": 1002, "musicbrainz_track_id": None,
    "changed_at": datetime(2024, 3, 11, tzinfo=UTC), "host_bpm": 90.0,
}  # fmt: skip
MAPPING = "('/mnt', [('/music', '/mnt')], True)"


def fp(track: HostTrack, mapping: str = MAPPING) -> int:
    return host_fingerprint(track, mapping)


def test_the_fingerprint_is_stable_for_the_same_facts() -> None:
    assert fp(TRACK) == fp(dataclasses.replace(TRACK))
    assert -(2**63) <= fp(TRACK) < 2**63


@pytest.mark.parametrize(("name", "value"), CHANGES.items())
def test_any_changed_fact_changes_the_fingerprint(name: str, value: Any) -> None:
    assert fp(dataclasses.replace(TRACK, **{name: value})) != fp(TRACK)


def test_the_hosts_gain_is_compared_not_fingerprinted() -> None:
    assert fp(dataclasses.replace(TRACK, host_replaygain_track_gain_db=None)) == fp(TRACK)


def test_the_path_mapping_is_fingerprinted_not_the_mapped_path() -> None:
    other_mount = "('/mnt2', [('/music', '/mnt2')], True)"
    assert fp(TRACK, other_mount) != fp(TRACK)
    assert fp(dataclasses.replace(TRACK, local_path=None, path_problem="x")) == fp(TRACK)


def test_a_missing_value_differs_from_an_empty_one() -> None:
    assert fp(dataclasses.replace(TRACK, album=None)) != fp(dataclasses.replace(TRACK, album=""))


def test_membership_in_the_stored_fingerprints() -> None:
    stored = _Fingerprints([5, -3, 2**63 - 1, -(2**63)])
    assert stored.contains([-3, 4, 2**63 - 1, -(2**63), 6]) == [True, False, True, True, False]
    assert _Fingerprints([]).contains([1]) == [False]
    assert stored.contains([]) == []
