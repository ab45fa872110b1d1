"""``sonantica serve`` sets up logging from the settings (issue 12, item 11): level and JSON format honoured, and
the app's own access log instead of uvicorn's."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.logconfig import JsonFormatter
from sidecar.settings import get_settings


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored afterwards (``serve`` replaces its handlers)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield root
    root.handlers[:] = handlers
    root.setLevel(level)


def test_serve_sets_up_json_logging_at_the_configured_level(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, root_logger: logging.Logger
) -> None:
    monkeypatch.setenv("SONANTICA_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SONANTICA_LOG_FORMAT", "json")
    monkeypatch.setenv("SONANTICA_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("SONANTICA_HOST", "none")
    get_settings.cache_clear()
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kwargs: calls.append(kwargs))

    result = CliRunner().invoke(app, ["serve", "--port", "8999"])

    assert result.exit_code == 0, result.output
    assert calls[0]["access_log"] is False
    assert calls[0]["port"] == 8999
    assert root_logger.level == logging.WARNING
    assert isinstance(root_logger.handlers[0].formatter, JsonFormatter)
    record = logging.LogRecord("sidecar.api.access", logging.INFO, __file__, 1, "GET %s", ("/x",), None)
    assert json.loads(root_logger.handlers[0].format(record))["message"] == "GET /x"
