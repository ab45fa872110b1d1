"""Error answers in one shape, and an OpenAPI document that lists every error a route can give.

Every error body is ``{"detail": str}``; a 422 adds ``"errors": [{"loc", "msg", "type"}]``, whether FastAPI's
validation or a route refused the input. The input is never echoed back (it may hold NaN, which JSON cannot
carry, or megabytes).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sidecar.api.middleware import needs_principal
from sidecar.api.schemas import ErrorPublic, ValidationErrorPublic

UNPROCESSABLE = 422
_DETAIL_CHARS = 500


def validation_body(errors: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The 422 body for pydantic/FastAPI errors: locations, messages and types only."""
    listed = [
        {
            "loc": [part if isinstance(part, int) else str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", "invalid")),
            "type": str(error.get("type", "value_error")),
        }
        for error in errors
    ]
    summary = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'request'}: {e['msg']}" for e in listed)
    return {"detail": summary[:_DETAIL_CHARS] or "invalid request", "errors": listed}


async def request_validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's validation errors, JSON-safe and in the one 422 shape."""
    assert isinstance(exc, RequestValidationError)
    return JSONResponse(validation_body(list(exc.errors())), status_code=UNPROCESSABLE)


async def http_error(request: Request, exc: Exception) -> Response:
    """A route's ``HTTPException``: a 422 gets the one 422 shape; the rest answer as FastAPI does."""
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == UNPROCESSABLE:
        body = {"detail": str(exc.detail), "errors": [{"loc": [], "msg": str(exc.detail), "type": "value_error"}]}
        return JSONResponse(jsonable_encoder(body), status_code=UNPROCESSABLE, headers=exc.headers)
    return await http_exception_handler(request, exc)


def _content(model: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{model}"}}}


_GUARD_400 = "a NUL byte in the URL, or a Content-Length that is not a number"
_UNAUTHORIZED = "missing or wrong API token (Authorization: Bearer), and no signed-in session"
_TOO_LARGE = "the body is over SONANTICA_API__MAX_BODY_BYTES"
_UNAVAILABLE = "a backing service (database or Redis) is unavailable; retry later"


def conformant_openapi(app: FastAPI, *, public_read: bool) -> Callable[[], dict[str, Any]]:
    """An ``app.openapi`` that documents what the guard middleware and the error handlers answer on every
    operation: 400, 401 (where a token is needed, with the bearer scheme), 413 (with a body), 422 in its one
    shape (with input), 503 (under ``/api`` and ``/hooks``)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title, version=app.version, summary=app.summary, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {})
        schemas = components.setdefault("schemas", {})
        for model in (ErrorPublic, ValidationErrorPublic):
            definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(definition.pop("$defs", {}))
            schemas[model.__name__] = definition
        components.setdefault("securitySchemes", {})["HTTPBearer"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "the API token (SONANTICA_API__TOKEN or <data_dir>/api-token)",
        }
        for path, item in schema.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                responses.setdefault("400", {"description": _GUARD_400, "content": _content("ErrorPublic")})
                if needs_principal(method.upper(), path, public_read=public_read):
                    operation["security"] = [{"HTTPBearer": []}]
                    responses["401"] = {"description": _UNAUTHORIZED, "content": _content("ErrorPublic")}
                if "requestBody" in operation:
                    responses.setdefault("413", {"description": _TOO_LARGE, "content": _content("ErrorPublic")})
                if "422" in responses or operation.get("parameters") or "requestBody" in operation:
                    described = responses.get("422", {}).get("description", "invalid input")
                    if described == "Validation Error":
                        described = "invalid input"
                    responses["422"] = {"description": described, "content": _content("ValidationErrorPublic")}
                if path.startswith(("/api/", "/hooks/")):
                    responses.setdefault("503", {"description": _UNAVAILABLE, "content": _content("ErrorPublic")})
        for unused in ("HTTPValidationError", "ValidationError"):
            schemas.pop(unused, None)
        app.openapi_schema = schema
        return schema

    return openapi
