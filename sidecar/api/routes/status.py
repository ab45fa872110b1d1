"""Coverage per analyzer, queue depths and live workers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from sidecar.api.deps import RuntimeDep, VersionsDep
from sidecar.services.status import status_report

router = APIRouter(prefix="/api", tags=["status"])


@router.get("/status")
async def status(request: Request, runtime: RuntimeDep, versions: VersionsDep) -> dict[str, Any]:
    """``{"analyzers": {name: {version, done, pending, queued, running, stale, failed}}, "queues", "workers",
    "embedding_model", "host": {"kind", "capabilities"}}``."""
    report = await status_report(runtime, versions)
    report["embedding_model"] = runtime.settings.embedding.model
    report["host"] = {
        "kind": str(runtime.settings.host),
        "capabilities": sorted(str(c) for c in request.app.state.host_capabilities),
    }
    return report
