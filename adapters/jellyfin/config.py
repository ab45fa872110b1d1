"""What the Jellyfin adapter needs to know, as one immutable value (built by the sidecar from its settings)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from adapters.config import check_http_settings, check_url
from adapters.jellyfin import const

_DEVICE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
_TOKEN = re.compile(r"[\x21\x23-\x2b\x2d-\x7e]+")  # printable ASCII without space, '"' and ','; fits Token="..."


@dataclass(frozen=True, slots=True, kw_only=True)
class JellyfinConfig:
    """Connection, credentials and behaviour of one Jellyfin adapter.

    Authenticate with ``api_key`` (Dashboard -> API Keys) or with ``username`` + ``password`` (a user token from
    ``POST /Users/AuthenticateByName``); an API key wins when both are given. Secrets never appear in ``repr``.

    ``user_id`` names the user that owns playlists and reads items where Jellyfin needs one (an API key is not a
    user): an id (dashed or not) or a user name. Without it the logged-in user, or with an API key the first
    administrator, is used.

    ``library_dir`` is the sidecar's read-only mount of the music library. ``path_map`` overrides the automatic
    mapping (music library folders from ``/Library/VirtualFolders`` onto ``library_dir``) with explicit
    ``(host prefix, mount prefix)`` pairs.

    Retries: network errors, timeouts and 5xx answers are retried ``max_attempts - 1`` times with exponential
    back-off starting at ``retry_base_s`` (capped at ``retry_max_s``); requests that are not idempotent are retried
    only when they never reached the server. ``timeout_s`` bounds every request.
    """

    url: str
    api_key: str | None = field(default=None, repr=False)
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    user_id: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    write_tags: bool = True
    trigger_normalization: bool = False
    timeout_s: float = 15.0
    library_dir: Path | None = None
    path_map: tuple[tuple[str, str], ...] = ()
    device_id: str = "sonantica-sidecar"
    max_attempts: int = 3
    retry_base_s: float = 0.5
    retry_max_s: float = 8.0
    max_response_bytes: int = const.MAX_RESPONSE_BYTES
    playlist_batch_size: int = const.PLAYLIST_BATCH_SIZE

    def __post_init__(self) -> None:
        check_url(self.url, host="Jellyfin", example="http://host:8096")
        if not self.api_key and not (self.username and self.password):
            raise ValueError("Jellyfin needs an api_key, or a username and a password")
        if self.api_key and not _TOKEN.fullmatch(self.api_key):
            raise ValueError("the Jellyfin API key contains spaces, quotes, commas or non-ASCII characters")
        if not _DEVICE_ID.fullmatch(self.device_id):
            raise ValueError("device_id must be 1-64 characters of letters, digits, '.', '_' or '-'")
        check_http_settings(self)
        if self.playlist_batch_size < 1:
            raise ValueError("playlist_batch_size must be at least 1")

    @property
    def uses_api_key(self) -> bool:
        """True when requests carry the API key; False when the adapter logs in as ``username``."""
        return bool(self.api_key)
