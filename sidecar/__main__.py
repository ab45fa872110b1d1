"""Entry point of ``sonantica`` and ``python -m sidecar``."""

from __future__ import annotations

from sidecar.cli import app


def main() -> None:
    """Run the command line."""
    app()


if __name__ == "__main__":
    main()
