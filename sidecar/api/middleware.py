"""Pure ASGI middleware in front of every route: the request guard (400 URL, 401 before the body, 413 body
limit) and the access log. Streams such as SSE pass through untouched."""

from __future__ import annotations

import abc
import logging
import time
from typing import cast

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sidecar.api.security import PRINCIPAL_SCOPE_KEY, Authenticator, SessionRefusedError

access_log = logging.getLogger("sidecar.api.access")

PROTECTED_PREFIX = "/api"
"""Every route under this prefix needs the API token or a session (reads too, unless ``api.public_read``)."""
READ_METHODS = frozenset({"GET", "HEAD"})


def needs_principal(method: str, path: str, *, public_read: bool) -> bool:
    """Whether a request must be authenticated before it reaches its route."""
    protected = path == PROTECTED_PREFIX or path.startswith(PROTECTED_PREFIX + "/")
    return protected and not (public_read and method in READ_METHODS)


def _has_nul(scope: Scope) -> bool:
    query = cast(bytes, scope.get("query_string", b"")).lower()
    return "\x00" in cast(str, scope["path"]) or b"%00" in query or b"\x00" in query


async def _refuse(
    scope: Scope, receive: Receive, send: Send, status: int, detail: str, headers: dict[str, str] | None = None
) -> None:
    """Answer ``{"detail": ...}`` and close the connection, so a body nobody read is not read afterwards either."""
    response = JSONResponse({"detail": detail}, status_code=status, headers={**(headers or {}), "Connection": "close"})
    await response(scope, receive, send)


class RequestGuard:
    """Refuses, without reading the body: a URL with a NUL byte (400); an unauthenticated request under ``/api``
    (401; reads pass when ``public_read``); a session write without its CSRF token (403); a declared
    ``Content-Length`` over ``max_body_bytes`` (413). A body without a declared length (chunked) is read up to
    the limit, then refused (413) or handed on as read.

    The :class:`Authenticator` is ``app.state.authenticator`` (set by the app's lifespan); the principal is left
    in the scope under :data:`PRINCIPAL_SCOPE_KEY` for the route dependencies.
    """

    def __init__(self, app: ASGIApp, *, public_read: bool, max_body_bytes: int) -> None:
        self.app = app
        self.public_read = public_read
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _has_nul(scope):
            await _refuse(scope, receive, send, 400, "the URL contains a NUL byte (%00), which no field accepts")
            return
        if needs_principal(scope["method"], scope["path"], public_read=self.public_read):
            authenticator = cast(Authenticator, scope["app"].state.authenticator)
            try:
                principal = await authenticator.authenticate(HTTPConnection(scope))
            except SessionRefusedError as refused:
                await _refuse(scope, receive, send, 403, str(refused))
                return
            if principal is None:
                detail = "missing or wrong API token: send 'Authorization: Bearer <token>'"
                await _refuse(scope, receive, send, 401, detail, {"WWW-Authenticate": "Bearer"})
                return
            scope[PRINCIPAL_SCOPE_KEY] = principal
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None:
            if not declared.isdigit():
                await _refuse(scope, receive, send, 400, "Content-Length is not a number")
                return
            if int(declared) > self.max_body_bytes:
                await _refuse(scope, receive, send, 413, self._too_large(f"{int(declared)} bytes"))
                return
        elif "transfer-encoding" in headers:
            body = await self._read_limited(receive)
            if body is None:
                await _refuse(scope, receive, send, 413, self._too_large("a chunked body"))
                return
            receive = _replay(body, receive)
        await self.app(scope, receive, send)

    def _too_large(self, what: str) -> str:
        return f"{what} is over the request body limit of {self.max_body_bytes} bytes (SONANTICA_API__MAX_BODY_BYTES)"

    async def _read_limited(self, receive: Receive) -> bytes | None:
        """The whole body, or ``None`` as soon as it passes the limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: hand on what came
                break
            chunk = cast(bytes, message.get("body", b""))
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that gives ``body`` once, then whatever the client sends next (its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class ObservedRequests(abc.ABC):
    """Pure ASGI middleware (streams such as SSE pass through untouched) that calls :meth:`observe` once per HTTP
    request when it ends, with the response status (500 when no response started: an error, or a client that went
    away first) and its duration in seconds."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = [500]

        async def send_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, send_status)
        finally:
            self.observe(scope, status[0], time.perf_counter() - started)

    @abc.abstractmethod
    def observe(self, scope: Scope, status: int, duration_s: float) -> None:
        """Record one finished request."""


class AccessLog(ObservedRequests):
    """One ``sidecar.api.access`` INFO line per request: client, method, path, status, duration in ms (streams
    are logged when they end)."""

    def observe(self, scope: Scope, status: int, duration_s: float) -> None:
        client = scope.get("client")
        access_log.info(
            "%s %s %s %d %.1fms",
            f"{client[0]}:{client[1]}" if client else "-",
            scope["method"],
            scope["path"],
            status,
            duration_s * 1000,
        )
