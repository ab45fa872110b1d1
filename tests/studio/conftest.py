"""Browser fixtures of the Studio tests: one live ``sonantica serve`` app per module (real PostgreSQL and Redis,
a temporary library mount) and, in the shared ``browser`` of ``tests/conftest.py``, a page per test that fails the
test on any console error or uncaught exception."""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Error, Page
from psycopg import sql
from psycopg.conninfo import make_conninfo

from sidecar.api.app import create_app
from sidecar.services.runtime import Runtime
from sidecar.settings import Settings
from sidecar.storage.migrate import migrate

TOKEN = "studio-token-" + "s" * 24
T = TypeVar("T")


@dataclass
class StudioServer:
    """A served app on ``base_url``; ``call`` runs a coroutine on the server's own event loop (its runtime)."""

    base_url: str
    settings: Settings
    library: Path
    runtime: Runtime
    loop: asyncio.AbstractEventLoop
    _server: uvicorn.Server = field(repr=False)

    def call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=60)


def _database(postgres_url: str, name: str, *, drop: bool = False) -> str:
    with psycopg.connect(make_conninfo(postgres_url, dbname="postgres"), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if not drop:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    return make_conninfo(postgres_url, dbname=name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def studio_server(
    postgres_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StudioServer]:
    root = tmp_path_factory.mktemp("studio")
    library = root / "library"
    library.mkdir()
    name = f"sonantica_studio_{uuid.uuid4().hex[:12]}"
    settings = Settings(
        data_dir=root / "data",
        database_url=_database(postgres_url, name),
        redis_url=redis_url,
        library_dir=library,
        api={"token": TOKEN, "access_log": False},
        redis={"key_prefix": f"studio{uuid.uuid4().hex[:8]}:"},
        analysis={"enabled": ["loudness", "tempo", "key"]},
    )
    assert settings.database_url is not None
    app = create_app(settings)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on"))
    loops: list[asyncio.AbstractEventLoop] = []

    async def serve() -> None:
        assert settings.database_url is not None
        await migrate(settings.database_url.get_secret_value())
        loops.append(asyncio.get_running_loop())
        await server.serve()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    for _ in range(600):
        if server.started or not thread.is_alive():
            break
        threading.Event().wait(0.05)
    assert server.started, "the Studio's test server did not start"
    yield StudioServer(f"http://127.0.0.1:{port}", settings, library, app.state.runtime, loops[0], server)
    server.should_exit = True
    thread.join(timeout=30)
    _database(postgres_url, name, drop=True)


@pytest.fixture
def page(browser: Browser, studio_server: StudioServer) -> Iterator[Page]:
    """A fresh page that carries the API token in sessionStorage (as a signed-in script would); any console
    error or uncaught exception fails the test."""
    context = browser.new_context(base_url=studio_server.base_url, viewport={"width": 1100, "height": 900})
    context.add_init_script(f"sessionStorage.setItem('sonantica.token', {TOKEN!r})")
    opened = context.new_page()
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"console: {message.text}")

    def on_error(error: Error) -> None:
        errors.append(f"page error: {error.message}")

    opened.on("console", on_console)
    opened.on("pageerror", on_error)
    yield opened
    context.close()
    assert errors == [], errors
