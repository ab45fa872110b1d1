"""Audio files served with HTTP Range (``Accept-Ranges: bytes``, 206 with ``Content-Range``, 416 for a range
outside the file): one response for the originals on the library mount and for the stems."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse

from sidecar.stems.codec import CONTENT_TYPE as STEM_CONTENT_TYPE

AUDIO_CONTENT_TYPE: dict[str, str] = {
    ".flac": "audio/flac",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".m4a": "audio/mp4",
    ".mp4": "audio/mp4",
    ".alac": "audio/mp4",
    ".aac": "audio/aac",
    ".wav": "audio/wav",
    ".aif": "audio/aiff",
    ".aiff": "audio/aiff",
    ".wma": "audio/x-ms-wma",
    ".wv": "audio/wavpack",
    **STEM_CONTENT_TYPE,
}
"""HTTP ``Content-Type`` per file ending (case-insensitive); anything else is ``application/octet-stream``."""


def ranged_audio(path: Path, filename: str) -> FileResponse:
    """``path`` as an inline download named ``filename``; Starlette's file response answers Range requests
    (one or several ranges) and ``If-Range``, reading the file only in the asked-for parts."""
    media_type = AUDIO_CONTENT_TYPE.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media_type, filename=filename, content_disposition_type="inline")
