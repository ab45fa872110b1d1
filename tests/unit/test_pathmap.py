"""Host path -> read-only mount mapping, and refusal of paths that escape the mount."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from adapters.base import HostTrack, PathMappingError
from adapters.pathmap import PathMapper, with_local_path


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    root = tmp_path / "mnt" / "library"
    (root / "Artist" / "Album").mkdir(parents=True)
    (root / "Artist" / "Album" / "01 - Song.flac").write_bytes(b"x")
    return root


def test_pathmap_longest_prefix_wins(mount: Path) -> None:
    mapper = PathMapper(mount, [("/data", str(mount.parent)), ("/data/music", str(mount))])
    assert mapper.to_local("/data/music/Artist/Album/01 - Song.flac") == mount / "Artist/Album/01 - Song.flac"


def test_pathmap_prefix_matches_whole_components_only(mount: Path) -> None:
    mapper = PathMapper(mount, [("/data/music", str(mount))])
    with pytest.raises(PathMappingError, match="SONANTICA_PATH_MAP"):
        mapper.to_local("/data/musicals/a.flac")


def test_pathmap_windows_host_paths(mount: Path) -> None:
    mapper = PathMapper(mount, [("D:\\Music", str(mount))])
    assert mapper.to_local("D:\\Music\\Artist\\Album\\01 - Song.flac") == mount / "Artist/Album/01 - Song.flac"


def test_pathmap_relative_paths_are_under_the_mount(mount: Path) -> None:
    assert PathMapper(mount).to_local("Artist/Album/01 - Song.flac") == mount / "Artist/Album/01 - Song.flac"


@pytest.mark.parametrize("hostile", ["../../etc/passwd", "/data/music/../../etc/passwd", "Artist/../../x", "a\x00b"])
def test_pathmap_refuses_traversal(mount: Path, hostile: str) -> None:
    with pytest.raises(PathMappingError):
        PathMapper(mount, [("/data/music", str(mount))]).to_local(hostile)


def test_pathmap_refuses_symlink_out_of_the_mount(mount: Path, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (mount / "escape").symlink_to(outside)
    with pytest.raises(PathMappingError, match="outside the library mount"):
        PathMapper(mount).to_local("escape/file.flac")


def test_a_mapped_track_keeps_every_other_field(mount: Path) -> None:
    values = {
        field.name: f"value of {field.name}" for field in dataclasses.fields(HostTrack) if field.type == "str | None"
    }
    track = HostTrack(
        **{**values, "local_path": None, "path_problem": None, "host_path": "/data/music/Artist/Album/01 - Song.flac"},
        host_track_id="t1", title="Song", genres=("Rock", "Pop"), duration_s=61.5, size_bytes=9,
        changed_at=datetime(2024, 1, 2, tzinfo=UTC), host_bpm=120.0, host_replaygain_track_gain_db=-7.0,
    )  # fmt: skip
    mapped = with_local_path(track, PathMapper(mount, [("/data/music", str(mount))]), host="the server")
    unmapped = with_local_path(track, None, host="the server")
    local = str(mount / "Artist/Album/01 - Song.flac")
    assert mapped == dataclasses.replace(track, local_path=local)
    assert unmapped == dataclasses.replace(track, path_problem=unmapped.path_problem)
    assert unmapped.path_problem is not None


def test_pathmap_a_symlinked_file_in_a_remembered_directory_is_still_refused(mount: Path, tmp_path: Path) -> None:
    mapper = PathMapper(mount, [("/data/music", str(mount))])
    outside = tmp_path / "outside.flac"
    outside.write_bytes(b"x")
    (mount / "Artist" / "Album" / "02 - Link.flac").symlink_to(outside)
    first = mapper.local_path("/data/music/Artist/Album/01 - Song.flac")
    with pytest.raises(PathMappingError, match="outside the library mount"):
        mapper.local_path("/data/music/Artist/Album/02 - Link.flac")
    assert first == str(mount / "Artist/Album/01 - Song.flac")


def test_pathmap_a_remembered_directory_does_not_hide_a_longer_prefix(mount: Path) -> None:
    (mount / "Artist" / "Other").mkdir()
    mapper = PathMapper(mount, [("/data/music", str(mount)), ("/data/music/Artist/Album/x.flac", str(mount / "Other"))])
    mapper.local_path("/data/music/Artist/Album/01 - Song.flac")
    assert mapper.local_path("/data/music/Artist/Album/x.flac") == str(mount / "Other")


def test_pathmap_absolute_and_relative_paths_stay_apart(mount: Path) -> None:
    mapper = PathMapper(mount, [("/", str(mount / "Artist")), ("/Artist", str(mount / "Artist" / "Album"))])
    found = [mapper.local_path(path) for path in ("/a.flac", "a.flac", "/Artist/a.flac", "Artist/a.flac", "/b.flac")]
    assert found == [
        str(mount / "Artist/a.flac"),
        str(mount / "a.flac"),
        str(mount / "Artist/Album/a.flac"),
        str(mount / "Artist/a.flac"),
        str(mount / "Artist/b.flac"),
    ]


def test_pathmap_a_directory_symlink_changed_between_listings_is_seen(mount: Path, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (mount / "Linked").symlink_to(mount / "Artist")
    mapper = PathMapper(mount, [("/data/music", str(mount))])
    assert mapper.local_path("/data/music/Linked/a.flac") == str(mount / "Linked/a.flac")
    (mount / "Linked").unlink()
    (mount / "Linked").symlink_to(tmp_path / "elsewhere")
    mapper.forget_directories()
    with pytest.raises(PathMappingError, match="outside the library mount"):
        mapper.local_path("/data/music/Linked/b.flac")
