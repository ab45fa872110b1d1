"""Build the configured host adapter from the settings (the only place that turns settings into an adapter)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from adapters import login, registry
from adapters.base import HostAdapter, HostUnavailableError, HostUser
from adapters.http import Transport
from adapters.jellyfin import JellyfinConfig
from adapters.navidrome import NavidromeConfig
from adapters.registry import AdapterConfig
from sidecar.errors import SidecarError
from sidecar.settings import HostKindSetting, Settings


class HostConfigError(SidecarError, ValueError):
    """The settings cannot describe an adapter; the message names the variables to set."""


def adapter_config(settings: Settings) -> AdapterConfig:
    """The adapter config for ``settings.host``; raises :class:`HostConfigError` naming what is missing."""
    path_map = tuple((m.host_prefix, m.local_prefix) for m in settings.path_map)
    if settings.host is HostKindSetting.NAVIDROME:
        nd = settings.navidrome
        missing = [
            name
            for name, value in (
                ("SONANTICA_NAVIDROME__URL", nd.url),
                ("SONANTICA_NAVIDROME__USERNAME", nd.username),
                ("SONANTICA_NAVIDROME__PASSWORD", nd.password),
            )
            if not value
        ]
        if missing or nd.url is None or nd.username is None or nd.password is None:
            raise HostConfigError(f"set {', '.join(missing)}")
        return NavidromeConfig(
            url=nd.url,
            username=nd.username,
            password=nd.password.get_secret_value(),
            library_dir=settings.library_dir,
            path_map=path_map,
            client_name=nd.client_name,
            timeout_s=nd.timeout_s,
        )
    if settings.host is HostKindSetting.JELLYFIN:
        jf = settings.jellyfin
        if not jf.url:
            raise HostConfigError("set SONANTICA_JELLYFIN__URL")
        has_login = jf.username and jf.password and jf.password.get_secret_value()
        if not (jf.api_key and jf.api_key.get_secret_value()) and not has_login:
            raise HostConfigError(
                "set SONANTICA_JELLYFIN__API_KEY, or SONANTICA_JELLYFIN__USERNAME and SONANTICA_JELLYFIN__PASSWORD"
            )
        return JellyfinConfig(
            url=jf.url,
            api_key=jf.api_key.get_secret_value() if jf.api_key else None,
            username=jf.username,
            password=jf.password.get_secret_value() if jf.password else None,
            user_id=jf.user_id,
            webhook_secret=jf.webhook_secret.get_secret_value() if jf.webhook_secret else None,
            write_tags=jf.write_tags,
            trigger_normalization=jf.trigger_normalization,
            timeout_s=jf.timeout_s,
            library_dir=settings.library_dir,
            path_map=path_map,
        )
    raise HostConfigError("set SONANTICA_HOST to navidrome or jellyfin")


def make_adapter(settings: Settings) -> HostAdapter | None:
    """The adapter for ``settings.host``, or ``None`` when the host is ``none`` (analysis only).

    Raises
    ------
    HostConfigError
        A required setting is missing, or the adapter refuses a value (e.g. a URL with credentials in it).
    """
    if settings.host is HostKindSetting.NONE:
        return None
    try:
        return registry.make_adapter(settings.host.value, adapter_config(settings))
    except HostConfigError:
        raise
    except ValueError as error:
        raise HostConfigError(f"{settings.host.value} settings: {error}") from None


class UserPlaylistWriter:
    """A :class:`~sidecar.services.playlists.PlaylistWriter` acting as one host user (their own account and
    password): the playlist is theirs on the host. One short-lived adapter per playlist."""

    def __init__(
        self, config: AdapterConfig, username: str, password: str, *, transport: Transport | None = None
    ) -> None:
        self._config = config
        self._username = username
        self._password = password
        self._transport = transport

    async def upsert(self, name: str, host_track_ids: Sequence[str]) -> str:
        """Create or replace the user's playlist ``name``; returns the host's playlist id."""
        adapter = login.user_adapter(self._config, self._username, self._password, transport=self._transport)
        try:
            return await adapter.upsert_playlist(name, list(host_track_ids))
        finally:
            await adapter.aclose()


UserWriters = Callable[[str, str], UserPlaylistWriter]
"""``(username, password) -> writer`` acting as that host user."""


def make_user_writers(settings: Settings) -> UserWriters | None:
    """Writers that act as the signed-in user on ``settings.host``; ``None`` for host ``none`` or incomplete
    host settings (playlists then go through the sidecar's own account)."""
    if settings.host is HostKindSetting.NONE:
        return None
    try:
        config = adapter_config(settings)
    except (HostConfigError, ValueError):
        return None
    return partial(UserPlaylistWriter, config)


HostLogin = Callable[[str, str], Awaitable[HostUser | None]]
"""Checks a host user's name and password with the host: the user, or ``None`` when the host refuses."""


def make_host_login(settings: Settings) -> HostLogin | None:
    """How web sign-in checks a password on ``settings.host``, or ``None`` for host ``none`` (the API token).

    When the host's settings are incomplete, every sign-in raises ``HostUnavailableError`` naming what to set.
    """
    if settings.host is HostKindSetting.NONE:
        return None
    try:
        return partial(login.verify_user, adapter_config(settings))
    except (HostConfigError, ValueError) as error:
        reason = f"sign-in cannot reach {settings.host.value}: {error}"

    async def unconfigured(username: str, password: str) -> HostUser | None:
        raise HostUnavailableError(reason)

    return unconfigured
