"""Check Subsonic requests and answers against the OpenSubsonic OpenAPI spec in ../shared/specs/opensubsonic/.

Answers are validated with jsonschema against ``endpoints/<name>/<Name>Response.json`` (the spec's multi-file
``$ref``s resolve through a file registry). Form POST requests are checked against the endpoint's
``requestBody`` schema: every field is declared (besides the common auth fields) and the required ones are there.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from jsonschema import Draft7Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

SPEC_DIR = Path("/work/shared/specs/opensubsonic/openapi")
COMMON_FIELDS = frozenset({"u", "t", "s", "p", "v", "c", "f"})
_PING_SCHEMA = "schemas/SubsonicResponse.json"


def _retrieve(uri: str) -> Resource[Any]:
    path = Path(unquote(urlsplit(uri).path))
    return Resource.from_contents(json.loads(path.read_text(encoding="utf-8")), default_specification=DRAFT7)


@functools.cache
def _registry() -> Registry[Any]:
    return Registry(retrieve=_retrieve)  # type: ignore[call-arg]


def _response_schema_path(endpoint: str) -> Path:
    if endpoint == "ping":
        return SPEC_DIR / _PING_SCHEMA
    name = endpoint[0].upper() + endpoint[1:]
    return SPEC_DIR / "endpoints" / endpoint / f"{name}Response.json"


def response_errors(endpoint: str, payload: object) -> list[str]:
    """Spec violations of ``payload`` as the answer to ``endpoint`` (empty when it conforms)."""
    path = _response_schema_path(endpoint)
    schema = {"$ref": path.as_uri()}
    validator = Draft7Validator(schema, registry=_registry())
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(payload)]


def request_errors(endpoint: str, fields: dict[str, list[str]]) -> list[str]:
    """Spec violations of a form POST to ``endpoint`` with ``fields`` (empty when it conforms)."""
    document = json.loads((SPEC_DIR / "endpoints" / f"{endpoint}.json").read_text(encoding="utf-8"))
    post = document.get("post")
    if post is None:
        return [f"{endpoint} accepts no form POST"]
    body = post.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
    schema = body.get("schema", {"properties": {}})
    declared = set(schema.get("properties", {}))
    errors = [f"undeclared field {name!r}" for name in fields if name not in declared | COMMON_FIELDS]
    errors += [f"missing required field {name!r}" for name in schema.get("required", []) if name not in fields]
    return errors
