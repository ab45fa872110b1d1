"""The worker's report of its background index rebuild (``sonantica worker``)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sidecar.cli.worker import _report_rebuild
from sidecar.errors import StorageError


async def _fails() -> None:
    raise StorageError("the HNSW indexes of 2 model(s) were not rebuilt: a_b (gone); c (taken)")


async def _succeeds() -> None:
    return None


async def test_a_failed_rebuild_is_logged_as_an_error_naming_each_model(caplog: pytest.LogCaptureFixture) -> None:
    failed = asyncio.create_task(_fails())
    done = asyncio.create_task(_succeeds())
    await asyncio.wait([failed, done])
    with caplog.at_level(logging.INFO, logger="sidecar.cli.worker"):
        _report_rebuild(done)
        _report_rebuild(failed)
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            logging.ERROR,
            "rebuilding the HNSW indexes failed; the old ones keep serving until the next start: the HNSW indexes of"
            " 2 model(s) were not rebuilt: a_b (gone); c (taken)",
        )
    ]
