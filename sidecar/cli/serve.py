"""``sonantica serve``: the Sonic Match API under uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from sidecar.cli.app import app, configured_adapter


@app.command()
def serve(
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="default: SONANTICA_API__PORT (8787)")] = None,
    host: Annotated[str | None, typer.Option(help="bind address; default: SONANTICA_API__BIND_HOST")] = None,
) -> None:
    """Run the HTTP API (OpenAPI docs at /docs)."""
    import uvicorn

    from sidecar.api.app import create_app
    from sidecar.logconfig import setup_logging
    from sidecar.services.playlists import HostPlaylistWriter
    from sidecar.settings import get_settings

    settings = get_settings()
    setup_logging(settings)
    adapter = configured_adapter(settings)
    writer = HostPlaylistWriter(adapter) if adapter is not None else None
    uvicorn.run(
        create_app(
            settings,
            playlist_writer=writer,
            host_capabilities=adapter.capabilities if adapter is not None else (),
            host_adapter=adapter,
        ),
        host=host or settings.api.bind_host,
        port=port or settings.api.port,
        log_config=None,  # logging is set up above (SONANTICA_LOG_LEVEL, SONANTICA_LOG_FORMAT)
        access_log=False,  # the app's own access log (sidecar.api.access) names the route and duration
        proxy_headers=False,
    )
