"""``sonantica scheduler``: periodic sync, now-playing polling and reconciliation (one active instance)."""

from __future__ import annotations

import asyncio
import signal

import typer

from sidecar.cli.app import app, configured_adapter
from sidecar.errors import SidecarError


@app.command()
def scheduler() -> None:
    """Run the periodic jobs; a second scheduler idles until the first stops. Stops cleanly on SIGTERM."""
    from sidecar.analyzers.versions import enabled_versions
    from sidecar.logconfig import setup_logging
    from sidecar.scheduler import Scheduler
    from sidecar.services.runtime import open_runtime
    from sidecar.settings import get_settings

    settings = get_settings()
    setup_logging(settings)
    adapter = configured_adapter(settings)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            async with open_runtime(settings) as runtime:
                await Scheduler(runtime, adapter, enabled_versions(settings)).run(stop)
        finally:
            if adapter is not None:
                await adapter.aclose()

    try:
        asyncio.run(main())
    except SidecarError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
