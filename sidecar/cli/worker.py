"""Operating the analysis pipeline: ``worker``, ``enqueue``, ``status``, ``failed`` and ``queue rebuild``."""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from sidecar.cli.app import app, configured_adapter
from sidecar.domain import Priority, TrackKey
from sidecar.errors import FatalAnalyzerError, SidecarError

if TYPE_CHECKING:
    from sidecar.services.runtime import Runtime
    from sidecar.settings import Settings

T = TypeVar("T")
log = logging.getLogger(__name__)

queue_app = typer.Typer(help="Inspect and repair the Redis queues.", no_args_is_help=True)
app.add_typer(queue_app, name="queue")


def _priority(text: str, *, choices: str = "on-play, scan or stems") -> Priority:
    try:
        return Priority(text.replace("-", "_"))
    except ValueError:
        raise typer.BadParameter(f"unknown queue {text!r}: use {choices}") from None


def _report_rebuild(task: asyncio.Task[None]) -> None:
    """Log why the background index rebuild failed, with every model that failed and why (the worker goes on; the
    next start tries again)."""
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.error("rebuilding the HNSW indexes failed; the old ones keep serving until the next start: %s", exc)


def _run(main: Callable[[Runtime], Awaitable[T]], settings: Settings | None = None) -> T:
    """Open the runtime, run ``main`` in it, and turn sidecar errors into a clear message and exit code 2."""
    from sidecar.services.runtime import open_runtime
    from sidecar.settings import get_settings

    async def runner() -> T:
        async with open_runtime(settings or get_settings()) as runtime:
            return await main(runtime)

    try:
        return asyncio.run(runner())
    except SidecarError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@app.command()
def worker(
    drain: Annotated[bool, typer.Option(help="empty the queues, then exit (tests and batch runs)")] = False,
    queues: Annotated[
        str | None, typer.Option(help="queues to take, e.g. on-play, on-play,scan or stems (separations only)")
    ] = None,
    concurrency: Annotated[int | None, typer.Option(min=1, help="tracks analysed at once")] = None,
) -> None:
    """Analyse queued tracks (on-play strictly first, then the scan backlog), then separate stems when no analysis
    waits. Stops cleanly on SIGTERM."""
    from tqdm import tqdm

    from sidecar.analyzers.executor import AnalysisExecutor, AnalyzerProbe, probe_analyzers
    from sidecar.logconfig import setup_logging
    from sidecar.services.analysis import ensure_embedding_indexes, register_embedding_models
    from sidecar.settings import get_settings
    from sidecar.stems.executor import StemsExecutor
    from sidecar.worker.runner import Worker
    from sidecar.worker.stems import StemsLane

    settings = get_settings()
    setup_logging(settings)
    if concurrency is not None:
        settings = settings.model_copy(
            update={"worker": settings.worker.model_copy(update={"concurrency": concurrency})}
        )
    names = [q.strip().replace("-", "_") for q in (queues.split(",") if queues else settings.worker.queues)]
    chosen = [_priority(q) for q in names if q != "stems"]
    separate = "stems" in names  # separations: after analysis in this worker, or alone (`--queues stems`)
    adapter = configured_adapter(settings) if chosen else None  # tags are written back after each analysis
    try:
        probe = probe_analyzers(settings) if chosen else AnalyzerProbe({}, ())  # checks models before taking work
        versions = probe.versions
    except FatalAnalyzerError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    bar = tqdm(unit="job", file=sys.stderr, disable=None, desc="worker")

    async def main(runtime: Runtime) -> None:
        await register_embedding_models(runtime, probe.models)
        executor = AnalysisExecutor(settings, list(versions), processes=settings.worker.concurrency)
        stems_executor = StemsExecutor(settings) if separate else None
        lane = (
            None if stems_executor is None else StemsLane(runtime, stems_executor, on_outcome=lambda _o: bar.update())
        )
        job_worker = Worker(
            runtime, executor, versions, queues=chosen, on_outcome=lambda _o: bar.update(), adapter=adapter, stems=lane
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, job_worker.stop)
        rebuild = asyncio.create_task(ensure_embedding_indexes(runtime, probe.models))  # analyses go on meanwhile
        rebuild.add_done_callback(_report_rebuild)
        try:
            stats = await job_worker.run(drain=drain)
            if drain:
                await asyncio.wait([rebuild])
        finally:
            rebuild.cancel()  # stopped mid-build: the next start drops the unfinished index and builds again
            await asyncio.wait([rebuild])
            executor.close()
            if stems_executor is not None:
                stems_executor.close()
            if adapter is not None:
                await adapter.aclose()
        bar.close()
        outcomes = {**stats.outcomes, **({} if lane is None else {f"stems_{k}": v for k, v in lane.outcomes.items()})}
        typer.echo(json.dumps(outcomes, sort_keys=True), err=True)

    _run(main, settings)


