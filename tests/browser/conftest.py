"""Browser fixtures: Debian's Chromium driven by Playwright (one browser per test module, a fresh context and page
per test that fails on any console error), and the web client served by uvicorn over a seeded library that lives on a
real Subsonic server (supysonic), so sign-in and playlists go to a real host.

The browser is ``SONANTICA_TEST_CHROMIUM_EXECUTABLE`` (default ``/usr/bin/chromium``; ``make install`` installs
Debian's ``chromium`` when missing). ``SONANTICA_TEST_SCREENSHOT_DIR`` makes the tests save screenshots there.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
import time
import uuid
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import aclosing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import uvicorn
from playwright.sync_api import Browser, ConsoleMessage, Page
from pydantic import SecretStr

from sidecar.analyzers.pipeline import analyze_file
from sidecar.analyzers.registry import CORE_ANALYZERS, build_analyzers
from sidecar.analyzers.versions import VERSIONS as ALL_VERSIONS
from sidecar.api.app import create_app
from sidecar.demo.encode import write_audio
from sidecar.demo.library import tag_file
from sidecar.demo.subsonic import SubsonicServer
from sidecar.domain import KeyResult, KeySignature, LoudnessResult, TempoResult
from sidecar.services.hosts import make_adapter
from sidecar.services.playlists import HostPlaylistWriter
from sidecar.services.runtime import open_runtime
from sidecar.services.sync import sync_library
from sidecar.settings import ApiSettings, NavidromeSettings, Settings, WebSettings
from sidecar.storage import analyses, vectors
from sidecar.storage.db import transaction
from sidecar.storage.migrate import migrate
from tests.browser_settings import BrowserTestSettings
from tests.integration.conftest import create_database, drop_database

USER, PASSWORD = "listener", "listen-Pass-7"  # the sidecar's own account on the Subsonic server
GUEST, GUEST_PASSWORD = "guest", "guest-Pass-3"  # another user of the server, who signs in to the client
TOKEN = "browser-token-" + "x" * 24
MODEL, DIM = "timbre-v1", 16
ANALYZERS = (*CORE_ANALYZERS, "waveform")
VERSIONS = {name: ALL_VERSIONS[name] for name in ANALYZERS}
RATE_HZ = 16000
SILENT_S = (0.6, 1.2)  # every track is noise for 2 s with digital silence here (drawn empty on the waveform)


@dataclass(frozen=True)
class LibrarySpec:
    title: str
    artist: str
    album: str
    bpm: float
    key: str
    loudness_lufs: float
    angle_rad: float  # direction of its embedding: neighbours are close angles
    key_confidence: float = 0.8


LIBRARY = [
    LibrarySpec("Morning Run", "Alpha Band", "Tempo Tales", 120.0, "A minor", -9.0, 0.0),
    LibrarySpec("Night Drive", "Alpha Band", "Tempo Tales", 124.0, "E minor", -11.0, 0.15),
    LibrarySpec("Half Step", "Beta Trio", "Slow Things", 61.0, "D minor", -14.0, 0.3),
    LibrarySpec("Double Time", "Beta Trio", "Slow Things", 242.0, "C major", -8.0, 0.45),
    LibrarySpec("Far Away", "Gamma", "Elsewhere", 95.0, "F# major", -20.0, 1.4),
    LibrarySpec("Quiet Room", "Gamma", "Elsewhere", 122.0, "B minor", -23.0, 0.6, key_confidence=0.1),
]


@dataclass
class ConsoleWatch:
    """Console errors and uncaught page errors seen during a test; ``allow`` names expected ones (substrings)."""

    errors: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)

    def allow(self, fragment: str) -> None:
        self.allowed.append(fragment)

    def unexpected(self) -> list[str]:
        return [error for error in self.errors if not any(fragment in error for fragment in self.allowed)]


@pytest.fixture
def console() -> ConsoleWatch:
    return ConsoleWatch()


@pytest.fixture
def page(browser: Browser, console: ConsoleWatch) -> Iterator[Page]:
    """A fresh browser context (no cookies) and page; the test fails on any console error it did not allow."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    opened.set_default_timeout(15_000)

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            console.errors.append(f"{message.text} ({message.location.get('url', '')})")

    opened.on("console", on_console)
    opened.on("pageerror", lambda error: console.errors.append(f"page error: {error}"))
    yield opened
    context.close()
    assert console.unexpected() == [], "console errors in the page"


Screenshot = Callable[[Page, str], None]
"""The ``screenshot`` fixture: ``screenshot(page, name)``."""


@pytest.fixture
def screenshot(browser_settings: BrowserTestSettings) -> Screenshot:
    """``screenshot(page, name)`` saves ``<SONANTICA_TEST_SCREENSHOT_DIR>/<name>.png`` when that is set."""

    def take(target: Page, name: str) -> None:
        if browser_settings.screenshot_dir is not None:
            browser_settings.screenshot_dir.mkdir(parents=True, exist_ok=True)
            target.screenshot(path=str(browser_settings.screenshot_dir / f"{name}.png"), full_page=True)

    return take


