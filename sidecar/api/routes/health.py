"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from sidecar.api.deps import RuntimeDep
from sidecar.api.metrics import Metrics
from sidecar.api.probes import ReadinessProbe

log = logging.getLogger(__name__)

router = APIRouter(tags=["health"])


@router.get("/health/live")
async def live() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/health/ready", responses={503: {"description": "a dependency is down; `failed` names it"}})
async def ready(request: Request) -> JSONResponse:
    """PostgreSQL and Redis answer (checked on connections of their own, within 2 s each); 503 naming the part
    that failed otherwise."""
    probe: ReadinessProbe = request.app.state.readiness
    checks = await probe.check()
    failed = sorted(name for name, state in checks.items() if state != "ok")
    body = {"status": "failed" if failed else "ok", "checks": checks, "failed": failed}
    return JSONResponse(body, status_code=503 if failed else 200)


@router.get("/metrics", response_class=Response)
async def metrics(request: Request, runtime: RuntimeDep) -> Response:
    """Prometheus text format: request counts and latency per route, queue depths."""
    registry: Metrics = request.app.state.metrics
    try:
        registry.set_queue_depths(await runtime.queue.depths())
    except Exception as exc:  # the metrics page still answers when Redis is down
        log.warning("metrics: queue depths unavailable: %s", exc)
    return Response(generate_latest(registry.registry), media_type=CONTENT_TYPE_LATEST)
