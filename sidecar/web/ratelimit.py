"""A per-client sliding-window limit on sign-in attempts (in memory: one API process)."""

from __future__ import annotations

import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class AttemptLimiter:
    """At most ``attempts`` calls of :meth:`hit` per client within any ``window_s`` seconds.

    Memory is bounded: at most ``max_clients`` addresses are tracked (the least recently seen is forgotten)."""

    def __init__(
        self,
        *,
        attempts: int,
        window_s: float,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if attempts < 1 or window_s <= 0 or max_clients < 1:
            raise ValueError("attempts and max_clients must be at least 1 and window_s positive")
        self.attempts = attempts
        self.window_s = window_s
        self._max_clients = max_clients
        self._clock = clock
        self._seen: OrderedDict[str, deque[float]] = OrderedDict()

    def hit(self, client: str) -> float | None:
        """Count an attempt by ``client``: ``None`` when allowed, else the seconds until one is allowed again."""
        now = self._clock()
        times = self._seen.pop(client, deque())
        while times and times[0] <= now - self.window_s:
            times.popleft()
        self._seen[client] = times
        if len(self._seen) > self._max_clients:
            self._seen.popitem(last=False)
        if len(times) >= self.attempts:
            return max(0.0, times[0] + self.window_s - now)
        times.append(now)
        return None

    @staticmethod
    def retry_after_header(wait_s: float) -> str:
        """``Retry-After`` in whole seconds (at least 1)."""
        return str(max(1, math.ceil(wait_s)))
