"""A track's original, streamed from the read-only library mount with HTTP Range (the Studio plays it)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Path, status
from fastapi.responses import FileResponse

from sidecar.api.deps import RuntimeDep
from sidecar.api.files import ranged_audio
from sidecar.api.schemas import ErrorPublic
from sidecar.services.originals import OriginalRefusedError, original_file

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
