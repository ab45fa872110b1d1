"""Background tasks that end when they are told to, within a bound, on Python 3.11 too.

``task.cancel()`` alone can be lost on Python 3.11: ``asyncio.wait_for``, which redis-py uses to bound every socket
write when a ``socket_timeout`` is set, swallows a cancellation that arrives just as the write it waits for
completes (CPython gh-86296, fixed in 3.12 only). The task then runs on, and whoever awaits it waits forever.
A :class:`BackgroundTask` runs its work in an anyio cancel scope instead: once stopped, the cancellation is
delivered again at every await until the work has left the scope. Clean-up the work must finish even while it is
being stopped (closing a connection) runs shielded, in ``anyio.move_on_after(bound_s, shield=True)``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import anyio

log = logging.getLogger(__name__)


class BackgroundTask:
    """``work()`` running in a task of its own until it returns or :meth:`stop` is called."""

    def __init__(self, work: Callable[[], Awaitable[None]], *, name: str) -> None:
        self.name = name
        self._work = work
        self._scope = anyio.CancelScope()
        self._task = asyncio.create_task(self._run(), name=name)

    async def _run(self) -> None:
        with self._scope:
            await self._work()

    async def stop(self, *, wait_s: float) -> None:
        """Stop the work and wait for it to end, at most ``wait_s`` seconds; an error it ended with is raised.

        Past ``wait_s`` (work stuck in a step that ignores cancellation) a warning is logged and the task is left
        to end on its own: a shutdown is never held up forever.
        """
        self._scope.cancel()
        done, _ = await asyncio.wait({self._task}, timeout=wait_s)
        if not done:
            log.warning("%s did not stop within %.1f s; leaving it behind", self.name, wait_s)
            return
        if not self._task.cancelled():  # cancelled from outside the scope (the event loop closing): nothing to say
            self._task.result()
