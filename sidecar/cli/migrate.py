"""``sonantica migrate``: bring the database schema up to date (the one-shot role run before api/worker start)."""

from __future__ import annotations

import asyncio

import typer

from sidecar.cli.app import app


@app.command("migrate")
def migrate_command() -> None:
    """Apply pending SQL migrations (each in a transaction); running it again changes nothing."""
    from sidecar.embedded import database_url
    from sidecar.logconfig import setup_logging
    from sidecar.settings import get_settings
    from sidecar.storage.migrate import migrate

    settings = get_settings()
    setup_logging(settings)
    applied = asyncio.run(migrate(database_url(settings)))
    if applied:
        typer.echo(f"applied {len(applied)} migration(s): {', '.join(applied)}")
    else:
        typer.echo("schema is up to date")
