"""Build the configured host adapter from the settings (the only place that picks Jellyfin or Navidrome)."""

from __future__ import annotations

import importlib
from typing import Any, cast

from adapters.base import HostAdapter
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from sidecar.errors import SidecarError
from sidecar.settings import HostKindSetting, Settings


class HostConfigError(SidecarError):
    """The host settings are incomplete or invalid; the message names the variables to set."""


def _path_map(settings: Settings) -> tuple[tuple[str, str], ...]:
    return tuple((mapping.host_prefix, mapping.local_prefix) for mapping in settings.path_map)


def make_adapter(settings: Settings) -> HostAdapter | None:
    """The adapter for ``settings.host`` (``None`` when the host is ``none``: analysis only).

    Raises
    ------
    HostConfigError
        A required setting (URL, credentials) is missing or the adapter refuses the values.
    """
    try:
        if settings.host is HostKindSetting.JELLYFIN:
            return _jellyfin(settings)
        if settings.host is HostKindSetting.NAVIDROME:
            return _navidrome(settings)
    except ValueError as exc:
        raise HostConfigError(f"{settings.host.value} settings: {exc}") from None
    return None


def _jellyfin(settings: Settings) -> HostAdapter:
    jf = settings.jellyfin
    if not jf.url:
        raise HostConfigError("SONANTICA_HOST=jellyfin needs SONANTICA_JELLYFIN__URL")
    config = JellyfinConfig(
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
        path_map=_path_map(settings),
    )
    return JellyfinAdapter(config)


def _navidrome(settings: Settings) -> HostAdapter:
    navidrome: Any = importlib.import_module("adapters.navidrome")  # built in parallel; loaded only when chosen
    nd = settings.navidrome
    if not nd.url or not nd.username or nd.password is None:
        raise HostConfigError(
            "SONANTICA_HOST=navidrome needs SONANTICA_NAVIDROME__URL, SONANTICA_NAVIDROME__USERNAME and"
            " SONANTICA_NAVIDROME__PASSWORD"
        )
    config = navidrome.NavidromeConfig(
        url=nd.url,
        username=nd.username,
        password=nd.password.get_secret_value(),
        library_dir=settings.library_dir,
        path_map=_path_map(settings),
        client_name=nd.client_name,
        timeout_s=nd.timeout_s,
    )
    return cast(HostAdapter, navidrome.NavidromeAdapter(config))
