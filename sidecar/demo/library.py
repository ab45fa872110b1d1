"""Render pieces to tagged audio files: the demo library, and the cached ground-truth corpus of tests/benchmarks."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sidecar.demo.encode import suffix_for, write_audio
from sidecar.demo.music import ALL_KEYS, SAMPLE_RATE_HZ, TEMPO_RANGES_BPM, PieceSpec, render


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


@dataclass(frozen=True, slots=True)
class DemoArtist:
    """A made-up act: one instrumentation and groove family, so its tracks sound alike."""

    name: str
    genre: str
    grooves: tuple[str, ...]
    lead_program: int
    chord_program: int
    bass_program: int
    format_name: str


DEMO_ARTISTS: tuple[DemoArtist, ...] = (
    DemoArtist("Velvet Keys", "Ballad", ("ballad", "waltz"), 0, 48, 32, "flac"),
    DemoArtist("Brass District", "Hip-Hop", ("hiphop", "shuffle"), 56, 4, 33, "mp3"),
    DemoArtist("Saw Theory", "House", ("house", "dnb"), 81, 88, 38, "flac"),
    DemoArtist("Nylon Coast", "Acoustic", ("ballad", "shuffle"), 24, 24, 32, "ogg"),
    DemoArtist("Reed Machine", "Rock", ("rock", "punk"), 65, 19, 34, "m4a"),
)


@dataclass(frozen=True, slots=True)
class DemoTrack:
    """One generated file of the demo library and the truth it was rendered from."""

    path: Path
    spec: PieceSpec
    artist: str
    album: str


def demo_library(root: str | os.PathLike[str], *, n_tracks: int = 30, duration_s: float = 30.0) -> list[DemoTrack]:
    """Render (once) a tagged demo library ``Artist/Album/NN - Title.ext`` under ``root``.

    Tracks are spread over the :data:`DEMO_ARTISTS` (one instrumentation each), over tempos inside each
    groove's range and over all 24 keys. Files that already exist are kept, so a second call is instant.
    """
    directory = Path(root)
    tracks: list[DemoTrack] = []
    for i in range(n_tracks):
        artist = DEMO_ARTISTS[i % len(DEMO_ARTISTS)]
        groove = artist.grooves[(i // len(DEMO_ARTISTS)) % len(artist.grooves)]
        low, high = TEMPO_RANGES_BPM[groove]
        bpm = float(round(low + (high - low) * ((i * 7919) % 97) / 96))
        key = ALL_KEYS[(i * 7) % len(ALL_KEYS)]
        number = i // len(DEMO_ARTISTS) + 1
        title = f"{key.name} {int(bpm)} BPM"
        spec = PieceSpec(
            title=title,
            bpm=bpm,
            key=key,
            groove=groove,
            duration_s=duration_s,
            seed=1000 + i,
            lead_program=artist.lead_program,
            chord_program=artist.chord_program,
            bass_program=artist.bass_program,
            gain_db=-3.0 * (i % 4),
        )
        album = f"{artist.name} Sessions"
        path = directory / artist.name / album / f"{number:02d} - {title}{suffix_for(artist.format_name)}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(f".partial-{path.name}")
            render_to_file(spec, partial, format_name=artist.format_name)
            tag_file(partial, title=title, artist=artist.name, album=album, track_number=number, genre=artist.genre)
            partial.replace(path)
        tracks.append(DemoTrack(path=path, spec=spec, artist=artist.name, album=album))
    return tracks
