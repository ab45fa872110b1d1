"""The API token: configured, or generated once and kept in ``<data_dir>/api-token`` (mode 0600)."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from sidecar.settings import Settings

log = logging.getLogger(__name__)

TOKEN_FILE = "api-token"  # noqa: S105  (a file name, not a secret)


def resolve_token(settings: Settings) -> str:
    """``settings.api.token``; otherwise the token in ``<data_dir>/api-token``, created (0600) on first use."""
    if settings.api.token is not None and settings.api.token.get_secret_value():
        return settings.api.token.get_secret_value()
    path = Path(settings.data_dir) / TOKEN_FILE
    if path.is_file():
        token = path.read_text(encoding="utf-8").strip()
        if token:
            log.info("API token read from %s", path)
            return token
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.chmod(path, 0o600)
    log.warning("no SONANTICA_API__TOKEN set: generated an API token in %s (mode 0600)", path)
    return token


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison of two tokens."""
    return secrets.compare_digest(given.encode(), expected.encode())
