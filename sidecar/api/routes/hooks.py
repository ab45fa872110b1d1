"""Jellyfin Webhook-plugin receiver: a Playback Start becomes an on-play request. Never answers 5xx for bad input."""

from __future__ import annotations

import logging
import time
from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse

from adapters.base import HostAdapter
from adapters.jellyfin.webhook import MAX_BODY_BYTES, EnqueueGuard, WebhookError, check_secret, parse_playback_event
from sidecar.api.deps import RuntimeDep, SettingsDep, VersionsDep
from sidecar.api.routes.tracks import analysis_path
from sidecar.domain import TrackKey
from sidecar.services.onplay import OnPlayOutcome, OnPlayState, request_analysis
from sidecar.services.playback import handle_now_playing

log = logging.getLogger(__name__)

router = APIRouter(prefix="/hooks", tags=["hooks"])

JELLYFIN = "jellyfin"


async def _body(request: Request) -> bytes:
    """The body, read no further than one byte past the webhook limit (the parser then refuses it)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            break
    return b"".join(chunks)


@router.post(
    "/jellyfin",
    responses={
        202: {"description": "accepted; ignored, or queued (the reason says which)"},
        400: {"description": "not a JSON object"},
        401: {"description": "missing or wrong X-Sonantica-Token"},
        403: {"description": "no webhook secret configured"},
        413: {"description": "body too large"},
        422: {"description": "required field missing or malformed"},
    },
)
async def jellyfin_webhook(
    request: Request, runtime: RuntimeDep, settings: SettingsDep, versions: VersionsDep
) -> JSONResponse:
    """Jellyfin "Playback Start" (both the "Send All Properties" and the documented template payloads).

    Authenticated by the ``X-Sonantica-Token`` header (``SONANTICA_JELLYFIN__WEBHOOK_SECRET``, checked before the
    body is read), not the API token. A track the sidecar does not know yet is fetched from Jellyfin (when the
    API runs with a Jellyfin adapter), stored and queued on-play, as the now-playing poll does.
    """
    secret = "" if settings.jellyfin.webhook_secret is None else settings.jellyfin.webhook_secret.get_secret_value()
    try:
        check_secret(request.headers, secret)
        event = parse_playback_event(request.headers, await _body(request), secret=secret)
    except WebhookError as exc:
        return _refusal(exc)
    guard: EnqueueGuard = request.app.state.webhook_guard
    body: dict[str, Any] = {"host": JELLYFIN, "host_track_id": event.now_playing.host_track_id}
    if not guard.should_enqueue(event, now_s=time.monotonic()):
        return JSONResponse({**body, "state": "ignored", "detail": "already requested recently"}, status_code=202)
    key = TrackKey(JELLYFIN, event.now_playing.host_track_id)
    outcome = await request_analysis(runtime, key, versions)
    adapter: HostAdapter | None = request.app.state.host_adapter
    if outcome.state is OnPlayState.NOT_FOUND and adapter is not None and adapter.kind.value == JELLYFIN:
        queued = await handle_now_playing(runtime, adapter, versions, [event.now_playing])  # stores, then queues
        if not queued:
            detail = "Jellyfin does not know this track, or its file is not readable on the mount (see the log)"
            return JSONResponse({**body, "state": "ignored", "detail": detail}, status_code=202)
        if queued[0].analyzers:
            outcome = OnPlayOutcome(OnPlayState.QUEUED, key, analyzers=queued[0].analyzers)
        else:  # stored with a current analysis (a file known under another id): answer from it
            outcome = await request_analysis(runtime, key, versions)
    if outcome.state is OnPlayState.NOT_FOUND:
        log.info("webhook: %s is not in the database yet; the next sync picks it up", key)
        return JSONResponse(
            {**body, "state": "ignored", "detail": "track not known yet; the next library sync adds it"},
            status_code=status.HTTP_202_ACCEPTED,
        )
    if outcome.state is OnPlayState.READY:
        return JSONResponse({**body, "state": "ready", "detail": "analysis is current"}, status_code=200)
    if outcome.state is OnPlayState.NO_FILE:
        detail = "the track has no readable file on the library mount; it cannot be analysed"
        return JSONResponse({**body, "state": "ignored", "detail": detail}, status_code=status.HTTP_202_ACCEPTED)
    return JSONResponse(
        {**body, "state": "queued", "analyzers": list(outcome.analyzers), "status_url": analysis_path(key)},
        status_code=status.HTTP_202_ACCEPTED,
    )


def _refusal(exc: WebhookError) -> JSONResponse:
    """The answer to a refused or ignored webhook (a 422 in the API's one 422 shape)."""
    body: dict[str, Any] = {"detail": exc.reason}
    if exc.status == status.HTTP_422_UNPROCESSABLE_CONTENT:
        body["errors"] = [{"loc": ["body"], "msg": exc.reason, "type": "value_error"}]
    return JSONResponse(body, status_code=exc.status)
