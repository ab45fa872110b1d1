"""``sonantica demo``: the whole product on one machine, with nothing to install or configure."""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.cli.app import app

if TYPE_CHECKING:
    from sidecar.services.runtime import Runtime


@app.command()
def demo(
    tracks: Annotated[int, typer.Option(min=6, max=200, help="tracks in the generated library")] = 30,
    serve: Annotated[bool, typer.Option(help="keep the API (and the Subsonic server) running afterwards")] = False,
    port: Annotated[int, typer.Option(min=1, max=65535, help="API port with --serve")] = 8787,
) -> None:
    """Generate a library, serve it with a real Subsonic server, analyse it through the Navidrome adapter, play a
    track (it jumps the queue), and write Sonic Match and BPM-range playlists to the server.

    Everything lives under <data_dir>/demo; a second run reuses the rendered library.
    """
    import uvicorn

    from sidecar.analyzers.executor import AnalysisExecutor
    from sidecar.api.app import create_app
    from sidecar.demo.flow import DEMO_PASSWORD, DEMO_USER, demo_settings_for_api, run_demo
    from sidecar.services.hosts import make_adapter
    from sidecar.services.playlists import HostPlaylistWriter
    from sidecar.settings import get_settings
    from sidecar.stems.executor import StemsExecutor
    from sidecar.worker.runner import Worker
    from sidecar.worker.stems import StemsLane

    async def keep_serving(runtime: Runtime) -> None:
        settings = demo_settings_for_api(runtime.settings, port=port)
        adapter = make_adapter(settings)  # the demo's Subsonic server: playlists the API makes are written there
        writer = HostPlaylistWriter(adapter) if adapter is not None else None
        api = create_app(settings, playlist_writer=writer)
        base = f"http://{settings.api.bind_host}:{port}"
        typer.echo(f"Web client: {base}/  (sign in as {DEMO_USER} / {DEMO_PASSWORD}, the Subsonic server's account)")
        typer.echo(f"API: {base}/docs  (token in {settings.data_dir / 'api-token'});")
        typer.echo("Stems asked for in the client are separated here (weights: `sonantica models fetch --stems`).")
        typer.echo("Ctrl-C stops it.")
        # A separations-only worker beside the API, so "Request stems" is carried out (or fails with its reason).
        stems_executor = StemsExecutor(settings)
        lane = StemsLane(runtime, stems_executor)
        separations = Worker(runtime, AnalysisExecutor(settings, [], processes=1), {}, queues=[], stems=lane)
        separating = asyncio.create_task(separations.run())
        try:
            await uvicorn.Server(uvicorn.Config(api, host=settings.api.bind_host, port=port, log_config=None)).serve()
        finally:
            separations.stop()
            with contextlib.suppress(Exception):
                await separating
            stems_executor.close()

    asyncio.run(run_demo(get_settings(), n_tracks=tracks, out=typer.echo, serve=keep_serving if serve else None))
