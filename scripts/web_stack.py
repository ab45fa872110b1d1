"""The web client served for a browser outside pytest (the Firefox check, the page-load benchmark): the browser
tests' seeded library and real Subsonic server, the app under uvicorn on a free port, everything removed after."""

from __future__ import annotations

import asyncio
import atexit
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from pydantic import SecretStr

from sidecar.api.app import create_app
from sidecar.demo.subsonic import SubsonicServer
from sidecar.embedded import supervisor_exited
from sidecar.services.hosts import make_adapter
from sidecar.services.playlists import HostPlaylistWriter
from sidecar.settings import ApiSettings, NavidromeSettings, Settings, WebSettings
from tests.browser.conftest import (
    ANALYZERS,
    GUEST,
    GUEST_PASSWORD,
    MODEL,
    PASSWORD,
    TOKEN,
    USER,
    _make_music,
    _seed,
)
from tests.browser.conftest import _free_port as free_port


@dataclass(frozen=True)
class WebStack:
    """A running web client: its temporary folder (``root / "music"`` is the library), settings and base URL."""

    root: Path
    settings: Settings
    url: str


def _remove(root: Path) -> None:
    supervisor_exited(root / "data", timeout_s=60)
    shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_web_client(
    prefix: str, *, login_attempts: int, prepare: Callable[[Settings, Path], None] = lambda _settings, _root: None
) -> Iterator[WebStack]:
    """Serve the seeded library (user ``GUEST`` / ``GUEST_PASSWORD`` on the Subsonic server) until the block ends;
    ``login_attempts`` is the sign-in rate limit (a benchmark signs in often). ``prepare(settings, root)`` adds to
    the library before the app starts (its own runtime, closed before the app opens one: closing a runtime of this
    process while the app runs would release the embedded servers the app uses)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    # Removed at exit, after the embedded servers' own exit handlers (registered later, so run earlier) have
    # released them and their supervisor has stopped them.
    atexit.register(_remove, root)
    _make_music(root / "music")
    with SubsonicServer(root / "music", root / "supysonic", username=USER, password=PASSWORD) as subsonic:
        subsonic.add_user(GUEST, GUEST_PASSWORD)
        settings = Settings(
            data_dir=root / "data",
            library_dir=root / "music",
            host="navidrome",
            navidrome=NavidromeSettings(url=subsonic.url, username=USER, password=SecretStr(PASSWORD)),
            api=ApiSettings(token=SecretStr(TOKEN), access_log=False),
            web=WebSettings(login_attempts=login_attempts),
            embedding={"model": MODEL},
            analysis={"enabled": list(ANALYZERS)},
        )
        asyncio.run(_seed(settings))
        prepare(settings, root)
        adapter = make_adapter(settings)
        assert adapter is not None  # host is navidrome
        app = create_app(settings, playlist_writer=HostPlaylistWriter(adapter), host_capabilities=adapter.capabilities)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        try:
            yield WebStack(root=root, settings=settings, url=f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(10)
