"""Web sign-in against Jellyfin: the user's own name and password, checked by ``AuthenticateByName``."""

from __future__ import annotations

from dataclasses import replace

from adapters.base import HostAuthError, HostUser
from adapters.http import Transport
from adapters.jellyfin.client import JellyfinAdapter
from adapters.jellyfin.config import JellyfinConfig


def user_config(config: JellyfinConfig, username: str, password: str) -> JellyfinConfig:
    """``config`` (the server) logging in as ``username`` with ``password`` (no API key), a single attempt per
    request. Raises ``ValueError`` for an empty user name or password."""
    return replace(config, api_key=None, username=username, password=password, user_id=None, max_attempts=1)


async def verify_user(
    config: JellyfinConfig, username: str, password: str, *, transport: Transport | None = None
) -> HostUser | None:
    """The user when Jellyfin accepts ``password`` for ``username``, else ``None``.

    ``config`` gives the server (its API key or admin login is not used). An unreachable server raises
    ``HostUnavailableError``."""
    try:
        checked = user_config(config, username, password)
    except ValueError:
        return None
    async with JellyfinAdapter(checked, transport=transport) as adapter:
        try:
            return await adapter.login()
        except HostAuthError:
            return None
