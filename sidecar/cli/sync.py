"""``sonantica host sync``: one library sync now, with a progress bar and a summary."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.cli.app import configured_adapter
from sidecar.cli.host import host_app
from sidecar.errors import SidecarError

if TYPE_CHECKING:
    from sidecar.services.sync import SyncReport
    from sidecar.services.writeback import WriteBackReport


def _summary(report: SyncReport) -> list[str]:
    kind = "full" if report.full else "incremental"
    deep = " (deep)" if report.deep else ""
    lines = [
        f"{report.host} {kind} sync{deep} in {report.duration_s:.1f} s: {report.seen} tracks seen, {report.created}"
        f" new, {report.updated} updated, {report.missing} missing, {report.unmappable} unmappable,"
        f" {report.queued} queued for analysis; {report.unchanged} unchanged on the host (not re-checked)",
    ]
    lines += [f"  unmappable {p.host_track_id} ({p.host_path}): {p.problem}" for p in report.path_problems]
    if report.bpm_disagreements:
        lines.append(f"{report.bpm_disagreements} tracks: host BPM differs from ours")
        lines += [f"  {d.title}: host {d.host_value:g} BPM, ours {d.our_value:.1f}" for d in report.bpm_examples]
    if report.replaygain_disagreements:
        lines.append(f"{report.replaygain_disagreements} tracks: host ReplayGain differs from ours")
        lines += [
            f"  {d.title}: host {d.host_value:+.2f} dB, ours {d.our_value:+.2f} dB" for d in report.replaygain_examples
        ]
    return lines


@host_app.command("sync")
def sync(
    since: Annotated[
        datetime | None, typer.Option(help="incremental: only tracks changed after this time (ISO 8601, UTC)")
    ] = None,
    deep: Annotated[
        bool,
        typer.Option(
            "--deep",
            help="stat every listed file and compare every row, also for tracks the host reports unchanged"
            " (default: only when SONANTICA_SCHEDULER__DEEP_SYNC_INTERVAL_S has passed since the last deep sync)",
        ),
    ] = False,
) -> None:
    """Sync the host's library now: store its tracks, mark vanished ones missing, queue missing analyses."""
    from tqdm import tqdm

    from adapters.base import HostError
    from sidecar.analyzers.versions import enabled_versions
    from sidecar.services.runtime import open_runtime
    from sidecar.services.sync import sync_library
    from sidecar.settings import get_settings

    settings = get_settings()
    changed_since = since if since is None or since.tzinfo is not None else since.replace(tzinfo=UTC)
    adapter = configured_adapter(settings)
    if adapter is None:
        typer.echo("error: no host configured: set SONANTICA_HOST=jellyfin or navidrome", err=True)
        raise typer.Exit(2)
    host_adapter = adapter
    bar = tqdm(unit="track", file=sys.stderr, disable=None, desc=f"sync {host_adapter.kind.value}")

    async def main() -> SyncReport:
        try:
            async with open_runtime(settings) as runtime:
                return await sync_library(
                    runtime,
                    host_adapter,
                    enabled_versions(settings),
                    changed_since=changed_since,
                    deep=True if deep else None,
                    attempts=settings.scheduler.sync_attempts,
                    retry_base_s=settings.scheduler.sync_retry_base_s,
                    progress=bar.update,
                )
        finally:
            await host_adapter.aclose()

    try:
        report = asyncio.run(main())
    except (SidecarError, HostError) as exc:
        bar.close()
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    bar.close()
    for line in _summary(report):
        typer.echo(line)


@host_app.command("write-back")
def write_back() -> None:
    """Write every analysed track's BPM, key, Camelot and ReplayGain to the host (where its API accepts them)."""
    from sidecar.services.runtime import open_runtime
    from sidecar.services.writeback import write_back_all, writes_tags
    from sidecar.settings import get_settings

    settings = get_settings()
    adapter = configured_adapter(settings)
    if adapter is None or not writes_tags(adapter):
        kind = "no host is configured" if adapter is None else f"{adapter.kind.value}'s API accepts no tags"
        typer.echo(f"nothing to write: {kind}; results stay available from the sidecar API", err=True)
        return
    host_adapter = adapter

    async def main() -> WriteBackReport:
        try:
            async with open_runtime(settings) as runtime:
                return await write_back_all(runtime, host_adapter)
        finally:
            await host_adapter.aclose()

    report = asyncio.run(main())
    typer.echo(", ".join(f"{count} {outcome}" for outcome, count in sorted(report.outcomes.items())) or "0 tracks")
    for host_track_id, reason in report.failures:
        typer.echo(f"  failed {host_track_id}: {reason}", err=True)
    if report.failures:
        raise typer.Exit(1)
