"""Validation shared by the adapters' config values: the server URL and the HTTP settings every adapter has."""

from __future__ import annotations

from typing import Protocol
from urllib.parse import urlsplit


class HttpSettings(Protocol):
    """The request, retry and size-cap settings of an adapter config (see :mod:`adapters.http`)."""

    @property
    def timeout_s(self) -> float: ...

    @property
    def max_attempts(self) -> int: ...

    @property
    def retry_base_s(self) -> float: ...

    @property
    def retry_max_s(self) -> float: ...

    @property
    def max_response_bytes(self) -> int: ...


def check_url(url: str, *, host: str, example: str) -> None:
    """Raise ValueError unless ``url`` is a plain http(s) URL without credentials, query or fragment."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{host} url must look like {example}, got {url!r}")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError(f"{host} url must not carry credentials, a query or a fragment")


def check_http_settings(settings: HttpSettings) -> None:
    """Raise ValueError for a non-positive timeout, no attempt, negative delays or a size cap under 1 KiB."""
    if settings.timeout_s <= 0:
        raise ValueError("timeout_s must be positive")
    if settings.max_attempts < 1:
        raise ValueError("max_attempts must be at least 1")
    if settings.retry_base_s < 0 or settings.retry_max_s < 0:
        raise ValueError("retry delays must not be negative")
    if settings.max_response_bytes < 1024:
        raise ValueError("max_response_bytes must be at least 1024")
