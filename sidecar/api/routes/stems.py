"""Stems on demand: ask for a track's stems, follow the request, stream each stem (HTTP Range), delete them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Response, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from sidecar.api.deps import RuntimeDep, TokenDep
from sidecar.api.files import ranged_audio
from sidecar.api.schemas import ErrorPublic
from sidecar.services.stems import delete_stems, get_status, open_stem, request_stems
from sidecar.stems import STEM_NAMES
from sidecar.stems.files import StemsPathError
from sidecar.storage.stems import StemsRecord

router = APIRouter(prefix="/api/tracks", tags=["stems"])

TrackIdPath = Annotated[int, Path(ge=1, le=2**63 - 1, description="Sonántica track id")]
StemName = Literal["vocals", "drums", "bass", "other", "instrumental"]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorPublic, "description": "unknown track or stem"}}
REFUSED: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorPublic, "description": "the recorded location is outside the stems folder"}
}


class StemsRequest(BaseModel):
    """Why the stems are wanted: "studio" (the four stems) or "karaoke" (the instrumental); both make every file."""

    purpose: Literal["studio", "karaoke"] = "studio"


class StemFilePublic(BaseModel):
    """One stem file."""

    name: str
    url: str
    size_bytes: int


class StemsPublic(BaseModel):
    """A track's stems: ``state`` none | queued | running | ready | failed, and the files when ready."""

    track_id: int
    state: str
    is_separated: bool
    purpose: str | None = None
    files: list[StemFilePublic] = Field(default_factory=list)
    size_bytes: int | None = None
    format: str | None = None
    model: str | None = None
    model_version: str | None = None
    created_at: datetime | None = None
    last_used_at: datetime | None = None
    requested_at: datetime | None = None
    error: str | None = None
    status_url: str
    events_url: str

    @classmethod
    def of(cls, track_id: int, row: StemsRecord | None) -> StemsPublic:
        """The public view of a ``stems`` row (``None``: never asked for)."""
        urls = {"status_url": stems_path(track_id), "events_url": "/api/events"}
        if row is None:
            return cls(track_id=track_id, state="none", is_separated=False, **urls)
        sizes = row.files or {}
        files = [
            StemFilePublic(name=name, url=f"{stems_path(track_id)}/{name}", size_bytes=int(sizes.get(name, 0)))
            for name in STEM_NAMES
            if row.is_separated and name in sizes
        ]
        return cls(
            track_id=track_id,
            state=row.state,
            is_separated=row.is_separated,
            purpose=row.purpose,
            files=files,
            size_bytes=row.size_bytes,
            format=row.format,
            model=row.model,
            model_version=row.model_version,
            created_at=row.separated_at,
            last_used_at=row.last_accessed_at,
            requested_at=row.requested_at,
            error=row.last_error,
            **urls,
        )


class StemsDeletedPublic(BaseModel):
    """What a delete freed."""

    track_id: int
    deleted_bytes: int


def stems_path(track_id: int) -> str:
    """The status URL of a track's stems."""
    return f"/api/tracks/{track_id}/stems"


@router.post(
    "/{track_id}/stems",
    dependencies=[TokenDep],
    responses={
        202: {"model": StemsPublic, "description": "separation queued or running; Location is the status URL"},
        **NOT_FOUND,
    },
)
async def post_stems(
    track_id: TrackIdPath, runtime: RuntimeDep, response: Response, body: StemsRequest | None = None
) -> StemsPublic:
    """Ask for a track's stems: 200 with them when they exist, else 202 (a separation is queued once, however many
    ask); ``StemsReady`` follows on ``/api/events``."""
    row, _queued = await request_stems(runtime, track_id, purpose=(body or StemsRequest()).purpose)
    public = StemsPublic.of(track_id, row)
    if not row.is_separated:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = stems_path(track_id)
    return public


@router.get("/{track_id}/stems", responses=NOT_FOUND)
async def get_stems(track_id: TrackIdPath, runtime: RuntimeDep) -> StemsPublic:
    """The state of a track's stems and, when ready, the files."""
    return StemsPublic.of(track_id, await get_status(runtime, track_id))


@router.get(
    "/{track_id}/stems/{stem}",
    response_class=FileResponse,
    responses={
        200: {"content": {"audio/flac": {}, "audio/ogg": {}}, "description": "the whole stem file"},
        206: {"content": {"audio/flac": {}, "audio/ogg": {}}, "description": "the byte range asked for"},
        **NOT_FOUND,
        **REFUSED,
    },
)
async def get_stem_file(track_id: TrackIdPath, stem: StemName, runtime: RuntimeDep) -> FileResponse:
    """One stem file, with HTTP Range support (``Accept-Ranges: bytes``, 206 for a range); records a use."""
    try:
        path = await open_stem(runtime, track_id, stem)
    except StemsPathError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    return ranged_audio(path, f"{track_id}-{stem}{path.suffix}")


@router.delete("/{track_id}/stems", dependencies=[TokenDep], responses={**NOT_FOUND, **REFUSED})
async def delete_track_stems(track_id: TrackIdPath, runtime: RuntimeDep) -> StemsDeletedPublic:
    """Delete a track's stems now (a later request separates again)."""
    await get_status(runtime, track_id)  # 404 for an unknown track
    try:
        freed = await delete_stems(runtime, track_id)
    except StemsPathError as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None
    return StemsDeletedPublic(track_id=track_id, deleted_bytes=freed)
