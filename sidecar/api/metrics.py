"""Prometheus metrics of one app (own registry, so several apps in one process never clash)."""

from __future__ import annotations

from collections.abc import Mapping

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Scope

from sidecar.api.middleware import ObservedRequests

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
OTHER_METHOD = "OTHER"
UNMATCHED_ROUTE = "unmatched"


def method_label(method: str) -> str:
    """The method, or ``OTHER`` for anything outside the standard set (labels stay bounded)."""
    return method if method in METHODS else OTHER_METHOD


class Metrics:
    """Request counter and latency histogram per route template, and queue depths."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "sonantica_http_requests", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency_s = Histogram(
            "sonantica_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
        )
        self.queue_depth = Gauge("sonantica_queue_depth", "jobs per queue place", ["queue"], registry=self.registry)

    def set_queue_depths(self, depths: Mapping[str, int]) -> None:
        """Record the current queue depths."""
        for name, depth in depths.items():
            self.queue_depth.labels(queue=name).set(depth)


class MetricsMiddleware(ObservedRequests):
    """Count and time every HTTP request under its route template (``/api/tracks/{track_id}/similar``). Labels are
    bounded: unknown methods count as ``OTHER`` and paths no route matched as ``unmatched``."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        super().__init__(app)
        self.metrics = metrics

    def observe(self, scope: Scope, status: int, duration_s: float) -> None:
        route = getattr(scope.get("route"), "path", UNMATCHED_ROUTE)  # set by the router once it matched
        method = method_label(scope["method"])
        self.metrics.latency_s.labels(method, route).observe(duration_s)
        self.metrics.requests.labels(method, route, str(status)).inc()
