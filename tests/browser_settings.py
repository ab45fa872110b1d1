"""Settings of the browser tests (environment, prefix ``SONANTICA_TEST_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class BrowserTestSettings(BaseSettings):
    """Where the browser is, and where screenshots go (optional)."""

    model_config = SettingsConfigDict(env_prefix="SONANTICA_TEST_")

    chromium_executable: Path = Path("/usr/bin/chromium")
    screenshot_dir: Path | None = None