@app.command()
def enqueue(
    paths: Annotated[list[Path] | None, typer.Argument(help="files or folders to analyse")] = None,
    track: Annotated[
        list[str] | None, typer.Option(help="a known track: HOST:HOST_TRACK_ID or the sidecar's id")
    ] = None,
    priority: Annotated[str, typer.Option(help="on-play (next) or scan (background)")] = "scan",
) -> None:
    """Queue tracks for analysis (only the analyzers that are missing or stale for each). A named file that does
    not exist, or a track without a readable file, is reported and not queued; the exit code is then 1."""
    from sidecar.analyzers.audio import audio_files
    from sidecar.analyzers.versions import enabled_versions
    from sidecar.services.enqueue import enqueue_track_ids, register_local_files
    from sidecar.settings import get_settings
    from sidecar.storage import tracks
    from sidecar.storage.db import transaction

    chosen = _priority(priority, choices="on-play or scan")
    named = list(audio_files(paths or []))
    if not named and not track:
        raise typer.BadParameter("no audio files found" if paths else "name at least one PATH or --track")
    files = [path for path in named if path.is_file()]
    absent = [path for path in named if not path.is_file()]  # a folder yields only files: these were named
    refs = [_track_ref(ref) for ref in track or []]
    versions = enabled_versions(get_settings())

    async def main(runtime: Runtime) -> int:
        ids = await register_local_files(runtime.pool, files)
        unreadable: list[str] = []
        async with transaction(runtime.pool) as conn:
            for ref, key in zip(track or [], refs, strict=True):
                found = await (
                    tracks.get_track_by_key(conn, key) if isinstance(key, TrackKey) else tracks.get_track(conn, key)
                )
                if found is None:
                    raise typer.BadParameter(f"no track {ref!r} is known (run `sonantica host sync` first)")
                if found.path is None or found.is_missing:
                    unreadable.append(ref)
                else:
                    ids.append(found.id)
        done = await enqueue_track_ids(runtime, ids, versions, priority=chosen) if ids else []
        queued = [e for e in done if e.analyzers]
        for path in absent:
            typer.echo(f"error: {path}: no such file; not queued", err=True)
        for ref in unreadable:
            typer.echo(f"error: track {ref!r} has no readable file on the library mount; not queued", err=True)
        skipped = len(absent) + len(unreadable)
        typer.echo(
            f"queued {len(queued)} of {len(done) + skipped} tracks at {chosen} priority"
            f" ({len(done) - len(queued)} current, {skipped} without a readable file)"
        )
        return skipped

    if _run(main):
        raise typer.Exit(1)


def _track_ref(ref: str) -> TrackKey | int:
    """``HOST:HOST_TRACK_ID`` as a key, or the sidecar's numeric id; anything else is a usage error."""
    host, sep, host_id = ref.partition(":")
    if sep:
        if not host or not host_id:
            raise typer.BadParameter(f"--track {ref!r}: use HOST:HOST_TRACK_ID (e.g. navidrome:abc) or a numeric id")
        return TrackKey(host, host_id)
    if not ref.isdigit() or not 1 <= int(ref) < 2**63:
        raise typer.BadParameter(
            f"--track {ref!r} is neither HOST:HOST_TRACK_ID (e.g. navidrome:abc) nor a numeric track id"
        )
    return int(ref)


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False) -> None:
    """Analysis coverage per analyzer (done / pending / queued / running / stale / failed), queues and workers."""
    from sidecar.analyzers.versions import enabled_versions
    from sidecar.services.status import status_report
    from sidecar.services.stems import stems_summary
    from sidecar.settings import get_settings

    versions = enabled_versions(get_settings())

    async def gather(runtime: Runtime) -> dict[str, Any]:
        return {**await status_report(runtime, versions), "stems": await stems_summary(runtime)}

    report = _run(gather)
    if as_json:
        typer.echo(json.dumps(report, sort_keys=True))
        return
    columns = ("version", "done", "pending", "queued", "running", "stale", "failed")
    typer.echo(f"{'analyzer':10}" + "".join(f" {c:>7}" for c in columns))
    for name, counts in report["analyzers"].items():
        typer.echo(f"{name:10}" + "".join(f" {counts[c]:>7}" for c in columns))
    typer.echo("queues: " + ", ".join(f"{k} {v}" for k, v in report["queues"].items()))
    typer.echo(f"workers alive: {len(report['workers'])}")
    stems = report["stems"]
    typer.echo(
        f"stems: {stems['separated']} tracks, {stems['disk_bytes'] / 1e6:.1f} MB on disk;"
        f" queued {stems['stems']}, running {stems['stems_processing']}"
    )


@app.command()
def failed(
    retry: Annotated[bool, typer.Option(help="give every failed analysis a fresh set of attempts")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
) -> None:
    """List failed analyses with their reasons; --retry queues them again."""
    from sidecar.analyzers.versions import enabled_versions
    from sidecar.services.status import failed_analyses, retry_failed
    from sidecar.settings import get_settings

    versions = enabled_versions(get_settings())
    rows = _run(lambda runtime: failed_analyses(runtime))
    for row in rows:
        typer.echo(json.dumps(row) if as_json else f"{row['analyzer']:9} {row['path']}: {row['last_error']}")
    if retry and rows:
        count = _run(lambda runtime: retry_failed(runtime, versions))
        typer.echo(f"queued {count} tracks again", err=True)
    elif not rows and not as_json:
        typer.echo("no failed analyses", err=True)


@queue_app.command("rebuild")
def queue_rebuild(force: Annotated[bool, typer.Option(help="even when the queue epoch is present")] = False) -> None:
    """Refill the queues from PostgreSQL (after Redis lost its data; workers also do this on their own)."""
    from sidecar.analyzers.versions import enabled_versions
    from sidecar.services.reconcile import rebuild_from_database
    from sidecar.settings import get_settings

    versions = enabled_versions(get_settings())
    outcome = _run(lambda runtime: rebuild_from_database(runtime, versions, force=force))
    typer.echo(f"pushed {outcome.jobs_pushed} jobs" if outcome.ran else "queue epoch present: nothing to do")
