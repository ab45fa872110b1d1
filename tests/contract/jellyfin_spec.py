"""Validate Jellyfin exchanges against the official OpenAPI specs (10.10.7, 10.11.11, 12.0.0) with openapi-core.

The specs declare ids as ``format: uuid`` (dashed) while the server writes 32-hex "N" Guids, so the ``uuid``
format is the only thing relaxed (removed when loading). Everything else (required parameters, enums, the
repeated ``fields=`` form, the ``Authorization`` header, body and response schemas) is checked as published.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

SPEC_DIR = Path("/work/shared/specs")
SPEC_VERSIONS = ("10.10.7", "10.11.11", "12.0.0")
HOST_URL = "http://localhost"


def _without_uuid_format(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: _without_uuid_format(value) for key, value in node.items() if not (key == "format" and value == "uuid")
        }
    if isinstance(node, list):
        return [_without_uuid_format(value) for value in node]
    return node


@functools.cache
def load_spec(version: str) -> OpenAPI:
    """The official spec of ``version`` with only the uuid format relaxed (cached: loading takes seconds)."""
    raw = json.loads((SPEC_DIR / f"jellyfin-openapi-{version}.json").read_text(encoding="utf-8"))
    return OpenAPI.from_dict(_without_uuid_format(raw))


def _mock_request(request: httpx.Request) -> MockRequest:
    content_type = request.headers.get("Content-Type", "application/json").split(";")[0]
    return MockRequest(
        HOST_URL,
        request.method,
        request.url.path,
        args=list(request.url.params.multi_items()),  # type: ignore[arg-type]  # a list keeps repeated names
        headers=dict(request.headers),
        data=request.content or None,
        content_type=content_type,
    )


def validate_request(spec: OpenAPI, request: httpx.Request) -> None:
    """Raise openapi-core's validation error when the spec rejects ``request``."""
    spec.validate_request(_mock_request(request))


def validate_exchange(spec: OpenAPI, request: httpx.Request, response: httpx.Response) -> None:
    """Validate the request, and a successful response that has a body (error bodies are plain text or empty)."""
    mock = _mock_request(request)
    spec.validate_request(mock)
    if not response.content or not response.is_success:
        return
    content_type = response.headers.get("Content-Type", "application/json").split(";")[0]
    spec.validate_response(mock, MockResponse(response.content, response.status_code, content_type=content_type))


def validate_response(spec: OpenAPI, request: httpx.Request, response: httpx.Response) -> None:
    """Validate only ``response`` (as the answer to ``request``'s operation); for recorded answers."""
    content_type = response.headers.get("Content-Type", "application/json").split(";")[0]
    mock_response = MockResponse(response.content, response.status_code, content_type=content_type)
    spec.validate_response(_mock_request(request), mock_response)


def assert_exchanges_valid(exchanges: Iterable[tuple[httpx.Request, httpx.Response]]) -> int:
    """Validate every exchange against every spec version; return how many were checked (per version)."""
    pairs = list(exchanges)
    for version in SPEC_VERSIONS:
        spec = load_spec(version)
        for request, response in pairs:
            try:
                validate_exchange(spec, request, response)
            except Exception as error:
                message = f"Jellyfin {version} spec rejects {request.method} {request.url}: {error}"
                raise AssertionError(message) from error
    return len(pairs)
