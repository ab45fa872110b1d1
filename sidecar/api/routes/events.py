"""Server-sent events: ``AnalysisReady`` as tracks finish (for every track or one) and ``StemsReady`` as stems do."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from sidecar.api.deps import RuntimeDep
from sidecar.api.routes.tracks import track_key
from sidecar.domain import TrackKey
from sidecar.services.runtime import Runtime
from sidecar.services.stems import stems_queue

router = APIRouter(prefix="/api", tags=["events"])

KEEPALIVE_S = 15.0


async def _stream(request: Request, runtime: Runtime, track: TrackKey | None) -> AsyncIterator[str]:
    async with runtime.events.subscribe(track) as subscription, stems_queue(runtime).subscribe() as stems:
        yield ": subscribed\n\n"  # the subscription is confirmed: nothing published from now on is missed
        analysis_next = asyncio.ensure_future(subscription.get(timeout_s=KEEPALIVE_S))
        stems_next = asyncio.ensure_future(stems.get(timeout_s=KEEPALIVE_S))
        try:
            while not await request.is_disconnected():
                await asyncio.wait((analysis_next, stems_next), return_when=asyncio.FIRST_COMPLETED)
                if stems_next.done():
                    stems_ready = stems_next.result()
                    stems_next = asyncio.ensure_future(stems.get(timeout_s=KEEPALIVE_S))
                    if stems_ready is not None:  # every track's StemsReady (stem requests name the sidecar's id)
                        data = {"track_id": stems_ready.track_id, "stems": list(stems_ready.files)}
                        yield f"event: StemsReady\ndata: {json.dumps(data)}\n\n"
                    continue
                ready = analysis_next.result()
                analysis_next = asyncio.ensure_future(subscription.get(timeout_s=KEEPALIVE_S))
                if ready is None:
                    yield ": keep-alive\n\n"
                    continue
                data = {"host": ready.host, "host_track_id": ready.host_track_id, "analyzers": list(ready.analyzers)}
                yield f"event: AnalysisReady\ndata: {json.dumps(data)}\n\n"
        finally:
            for pending in (analysis_next, stems_next):
                pending.cancel()
            await asyncio.gather(analysis_next, stems_next, return_exceptions=True)


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}, "description": "AnalysisReady events"}},
)
async def events(
    request: Request,
    runtime: RuntimeDep,
    host: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] = None,
    host_track_id: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
) -> StreamingResponse:
    """``event: AnalysisReady`` with ``{"host", "host_track_id", "analyzers"}``; give both ``host`` and
    ``host_track_id`` to follow one track; ``event: StemsReady`` with ``{"track_id", "stems"}`` for every track whose
    stems were just made. Pub/sub: a reconnecting client re-reads the analysis or stems it waits for."""
    if (host is None) != (host_track_id is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give both host and host_track_id, or neither")
    track = None if host is None or host_track_id is None else track_key(host, host_track_id)
    return StreamingResponse(
        _stream(request, runtime, track),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
