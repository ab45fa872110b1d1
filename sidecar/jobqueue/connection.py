"""The Redis client, and the one place Redis failures become :class:`~sidecar.errors.QueueUnavailableError`.

redis-py's own command retries are switched off: re-sending a command whose reply was lost could run it twice
(``LMOVE`` would then claim a second job nobody knows about). Callers retry whole operations instead, with
:func:`queue_retrying`, and the queue repairs what an interrupted claim may have left behind.
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any, ParamSpec, TypeVar

from redis import exceptions as redis_errors
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception_type,
    stop_after_delay,
    stop_never,
    wait_exponential_jitter,
)

from sidecar.embedded import redis_url
from sidecar.errors import QueueUnavailableError
from sidecar.settings import Settings

log = logging.getLogger(__name__)

_P = ParamSpec("_P")
_R = TypeVar("_R")

RedisClient = Redis
"""The client type, for code outside this package that holds a client without importing redis."""

_TRANSIENT: tuple[type[BaseException], ...] = (
    redis_errors.ConnectionError,  # includes BusyLoadingError (Redis still loading its data set)
    redis_errors.TimeoutError,
    redis_errors.ReadOnlyError,  # a replica during fail-over
    redis_errors.TryAgainError,
    redis_errors.ClusterDownError,
    OSError,
)


def connect(url: str, settings: Settings) -> RedisClient:
    """A client for ``url`` (``redis://``, ``rediss://`` or ``unix://``) that returns ``str`` values.

    Nothing is sent until the first command. ``settings.redis.socket_timeout_s`` bounds every command,
    including blocking claims (the settings ensure ``worker.poll_s`` is shorter).
    """
    client: Redis = Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=settings.redis.socket_timeout_s,
        socket_connect_timeout=settings.redis.socket_timeout_s,
        retry=Retry(NoBackoff(), 0),
    )
    return client


def connect_from_settings(settings: Settings) -> RedisClient:
    """A client for ``settings.redis_url``, or for the embedded redis-server under ``settings.data_dir``.

    The embedded server is started on demand (``sidecar.embedded.redis_url``) and shared by every process on the
    same data directory.
    """
    return connect(redis_url(settings), settings)


def as_text(value: bytes | str) -> str:
    """A reply value as ``str`` (clients from :func:`connect` already decode; raw ``bytes`` are decoded as UTF-8)."""
    return value.decode() if isinstance(value, bytes) else value


def as_optional_text(value: bytes | str | None) -> str | None:
    """:func:`as_text`, passing ``None`` (a missing key) through."""
    return None if value is None else as_text(value)


@contextlib.contextmanager
def transient_redis_errors() -> Iterator[None]:
    """Turn Redis connection failures raised inside the block into :class:`QueueUnavailableError`."""
    try:
        yield
    except _TRANSIENT as exc:
        raise QueueUnavailableError(f"Redis is unavailable: {type(exc).__name__}: {exc}") from exc


def translate_errors(func: Callable[_P, Awaitable[_R]]) -> Callable[_P, Coroutine[Any, Any, _R]]:
    """Decorate a coroutine function so Redis connection failures surface as :class:`QueueUnavailableError`."""

    @functools.wraps(func)
    async def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with transient_redis_errors():
            return await func(*args, **kwargs)

    return wrapper


def queue_retrying(settings: Settings, *, stop_after_s: float | None = None) -> AsyncRetrying:
    """A tenacity controller that retries :class:`QueueUnavailableError` with jittered exponential back-off.

    The first wait is ``worker.retry_base_s`` (plus up to as much random jitter), doubling up to
    ``worker.retry_max_s``; it retries forever unless
    ``stop_after_s`` is given, then re-raises the last error. Any other exception propagates at once. Use::

        async for attempt in queue_retrying(settings):
            with attempt:
                claimed = await queue.claim(worker_id, block_s=settings.worker.poll_s)
    """
    return AsyncRetrying(
        retry=retry_if_exception_type(QueueUnavailableError),
        wait=wait_exponential_jitter(
            multiplier=settings.worker.retry_base_s,
            max=settings.worker.retry_max_s,
            jitter=settings.worker.retry_base_s,
        ),
        stop=stop_never if stop_after_s is None else stop_after_delay(stop_after_s),
        before_sleep=before_sleep_log(log, logging.WARNING),
        reraise=True,
    )


def dedicated_client(client: RedisClient, *, max_connections: int = 1) -> RedisClient:
    """A new client to the same server with the same options but a pool of its own (``max_connections``), so its
    commands (readiness checks) never wait for connections the rest of the process holds."""
    shared = client.connection_pool
    pool = type(shared)(
        connection_class=shared.connection_class, max_connections=max_connections, **shared.connection_kwargs
    )
    own: Redis = Redis.from_pool(pool)  # closing the client closes its pool
    return own
