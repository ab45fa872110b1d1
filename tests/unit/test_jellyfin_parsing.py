"""Pure parts of the Jellyfin adapter: ids, tag format and merge, path roots, configuration checks."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from adapters.base import TrackTags
from adapters.jellyfin import JellyfinConfig, format_tags, normalization_disagreement_db, plan_tag_update
from adapters.jellyfin.parsers import MusicRoot, automatic_path_prefixes, library_for_path, normalise_id

RAW_ID = "4e7a0c6b1d2e4f5a8b9c0d1e2f3a4b5c"


@pytest.mark.parametrize(
    "value",
    [RAW_ID, RAW_ID.upper(), "4e7a0c6b-1d2e-4f5a-8b9c-0d1e2f3a4b5c", "{4E7A0C6B-1D2E-4F5A-8B9C-0D1E2F3A4B5C}"],
)
def test_normalise_id_accepts_every_guid_form(value: str) -> None:
    assert normalise_id(value) == RAW_ID


@pytest.mark.parametrize("value", ["", "xyz", RAW_ID[:-1], RAW_ID + "0", "../" + RAW_ID, 42])
def test_normalise_id_rejects_non_guids(value: object) -> None:
    with pytest.raises(ValueError, match="Jellyfin id"):
        normalise_id(value)


def test_format_tags_writes_documented_spelling() -> None:
    tags = TrackTags(bpm=127.5, key="A minor", camelot="8A", replaygain_track_gain_db=-7.25, loudness_lufs=-10.8)
    assert format_tags(tags) == ["bpm:128", "key:A minor", "camelot:8A", "replaygain:-7.2 dB"]


def test_format_tags_positive_gain_has_sign() -> None:
    assert format_tags(TrackTags(replaygain_track_gain_db=2.04)) == ["replaygain:+2.0 dB"]


@pytest.mark.parametrize(
    "tags",
    [TrackTags(bpm=0.0), TrackTags(bpm=math.nan), TrackTags(key="H minor"), TrackTags(camelot="13A")],
)
def test_format_tags_rejects_unwritable_values(tags: TrackTags) -> None:
    with pytest.raises(ValueError, match="must"):
        format_tags(tags)


def test_plan_tag_update_replaces_only_our_tags() -> None:
    item = {"Id": RAW_ID, "Tags": ["Chill", "BPM:90", "key:C major", "party"], "ProviderIds": {}, "LockedFields": []}
    updated = plan_tag_update(item, TrackTags(bpm=120.0))
    assert updated is not None
    assert (updated["Tags"], updated["LockedFields"]) == (["Chill", "party", "bpm:120"], ["Tags"])


def test_plan_tag_update_unchanged_returns_none() -> None:
    item = {"Id": RAW_ID, "Tags": ["camelot:8A", "mine", "bpm:120"], "LockedFields": ["Tags"]}
    assert plan_tag_update(item, TrackTags(bpm=120.0, camelot="8A")) is None


def test_plan_tag_update_relocks_when_lock_missing() -> None:
    item = {"Id": RAW_ID, "Tags": ["bpm:120"], "ProviderIds": {}}
    updated = plan_tag_update(item, TrackTags(bpm=120.0))
    assert updated is not None
    assert updated["LockedFields"] == ["Tags"]


def test_plan_tag_update_leaves_input_untouched_and_drops_stream_data() -> None:
    item = {"Id": RAW_ID, "Tags": ["x"], "MediaSources": [{"Id": RAW_ID}], "MediaStreams": [], "LockedFields": []}
    updated = plan_tag_update(item, TrackTags(key="A minor"))
    assert updated is not None
    assert (item["Tags"], "MediaSources" in updated, "MediaStreams" in updated) == (["x"], False, False)


def test_plan_tag_update_fills_null_tags_and_provider_ids() -> None:
    updated = plan_tag_update({"Id": RAW_ID, "Tags": None, "ProviderIds": None}, TrackTags(camelot="1B"))
    assert updated is not None
    assert (updated["Tags"], updated["ProviderIds"]) == (["camelot:1B"], {})


def test_normalization_disagreement_reports_large_difference() -> None:
    assert normalization_disagreement_db(-5.0, -10.0, tolerance_db=1.0) == pytest.approx(3.0)


def test_normalization_disagreement_none_within_tolerance() -> None:
    assert normalization_disagreement_db(-7.6, -10.0, tolerance_db=1.0) is None


def test_automatic_path_prefixes_single_folder_maps_to_mount() -> None:
    roots = [MusicRoot(library_id=RAW_ID, name="Music", locations=("/data/music",), lufs_scan_enabled=False)]
    assert automatic_path_prefixes(roots, Path("/mnt/lib")) == [("/data/music", "/mnt/lib")]


def test_automatic_path_prefixes_several_folders_map_by_name_and_skip_ambiguous() -> None:
    roots = [MusicRoot(library_id=RAW_ID, name="A", locations=("/a/flac", "/b/mp3", "/c/mp3"), lufs_scan_enabled=False)]
    assert automatic_path_prefixes(roots, Path("/mnt")) == [("/a/flac", "/mnt/flac")]


def test_library_for_path_picks_longest_folder() -> None:
    roots = [
        MusicRoot(library_id="a" * 32, name="All", locations=("/data",), lufs_scan_enabled=False),
        MusicRoot(library_id="b" * 32, name="Music", locations=("D:\\Music",), lufs_scan_enabled=False),
        MusicRoot(library_id="c" * 32, name="Jazz", locations=("/data/jazz",), lufs_scan_enabled=False),
    ]
    found = [library_for_path(roots, path) for path in ("/data/jazz/x.flac", "d:/music/y.mp3", "/other/z.flac")]
    assert found == ["c" * 32, "b" * 32, None]


@pytest.mark.parametrize(
    "overrides",
    [
        {"url": "ftp://jf"},
        {"url": "http://user:pw@jf:8096"},
        {"api_key": None},
        {"api_key": 'with"quote'},
        {"timeout_s": 0.0},
        {"max_attempts": 0},
    ],
)
def test_jellyfin_config_rejects_bad_values(overrides: dict[str, Any]) -> None:
    values: dict[str, Any] = {"url": "http://jf:8096", "api_key": "k"} | overrides
    with pytest.raises(ValueError, match=r"must|needs|contains"):
        JellyfinConfig(**values)


def test_jellyfin_config_hides_secrets_in_repr() -> None:
    config = JellyfinConfig(url="http://jf:8096", username="u", password="pw-secret", webhook_secret="hook-secret")
    assert ("pw-secret" in repr(config), "hook-secret" in repr(config)) == (False, False)
