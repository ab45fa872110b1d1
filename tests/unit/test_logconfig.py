"""Log lines follow ``sys.stderr`` as it is when they are written (sidecar.logconfig)."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from sidecar.logconfig import setup_logging
from sidecar.settings import get_settings


def test_log_lines_go_to_the_stderr_of_the_moment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A replaced and closed stderr (a command run in-process, a service manager) must not swallow later lines."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stderr", first)
    setup_logging(get_settings())
    logging.getLogger("sidecar.test").warning("one")
    first.close()
    second = io.StringIO()
    monkeypatch.setattr(sys, "stderr", second)
    logging.getLogger("sidecar.test").warning("two")
    assert "WARNING sidecar.test: two" in second.getvalue()
