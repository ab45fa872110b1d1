"""Host sync at 10 000 songs: a re-sync touches exactly the changed songs (issue 16).

Real PostgreSQL and Redis; the hosts are the generated ones of the scale benchmark
(tests/contract/generated_hosts.py) behind the real adapters, over a mount of 10 000 hard-linked files, so every
``os.stat`` is real. Counts, not timings: rows written, files stat-ed, tracks queued.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from adapters.base import HostUnavailableError
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from sidecar.analyzers.versions import enabled_versions
from sidecar.scheduler import Scheduler
from sidecar.services import sync
from sidecar.services.runtime import Runtime, open_runtime
from sidecar.services.sync import SyncError, sync_library
from sidecar.settings import get_settings
from sidecar.storage import analyses
from sidecar.storage.db import transaction
from tests.contract.generated_hosts import (
    JELLYFIN_ROOT,
    SUBSONIC_ROOT,
    GeneratedJellyfin,
    GeneratedSubsonic,
    make_mount,
    move_file,
    moved_path,
    rewrite_file,
    song_path,
)

SONGS = 10_000
PAGE = 500
CHANGED = [17, 2_345, 4_001, 4_002, 9_999, *range(6_000, 6_032)]  # 37 songs, some on one page
REMOVED = [3, 5_000, 8_765, 10_000, 7_777]
MOVED = [12, 7_000]


@pytest.fixture(scope="module")
def mount(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 000 files, shared by the tests of this module (each test rewrites its own copy of what it changes)."""
    root = tmp_path_factory.mktemp("mount")
    make_mount(root, SONGS)
    return root


@pytest.fixture
def own_mount(mount: Path, tmp_path: Path) -> Path:
    """A copy of the shared mount (hard links again: cheap) that this test may change."""
    root = tmp_path / "mount"
    for folder in mount.iterdir():
        (root / folder.name).mkdir(parents=True)
        for file in folder.iterdir():
            (root / folder.name / file.name).hardlink_to(file)
    return root


