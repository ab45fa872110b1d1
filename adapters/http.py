"""HTTP plumbing shared by the adapters: client setup, retries, size-capped reads and error mapping.

``host`` in messages names the server as users know it ("Jellyfin", "the server"); ``what`` names the request.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import NoReturn, Self

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt, wait_exponential_jitter

from adapters.base import HostResponseError, HostUnavailableError
from adapters.config import HttpSettings

Params = Sequence[tuple[str, str]]
Transport = httpx.AsyncBaseTransport
"""What tests hand an adapter instead of the network (e.g. a fake server's ``httpx.MockTransport``)."""


class TransientError(HostUnavailableError):
    """A failure worth retrying; ``reached_server`` is False when the request certainly was not processed."""

    def __init__(self, message: str, *, reached_server: bool) -> None:
        super().__init__(message)
        self.reached_server = reached_server


class HttpAdapter:
    """Base of an adapter that owns ``_client``: ``async with`` and :meth:`aclose` close its connection pool."""

    _client: httpx.AsyncClient

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()


def new_client(base_url: str, settings: HttpSettings, transport: httpx.AsyncBaseTransport | None) -> httpx.AsyncClient:
    """A JSON client for ``base_url`` that never follows redirects; ``transport`` replaces the network in tests."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(settings.timeout_s),
        transport=transport,
        follow_redirects=False,
        headers={"Accept": "application/json"},
    )


def retrying(settings: HttpSettings, *, idempotent: bool, label: str, log: logging.Logger) -> AsyncRetrying:
    """Retry :class:`TransientError` with jittered exponential back-off; a request that is not idempotent only
    when it never reached the server. Each retry is logged on ``log`` as a failed ``label`` request."""

    def retryable(error: BaseException) -> bool:
        return isinstance(error, TransientError) and (idempotent or not error.reached_server)

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        wait_s = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "%s request failed (%s); attempt %d of %d, retrying in %.1f s",
            label,
            error,
            state.attempt_number,
            settings.max_attempts,
            wait_s,
        )

    return AsyncRetrying(
        stop=stop_after_attempt(settings.max_attempts),
        wait=wait_exponential_jitter(
            multiplier=settings.retry_base_s, max=settings.retry_max_s, jitter=settings.retry_base_s
        ),
        retry=retry_if_exception(retryable),
        before_sleep=log_retry,
        reraise=True,
    )


async def fetch(
    client: httpx.AsyncClient, request: httpx.Request, *, what: str, host: str, max_bytes: int, log: logging.Logger
) -> tuple[int, bytes]:
    """Send ``request`` and return the status and the body (at most ``max_bytes``, else HostResponseError);
    network failures and timeouts become :class:`TransientError`."""
    try:
        response = await client.send(request, stream=True)
    except (httpx.ConnectError, httpx.ConnectTimeout) as error:
        raise TransientError(f"cannot reach {host} ({what}): {error}", reached_server=False) from None
    except httpx.TimeoutException:
        raise TransientError(f"{host} did not answer {what} in time", reached_server=True) from None
    except httpx.TransportError as error:
        raise TransientError(f"{what} failed: {type(error).__name__}: {error}", reached_server=True) from None
    try:
        content = await _read_limited(response, what=what, host=host, limit=max_bytes)
    except httpx.TimeoutException:
        raise TransientError(f"{host} did not finish answering {what} in time", reached_server=True) from None
    except httpx.TransportError as error:
        raise TransientError(f"{what} broke off: {type(error).__name__}", reached_server=True) from None
    finally:
        await response.aclose()
    log.debug("%s -> HTTP %d (%d bytes)", what, response.status_code, len(content))
    return response.status_code, content


async def _read_limited(response: httpx.Response, *, what: str, host: str, limit: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > limit:
        raise HostResponseError(f"{host}'s answer to {what} is {declared} bytes, over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            raise HostResponseError(f"{host}'s answer to {what} is over the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def raise_for_error_status(status: int, *, what: str, host: str, detail: str) -> NoReturn:
    """Raise for an unsuccessful ``status`` that the adapter has no better word for: TransientError for 5xx, 408
    and 429, else HostResponseError. ``detail`` is the start of the answer, already redacted."""
    message = f"{host} answered {what} with HTTP {status}: {detail}"
    if status >= 500 or status in (httpx.codes.TOO_MANY_REQUESTS, httpx.codes.REQUEST_TIMEOUT):
        raise TransientError(message, reached_server=True)
    raise HostResponseError(message)


def decode_json(content: bytes, *, what: str, host: str) -> object:
    """The JSON value in ``content``; HostResponseError when it is not JSON."""
    try:
        return json.loads(content)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise HostResponseError(f"{host} sent malformed JSON for {what}: {error}") from None
