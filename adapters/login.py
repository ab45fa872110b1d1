"""Web sign-in of a host user with their own password: the host checks it (the only place that picks how)."""

from __future__ import annotations

from adapters.base import HostAdapter, HostUser
from adapters.http import Transport
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from adapters.jellyfin import login as jellyfin_login
from adapters.navidrome import NavidromeAdapter, NavidromeConfig
from adapters.navidrome import login as navidrome_login


async def verify_user(
    config: NavidromeConfig | JellyfinConfig,
    username: str,
    password: str,
    *,
    transport: Transport | None = None,
) -> HostUser | None:
    """The host user when the server of ``config`` accepts ``password`` for ``username``; ``None`` when it refuses.

    Raises ``HostUnavailableError`` when the server cannot be reached (so a refusal and an outage differ)."""
    if isinstance(config, NavidromeConfig):
        return await navidrome_login.verify_user(config, username, password, transport=transport)
    return await jellyfin_login.verify_user(config, username, password, transport=transport)


def user_adapter(
    config: NavidromeConfig | JellyfinConfig,
    username: str,
    password: str,
    *,
    transport: Transport | None = None,
) -> HostAdapter:
    """An adapter of the server of ``config`` that acts as ``username`` (its playlists are that user's); close it
    with ``aclose``. Raises ``ValueError`` for an empty user name or password."""
    if isinstance(config, NavidromeConfig):
        return NavidromeAdapter(navidrome_login.user_config(config, username, password), transport=transport)
    return JellyfinAdapter(jellyfin_login.user_config(config, username, password), transport=transport)
