"""The web client's static files (served by ``sonantica serve`` at ``/``)."""

from __future__ import annotations

from pathlib import Path

WEB_STATIC_DIR = Path(__file__).parent / "static"
