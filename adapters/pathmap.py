"""Map a path as the host reports it onto the sidecar's read-only mount, refusing anything that escapes it."""

from __future__ import annotations

import functools
import os
import posixpath
from collections.abc import Sequence
from pathlib import Path

from adapters.base import HostTrack, PathMappingError


def _normalise_host_path(path: str) -> str:
    """Forward slashes (Windows hosts report ``D:\\Music\\a.flac``), no trailing slash, no duplicate slashes."""
    text = path.replace("\\", "/")
    while "//" in text:
        text = text.replace("//", "/")
    return text.rstrip("/") or "/"


_DIRECTORIES_KEPT = 65_536
"""Resolved directories a :class:`PathMapper` remembers before it starts over (about 200 bytes each)."""


class PathMapper:
    """Longest-prefix mapping from host paths to files under ``mount``.

    ``prefixes`` are (host prefix, local prefix) pairs; a local prefix must lie inside ``mount``. A relative host
    path (some Subsonic servers report paths relative to their music folder) is taken relative to ``mount``.
    Every result is checked after resolving symlinks: it must stay inside ``mount``. A library's files share few
    directories, so each host directory is mapped, resolved and checked once (remembered until
    :meth:`forget_directories`, which a listing calls when it starts) and each further file in it costs a string
    join and one ``lstat`` (a symlinked file is resolved in full); a path with a backslash is mapped in full.
    """

    def __init__(self, mount: str | os.PathLike[str], prefixes: Sequence[tuple[str, str]] = ()) -> None:
        self.mount = Path(mount)
        self._mount_text = os.fspath(mount)
        self._prefixes = sorted(
            ((_normalise_host_path(host), local) for host, local in prefixes),
            key=lambda pair: len(pair[0]),
            reverse=True,
        )
        self._real_directories: dict[str, str] = {}
        self._host_directories: dict[str, str] = {}  # host directory -> its directory on the mount, checked

    @property
    def prefixes(self) -> list[tuple[str, str]]:
        """The (host prefix, local prefix) pairs, longest host prefix first."""
        return list(self._prefixes)

    def forget_directories(self) -> None:
        """Resolve every directory again from now on (symlinks may have changed since they were remembered)."""
        self._real_directories.clear()
        self._host_directories.clear()

    def to_local(self, host_path: str) -> Path:
        """The file on the mount for ``host_path``; raises :class:`PathMappingError` saying why not."""
        return Path(self.local_path(host_path))

    def local_path(self, host_path: str) -> str:
        """:meth:`to_local` as a normalised string (string operations only, no ``Path`` objects)."""
        directory, slash, name = host_path.rpartition("/")
        mapped_directory = self._host_directories.get(directory) if slash and _plain_name(name) else None
        if mapped_directory is None:
            candidate = self._map(host_path)
            self._check_inside_mount(candidate, host_path)
            if slash:
                self._remember(directory, name, candidate)
            return candidate
        candidate = f"{mapped_directory}/{name}"
        if os.path.islink(candidate):
            self._check_inside_mount(candidate, host_path)
        return candidate

    def _remember(self, host_directory: str, name: str, candidate: str) -> None:
        """Keep ``host_directory``'s mapping when every plain file name in it maps to ``<its directory>/<name>``
        inside the mount: the directory is not the root, no host prefix lies below it, and it resolves inside the
        mount."""
        if not _plain_name(name) or "\x00" in host_directory or not candidate.endswith("/" + name):
            return
        mapped_directory = candidate[: -len(name) - 1]
        below = _normalise_host_path(host_directory).rstrip("/") + "/"
        if not mapped_directory.strip("/") or any(prefix.startswith(below) for prefix, _ in self._prefixes):
            return
        real = self._real_directory(mapped_directory)
        mount_real = self._mount_real
        if real != mount_real and not real.startswith(mount_real.rstrip("/") + "/"):
            return
        if len(self._host_directories) >= _DIRECTORIES_KEPT:
            self._host_directories.clear()
        self._host_directories[host_directory] = mapped_directory

    def _map(self, host_path: str) -> str:
        """The normalised file on the mount for ``host_path``, before the symlink check."""
        if not host_path or "\x00" in host_path:
            raise PathMappingError(f"host reported an unusable path {host_path!r}")
        normalised = _normalise_host_path(host_path)
        if ".." in normalised.split("/"):
            raise PathMappingError(f"refusing host path with '..' components: {host_path!r}")
        if not normalised.startswith("/") and not _is_windows_absolute(normalised):
            candidate = posixpath.join(self._mount_text, normalised)
        else:
            candidate = self._apply_prefix(normalised, host_path)
        return posixpath.normpath(candidate)

    def _apply_prefix(self, normalised: str, original: str) -> str:
        for host_prefix, local_prefix in self._prefixes:
            if normalised == host_prefix or normalised.startswith(host_prefix.rstrip("/") + "/"):
                rest = normalised[len(host_prefix.rstrip("/")) :].lstrip("/")
                return posixpath.join(local_prefix, rest) if rest else local_prefix
        known = ", ".join(f"{h} -> {loc}" for h, loc in self._prefixes) or "none configured"
        raise PathMappingError(
            f"host path {original!r} is under no mapped prefix ({known}); add its library folder to "
            "SONANTICA_PATH_MAP as HOST_PREFIX:MOUNT_PREFIX"
        )

    @functools.cached_property
    def _mount_real(self) -> str:
        """The mount with its symlinks resolved, once per mapper (not once per track)."""
        return os.path.realpath(self.mount)

    def _resolved(self, candidate: str) -> str:
        """``os.path.realpath(candidate)``, with the directory's part remembered."""
        directory, separator, name = candidate.rpartition("/")
        if not separator or not name or os.path.islink(candidate):
            return os.path.realpath(candidate)
        return posixpath.join(self._real_directory(directory or "/"), name)

    def _real_directory(self, directory: str) -> str:
        """``os.path.realpath(directory)``, remembered."""
        real_directory = self._real_directories.get(directory)
        if real_directory is None:
            if len(self._real_directories) >= _DIRECTORIES_KEPT:
                self._real_directories.clear()
            real_directory = os.path.realpath(directory)
            self._real_directories[directory] = real_directory
        return real_directory

    def _check_inside_mount(self, candidate: str, original: str) -> None:
        mount_real = self._mount_real
        resolved = self._resolved(candidate)
        if resolved != mount_real and not resolved.startswith(mount_real.rstrip("/") + "/"):
            raise PathMappingError(
                f"host path {original!r} maps to {resolved}, outside the library mount {mount_real}; refusing it"
            )


