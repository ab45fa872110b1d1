"""What the web client plays and draws of a track: its original, streamed from the read-only library mount with
HTTP Range, and its stored waveform overview."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel

from sidecar.api.deps import RuntimeDep
from sidecar.api.files import ranged_audio
from sidecar.api.schemas import ErrorPublic
from sidecar.services.originals import OriginalRefusedError, original_file
from sidecar.storage import status as analysis_status
from sidecar.storage import tracks, waveforms
from sidecar.storage.db import transaction

router = APIRouter(prefix="/api/tracks", tags=["audio"])

TrackIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Sonántica track id")]
AUDIO_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"audio/*": {}}, "description": "the whole file"},
    206: {"content": {"audio/*": {}}, "description": "the byte range asked for"},
    403: {"model": ErrorPublic, "description": "the file is not a regular file or lies outside the library mount"},
    404: {"model": ErrorPublic, "description": "unknown track, or no readable file on the mount"},
}


@router.get("/{track_id}/audio", response_class=FileResponse, responses=AUDIO_RESPONSES)
async def get_audio(track_id: TrackIdPath, runtime: RuntimeDep) -> FileResponse:
    """The original file of a track the sidecar knows, as stored on the library mount (opened read-only), with
    HTTP Range support (``Accept-Ranges: bytes``, 206 with ``Content-Range``)."""
    try:
        path = await original_file(runtime, track_id)
    except OriginalRefusedError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    return ranged_audio(path, f"{track_id}{path.suffix.lower()}")


class WaveformPublic(BaseModel):
    """A track's waveform overview: per ``bucket_s`` seconds the lowest and highest sample over all channels
    (full scale 1.0, rounded to 1e-4), from the ``waveform`` analyzer at ``version``."""

    track_id: int
    version: int
    bucket_s: float
    points: int
    minimum: list[float]
    maximum: list[float]


WAVEFORM_PRECISION = 4


@router.get(
    "/{track_id}/waveform",
    response_model=WaveformPublic,
    responses={
        304: {"description": "unchanged since the ETag sent in If-None-Match"},
        404: {"model": ErrorPublic, "description": "unknown track, or its waveform is not analysed yet or failed"},
    },
)
async def get_waveform(track_id: TrackIdPath, runtime: RuntimeDep, request: Request, response: Response) -> Any:
    """The stored waveform overview (min/max peaks), with an ``ETag`` (``Cache-Control: private, no-cache``: a
    client revalidates and gets 304 while it is unchanged)."""
    async with transaction(runtime.pool) as conn:
        if await tracks.get_track(conn, track_id) is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no track with id {track_id}")
        stored = await waveforms.get_waveform(conn, track_id)
        row = None if stored is not None else (await analysis_status.get_status(conn, track_id)).get("waveform")
    if row is not None and row.state == "failed":
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"track {track_id} has no waveform: its analysis failed (`sonantica failed`)"
        )
    if stored is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"track {track_id} has no waveform yet; it is analysed soon")
    etag = f'"w{stored.version}-{stored.updated_at.timestamp():.6f}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache"}
    if etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    response.headers.update(headers)
    return WaveformPublic(
        track_id=track_id,
        version=stored.version,
        bucket_s=stored.bucket_s,
        points=len(stored.minimum),
        minimum=[round(v, WAVEFORM_PRECISION) for v in stored.minimum],
        maximum=[round(v, WAVEFORM_PRECISION) for v in stored.maximum],
    )
