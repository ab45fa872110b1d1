"""Web sign-in against a Subsonic server: the user's own name and password, checked by ``ping``."""

from __future__ import annotations

from dataclasses import replace

from adapters.base import HostAuthError, HostUser
from adapters.http import Transport
from adapters.navidrome.client import NavidromeAdapter
from adapters.navidrome.config import NavidromeConfig


def user_config(config: NavidromeConfig, username: str, password: str) -> NavidromeConfig:
    """``config`` (the server) with ``username``/``password`` as its credentials and a single attempt per request.

    Raises ``ValueError`` for an empty user name or password."""
    return replace(config, username=username, password=password, max_attempts=1)


async def verify_user(
    config: NavidromeConfig, username: str, password: str, *, transport: Transport | None = None
) -> HostUser | None:
    """The user when the server accepts ``password`` for ``username`` (Subsonic ``ping``), else ``None``.

    Only the server's answer decides; an unreachable server raises ``HostUnavailableError``. Subsonic has no user
    id besides the name, so ``user_id`` is the name."""
    try:
        checked = user_config(config, username, password)
    except ValueError:
        return None
    async with NavidromeAdapter(checked, transport=transport) as adapter:
        try:
            await adapter.ping()
        except HostAuthError:
            return None
    return HostUser(name=username, user_id=username)
