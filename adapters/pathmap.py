"""Map a path as the host reports it onto the sidecar's read-only mount, refusing anything that escapes it."""

from __future__ import annotations

import functools
import os
import posixpath
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path, PurePosixPath

from adapters.base import HostTrack, PathMappingError


def _normalise_host_path(path: str) -> str:
    """Forward slashes (Windows hosts report ``D:\\Music\\a.flac``), no trailing slash, no duplicate slashes."""
    text = path.replace("\\", "/")
    while "//" in text:
        text = text.replace("//", "/")
    return text.rstrip("/") or "/"


class PathMapper:
    """Longest-prefix mapping from host paths to files under ``mount``.

    ``prefixes`` are (host prefix, local prefix) pairs; a local prefix must lie inside ``mount``. A relative host
    path (some Subsonic servers report paths relative to their music folder) is taken relative to ``mount``.
    Every result is checked after resolving symlinks: it must stay inside ``mount``.
    """

    def __init__(self, mount: str | os.PathLike[str], prefixes: Sequence[tuple[str, str]] = ()) -> None:
        self.mount = Path(mount)
        self._prefixes = sorted(
            ((_normalise_host_path(host), local) for host, local in prefixes),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )

    @property
    def prefixes(self) -> list[tuple[str, str]]:
        """The (host prefix, local prefix) pairs, longest host prefix first."""
        return list(self._prefixes)

    def to_local(self, host_path: str) -> Path:
        """The file on the mount for ``host_path``; raises :class:`PathMappingError` saying why not."""
        if not host_path or "\x00" in host_path:
            raise PathMappingError(f"host reported an unusable path {host_path!r}")
        normalised = _normalise_host_path(host_path)
        parts = PurePosixPath(normalised).parts
        if ".." in parts:
            raise PathMappingError(f"refusing host path with '..' components: {host_path!r}")
        if not normalised.startswith("/") and not _is_windows_absolute(normalised):
            candidate = self.mount / normalised
        else:
            candidate = self._apply_prefix(normalised, host_path)
        return self._inside_mount(candidate, host_path)

    def _apply_prefix(self, normalised: str, original: str) -> Path:
        for host_prefix, local_prefix in self._prefixes:
            if normalised == host_prefix or normalised.startswith(host_prefix.rstrip("/") + "/"):
                rest = normalised[len(host_prefix.rstrip("/")) :].lstrip("/")
                return Path(local_prefix) / rest if rest else Path(local_prefix)
        known = ", ".join(f"{h} -> {loc}" for h, loc in self._prefixes) or "none configured"
        raise PathMappingError(
            f"host path {original!r} is under no mapped prefix ({known}); add its library folder to "
            "SONANTICA_PATH_MAP as HOST_PREFIX:MOUNT_PREFIX"
        )

    @functools.cached_property
    def _mount_real(self) -> str:
        """The mount with its symlinks resolved, once per mapper (not once per track)."""
        return os.path.realpath(self.mount)

    def _inside_mount(self, candidate: Path, original: str) -> Path:
        mount_real = self._mount_real
        resolved = os.path.realpath(candidate)
        if resolved != mount_real and not resolved.startswith(mount_real.rstrip("/") + "/"):
            raise PathMappingError(
                f"host path {original!r} maps to {resolved}, outside the library mount {mount_real}; refusing it"
            )
        return Path(posixpath.normpath(str(candidate)))


def with_local_path(track: HostTrack, mapper: PathMapper | None, *, host: str) -> HostTrack:
    """``track`` with ``local_path`` on ``mapper``'s mount, or with ``path_problem`` saying why not (``host`` names
    the server when the track has no path)."""
    if track.host_path is None:
        return replace(track, path_problem=f"{host} reported no file path for this track")
    if mapper is None:
        return replace(track, path_problem="SONANTICA_LIBRARY_DIR is not set: there is no library mount")
    try:
        local = mapper.to_local(track.host_path)
    except PathMappingError as error:
        return replace(track, path_problem=str(error))
    return replace(track, local_path=str(local))


def _is_windows_absolute(path: str) -> bool:
    return len(path) >= 2 and path[1] == ":" and path[0].isalpha()
