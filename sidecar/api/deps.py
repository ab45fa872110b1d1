"""Annotated dependencies of the routes: settings, runtime, analyzer versions, the token check."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from sidecar.api.security import token_matches
from sidecar.services.playlists import PlaylistWriter
from sidecar.services.runtime import Runtime
from sidecar.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="the API token (SONANTICA_API__TOKEN or <data_dir>/api-token)")


def _runtime(request: Request) -> Runtime:
    return cast(Runtime, request.app.state.runtime)


def _settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def _versions(request: Request) -> dict[str, int]:
    return cast(dict[str, int], request.app.state.versions)


def _writer(request: Request) -> PlaylistWriter | None:
    return cast(PlaylistWriter | None, request.app.state.playlist_writer)


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Refuse (401) a request without ``Authorization: Bearer <API token>``."""
    expected = cast(str, request.app.state.api_token)
    if credentials is None or not token_matches(credentials.credentials, expected):
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing or wrong API token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


RuntimeDep = Annotated[Runtime, Depends(_runtime)]
SettingsDep = Annotated[Settings, Depends(_settings)]
VersionsDep = Annotated[dict[str, int], Depends(_versions)]
WriterDep = Annotated[PlaylistWriter | None, Depends(_writer)]
TokenDep = Depends(require_token)
