"""Annotated dependencies of the routes: settings, runtime, analyzer versions, the token (or session) check.

The ones that only read ``app.state`` are ``async``: FastAPI runs a plain ``def`` dependency in its thread pool, a
thread hop per dependency and request."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from adapters.base import HostAdapter
from sidecar.api.security import PRINCIPAL_SCOPE_KEY, Authenticator, Principal, SessionRefusedError
from sidecar.services.hosts import UserWriters
from sidecar.services.playlists import PlaylistWriter
from sidecar.services.runtime import Runtime
from sidecar.settings import Settings
from sidecar.web.sessions import SessionCookies

_bearer = HTTPBearer(auto_error=False, description="the API token (SONANTICA_API__TOKEN or <data_dir>/api-token)")


async def _runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


async def _settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


async def _versions(request: Request) -> dict[str, int]:
    return cast(dict[str, int], request.app.state.versions)


async def _host_adapter(request: Request) -> HostAdapter | None:
    return cast(HostAdapter | None, request.app.state.host_adapter)


def _writer(request: Request) -> PlaylistWriter | None:
    """The signed-in user's own writer (their host account), else the sidecar's (``None``: no host)."""
    default = cast(PlaylistWriter | None, request.app.state.playlist_writer)
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    user_writers = cast(UserWriters | None, request.app.state.user_writers)
    if default is None or user_writers is None or not isinstance(principal, Principal) or principal.via != "session":
        return default
    session = cast(SessionCookies, request.app.state.session_cookies).read(request)
    if session is None or session.host_password is None:
        return default
    return user_writers(session.user, session.host_password)


async def require_token(
    request: Request,
    _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],  # declares the scheme in OpenAPI
) -> Principal:
    """Refuse (401) a request without ``Authorization: Bearer <API token>`` or a signed-in session.

    The guard middleware already authenticated requests under ``/api`` (before their body was read); its
    principal is reused, anything else is authenticated here."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if principal is None:
        authenticator = cast(Authenticator, request.app.state.authenticator)
        try:
            principal = await authenticator.authenticate(request)
        except SessionRefusedError as refused:
            raise HTTPException(status.HTTP_403_FORBIDDEN, str(refused)) from None
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong API token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return cast(Principal, principal)


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
SettingsDep = Annotated[Settings, Depends(_settings)]
VersionsDep = Annotated[dict[str, int], Depends(_versions)]
WriterDep = Annotated[PlaylistWriter | None, Depends(_writer)]
HostAdapterDep = Annotated[HostAdapter | None, Depends(_host_adapter)]
TokenDep = Depends(require_token)
