"""Which tracks have an analyze job somewhere in Redis, held compactly for the reconciler's comparison.

With a million jobs queued, a Python set of track keys costs about 150 MB and every queue entry read at once
another 200 MB; here the entries are read in pages and each track is kept as a 64-bit digest of its key in one
sorted array (8 bytes per job). Two different keys share a digest with probability about n^2 / 2^65 (3e-8 at a
million jobs): such a track would be taken for queued while lost, until its key or its job changes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt

from sidecar.domain import TrackKey


def track_digest(key: TrackKey) -> int:
    """The 64-bit digest of ``key`` (BLAKE2b of host and id), as an unsigned integer."""
    text = f"{key.host}\x1f{key.host_track_id}".encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "little")


def track_digests(keys: Iterable[TrackKey]) -> npt.NDArray[np.uint64]:
    """:func:`track_digest` of each key, in order."""
    return np.fromiter((track_digest(key) for key in keys), dtype=np.uint64)


class TrackPresence:
    """A set of tracks, answering ``key in presence``; built from digest arrays (:func:`track_digests`), one per
    page of jobs read."""

    def __init__(self, pages: Iterable[npt.NDArray[np.uint64]]) -> None:
        self._sorted: npt.NDArray[np.uint64] = np.unique(np.concatenate([np.empty(0, np.uint64), *pages]))

    def __len__(self) -> int:
        return int(self._sorted.size)

    def __contains__(self, key: object) -> bool:
        if not isinstance(key, TrackKey):
            return False
        digest = np.uint64(track_digest(key))
        at = int(np.searchsorted(self._sorted, digest))
        return at < self._sorted.size and bool(self._sorted[at] == digest)
