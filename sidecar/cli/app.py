"""The root ``typer`` application that every command module registers on."""

from __future__ import annotations

import typer

app = typer.Typer(
    name="sonantica",
    help="Sonántica: BPM, key, loudness and Sonic Match playlists for Jellyfin and Navidrome.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Keep ``sonantica <command>`` a command group even while only one command is registered."""