def locate(host_path: str | None, mapper: PathMapper | None, *, host: str) -> tuple[str | None, str | None]:
    """``(local_path, None)`` for ``host_path`` on ``mapper``'s mount, or ``(None, path_problem)`` saying why not
    (``host`` names the server when there is no path)."""
    if host_path is None:
        return None, f"{host} reported no file path for this track"
    if mapper is None:
        return None, "SONANTICA_LIBRARY_DIR is not set: there is no library mount"
    try:
        return mapper.local_path(host_path), None
    except PathMappingError as error:
        return None, str(error)


def with_local_path(track: HostTrack, mapper: PathMapper | None, *, host: str) -> HostTrack:
    """``track`` with ``local_path`` on ``mapper``'s mount, or with ``path_problem`` saying why not (``host`` names
    the server when the track has no path)."""
    local_path, path_problem = locate(track.host_path, mapper, host=host)
    return track.located(local_path=local_path, path_problem=path_problem)


def _is_windows_absolute(path: str) -> bool:
    return len(path) >= 2 and path[1] == ":" and path[0].isalpha()


def _plain_name(name: str) -> bool:
    """Whether the file name ``name`` maps as itself: not empty, ``.`` or ``..``, no backslash, no NUL."""
    return bool(name) and name not in (".", "..") and "\\" not in name and "\x00" not in name
