"""Signed session cookies of the web client: who signed in, until when, and the CSRF token of the session.

The cookie holds ``{"u": name, "id": host user id, "h": host kind, "c": CSRF token, "s": host password}`` signed
with :mod:`itsdangerous` (HMAC-SHA1 over the payload and a timestamp) and is refused once older than ``ttl_s``.
The host password (so playlists are made as the user, with the user's own account) is encrypted with Fernet
(AES-128-CBC + HMAC-SHA256, :mod:`cryptography`) under a key derived from the signing key: the browser only ever
holds ciphertext, and only this server can read it back.
Nothing is kept on the server: signing out removes the cookie from the browser; a copied cookie stays valid
until it expires or the key changes (``SONANTICA_WEB__SESSION_SECRET`` or ``<data_dir>/session-key``).

Writes made with the cookie (any method but GET/HEAD/OPTIONS) must carry the session's CSRF token in the
``X-CSRF-Token`` header; requests with the API token need none (a browser never adds a bearer token by itself).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

from sidecar.api.security import Principal, SessionRefusedError, stored_secret
from sidecar.settings import Settings

COOKIE_NAME = "sonantica_session"
CSRF_HEADER = "x-csrf-token"
KEY_FILE = "session-key"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_SALT = "sonantica-web-session"


def resolve_session_key(settings: Settings) -> str:
    """``settings.web.session_secret``; otherwise the key in ``<data_dir>/session-key``, created (0600) once."""
    key, _ = stored_secret(settings.web.session_secret, Path(settings.data_dir) / KEY_FILE, nbytes=48)
    return key


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A signed-in user: name and id on the host (``none``: the API token's holder), the CSRF token, when the
    session ends (UTC), and the user's host password (to act as the user on the host)."""

    user: str
    user_id: str
    host: str
    csrf_token: str
    expires_at: datetime
    host_password: str | None = field(default=None, repr=False)  # None: signed in with the API token


class SessionCookies:
    """Issues and checks session cookies; an instance is the app's :class:`~sidecar.api.security.SessionVerifier`.

    ``ttl_s`` is the session lifetime in seconds; ``secure`` marks the cookie ``Secure`` (HTTPS only)."""

    def __init__(self, key: str, *, ttl_s: int, secure: bool) -> None:
        self._serializer = URLSafeTimedSerializer(key, salt=_SALT)
        self._fernet = Fernet(base64.urlsafe_b64encode(hashlib.sha256(f"{_SALT}:fernet:{key}".encode()).digest()))
        self.ttl_s = ttl_s
        self.secure = secure

    def issue(
        self, response: Response, *, user: str, user_id: str, host: str, host_password: str | None = None
    ) -> Session:
        """Set a new session cookie on ``response`` (HttpOnly, SameSite=Strict, Max-Age = the lifetime);
        ``host_password`` is kept in it encrypted."""
        csrf = secrets.token_urlsafe(24)
        payload = {"u": user, "id": user_id, "h": host, "c": csrf}
        if host_password is not None:
            payload["s"] = self._fernet.encrypt(host_password.encode()).decode()
        value = self._serializer.dumps(payload)
        response.set_cookie(
            COOKIE_NAME,
            value,
            max_age=self.ttl_s,
            path="/",
            httponly=True,
            samesite="strict",
            secure=self.secure,
        )
        expires = datetime.now(UTC) + timedelta(seconds=self.ttl_s)
        return Session(
            user=user, user_id=user_id, host=host, csrf_token=csrf, expires_at=expires, host_password=host_password
        )

    def clear(self, response: Response) -> None:
        """Remove the session cookie from the browser."""
        response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="strict", secure=self.secure)

    def read(self, connection: HTTPConnection) -> Session | None:
        """The request's valid session, or ``None`` (no cookie, bad signature, expired)."""
        value = connection.cookies.get(COOKIE_NAME)
        if not value:
            return None
        try:
            payload, signed_at = self._serializer.loads(value, max_age=self.ttl_s, return_timestamp=True)
        except (SignatureExpired, BadSignature):
            return None
        if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str) for k in ("u", "id", "h", "c")):
            return None
        return Session(
            user=payload["u"],
            user_id=payload["id"],
            host=payload["h"],
            csrf_token=payload["c"],
            expires_at=signed_at + timedelta(seconds=self.ttl_s),
            host_password=self._decrypt(payload.get("s")),
        )

    def _decrypt(self, token: object) -> str | None:
        if not isinstance(token, str):
            return None
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            return None

    async def __call__(self, connection: HTTPConnection) -> Principal | None:
        """The session's principal; raises :class:`SessionRefusedError` for a write without the CSRF token."""
        session = self.read(connection)
        if session is None:
            return None
        if connection.scope.get("method", "GET") not in SAFE_METHODS:
            given = connection.headers.get(CSRF_HEADER, "")
            if not given or not secrets.compare_digest(given.encode(), session.csrf_token.encode()):
                raise SessionRefusedError(
                    "a write with the session cookie needs the session's CSRF token in the X-CSRF-Token header"
                )
        return Principal(session.user, "session")
