"""Authentication: the API token (configured, or generated once and kept in ``<data_dir>/api-token``, mode 0600),
or a signed-in session supplied by a :class:`SessionVerifier`."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from pydantic import SecretStr
from starlette.requests import HTTPConnection

from sidecar.settings import Settings

log = logging.getLogger(__name__)

TOKEN_FILE = "api-token"  # noqa: S105  (a file name, not a secret)
PRINCIPAL_SCOPE_KEY = "sonantica.principal"
"""Where the guard middleware leaves the authenticated :class:`Principal` in the ASGI scope."""


def stored_secret(configured: SecretStr | None, path: Path, *, nbytes: int) -> tuple[str, str]:
    """``configured`` when set and not empty; otherwise the secret in the file ``path``, created (mode 0600, a
    random URL-safe string of ``nbytes`` bytes) on first use. Returns the secret and where it came from:
    ``"settings"``, ``"file"`` or ``"generated"``."""
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value(), "settings"
    if path.is_file():
        stored = path.read_text(encoding="utf-8").strip()
        if stored:
            return stored, "file"
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(nbytes)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
    return secret, "generated"


def resolve_token(settings: Settings) -> str:
    """``settings.api.token``; otherwise the token in ``<data_dir>/api-token``, created (0600) on first use."""
    path = Path(settings.data_dir) / TOKEN_FILE
    token, source = stored_secret(settings.api.token, path, nbytes=32)
    if source == "file":
        log.info("API token read from %s", path)
    elif source == "generated":
        log.warning("no SONANTICA_API__TOKEN set: generated an API token in %s (mode 0600)", path)
    return token


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens."""
    return secrets.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts for: ``via`` says how it proved it (the API token, or a signed-in session)."""

    name: str
    via: Literal["token", "session"]


class SessionRefusedError(Exception):
    """A valid session that may not make this request (e.g. a write without its CSRF token): answered 403."""


class SessionVerifier(Protocol):
    """Recognises a signed-in session (e.g. a cookie of the web client); ``None`` when there is none or it is
    invalid; raises :class:`SessionRefusedError` when the session may not make this request. Receives only the
    headers and cookies: it runs before the body is read."""

    async def __call__(self, connection: HTTPConnection) -> Principal | None: ...


class Authenticator:
    """The one place a request is authenticated: ``Authorization: Bearer <API token>``, else the session verifier."""

    def __init__(self, token: str, session: SessionVerifier | None = None) -> None:
        self._token = token
        self._session = session

    async def authenticate(self, connection: HTTPConnection) -> Principal | None:
        """The request's principal, or ``None`` (no or wrong token, no valid session); raises
        :class:`SessionRefusedError` from the session verifier."""
        scheme, _, credentials = connection.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and credentials and token_matches(credentials.strip(), self._token):
            return Principal("api-token", "token")
        if self._session is not None:
            return await self._session(connection)
        return None