def _run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` on a loop of its own thread (the test session's loop stays untouched)."""
    with ThreadPoolExecutor(1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _vector(angle_rad: float) -> np.ndarray:
    vector = np.zeros(DIM, np.float32)
    vector[0], vector[1] = math.cos(angle_rad), math.sin(angle_rad)
    return vector


def _music_path(root: Path, number: int, spec: LibrarySpec) -> Path:
    return root / spec.artist / spec.album / f"{number:02d} - {spec.title}.flac"


def _make_music(root: Path) -> None:
    rng = np.random.default_rng(11)
    for number, spec in enumerate(LIBRARY, start=1):
        path = _music_path(root, number, spec)
        path.parent.mkdir(parents=True, exist_ok=True)
        samples = np.clip(0.15 * rng.standard_normal((2 * RATE_HZ, 2)), -1, 1)
        samples[round(SILENT_S[0] * RATE_HZ) : round(SILENT_S[1] * RATE_HZ)] = 0.0
        write_audio(samples.astype(np.float32), RATE_HZ, path)
        tag_file(path, title=spec.title, artist=spec.artist, album=spec.album, track_number=number, genre="Test")


async def _seed(settings: Settings) -> None:
    """Sync the Subsonic library into PostgreSQL and store an analysis (the waveform from the real analyzer, the
    rest as specified) and an embedding per track (no worker)."""
    adapter = make_adapter(settings)
    assert adapter is not None
    waveform = build_analyzers(settings, ["waveform"])
    assert settings.library_dir is not None
    async with open_runtime(settings) as runtime, aclosing(adapter):
        await sync_library(runtime, adapter, VERSIONS)
        by_title = {spec.title: (number, spec) for number, spec in enumerate(LIBRARY, start=1)}
        async with transaction(runtime.pool) as conn:
            await vectors.register_model(conn, MODEL, dim=DIM)
        async with transaction(runtime.pool) as conn:
            cur = await conn.execute("SELECT id, title FROM tracks")
            for track_id, title in await cur.fetchall():
                number, spec = by_title[title]
                drawn = analyze_file(_music_path(settings.library_dir, number, spec), waveform).results["waveform"]
                await analyses.store_results(
                    conn,
                    track_id,
                    results={
                        "tempo": TempoResult(bpm=spec.bpm, bpm_confidence=0.9, beat_times_s=np.zeros(0)),
                        "key": KeyResult(key=KeySignature.parse(spec.key), key_confidence=spec.key_confidence),
                        "loudness": LoudnessResult(
                            loudness_lufs=spec.loudness_lufs,
                            loudness_range_lu=5.5,
                            true_peak_dbtp=-0.8,
                            sample_peak_dbfs=-1.0,
                            replaygain_track_gain_db=-18.0 - spec.loudness_lufs,
                            replaygain_track_peak=0.91,
                            gating_histogram=np.zeros(0),
                        ),
                        "waveform": drawn,
                    },
                    versions=VERSIONS,
                )
                await vectors.upsert_embedding(conn, track_id, MODEL, _vector(spec.angle_rad))


@dataclass(frozen=True)
class WebServer:
    """The running client: its URL, the Subsonic server behind it and the account to sign in with."""

    url: str
    subsonic: SubsonicServer
    database_url: str
    username: str = USER
    password: str = PASSWORD
    guest: str = GUEST
    guest_password: str = GUEST_PASSWORD
    token: str = TOKEN


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory, postgres_url: str, redis_url: str) -> Iterator[WebServer]:
    """Sonántica (host ``navidrome`` = supysonic) on a free port, in a thread, over a seeded database."""
    root = tmp_path_factory.mktemp("web-client")
    _make_music(root / "music")
    database = f"sonantica_web_{uuid.uuid4().hex[:12]}"
    database_url = create_database(postgres_url, database)
    _run(migrate(database_url))
    with SubsonicServer(root / "music", root / "supysonic", username=USER, password=PASSWORD) as subsonic:
        subsonic.add_user(GUEST, GUEST_PASSWORD)
        settings = Settings(
            data_dir=root / "data",
            database_url=SecretStr(database_url),
            redis_url=SecretStr(redis_url),
            library_dir=root / "music",
            host="navidrome",
            navidrome=NavidromeSettings(url=subsonic.url, username=USER, password=SecretStr(PASSWORD)),
            api=ApiSettings(token=SecretStr(TOKEN), access_log=False),
            web=WebSettings(login_attempts=100),
            embedding={"model": MODEL},
            analysis={"enabled": list(ANALYZERS)},
            redis={"key_prefix": f"web{uuid.uuid4().hex[:8]}:"},
        )
        _run(_seed(settings))
        adapter = make_adapter(settings)
        assert adapter is not None
        app = create_app(settings, playlist_writer=HostPlaylistWriter(adapter), host_capabilities=adapter.capabilities)
        port = _free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, timeout_graceful_shutdown=2)
        )
        thread = threading.Thread(target=server.run, name="web-client-server", daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                pytest.fail("the web client's server did not start")
            time.sleep(0.05)
        try:
            yield WebServer(url=f"http://127.0.0.1:{port}", subsonic=subsonic, database_url=database_url)
        finally:
            server.should_exit = True
            thread.join(30)
    drop_database(postgres_url, database)


@pytest.fixture
def signed_in(page: Page, web_server: WebServer) -> Page:
    """The page of the guest user signed in through the sign-in route (the cookie is in the page's context)."""
    answer = page.request.post(
        f"{web_server.url}/auth/sign-in", data={"username": web_server.guest, "password": web_server.guest_password}
    )
    assert answer.status == 200, answer.text()
    return page
