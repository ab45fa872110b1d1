"""The web client served at ``/``: static pages (``static/``) and the sign-in sessions behind them."""

from __future__ import annotations

from pathlib import Path

WEB_STATIC_DIR = Path(__file__).parent / "static"
"""Plain HTML, CSS and JS modules, served as they are (no build step)."""
