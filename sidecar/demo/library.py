"""Render pieces to tagged audio files: the demo library, and the cached ground-truth corpus of tests/benchmarks."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from sidecar.demo.encode import suffix_for, write_audio
from sidecar.demo.music import SAMPLE_RATE_HZ, PieceSpec, render


def spec_digest(spec: PieceSpec) -> str:
    """A short stable hash of everything that determines a piece's audio."""
    payload = asdict(spec)
    payload["key"] = spec.key.name
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def tag_file(path: Path, *, title: str, artist: str, album: str, track_number: int, genre: str) -> None:
    """Write title/artist/album/track/genre tags (FLAC, MP3, Ogg, M4A) with mutagen; other formats are skipped."""
    import mutagen  # demo extra

    audio = mutagen.File(path, easy=True)
    if audio is None:
        return
    if audio.tags is None:
        audio.add_tags()
    audio["title"] = title
    audio["artist"] = artist
    audio["album"] = album
    audio["tracknumber"] = str(track_number)
    audio["genre"] = genre
    audio.save()


def render_to_file(spec: PieceSpec, path: str | os.PathLike[str], *, format_name: str = "flac") -> Path:
    """Render ``spec`` and encode it to ``path``."""
    return write_audio(render(spec), SAMPLE_RATE_HZ, path, format_name=format_name)


def cached_corpus(specs: Sequence[PieceSpec], cache_dir: str | os.PathLike[str]) -> list[Path]:
    """FLAC files for ``specs`` under ``cache_dir``, rendering only those not already there.

    File names carry a digest of the spec, so a changed generator never serves a stale file.
    """
    directory = Path(cache_dir)
    directory.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    for spec in specs:
        path = directory / f"{spec_digest(spec)}{suffix_for('flac')}"
        if not path.exists():
            partial = path.with_suffix(".partial.flac")
            render_to_file(spec, partial)
            partial.replace(path)
        paths.append(path)
    return paths
