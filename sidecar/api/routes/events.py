"""Server-sent events: ``AnalysisReady`` as tracks finish (every track or one) and ``StemsReady`` as stems are made."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import StreamingResponse

from sidecar.api.events_hub import EventsHub, EventStreamResponse
from sidecar.api.routes.tracks import track_key
from sidecar.api.schemas import ErrorPublic
from sidecar.settings import Settings

router = APIRouter(prefix="/api", tags=["events"])


@router.get(
    "/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "AnalysisReady and StemsReady events"},
        503: {"model": ErrorPublic, "description": "too many open streams (see Retry-After), or Redis is down"},
    },
)
async def events(
    request: Request,
    host: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_-]{0,31}$")] = None,
    host_track_id: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
) -> StreamingResponse:
    """``event: AnalysisReady`` with ``{"host", "host_track_id", "analyzers"}``; give both ``host`` and
    ``host_track_id`` to follow one track; ``event: StemsReady`` with ``{"track_id", "stems"}`` for every track whose
    stems were just made. Pub/sub: a reconnecting client re-reads the analysis or stems it waits for.
    Streams are capped (``SONANTICA_API__SSE_MAX_CLIENTS``: 503 with ``Retry-After``) and a client too far
    behind is disconnected."""
    if (host is None) != (host_track_id is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give both host and host_track_id, or neither")
    track = None if host is None or host_track_id is None else track_key(host, host_track_id)
    hub: EventsHub = request.app.state.events_hub
    settings: Settings = request.app.state.settings
    return EventStreamResponse(hub, track, retry_after_s=settings.api.sse_retry_after_s)
