"""What the Navidrome adapter needs to know, as one immutable value (built by the sidecar from its settings)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from adapters.config import check_http_settings, check_url
from adapters.navidrome import const


@dataclass(frozen=True, slots=True, kw_only=True)
class NavidromeConfig:
    """Connection, credentials and behaviour of one Navidrome (or other Subsonic) adapter.

    ``url`` is the server's base URL (``http://navidrome:4533``; a reverse-proxy sub-path is kept). The password
    never appears in ``repr``, in logs or in error messages. ``library_dir`` is the sidecar's read-only mount;
    ``path_map`` holds ``(host prefix, mount prefix)`` pairs for the absolute paths the host reports (relative
    paths are taken relative to ``library_dir``). ``client_name`` is sent as ``c=`` on every request.

    Retries: network errors, timeouts and 5xx answers are retried ``max_attempts - 1`` times with exponential
    back-off from ``retry_base_s`` (capped at ``retry_max_s``); ``timeout_s`` bounds every request. Answers over
    ``max_response_bytes`` are refused.
    """

    url: str
    username: str
    password: str = field(repr=False)
    library_dir: Path | None = None
    path_map: tuple[tuple[str, str], ...] = ()
    client_name: str = const.CLIENT_NAME
    timeout_s: float = 15.0
    max_attempts: int = 3
    retry_base_s: float = 0.5
    retry_max_s: float = 8.0
    max_response_bytes: int = const.MAX_RESPONSE_BYTES

    def __post_init__(self) -> None:
        check_url(self.url, host="Navidrome", example="http://host:4533")
        if not self.username or not self.password:
            raise ValueError("Navidrome needs a username and a password")
        if not self.client_name:
            raise ValueError("client_name must not be empty")
        check_http_settings(self)