@pytest.fixture
def stat_calls(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """Every path the sync stat-s (``sync.file_stat`` wrapped)."""
    calls: list[str | None] = []
    real = sync.file_stat

    def counting(path: str | None) -> tuple[int, int] | None:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(sync, "file_stat", counting)
    return calls


def navidrome(
    host: GeneratedSubsonic, mount: Path, handler: Callable[[httpx.Request], httpx.Response] | None = None
) -> NavidromeAdapter:
    """The real adapter on ``host`` (or on ``handler``), requests not retried."""
    config = NavidromeConfig(url="http://navidrome.invalid:4533", username="u", password="p", library_dir=mount,
                             path_map=((SUBSONIC_ROOT, str(mount)),), max_attempts=1)  # fmt: skip
    return NavidromeAdapter(config, transport=httpx.MockTransport(handler or host.handle))


def _db(database_url: str, query: str, *params: object) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(query, params).fetchall()


def _finish_all_analyses(database_url: str) -> None:
    """As if the worker had analysed everything: nothing is waiting, so only a re-sync can queue again."""
    with psycopg.connect(database_url) as conn:
        conn.execute("UPDATE analysis_status SET state = 'done'")


def _queued_songs(database_url: str, host: str) -> set[str]:
    rows = _db(
        database_url,
        "SELECT DISTINCT t.host_track_id FROM analysis_status s JOIN tracks t ON t.id = s.track_id"
        " WHERE s.state = 'queued' AND t.host = %s",
        host,
    )
    return {str(row[0]) for row in rows}


class MovingSubsonic(GeneratedSubsonic):
    """Songs in ``moved`` are reported at ``a{g // 1000}/{g}-moved.flac``."""

    moved: frozenset[int] = frozenset()

    def song(self, g: int) -> dict[str, object]:
        song = super().song(g)
        if g in self.moved:
            song["path"] = moved_path(SUBSONIC_ROOT, g)
        return song


async def test_navidrome_resync_writes_and_queues_exactly_the_changed_songs(
    runtime: Runtime, versions: dict[str, int], own_mount: Path, database_url: str, stat_calls: list[str | None]
) -> None:
    host = MovingSubsonic(SONGS)
    async with navidrome(host, own_mount) as adapter:
        first = await sync_library(runtime, adapter, versions, page_size=PAGE)
        assert (first.deep, first.created, first.written, first.stated, first.queued) == (
            True,
            SONGS,
            SONGS,
            SONGS,
            SONGS,
        )
        _finish_all_analyses(database_url)
        for g in CHANGED:
            rewrite_file(own_mount, g)
        host.changed = set(CHANGED)
        host.removed = frozenset(REMOVED)
        for g in MOVED:  # a rename keeps the file (inode, size, mtime): a new path, no new analysis
            move_file(own_mount, g)
        host.moved = frozenset(MOVED)
        stat_calls.clear()
        before = datetime.now(UTC)

        again = await sync_library(runtime, adapter, versions, page_size=PAGE)

    touched = len(CHANGED) + len(MOVED)
    assert again.deep is False  # the first sync was the deep one; the interval has not passed
    assert again.seen == SONGS - len(REMOVED)
    assert again.unchanged == SONGS - len(REMOVED) - touched
    assert len(stat_calls) == again.stated == touched  # unchanged songs were not stat-ed
    assert sorted(stat_calls, key=str) == sorted(
        [song_path(own_mount, g) for g in CHANGED] + [moved_path(own_mount, g) for g in MOVED]
    )
    assert (again.written, again.updated, again.created, again.queued, again.missing) == (
        touched, len(CHANGED), 0, len(CHANGED), len(REMOVED),
    )  # fmt: skip
    assert _queued_songs(database_url, "navidrome") == {f"s{g}" for g in CHANGED}
    written = _db(database_url, "SELECT host_track_id, is_missing FROM tracks WHERE updated_at >= %s", before)
    assert sorted(written) == sorted(
        [(f"s{g}", False) for g in CHANGED + MOVED] + [(f"s{g}", True) for g in REMOVED]
    )  # only the changed and moved rows, and the removed ones marked missing (kept, not deleted)
    moved_paths = _db(database_url, "SELECT path FROM tracks WHERE host_track_id = ANY(%s)", [f"s{g}" for g in MOVED])
    assert sorted(str(row[0]) for row in moved_paths) == sorted(moved_path(own_mount, g) for g in MOVED)
    assert _db(database_url, "SELECT count(*) FROM tracks")[0][0] == SONGS


async def test_a_removed_song_that_comes_back_is_checked_in_full(
    runtime: Runtime, versions: dict[str, int], own_mount: Path, database_url: str
) -> None:
    host = GeneratedSubsonic(SONGS)
    async with navidrome(host, own_mount) as adapter:
        await sync_library(runtime, adapter, versions, page_size=PAGE)
        host.removed = frozenset(REMOVED)
        gone = await sync_library(runtime, adapter, versions, page_size=PAGE)
        host.removed = frozenset()
        back = await sync_library(runtime, adapter, versions, page_size=PAGE)
    assert gone.missing == len(REMOVED)
    assert (back.unchanged, back.written, back.updated, back.missing) == (SONGS - len(REMOVED), len(REMOVED), 0, 0)
    assert _db(database_url, "SELECT count(*) FROM tracks WHERE is_missing")[0][0] == 0


async def test_a_new_path_mapping_makes_the_next_quick_sync_map_and_check_every_song(
    runtime: Runtime, versions: dict[str, int], own_mount: Path, tmp_path: Path, database_url: str,
    stat_calls: list[str | None],
) -> None:  # fmt: skip
    host = GeneratedSubsonic(SONGS)
    alias = tmp_path / "alias"  # the same files under another mount path: only the mapping changes
    alias.symlink_to(own_mount)
    async with navidrome(host, own_mount) as adapter:
        await sync_library(runtime, adapter, versions, page_size=PAGE)
    stat_calls.clear()
    async with navidrome(host, alias) as adapter:
        remapped = await sync_library(runtime, adapter, versions, page_size=PAGE, deep=False)
        stated = len(stat_calls)
        again = await sync_library(runtime, adapter, versions, page_size=PAGE, deep=False)
    assert (remapped.unchanged, stated, remapped.written, remapped.updated) == (0, SONGS, SONGS, 0)
    assert (again.unchanged, again.stated, again.written) == (SONGS, 0, 0)
    paths = _db(database_url, "SELECT path FROM tracks WHERE host_track_id = ANY(%s)", ["s1", "s9999"])
    assert sorted(str(row[0]) for row in paths) == [song_path(alias, 1), song_path(alias, 9_999)]


async def test_a_sync_cut_short_loses_nothing_and_the_next_one_finishes_it(
    runtime: Runtime, versions: dict[str, int], own_mount: Path, database_url: str
) -> None:
    host = GeneratedSubsonic(SONGS)
    cut_after: list[int] = []

    def flaky(request: httpx.Request) -> httpx.Response:
        if cut_after and host.requests >= cut_after[0]:
            host.requests += 1
            return httpx.Response(503)
        return host.handle(request)

    async with navidrome(host, own_mount, flaky) as adapter:
        await sync_library(runtime, adapter, versions, page_size=PAGE)
        _finish_all_analyses(database_url)
        for g in CHANGED:
            rewrite_file(own_mount, g)
        host.changed = set(CHANGED)
        cut_after.append(host.requests + 10)  # the listing breaks off after 10 pages (5 000 songs)
        with pytest.raises(SyncError) as cut:
            await sync_library(runtime, adapter, versions, page_size=PAGE, attempts=1)
        assert isinstance(cut.value.__cause__, HostUnavailableError)
        cut_after.clear()
        done_before = _queued_songs(database_url, "navidrome")
        rest = await sync_library(runtime, adapter, versions, page_size=PAGE)
    early = {g for g in CHANGED if g <= 10 * PAGE}
    assert done_before == {f"s{g}" for g in early}  # the saved pages were queued
    assert (rest.updated, rest.queued, rest.missing) == (len(CHANGED) - len(early), len(CHANGED) - len(early), 0)
    assert _queued_songs(database_url, "navidrome") == {f"s{g}" for g in CHANGED}


async def test_only_a_deep_sync_catches_a_file_changed_on_the_mount_alone(
    monkeypatch: pytest.MonkeyPatch,
    service_env: dict[str, str],
    own_mount: Path,
    database_url: str,
    stat_calls: list[str | None],
) -> None:
    get_settings.cache_clear()
    versions = enabled_versions(get_settings())
    host = GeneratedSubsonic(SONGS)
    async with open_runtime(get_settings()) as runtime, navidrome(host, own_mount) as adapter:
        await sync_library(runtime, adapter, versions, page_size=PAGE)
        _finish_all_analyses(database_url)
        for g in CHANGED[:3]:
            rewrite_file(own_mount, g)  # the host still reports the old size: it has not rescanned yet
        quick = await sync_library(runtime, adapter, versions, page_size=PAGE)
        stat_calls.clear()
        monkeypatch.setenv("SONANTICA_SCHEDULER__DEEP_SYNC_INTERVAL_S", "0")
        get_settings.cache_clear()
        async with open_runtime(get_settings()) as every_sync_deep:
            deep = await sync_library(every_sync_deep, adapter, versions, page_size=PAGE)
    assert (quick.deep, quick.unchanged, quick.updated, quick.queued) == (False, SONGS, 0, 0)  # missed, by design
    assert (deep.deep, deep.unchanged, deep.stated, len(stat_calls)) == (True, 0, SONGS, SONGS)
    assert (deep.updated, deep.written, deep.queued) == (3, 3, 3)
    assert _queued_songs(database_url, "navidrome") == {f"s{g}" for g in CHANGED[:3]}


async def test_jellyfin_incremental_sync_lists_and_writes_only_the_saved_songs(
    runtime: Runtime, versions: dict[str, int], own_mount: Path, database_url: str, stat_calls: list[str | None]
) -> None:
    host = GeneratedJellyfin(SONGS)
    config = JellyfinConfig(url="http://jellyfin.invalid:8096", api_key="k", library_dir=own_mount,
                            path_map=((JELLYFIN_ROOT, str(own_mount)),))  # fmt: skip
    async with JellyfinAdapter(config, transport=httpx.MockTransport(host.handle)) as adapter:
        host.saved_at = datetime.now(UTC) - timedelta(minutes=1)
        await sync_library(runtime, adapter, versions, page_size=PAGE)
        _finish_all_analyses(database_url)
        since = datetime.now(UTC)
        host.changed_at = since + timedelta(seconds=1)
        for g in CHANGED:
            rewrite_file(own_mount, g)
        host.changed = set(CHANGED)
        requests = host.requests
        stat_calls.clear()
        incremental = await sync_library(runtime, adapter, versions, page_size=PAGE, changed_since=since)
        listed_pages = host.requests - requests
        host.removed = frozenset(REMOVED)
        full = await sync_library(runtime, adapter, versions, page_size=PAGE)
    assert listed_pages == 2  # the libraries, then one page of the 37 saved songs
    assert (incremental.full, incremental.seen, incremental.stated, len(stat_calls)) == (False, 37, 37, 37)
    assert (incremental.written, incremental.updated, incremental.queued, incremental.missing) == (37, 37, 37, 0)
    assert _queued_songs(database_url, "jellyfin") == {f"{g:032x}" for g in CHANGED}
    assert (full.unchanged, full.written, full.queued, full.missing) == (SONGS - len(REMOVED), 0, 0, len(REMOVED))


async def test_scheduled_jellyfin_syncs_list_only_changes_between_full_listings(
    runtime: Runtime, versions: dict[str, int], own_mount: Path, database_url: str
) -> None:
    host = GeneratedJellyfin(SONGS)
    host.saved_at = datetime.now(UTC) - timedelta(hours=1)
    config = JellyfinConfig(url="http://jellyfin.invalid:8096", api_key="k", library_dir=own_mount,
                            path_map=((JELLYFIN_ROOT, str(own_mount)),))  # fmt: skip
    async with JellyfinAdapter(config, transport=httpx.MockTransport(host.handle)) as adapter:
        scheduler = Scheduler(runtime, adapter, versions)
        first_due = await sync.scheduled_since(runtime, adapter)
        first_began = datetime.now(UTC)
        await scheduler._sync()
        _finish_all_analyses(database_url)
        since = await sync.scheduled_since(runtime, adapter)
        host.changed_at = datetime.now(UTC) + timedelta(seconds=1)
        for g in CHANGED:
            rewrite_file(own_mount, g)
        host.changed = set(CHANGED)
        host.removed = frozenset(REMOVED)
        requests = host.requests
        await scheduler._sync()
        incremental_requests = host.requests - requests
        queued = _queued_songs(database_url, "jellyfin")
        missing_after_incremental = _db(database_url, "SELECT count(*) FROM tracks WHERE is_missing")[0][0]
        _db(database_url, "UPDATE host_sync_state SET full_listed_at = full_listed_at - interval '2 days' RETURNING 1")
        full_due = await sync.scheduled_since(runtime, adapter)
        await scheduler._sync()
        missing_after_full = _db(database_url, "SELECT count(*) FROM tracks WHERE is_missing")[0][0]
    assert first_due is None  # never listed in full: a full listing
    assert since is not None
    assert first_began - sync.LISTING_OVERLAP <= since <= datetime.now(UTC) - sync.LISTING_OVERLAP
    assert incremental_requests == 2  # the libraries, then one page of the 37 saved songs
    assert queued == {f"{g:032x}" for g in CHANGED}
    assert missing_after_incremental == 0  # a listing of changes cannot see removals
    assert full_due is None
    assert missing_after_full == len(REMOVED)


class TaggingSubsonic(GeneratedSubsonic):
    """Songs in ``bpm`` carry that BPM tag (Navidrome's ``bpm`` field, an integer; untagged songs have none)."""

    bpm: dict[int, int]

    def song(self, g: int) -> dict[str, object]:
        song = super().song(g)
        if g in self.bpm:
            song["bpm"] = self.bpm[g]
        return song


async def test_the_hosts_bpm_tags_are_stored_and_a_retag_rewrites_only_that_song(
    runtime: Runtime, versions: dict[str, int], mount: Path, database_url: str
) -> None:
    host = TaggingSubsonic(200)
    host.bpm = {5: 128, 77: 93}
    async with navidrome(host, mount) as adapter:
        await sync_library(runtime, adapter, versions, page_size=PAGE)
        stored = _db(database_url, "SELECT host_track_id, host_bpm FROM tracks WHERE host_bpm IS NOT NULL")
        assert sorted(stored) == [("s5", 128.0), ("s77", 93.0)]
        _finish_all_analyses(database_url)
        host.bpm = {5: 64, 140: 170}  # retagged, untagged, newly tagged; no file changed

        again = await sync_library(runtime, adapter, versions, page_size=PAGE)

    assert (again.written, again.updated, again.queued) == (3, 0, 0)
    stored = _db(database_url, "SELECT host_track_id, host_bpm FROM tracks WHERE host_bpm IS NOT NULL")
    assert sorted(stored) == [("s140", 170.0), ("s5", 64.0)]
    (track_id,) = _db(database_url, "SELECT id FROM tracks WHERE host_track_id = 's5'")[0]
    async with transaction(runtime.pool) as conn:
        summary = await analyses.get_analysis(conn, int(str(track_id)))
    assert summary is not None
    assert summary["host_bpm"] == 64.0
