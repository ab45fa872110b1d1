"""Entry point of ``sonantica`` and ``python -m sidecar``."""

from __future__ import annotations

import sys

import typer

from sidecar.cli import app
from sidecar.errors import SidecarError


def main() -> None:
    """Run the command line; an error the sidecar raises on purpose (a refused setting, an unreachable database)
    that no command handled ends it with ``error: <reason>`` on stderr and exit code 2, without a traceback."""
    try:
        app()
    except SidecarError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
