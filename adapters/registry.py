"""Build the adapter for a host kind from its config value (the only place that picks an adapter class)."""

from __future__ import annotations

from adapters.base import HostAdapter, HostKind
from adapters.jellyfin import JellyfinAdapter, JellyfinConfig
from adapters.navidrome import NavidromeAdapter, NavidromeConfig

AdapterConfig = NavidromeConfig | JellyfinConfig


def make_adapter(kind: HostKind | str, config: AdapterConfig) -> HostAdapter:
    """The adapter for ``kind`` ("navidrome" or "jellyfin") built from ``config``; close it with ``aclose``.

    Raises ValueError for an unknown kind or a config of another host's type.
    """
    host = HostKind(kind)
    if host is HostKind.NAVIDROME and isinstance(config, NavidromeConfig):
        return NavidromeAdapter(config)
    if host is HostKind.JELLYFIN and isinstance(config, JellyfinConfig):
        return JellyfinAdapter(config)
    raise ValueError(f"a {type(config).__name__} cannot configure a {host.value} adapter")
