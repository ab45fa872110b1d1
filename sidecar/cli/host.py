"""``sonantica host check``: connect to the configured media server and show what the sidecar would see."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.cli.app import app

if TYPE_CHECKING:
    from adapters.base import HostAdapter, HostTrack

host_app = typer.Typer(help="The media server: check the connection, sync the library.", no_args_is_help=True)
app.add_typer(host_app, name="host")


@dataclass
class CheckReport:
    """What ``host check`` found: lines to print and the fixes for every problem (empty when all is well)."""

    lines: list[str] = field(default_factory=list)
    fixes: list[str] = field(default_factory=list)


def _readable(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.read(1)
    except OSError:
        return False
    return True


def _track_line(track: HostTrack, report: CheckReport) -> None:
    if track.local_path is None:
        report.lines.append(f"  FAIL {track.host_path!r}: {track.path_problem}")
        report.fixes.append(track.path_problem or "the host reported no path")
    elif not _readable(Path(track.local_path)):
        report.lines.append(f"  FAIL {track.host_path!r} -> {track.local_path} (not readable)")
        report.fixes.append(
            f"{track.local_path} is not readable: mount the library read-only at SONANTICA_LIBRARY_DIR and check "
            "SONANTICA_PATH_MAP (HOST_PREFIX:MOUNT_PREFIX)"
        )
    else:
        report.lines.append(f"  OK   {track.host_path!r} -> {track.local_path}")


async def run_check(adapter: HostAdapter, *, samples: int) -> CheckReport:
    """Ping, list capabilities, and map the first ``samples`` tracks; never raises HostError."""
    from adapters.base import HostAuthError, HostError, HostUnavailableError

    report = CheckReport()
    try:
        info = await adapter.ping()
        details = ", ".join(f"{key} {value}" for key, value in sorted(info.details.items()))
        report.lines.append(f"server: {info.server_name} {info.version} ({details})")
        report.lines.append(f"capabilities: {', '.join(sorted(adapter.capabilities)) or 'none'}")
        report.lines.append(f"tracks (first {samples}):")
        seen = 0
        async for track in adapter.iter_tracks(page_size=max(samples, 1)):
            _track_line(track, report)
            seen += 1
            if seen >= samples:
                break
        if seen == 0:
            report.fixes.append("the server lists no tracks: let it finish scanning its music folder")
    except HostAuthError as error:
        report.fixes.append(f"credentials refused: {error}")
    except HostUnavailableError as error:
        report.fixes.append(f"server unreachable: {error}; check the URL and that the server is running")
    except HostError as error:
        report.fixes.append(str(error))
    finally:
        await adapter.aclose()
    return report


@host_app.command("check")
def check(samples: Annotated[int, typer.Option(min=1, help="how many tracks to map and read")] = 3) -> None:
    """Connect with the configured credentials; print server, capabilities and a few tracks' path mapping."""
    from adapters.registry import make_adapter
    from sidecar.services.hosts import adapter_config
    from sidecar.settings import get_settings

    settings = get_settings()
    try:
        adapter = make_adapter(settings.host.value, adapter_config(settings))
    except ValueError as error:
        typer.echo(f"fix: {error}", err=True)
        raise typer.Exit(2) from None
    report = asyncio.run(run_check(adapter, samples=samples))
    for line in report.lines:
        typer.echo(line)
    for fix in dict.fromkeys(report.fixes):
        typer.echo(f"fix: {fix}", err=True)
    if report.fixes:
        raise typer.Exit(1)
