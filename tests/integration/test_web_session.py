"""Web sign-in against real servers: the API token (host none), a real Subsonic server (supysonic) and a
recorded-shape Jellyfin fake; the cookie's attributes, expiry, CSRF refusal, sign-out and the rate limit."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer

from adapters.jellyfin import JellyfinConfig
from adapters.login import verify_user
from sidecar.api.app import create_app
from sidecar.demo.subsonic import SubsonicServer
from sidecar.services.hosts import HostLogin
from sidecar.settings import Settings, get_settings
from sidecar.web.sessions import COOKIE_NAME
from tests.contract.jellyfin_fake import FakeJellyfin
from tests.contract.jellyfin_spec import assert_exchanges_valid

TOKEN = "web-token-" + "x" * 24
USER, PASSWORD = "alice", "right-Pass-1"
BPM_BODY = {"bpm_min": 100, "bpm_max": 140, "limit": 5}


@pytest.fixture(scope="module")
def subsonic(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SubsonicServer]:
    music = tmp_path_factory.mktemp("web-music")
    with SubsonicServer(music, tmp_path_factory.mktemp("web-supysonic"), username=USER, password=PASSWORD) as server:
        yield server


def _settings(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, **env: str) -> Settings:
    values = {
        "SONANTICA_DATABASE_URL": database_url,
        "SONANTICA_REDIS_URL": redis_url,
        "SONANTICA_REDIS__KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
        "SONANTICA_ANALYSIS__ENABLED": "loudness,tempo,key",
        "SONANTICA_API__TOKEN": TOKEN,
        **env,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return get_settings()


@asynccontextmanager
async def _client(settings: Settings, host_login: HostLogin | None = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings, host_login=host_login)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://sonantica.test") as client:
            # use the database pool once: closing a pool that never handed out a connection was seen to hang
            assert (await client.get("/api/status", headers={"Authorization": f"Bearer {TOKEN}"})).status_code == 200
            yield client


@pytest.fixture
async def none_client(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    settings = _settings(monkeypatch, database_url, redis_url, SONANTICA_WEB__LOGIN_ATTEMPTS="4")
    async with _client(settings) as client:
        yield client


@pytest.fixture
async def navidrome_client(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, subsonic: SubsonicServer
) -> AsyncIterator[httpx.AsyncClient]:
    settings = _settings(
        monkeypatch,
        database_url,
        redis_url,
        SONANTICA_HOST="navidrome",
        SONANTICA_NAVIDROME__URL=subsonic.url,
        SONANTICA_NAVIDROME__USERNAME=USER,
        SONANTICA_NAVIDROME__PASSWORD=PASSWORD,
    )
    async with _client(settings) as client:
        yield client


async def test_token_sign_in_sets_a_strict_http_only_cookie_that_opens_the_api(
    none_client: httpx.AsyncClient,
) -> None:
    assert (await none_client.get("/api/status")).status_code == 401
    response = await none_client.post("/auth/sign-in", json={"token": TOKEN})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    assert "max-age=43200" in cookie
    body = response.json()
    assert body["user"] == "api-token"
    assert body["via"] == "session"
    assert body["csrf_token"]
    assert (await none_client.get("/api/status")).status_code == 200
    session = await none_client.get("/api/session")
    assert session.json()["csrf_token"] == body["csrf_token"]


async def test_wrong_token_is_refused(none_client: httpx.AsyncClient) -> None:
    response = await none_client.post("/auth/sign-in", json={"token": "wrong"})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers
    assert (await none_client.get("/api/status")).status_code == 401


async def test_writes_with_the_cookie_need_the_csrf_token(none_client: httpx.AsyncClient) -> None:
    csrf = (await none_client.post("/auth/sign-in", json={"token": TOKEN})).json()["csrf_token"]
    refused = await none_client.post("/api/playlists/bpm-range", json=BPM_BODY)
    assert refused.status_code == 403
    assert "X-CSRF-Token" in refused.json()["detail"]
    wrong = await none_client.post("/api/playlists/bpm-range", json=BPM_BODY, headers={"X-CSRF-Token": "nope"})
    assert wrong.status_code == 403
    allowed = await none_client.post("/api/playlists/bpm-range", json=BPM_BODY, headers={"X-CSRF-Token": csrf})
    assert allowed.status_code == 200, allowed.text
    none_client.cookies.clear()
    with_token = await none_client.post(
        "/api/playlists/bpm-range", json=BPM_BODY, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert with_token.status_code == 200  # the API token needs no CSRF token


async def test_sign_out_needs_csrf_and_removes_the_cookie(none_client: httpx.AsyncClient) -> None:
    csrf = (await none_client.post("/auth/sign-in", json={"token": TOKEN})).json()["csrf_token"]
    assert (await none_client.delete("/api/session")).status_code == 403
    out = await none_client.delete("/api/session", headers={"X-CSRF-Token": csrf})
    assert out.status_code == 204
    assert COOKIE_NAME not in none_client.cookies
    assert (await none_client.get("/api/status")).status_code == 401


async def test_an_expired_or_forged_cookie_is_refused(
    none_client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    ttl_s = get_settings().web.session_ttl_s
    started = time.time()
    monkeypatch.setattr(TimestampSigner, "get_timestamp", lambda self: int(started - ttl_s - 5))
    assert (await none_client.post("/auth/sign-in", json={"token": TOKEN})).status_code == 200
    monkeypatch.undo()
    assert (await none_client.get("/api/status")).status_code == 401  # signed, but older than the lifetime
    good = (await none_client.post("/auth/sign-in", json={"token": TOKEN})).status_code
    assert good == 200
    assert (await none_client.get("/api/status")).status_code == 200
    value = none_client.cookies[COOKIE_NAME]
    none_client.cookies.set(COOKIE_NAME, value[:-2] + ("AA" if value[-2:] != "AA" else "BB"), domain="sonantica.test")
    assert (await none_client.get("/api/status")).status_code == 401


async def test_sign_in_is_rate_limited_per_client(none_client: httpx.AsyncClient) -> None:
    answers = [(await none_client.post("/auth/sign-in", json={"token": "wrong"})).status_code for _ in range(4)]
    assert answers == [401] * 4
    limited = await none_client.post("/auth/sign-in", json={"token": TOKEN})  # even the right token now
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert "too many sign-in attempts" in limited.json()["detail"]


async def test_navidrome_sign_in_with_the_users_subsonic_password(navidrome_client: httpx.AsyncClient) -> None:
    wrong = await navidrome_client.post("/auth/sign-in", json={"username": USER, "password": "wrong-pass"})
    assert wrong.status_code == 401
    assert wrong.json()["detail"] == "wrong user name or password"
    assert (await navidrome_client.post("/auth/sign-in", json={"token": TOKEN})).status_code == 401
    right = await navidrome_client.post("/auth/sign-in", json={"username": USER, "password": PASSWORD})
    assert right.status_code == 200, right.text
    assert (right.json()["user"], right.json()["host"]) == (USER, "navidrome")
    cookie = navidrome_client.cookies[COOKIE_NAME]
    _, payload = URLSafeTimedSerializer("any key").loads_unsafe(cookie)  # reads without checking the signature
    assert payload["u"] == USER  # signed, not encrypted ...
    assert payload["s"]
    assert PASSWORD not in json.dumps(payload)  # ... except the host password, which is encrypted
    me = await navidrome_client.get("/api/session")
    assert me.status_code == 200
    assert me.json()["user"] == USER


@pytest.fixture(params=["10.10.7", "12.0.0"])
def jellyfin(request: pytest.FixtureRequest) -> Iterator[FakeJellyfin]:
    server = FakeJellyfin(version=request.param)
    yield server
    assert_exchanges_valid((exchange.request, exchange.response) for exchange in server.exchanges)


async def test_jellyfin_sign_in_uses_authenticate_by_name(
    monkeypatch: pytest.MonkeyPatch, database_url: str, redis_url: str, jellyfin: FakeJellyfin, tmp_path: Path
) -> None:
    jellyfin.add_user("admin", "adminpw", admin=True)
    bob = jellyfin.add_user("bob", "bob-pw")
    settings = _settings(
        monkeypatch, database_url, redis_url, SONANTICA_HOST="jellyfin", SONANTICA_JELLYFIN__URL="http://jf:8096"
    )
    config = JellyfinConfig(url="http://jf:8096", api_key=jellyfin.add_api_key(), library_dir=tmp_path)
    login = partial(verify_user, config, transport=jellyfin.transport())
    async with _client(settings, login) as client:
        wrong = await client.post("/auth/sign-in", json={"username": "bob", "password": "nope"})
        assert wrong.status_code == 401
        right = await client.post("/auth/sign-in", json={"username": "bob", "password": "bob-pw"})
        assert right.status_code == 200, right.text
        assert right.json()["user"] == "bob"
        assert (await client.get("/api/status")).status_code == 200
    logins = jellyfin.requests_to("POST", "/Users/AuthenticateByName")
    assert len(logins) == 2
    assert bob in jellyfin.tokens.values()
