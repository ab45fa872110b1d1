"""The Sonic Match service: ``create_app(settings)`` builds the FastAPI app; its lifespan opens the runtime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from adapters.base import Capability, HostAdapter
from adapters.jellyfin.webhook import EnqueueGuard
from sidecar.analyzers.versions import enabled_versions
from sidecar.api.errors import conformant_openapi, http_error, request_validation_error
from sidecar.api.events_hub import EventsHub
from sidecar.api.metrics import Metrics, MetricsMiddleware
from sidecar.api.middleware import AccessLog, RequestGuard
from sidecar.api.probes import ReadinessProbe
from sidecar.api.routes import api_router
from sidecar.api.security import Authenticator, Principal, SessionVerifier, resolve_token
from sidecar.errors import NotFoundError, QueueUnavailableError, StorageUnavailableError
from sidecar.services.hosts import HostLogin, UserWriters, make_host_login, make_user_writers
from sidecar.services.playlists import PlaylistWriter
from sidecar.services.runtime import Runtime, open_runtime
from sidecar.services.search_index import warm_search_indexes
from sidecar.settings import Settings
from sidecar.web import WEB_STATIC_DIR
from sidecar.web.ratelimit import AttemptLimiter
from sidecar.web.sessions import SessionCookies, resolve_session_key

log = logging.getLogger(__name__)


WARM_STOP_WAIT_S = 10.0
"""The most a shutdown waits for a warm-up still running (its query is cancelled in milliseconds)."""

DOCS_STATIC_URL = "/static-docs"
"""Where the Swagger UI files of ``/docs`` are served (public, like the web client's files)."""


def create_app(
    settings: Settings,
    *,
    playlist_writer: PlaylistWriter | None = None,
    host_capabilities: Collection[Capability] = (),
    host_adapter: HostAdapter | None = None,
    session_verifier: SessionVerifier | None = None,
    host_login: HostLogin | None = None,
    user_writers: UserWriters | None = None,
) -> FastAPI:
    """The API app. ``playlist_writer`` writes playlists to the host (``None``: no host, nothing is written);
    ``host_capabilities`` are reported by ``/api/status``; ``host_adapter`` lets the Jellyfin webhook fetch a
    track the sidecar does not know yet; ``session_verifier`` accepts other sessions besides the API token and
    the web client's signed cookie; ``host_login`` checks a web sign-in's password (default: with the configured
    host, :func:`~sidecar.services.hosts.make_host_login`; host ``none`` signs in with the API token). The web
    client's pages are served at ``/`` (:data:`~sidecar.web.WEB_STATIC_DIR`). With a ``playlist_writer``, a
    signed-in user's playlists are written as that user (``user_writers``, default
    :func:`~sidecar.services.hosts.make_user_writers`); the API token writes with the sidecar's account.
    The lifespan opens PostgreSQL and Redis (embedded when not configured), the shared event subscription and
    the readiness probe, and resolves the API token (``<data_dir>/api-token`` when not configured)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.api_token = resolve_token(settings)
        cookies = SessionCookies(
            resolve_session_key(settings), ttl_s=settings.web.session_ttl_s, secure=settings.web.cookie_secure
        )
        app.state.session_cookies = cookies
        app.state.authenticator = Authenticator(app.state.api_token, _either(cookies, session_verifier))
        async with open_runtime(settings) as runtime:
            hub = EventsHub(
                runtime.events, max_clients=settings.api.sse_max_clients, queue_size=settings.api.sse_client_queue
            )
            async with hub, ReadinessProbe.of(runtime) as probe, _warming(runtime):
                app.state.runtime = runtime
                app.state.events_hub = hub
                app.state.readiness = probe
                yield

    app = FastAPIOffline(  # /docs from files in the wheel, not a CDN: it works on a LAN without internet
        title="Sonántica",
        summary="Sonic Match: track analysis, similar tracks and playlists for Jellyfin and Navidrome",
        lifespan=lifespan,
        static_url=DOCS_STATIC_URL,
        redoc_url=None,  # ReDoc fetches its logo from a CDN; /docs is the one documentation page
    )
    metrics = Metrics()
    app.state.settings = settings
    app.state.versions = enabled_versions(settings)
    app.state.playlist_writer = playlist_writer
    app.state.host_capabilities = frozenset(host_capabilities)
    app.state.host_adapter = host_adapter
    app.state.metrics = metrics
    app.state.webhook_guard = EnqueueGuard()
    app.state.host_login = host_login if host_login is not None else make_host_login(settings)
    app.state.user_writers = user_writers if user_writers is not None else make_user_writers(settings)
    app.state.sign_in_limiter = AttemptLimiter(
        attempts=settings.web.login_attempts, window_s=settings.web.login_window_s
    )
    app.include_router(api_router)
    app.mount("/", StaticFiles(directory=WEB_STATIC_DIR, html=True), name="web")
    app.add_middleware(RequestGuard, public_read=settings.api.public_read, max_body_bytes=settings.api.max_body_bytes)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    if settings.api.access_log:
        app.add_middleware(AccessLog)
    app.add_exception_handler(RequestValidationError, request_validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(StorageUnavailableError, _unavailable)
    app.add_exception_handler(QueueUnavailableError, _unavailable)
    app.add_exception_handler(Exception, _internal)
    app.openapi = conformant_openapi(app, public_read=settings.api.public_read)  # type: ignore[method-assign]
    return app


def _either(cookies: SessionCookies, other: SessionVerifier | None) -> SessionVerifier:
    """The web client's cookie first, then ``other`` (when given)."""
    if other is None:
        return cookies

    async def verify(connection: HTTPConnection) -> Principal | None:
        return await cookies(connection) or await other(connection)

    return verify


@asynccontextmanager
async def _warming(runtime: Runtime) -> AsyncIterator[None]:
    """With ``db.warm_index_on_start``, the Sonic Match indexes are read once in a task of their own while the API
    already answers (:func:`~sidecar.services.search_index.warm_search_indexes`); cancelled at shutdown if still
    running, waiting at most :data:`WARM_STOP_WAIT_S`.

    A plain task, cancelled once: psycopg answers that one cancellation by cancelling the query in the server and
    waiting (5 s at most) for it to end. A cancellation delivered again and again (a
    :class:`~sidecar.background.BackgroundTask`) interrupts that and closes the connection with the query still
    running in the server. psycopg waits without ``asyncio.wait_for``, so the lost cancellation the events hub
    guards against cannot happen here.
    """
    if not runtime.settings.db.warm_index_on_start:
        yield
        return
    task = asyncio.create_task(warm_search_indexes(runtime), name="warm-search-indexes")
    try:
        yield
    finally:
        task.cancel()
        done, _ = await asyncio.wait({task}, timeout=WARM_STOP_WAIT_S)
        if not done:
            log.warning("the index warm-up did not stop within %.1f s; leaving it behind", WARM_STOP_WAIT_S)
        elif not task.cancelled() and task.exception() is not None:
            log.error("the index warm-up failed", exc_info=task.exception())


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=404)


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    return JSONResponse(
        {"detail": "a backing service (database or Redis) is unavailable; retry later"}, status_code=503
    )


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse({"detail": "internal error; see the service log"}, status_code=500)
