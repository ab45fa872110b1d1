"""Web sign-in: ``POST /auth/sign-in`` (host account, or the API token with host ``none``), ``GET /auth/session``
(the host kind and the cookie's session, for the pages), ``GET /api/session`` (who is signed in, and the CSRF
token for writes) and ``DELETE /api/session`` (sign out)."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Literal, cast

from fastapi import APIRouter, HTTPException, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from adapters.base import HostUnavailableError
from sidecar.api.deps import SettingsDep, TokenDep
from sidecar.api.schemas import ErrorPublic
from sidecar.api.security import Principal, token_matches
from sidecar.services.hosts import HostLogin
from sidecar.web.ratelimit import AttemptLimiter
from sidecar.web.sessions import SessionCookies

log = logging.getLogger(__name__)

router = APIRouter(tags=["session"])

WRONG = "wrong user name or password"
WRONG_TOKEN = "wrong API token"  # noqa: S105  (a message, not a secret)


class SignIn(BaseModel):
    """A sign-in: ``username`` + ``password`` of the host account, or, with host ``none``, the API ``token``."""

    model_config = ConfigDict(extra="forbid")

    username: Annotated[str | None, Field(min_length=1, max_length=256)] = None
    password: Annotated[SecretStr | None, Field(min_length=1, max_length=1024)] = None
    token: Annotated[SecretStr | None, Field(min_length=1, max_length=1024)] = None


class SessionPublic(BaseModel):
    """Who is signed in: the host user (``api-token`` for the token), the host kind, how the request proved it,
    the CSRF token writes with the cookie must send as ``X-CSRF-Token`` (``None`` with the API token) and when
    the session ends (``None`` with the API token)."""

    user: str
    host: str
    via: Literal["token", "session"]
    csrf_token: str | None
    expires_at: datetime | None


def _cookies(request: Request) -> SessionCookies:
    return cast(SessionCookies, request.app.state.session_cookies)


def _client(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


@router.post(
    "/auth/sign-in",
    responses={
        401: {"model": ErrorPublic, "description": "wrong user name, password or token"},
        429: {"model": ErrorPublic, "description": "too many attempts from this address; see Retry-After"},
        503: {"model": ErrorPublic, "description": "the media server cannot be reached"},
    },
)
async def sign_in(body: SignIn, request: Request, response: Response, settings: SettingsDep) -> SessionPublic:
    """Check the credentials with the host (or the API token with host ``none``) and set the session cookie."""
    limiter = cast(AttemptLimiter, request.app.state.sign_in_limiter)
    wait_s = limiter.hit(_client(request))
    if wait_s is not None:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"too many sign-in attempts from this address; retry in {limiter.retry_after_header(wait_s)} s",
            headers={"Retry-After": limiter.retry_after_header(wait_s)},
        )
    host = settings.host.value
    host_login = cast(HostLogin | None, request.app.state.host_login)
    if host_login is None:
        token = body.token.get_secret_value() if body.token is not None else ""
        if not token or not token_matches(token, cast(str, request.app.state.api_token)):
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG_TOKEN)
        name, user_id, secret = "api-token", "api-token", None
    else:
        if body.username is None or body.password is None:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"{WRONG}: send username and password")
        try:
            user = await host_login(body.username, body.password.get_secret_value())
        except HostUnavailableError as error:
            log.warning("sign-in of %r: %s", body.username, error)
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE, f"the {host} server cannot be reached; retry later"
            ) from None
        if user is None:
            log.info("sign-in of %r refused by %s (client %s)", body.username, host, _client(request))
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, WRONG)
        name, user_id, secret = user.name, user.user_id, body.password.get_secret_value()
    session = _cookies(request).issue(response, user=name, user_id=user_id, host=host, host_password=secret)
    log.info("signed in: %r on %s", name, host)
    return SessionPublic(
        user=session.user, host=host, via="session", csrf_token=session.csrf_token, expires_at=session.expires_at
    )


class SignInStatePublic(BaseModel):
    """What the sign-in page needs before anyone signed in: the host kind (``none``: sign in with the API token)
    and, when the request carries a valid session cookie, that session (else ``None``)."""

    host: str
    session: SessionPublic | None


@router.get("/auth/session")
async def sign_in_state(request: Request, settings: SettingsDep) -> SignInStatePublic:
    """The host kind and the cookie's session, if any: always 200, so a page can ask before signing in."""
    session = _cookies(request).read(request)
    public = None
    if session is not None:
        public = SessionPublic(
            user=session.user,
            host=session.host,
            via="session",
            csrf_token=session.csrf_token,
            expires_at=session.expires_at,
        )
    return SignInStatePublic(host=settings.host.value, session=public)


@router.get("/api/session")
async def current_session(
    request: Request, settings: SettingsDep, principal: Annotated[Principal, TokenDep]
) -> SessionPublic:
    """Who this request acts for; with the cookie also the CSRF token and the end of the session."""
    session = _cookies(request).read(request) if principal.via == "session" else None
    if session is None:
        return SessionPublic(
            user=principal.name, host=settings.host.value, via="token", csrf_token=None, expires_at=None
        )
    return SessionPublic(
        user=session.user,
        host=session.host,
        via="session",
        csrf_token=session.csrf_token,
        expires_at=session.expires_at,
    )


@router.delete("/api/session", status_code=status.HTTP_204_NO_CONTENT, dependencies=[TokenDep])
async def sign_out(request: Request, response: Response) -> None:
    """Remove the session cookie (with the cookie, the request needs its CSRF token like every write)."""
    _cookies(request).clear(response)
