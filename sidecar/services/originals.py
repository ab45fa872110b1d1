"""The original file of a track the sidecar knows, checked before it is streamed: a regular file on the library
mount (symbolic links resolved), never written to."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path

from sidecar.errors import NotFoundError, SidecarError
from sidecar.services.enqueue import LOCAL_HOST
from sidecar.services.runtime import Runtime
from sidecar.storage import tracks
from sidecar.storage.db import transaction


class OriginalRefusedError(SidecarError):
    """The recorded file resolves outside the library mount, or is not a regular file: it is not served."""


def checked_file(track_id: int, path: str, library: Path | None) -> Path:
    """``path`` with symlinks resolved, when it is a regular file inside ``library`` (``None``: anywhere)."""
    real = Path(os.path.realpath(path))
    if library is not None:
        root = Path(os.path.realpath(library))
        if real != root and root not in real.parents:
            raise OriginalRefusedError(f"the file of track {track_id} resolves outside the library mount; refusing it")
    try:
        info = os.stat(real)
    except OSError:
        raise NotFoundError(f"the file of track {track_id} is gone from the library mount; sync again") from None
    if not stat.S_ISREG(info.st_mode):
        raise OriginalRefusedError(f"the file of track {track_id} is not a regular file; refusing it")
    return real


async def original_file(runtime: Runtime, track_id: int) -> Path:
    """The real path of track ``track_id``'s original (symlinks resolved).

    Raises :class:`NotFoundError` for an unknown track, one without a file on the mount, or a file that is gone;
    :class:`OriginalRefusedError` when the file is not a regular file or (for host tracks, when
    ``library_dir`` is set) resolves outside the library mount. Tracks of the ``local`` host were named on the
    command line and are served where they are."""
    async with transaction(runtime.pool) as conn:
        record = await tracks.get_track(conn, track_id)
    if record is None:
        raise NotFoundError(f"no track with id {track_id}")
    if record.path is None or record.is_missing:
        raise NotFoundError(f"track {track_id} has no readable file on the library mount")
    library = None if record.host == LOCAL_HOST else runtime.settings.library_dir
    return await asyncio.to_thread(checked_file, track_id, record.path, library)
