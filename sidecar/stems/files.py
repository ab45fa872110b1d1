"""The stems folder: one sub-folder per track, written under ``.partial/`` and renamed into place when complete.

Every path handed out or deleted is checked to lie inside the stems folder (symbolic links resolved), so a
tampered ``location`` can never make the sidecar read or delete anything else, and the library is never touched.
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import time
from pathlib import Path

from sidecar.errors import SidecarError
from sidecar.stems import STEM_NAMES

log = logging.getLogger(__name__)

PARTIAL = ".partial"


class StemsPathError(SidecarError):
    """A path outside the stems folder (or a name that is not a stem) was refused."""


def inside(root: Path, candidate: Path) -> Path:
    """``candidate`` resolved, when it lies strictly inside ``root``; raises :class:`StemsPathError` otherwise."""
    base = root.resolve()
    resolved = candidate.resolve()
    if resolved == base or not resolved.is_relative_to(base):
        raise StemsPathError(f"refusing {candidate}: it is not inside the stems folder {base}")
    return resolved


def track_dir(root: Path, track_id: int) -> Path:
    """Where a track's finished stems live: ``<root>/<track id>``."""
    return root / str(int(track_id))


def new_partial_dir(root: Path, track_id: int) -> Path:
    """A fresh temporary folder for one separation of the track: ``<root>/.partial/<track id>-<random>``."""
    folder = root / PARTIAL / f"{int(track_id)}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    return folder


def clear_partials(root: Path, track_id: int | None = None, *, older_than_s: float = 0.0) -> int:
    """Delete leftover temporary folders (of one track, or of all older than ``older_than_s``); returns how many.

    Call it for a track only while holding that track's separation lock (nobody else writes there).
    """
    folder = root / PARTIAL
    if not folder.is_dir():
        return 0
    removed = 0
    now = time.time()
    for entry in folder.iterdir():
        if track_id is not None and not entry.name.startswith(f"{int(track_id)}-"):
            continue
        if older_than_s and now - entry.stat().st_mtime < older_than_s:
            continue
        shutil.rmtree(inside(root, entry), ignore_errors=True)
        removed += 1
    return removed


def publish(root: Path, partial: Path, track_id: int) -> Path:
    """Move a complete ``partial`` folder to the track's place (replacing an older set); returns the new place.

    The rename is atomic: a reader sees either no folder or a complete set.
    """
    target = track_dir(root, track_id)
    if target.exists():
        remove(root, target)
    os.replace(inside(root, partial), target)
    return target


def remove(root: Path, location: Path) -> int:
    """Delete a track's stems folder; returns the bytes freed. Refuses anything outside ``root``."""
    folder = inside(root, location)
    if not folder.exists():
        return 0
    freed = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())
    # Renamed first, so a crash mid-delete never leaves a half set where a complete one is expected.
    doomed = root / PARTIAL / f"deleting-{folder.name}-{secrets.token_hex(4)}"
    doomed.parent.mkdir(parents=True, exist_ok=True)
    os.replace(folder, doomed)
    shutil.rmtree(doomed)
    return freed


def stem_file(root: Path, location: str, stem: str, suffix: str) -> Path:
    """The file of ``stem`` in a track's folder; refuses an unknown stem name or a location outside ``root``."""
    if stem not in STEM_NAMES:
        raise StemsPathError(f"unknown stem {stem!r}: one of {', '.join(STEM_NAMES)}")
    return inside(root, Path(location) / f"{stem}{suffix}")


def disk_usage(root: Path) -> int:
    """Bytes used by every file under the stems folder (temporary folders included)."""
    if not root.is_dir():
        return 0
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file() and not f.is_symlink())
