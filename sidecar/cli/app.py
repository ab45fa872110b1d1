"""The root ``typer`` application that every command module registers on, and what the commands share.

Command modules import at module level only what is quick to import (the standard library, ``typer``, this
module, :mod:`sidecar.errors`) and what their command signatures name; everything else is imported inside the
function that uses it, so ``--help`` and each command load only what they need (numpy, scipy, librosa, torch,
FastAPI and the database drivers take up to seconds to import).
"""

from __future__ import annotations

from importlib import metadata
from typing import TYPE_CHECKING, Annotated

import typer

from sidecar.errors import SidecarError

if TYPE_CHECKING:
    from adapters.base import HostAdapter
    from sidecar.settings import Settings

app = typer.Typer(
    name="sonantica",
    help="Sonántica: BPM, key, loudness and Sonic Match playlists for Jellyfin and Navidrome.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(wanted: bool) -> None:
    if wanted:
        typer.echo(f"sonantica {metadata.version('sonantica')}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Sonántica: BPM, key, loudness and Sonic Match playlists for Jellyfin and Navidrome."""


def configured_adapter(settings: Settings) -> HostAdapter | None:
    """The configured host's adapter (``None`` for ``SONANTICA_HOST=none``); incomplete host settings end the
    command with exit code 2 and the message naming what to set."""
    from sidecar.services.hosts import make_adapter

    try:
        return make_adapter(settings)
    except SidecarError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
