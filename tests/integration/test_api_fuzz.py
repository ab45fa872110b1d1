"""Schemathesis fuzz of the whole API from its own OpenAPI schema, against a real server on real services: no
5xx, and every answer's status, content type and body are the ones its operation documents."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import httpx
import hypothesis
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, response_schema_conformance, status_code_conformance
from schemathesis.core.result import Ok
from schemathesis.generation.case import Case

from sidecar.api.app import create_app
from sidecar.settings import Settings
from sidecar.storage.db import close_pool, open_pool
from tests.integration.test_api import AUTH, RecordingWriter, seed_library, settings  # noqa: F401  (fixture)

EXAMPLES = {GenerationMode.POSITIVE: 30, GenerationMode.NEGATIVE: 15}
CONFORMANCE = [status_code_conformance, content_type_conformance, response_schema_conformance]
STREAMING = {"/api/events"}  # an endless text/event-stream; its validation is covered in test_api.py


async def _seed(database_url: str) -> None:
    pool = await open_pool(database_url, min_size=1, max_size=2)
    try:
        await seed_library(pool)
    finally:
        await close_pool(pool)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def base_url(settings: Settings, database_url: str) -> object:  # noqa: F811
    asyncio.run(_seed(database_url))
    app = create_app(settings, playlist_writer=RecordingWriter())
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_api_fuzz_finds_no_server_error(base_url: str) -> None:
    raw = httpx.get(f"{base_url}/openapi.json", timeout=10).json()
    schema = schemathesis.openapi.from_dict(raw)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    fuzzed = [op for op in operations if op.path not in STREAMING]
    assert len(fuzzed) >= 12
    seen: list[tuple[str, str, int]] = []
    for operation in fuzzed:
        has_input = any(len(p) for p in (operation.path_parameters, operation.query, operation.body))
        for mode, examples in EXAMPLES.items():
            if mode is GenerationMode.NEGATIVE and not has_input:
                continue  # nothing to make invalid

            @hypothesis.settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(mode))
            def call(case: Case[Any]) -> None:
                response = case.call(base_url=base_url, headers=dict(AUTH), timeout=10)
                seen.append((case.method, case.path, response.status_code))
                assert response.status_code < 500, (
                    f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
                )
                case.validate_response(response, checks=CONFORMANCE)  # the status and body are documented

            call()
    statuses = {status for _, _, status in seen}
    assert len(seen) >= 10 * len(fuzzed)
    assert any(200 <= status < 300 for status in statuses)  # the fuzz reached real answers, not only refusals
    assert any(400 <= status < 500 for status in statuses)
