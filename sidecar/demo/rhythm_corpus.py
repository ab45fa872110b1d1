"""A rhythm corpus for tempo (and key) benchmarks that can catch overfitting: many style families, each with
several drum and arrangement patterns of its own, rendered with several General MIDI soundfonts.

Leave-one-family-out validation needs families that differ in how their pulse looks, not only in tempo: a
breakbeat's ghost notes, a half-time snare on 3, trap hi-hat rolls, a reggae one-drop, a samba surdo, compound
6/8 and 12/8 eighth-note triplets, or no drums at all. Every family here has at least three patterns (drums,
bass rhythm, comping style), each idiomatic over its own tempo range; clips vary tempo, key, instruments,
register, velocity, swing and timing humanisation, all drawn from a seeded generator.

**Truth convention.** ``RhythmClip.bpm`` is the *notated beat*: the quarter note in simple meters (2/4, 3/4,
4/4), the dotted quarter in compound meters (6/8, 12/8: three eighths per beat). Half-time grooves (snare on
beat 3, trap) keep the notated tempo: the beat is still the quarter note although the backbeat comes once a bar.
The key is the tonic and mode the harmony is written in.

**Harmonic rhythm.** How often the chord changes is drawn per clip (:data:`HARMONIC_RHYTHMS`): two chords a bar,
one a bar or one every two bars, so that chord changes are not a constant bar-line marker the octave model could
learn from this generator alone (in real music the harmonic rhythm varies with style and tempo).

**Soundfonts.** TimGM6mb ships inside the ``pretty_midi`` wheel and is always there. The others come from
Debian packages (``fluid-soundfont-gm``, ``musescore-general-soundfont-small``, ``csound-soundfont``): they are
looked for in the system folders and in a cache folder, into which :func:`fetch_soundfonts` extracts them with
``apt-get download`` and ``dpkg-deb -x`` (no installation, no root). :func:`find_soundfonts` says which are missing.

``python -m scripts.bench_tempo --fetch-soundfonts --render-only`` fetches the soundfonts and renders the corpus.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from sidecar.demo.music import ALL_KEYS, DRUM_CHANNEL, SAMPLE_RATE_HZ, NoteEvent, _chord, _scale, perform
from sidecar.domain import KeySignature

DEFAULT_CACHE_DIR = Path(".bench-cache")
"""Where clips and extracted soundfonts are kept (gitignored)."""

# General MIDI drum notes (channel 10).
KICK, RIM, SNARE, CLAP, E_SNARE, LOW_TOM, CLOSED_HAT, MID_TOM, PEDAL_HAT = 36, 37, 38, 39, 40, 45, 42, 47, 44
OPEN_HAT, HIGH_TOM, CRASH, RIDE, RIDE_BELL, TAMBOURINE, COWBELL, CLAVES, SHAKER = 46, 50, 49, 51, 53, 54, 56, 75, 70
LOW_CONGA, HIGH_CONGA, HIGH_BONGO, HIGH_AGOGO, LOW_AGOGO, CABASA, SURDO = 64, 63, 60, 67, 68, 69, 41  # 41: low floor


# ---------------------------------------------------------------------------------------------------- soundfonts


@dataclass(frozen=True, slots=True)
class Soundfont:
    """A General MIDI soundfont: its short name, file name, and the Debian package that ships it (None: the
    ``pretty_midi`` wheel)."""

    name: str
    file_name: str
    debian_package: str | None


SOUNDFONTS: tuple[Soundfont, ...] = (
    Soundfont("timgm6mb", "TimGM6mb.sf2", None),
    Soundfont("fluidr3", "FluidR3_GM.sf2", "fluid-soundfont-gm"),
    Soundfont("musescore", "MuseScore_General_Lite.sf3", "musescore-general-soundfont-small"),
    Soundfont("csound", "sf_GMbank.sf2", "csound-soundfont"),
)
"""The soundfonts the corpus is rendered with, in the order clips cycle through them."""
SOUNDFONT_NAMES: tuple[str, ...] = tuple(soundfont.name for soundfont in SOUNDFONTS)

_SYSTEM_FOLDERS = (Path("/usr/share/sounds/sf2"), Path("/usr/share/sounds/sf3"), Path("/usr/share/soundfonts"))


def soundfont_folders(cache_dir: Path = DEFAULT_CACHE_DIR) -> tuple[Path, ...]:
    """Folders searched for soundfont files: the system ones, then those :func:`fetch_soundfonts` fills."""
    extracted = cache_dir / "soundfonts" / "root" / "usr" / "share" / "sounds"
    return (*_SYSTEM_FOLDERS, extracted / "sf2", extracted / "sf3")


def find_soundfonts(
    names: Sequence[str] | None = None, *, cache_dir: Path = DEFAULT_CACHE_DIR
) -> tuple[dict[str, Path], list[str]]:
    """Paths of the named soundfonts (all of :data:`SOUNDFONTS` by default) and a line per missing one saying
    which Debian package brings it."""
    wanted = [s for s in SOUNDFONTS if names is None or s.name in names]
    unknown = sorted(set(names or ()) - {s.name for s in SOUNDFONTS})
    if unknown:
        raise ValueError(f"unknown soundfont(s) {unknown}; known: {[s.name for s in SOUNDFONTS]}")
    found: dict[str, Path] = {}
    missing: list[str] = []
    for soundfont in wanted:
        if soundfont.debian_package is None:
            found[soundfont.name] = Path(str(resources.files("pretty_midi").joinpath(soundfont.file_name)))
            continue
        for folder in soundfont_folders(cache_dir):
            if (folder / soundfont.file_name).is_file():
                found[soundfont.name] = folder / soundfont.file_name
                break
        else:
            missing.append(
                f"{soundfont.name}: {soundfont.file_name} is not in {', '.join(map(str, soundfont_folders(cache_dir)))}"
                f" (Debian package {soundfont.debian_package}; `python -m scripts.bench_tempo --fetch-soundfonts`"
                " extracts it into the cache)"
            )
    return found, missing


def fetch_soundfonts(cache_dir: Path = DEFAULT_CACHE_DIR) -> list[str]:
    """Download the Debian packages of the missing soundfonts (``apt-get download``, no installation) and extract
    them under ``cache_dir/soundfonts/root``; return what is still missing after that."""
    _, missing = find_soundfonts(cache_dir=cache_dir)
    packages = [s.debian_package for s in SOUNDFONTS if s.debian_package and any(m.startswith(s.name) for m in missing)]
    if packages:
        apt_get, dpkg_deb = shutil.which("apt-get"), shutil.which("dpkg-deb")
        if apt_get is None or dpkg_deb is None:
            raise RuntimeError(f"apt-get and dpkg-deb are needed to fetch {packages}")
        root = (cache_dir / "soundfonts" / "root").resolve()
        root.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory() as download:
            # Fixed package names from SOUNDFONTS, no shell: nothing untrusted reaches the command line.
            subprocess.run([apt_get, "download", *packages], cwd=download, check=True)  # noqa: S603
            for deb in sorted(Path(download).glob("*.deb")):
                subprocess.run([dpkg_deb, "-x", str(deb), str(root)], check=True)  # noqa: S603
    return find_soundfonts(cache_dir=cache_dir)[1]


# ------------------------------------------------------------------------------------------------------ patterns


@dataclass(frozen=True, slots=True)
class Note:
    """One event of a pattern: position and length in notated beats from the pattern start, velocity 1-127, and
    for drums the GM note, for bass the chord tone (0 root, 1 third, 2 fifth, 3 octave, 4 approach: a scale
    step below the next bar's root), for comping unused (0)."""

    beat: float
    pitch: int = 0
    velocity: int = 90
    length: float = 0.25


@dataclass(frozen=True, slots=True, kw_only=True)
class Pattern:
    """A groove: drums, bass rhythm and comping over ``bars`` bars of ``beats_per_bar`` notated beats.

        ``subdivision`` is 2 for straight and 3 for triplet grooves (pulses per beat); ``compound`` marks a 6/8 or 12/8
    meter (the beat is the dotted quarter, three eighths); ``swing`` delays off-beat
        eighths and ``swing16`` off-beat sixteenths by that fraction of their length (the clip adds a little random
        swing on top where ``swing`` is set). ``comp``: how chords are played at the comp positions: ``block`` (all
        three tones), ``arpeggio`` (one tone per position, cycling up), ``skank`` (short off-beat block), ``pad``
        (held block). ``lead`` False: no melody (solo bass, some drumless material).
    """

    name: str
    bpm_range: tuple[float, float]
    beats_per_bar: int = 4
    subdivision: int = 2
    bars: int = 1
    drums: tuple[Note, ...] = ()
    bass: tuple[Note, ...] = ()
    comp: tuple[Note, ...] = ()
    comp_style: Literal["block", "arpeggio", "skank", "pad"] = "block"
    swing: float = 0.0
    swing16: float = 0.0
    lead: bool = True
    compound: bool = False


@dataclass(frozen=True, slots=True)
class Family:
    """A style family: its patterns and the GM programs (lead, chords, bass) its clips draw from."""

    name: str
    patterns: tuple[Pattern, ...]
    lead_programs: tuple[int, ...]
    chord_programs: tuple[int, ...]
    bass_programs: tuple[int, ...]


def _d(note: int, *beats: float, v: int = 90) -> tuple[Note, ...]:
    return tuple(Note(b, note, v) for b in beats)


def _grid(
    note: int, step: float, beats: float, v: int, accent: int | None = None, start: float = 0.0
) -> tuple[Note, ...]:
    """``note`` every ``step`` beats over ``beats`` beats; on-beat hits at ``accent`` velocity when given."""
    n = round((beats - start) / step)
    hits = []
    for i in range(n):
        b = start + i * step
        on_beat = abs(b - round(b)) < 1e-9
        hits.append(Note(round(b, 6), note, accent if accent is not None and on_beat else v))
    return tuple(hits)


def _ghosts(beats: Sequence[float], v: int = 32) -> tuple[Note, ...]:
    return tuple(Note(b, SNARE, v) for b in beats)


def _bass(*items: tuple[float, int, float]) -> tuple[Note, ...]:
    return tuple(Note(b, tone, 95, length) for b, tone, length in items)


def _comp(*items: tuple[float, float], v: int = 70) -> tuple[Note, ...]:
    return tuple(Note(b, 0, v, length) for b, length in items)


_ROOT8 = _bass((0, 0, 1.5), (1.5, 0, 0.5), (2, 2, 1.5), (3.5, 4, 0.5))
_HALF_NOTES = _comp((0, 1.9), (2, 1.9))
_QUARTERS = _comp((0, 0.9), (1, 0.9), (2, 0.9), (3, 0.9))
_OFFBEATS = _comp((0.5, 0.4), (1.5, 0.4), (2.5, 0.4), (3.5, 0.4))

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "ballad",
            (
                Pattern(
                    name="eighth hats",
                    bpm_range=(55, 84),
                    drums=(*_d(KICK, 0, 2.5, v=100), *_d(SNARE, 1, 3, v=95), *_grid(CLOSED_HAT, 0.5, 4, 60, 75)),
                    bass=_bass((0, 0, 2), (2.5, 2, 1.5)),
                    comp=_comp((0, 4), v=62),
                    comp_style="pad",
                ),
                Pattern(
                    name="sixteenth hats",
                    bpm_range=(58, 80),
                    drums=(*_d(KICK, 0, 1.75, 2.5, v=95), *_d(SNARE, 1, 3, v=90), *_grid(CLOSED_HAT, 0.25, 4, 45, 70)),
                    bass=_bass((0, 0, 1.5), (1.75, 0, 0.75), (2.5, 2, 1.5)),
                    comp=_comp((0, 2), (2, 2), v=62),
                    comp_style="pad",
                ),
                Pattern(
                    name="cross-stick ride",
                    bpm_range=(60, 85),
                    drums=(
                        *_d(KICK, 0, 2, v=90),
                        *_d(RIM, 1, 3, v=85),
                        *_grid(RIDE, 1, 4, 60),
                        *_d(PEDAL_HAT, 1, 3, v=50),
                    ),
                    bass=_bass((0, 0, 2), (2, 2, 2)),
                    comp=_comp((0, 1), (1, 1), (2, 1), (3, 1), v=58),
                    comp_style="arpeggio",
                ),
            ),
            lead_programs=(0, 4, 40, 73, 65, 11),
            chord_programs=(0, 48, 4, 89, 24),
            bass_programs=(32, 33, 35),
        ),
        Family(
            "rock",
            (
                Pattern(
                    name="basic",
                    bpm_range=(100, 150),
                    drums=(*_d(KICK, 0, 2, 2.5, v=110), *_d(SNARE, 1, 3, v=110), *_grid(CLOSED_HAT, 0.5, 4, 70, 90)),
                    bass=_grid(0, 0.5, 4, 85),
                    comp=_QUARTERS,
                ),
                Pattern(
                    name="ride drive",
                    bpm_range=(110, 165),
                    drums=(*_d(KICK, 0, 1.5, 2, v=110), *_d(SNARE, 1, 3, v=115), *_grid(RIDE, 0.5, 4, 75, 95)),
                    bass=_ROOT8,
                    comp=_comp((0, 1.5), (1.5, 1), (2.5, 1.5), v=75),
                ),
                Pattern(
                    name="punk",
                    bpm_range=(160, 190),
                    drums=(*_d(KICK, 0, 2, v=115), *_d(SNARE, 1, 3, v=115), *_grid(CLOSED_HAT, 1, 4, 95)),
                    bass=_grid(0, 0.5, 4, 90),
                    comp=_grid(0, 0.5, 4, 72),
                ),
                Pattern(
                    name="floor tom",
                    bpm_range=(95, 140),
                    drums=(*_d(KICK, 0, 2, v=105), *_d(SNARE, 1, 3, v=110), *_grid(LOW_TOM, 0.5, 4, 70, 85)),
                    bass=_bass((0, 0, 1), (1, 0, 1), (2, 2, 1), (3, 3, 1)),
                    comp=_HALF_NOTES,
                ),
            ),
            lead_programs=(29, 30, 81, 56, 65),
            chord_programs=(29, 30, 27, 18, 0),
            bass_programs=(33, 34, 38),
        ),
        Family(
            "shuffle",
            (
                Pattern(
                    name="blues shuffle",
                    bpm_range=(80, 125),
                    drums=(*_d(KICK, 0, 2, v=100), *_d(SNARE, 1, 3, v=100), *_grid(CLOSED_HAT, 0.5, 4, 65, 85)),
                    bass=_bass(
                        (0, 0, 0.5),
                        (0.5, 2, 0.5),
                        (1, 3, 0.5),
                        (1.5, 2, 0.5),
                        (2, 0, 0.5),
                        (2.5, 2, 0.5),
                        (3, 3, 0.5),
                        (3.5, 2, 0.5),
                    ),
                    comp=_comp((0, 1), (1, 1), (2, 1), (3, 1), v=65),
                    swing=0.33,
                ),
                Pattern(
                    name="texas triplets",
                    bpm_range=(90, 130),
                    subdivision=3,
                    drums=(*_d(KICK, 0, 2, v=100), *_d(SNARE, 1, 3, v=105), *_grid(RIDE, 1 / 3, 4, 55, 85)),
                    bass=_bass((0, 0, 1), (1, 1, 1), (2, 2, 1), (3, 4, 1)),
                    comp=_comp((0.667, 0.3), (1.667, 0.3), (2.667, 0.3), (3.667, 0.3), v=70),
                ),
                Pattern(
                    name="boogie",
                    bpm_range=(100, 140),
                    drums=(*_d(KICK, 0, 1, 2, 3, v=85), *_d(SNARE, 1, 3, v=100), *_grid(RIDE, 0.5, 4, 70, 80)),
                    bass=_bass(
                        (0, 0, 0.5),
                        (0.5, 1, 0.5),
                        (1, 2, 0.5),
                        (1.5, 3, 0.5),
                        (2, 3, 0.5),
                        (2.5, 2, 0.5),
                        (3, 1, 0.5),
                        (3.5, 0, 0.5),
                    ),
                    comp=_comp((0.5, 0.4), (1.5, 0.4), (2.5, 0.4), (3.5, 0.4), v=70),
                    swing=0.3,
                ),
            ),
            lead_programs=(26, 65, 22, 0, 17),
            chord_programs=(0, 16, 26, 61),
            bass_programs=(32, 33, 34),
        ),
        Family(
            "four-on-the-floor",
            (
                Pattern(
                    name="house",
                    bpm_range=(118, 130),
                    drums=(
                        *_d(KICK, 0, 1, 2, 3, v=115),
                        *_d(CLAP, 1, 3, v=100),
                        *_d(OPEN_HAT, 0.5, 1.5, 2.5, 3.5, v=80),
                    ),
                    bass=_bass((0.5, 0, 0.4), (1.5, 0, 0.4), (2.5, 3, 0.4), (3.5, 0, 0.4)),
                    comp=_comp((0.75, 0.4), (2.25, 0.4), (3.5, 0.4), v=68),
                ),
                Pattern(
                    name="techno",
                    bpm_range=(125, 145),
                    drums=(
                        *_d(KICK, 0, 1, 2, 3, v=120),
                        *_grid(CLOSED_HAT, 0.25, 4, 50, 60),
                        *_d(RIDE, 0.5, 1.5, 2.5, 3.5, v=75),
                        *_d(CLAP, 1, 3, v=70),
                    ),
                    bass=_grid(0, 0.25, 4, 75),
                    comp=_comp((0, 4), v=55),
                    comp_style="pad",
                ),
                Pattern(
                    name="disco",
                    bpm_range=(110, 128),
                    drums=(
                        *_d(KICK, 0, 1, 2, 3, v=105),
                        *_d(SNARE, 1, 3, v=100),
                        *_grid(CLOSED_HAT, 0.25, 4, 55, 70),
                        *_d(OPEN_HAT, 0.5, 1.5, 2.5, 3.5, v=85),
                    ),
                    bass=_bass(
                        (0, 0, 0.4),
                        (0.5, 3, 0.4),
                        (1, 0, 0.4),
                        (1.5, 3, 0.4),
                        (2, 2, 0.4),
                        (2.5, 3, 0.4),
                        (3, 2, 0.4),
                        (3.5, 3, 0.4),
                    ),
                    comp=_comp((0.5, 0.2), (1.5, 0.2), (2.5, 0.2), (3.5, 0.2), v=65),
                    comp_style="skank",
                ),
                Pattern(
                    name="trance",
                    bpm_range=(130, 142),
                    drums=(
                        *_d(KICK, 0, 1, 2, 3, v=120),
                        *_d(OPEN_HAT, 0.5, 1.5, 2.5, 3.5, v=85),
                        *_d(CLAP, 1, 3, v=80),
                    ),
                    bass=_bass((0.5, 0, 0.3), (1.5, 0, 0.3), (2.5, 0, 0.3), (3.5, 0, 0.3)),
                    comp=_grid(0, 0.25, 4, 60),
                    comp_style="arpeggio",
                ),
            ),
            lead_programs=(80, 81, 87, 84, 90),
            chord_programs=(81, 90, 4, 88, 62),
            bass_programs=(38, 39, 87),
        ),
        Family(
            "breakbeat",
            (
                Pattern(
                    name="funky drummer",
                    bpm_range=(95, 130),
                    drums=(
                        *_d(KICK, 0, 0.5, 2.25, 2.75, v=105),
                        *_d(SNARE, 1, 3, v=110),
                        *_ghosts((1.75, 2.25, 3.25, 3.75)),
                        *_grid(CLOSED_HAT, 0.25, 4, 50, 70),
                    ),
                    bass=_bass((0, 0, 0.5), (0.5, 0, 0.25), (2.25, 3, 0.25), (2.75, 2, 0.5)),
                    comp=_comp((0.5, 0.2), (1.25, 0.2), (2.5, 0.2), (3.5, 0.2), v=66),
                    comp_style="skank",
                ),
                Pattern(
                    name="amen",
                    bpm_range=(130, 192),
                    bars=2,
                    drums=(
                        *_d(KICK, 0, 0.5, 2.5, 4, 4.5, 6.5, v=105),
                        *_d(SNARE, 1, 3, 5, 7, v=110),
                        *_ghosts((1.75, 2.25, 3.25, 5.75, 7.25, 7.75), v=40),
                        *_grid(RIDE, 0.5, 8, 65, 75),
                    ),
                    bass=_bass((0, 0, 1), (2.5, 2, 1)),
                    comp=_comp((0, 4), v=58),
                    comp_style="pad",
                ),
                Pattern(
                    name="boom bap",
                    bpm_range=(85, 105),
                    drums=(
                        *_d(KICK, 0, 1.75, 2.5, v=110),
                        *_d(SNARE, 1, 3, v=110),
                        *_ghosts((0.75, 2.25, 3.75), v=30),
                        *_grid(CLOSED_HAT, 0.5, 4, 60, 72),
                    ),
                    bass=_bass((0, 0, 1), (1.75, 0, 0.5), (2.5, 2, 1)),
                    comp=_comp((0, 1.5), (2.5, 1.5), v=60),
                    swing16=0.25,
                ),
                Pattern(
                    name="big beat",
                    bpm_range=(120, 150),
                    drums=(
                        *_d(KICK, 0, 1.5, 2.5, v=115),
                        *_d(SNARE, 1, 3, v=115),
                        *_ghosts((1.5, 2.75, 3.5), v=45),
                        *_d(OPEN_HAT, 0.5, 2.5, v=80),
                        *_grid(CLOSED_HAT, 0.5, 4, 60),
                    ),
                    bass=_bass((0, 0, 0.75), (1.5, 0, 0.5), (2.5, 3, 0.5), (3.5, 2, 0.5)),
                    comp=_comp((0, 0.5), (1.5, 0.5), v=70),
                ),
            ),
            lead_programs=(17, 61, 66, 11, 81),
            chord_programs=(4, 17, 5, 61, 89),
            bass_programs=(33, 36, 38),
        ),
        Family(
            "half-time",
            (
                Pattern(
                    name="half-time rock",
                    bpm_range=(120, 170),
                    drums=(*_d(KICK, 0, 1.5, 3.5, v=110), *_d(SNARE, 2, v=115), *_grid(CLOSED_HAT, 0.5, 4, 70, 85)),
                    bass=_bass((0, 0, 1.5), (1.5, 0, 0.5), (3.5, 2, 0.5)),
                    comp=_HALF_NOTES,
                ),
                Pattern(
                    name="half-time shuffle",
                    bpm_range=(120, 176),
                    subdivision=3,
                    drums=(
                        *_d(KICK, 0, 3.667, v=105),
                        *_d(SNARE, 2, v=115),
                        *_ghosts((0.667, 1.333, 1.667, 2.667, 3.333), v=30),
                        *_grid(CLOSED_HAT, 1 / 3, 4, 55, 80),
                    ),
                    bass=_bass((0, 0, 1), (1.667, 2, 0.3), (2, 3, 1), (3.667, 0, 0.3)),
                    comp=_comp((0, 2), (2, 2), v=60),
                    comp_style="pad",
                ),
                Pattern(
                    name="metal half-time",
                    bpm_range=(130, 180),
                    drums=(*_d(KICK, 0, 0.5, 1, 2.5, 3, v=115), *_d(SNARE, 2, v=120), *_grid(CRASH, 1, 4, 75)),
                    bass=_grid(0, 0.5, 4, 90),
                    comp=_comp((0, 1), (1, 1), (2, 1), (3, 1), v=80),
                ),
                Pattern(
                    name="dub half-time",
                    bpm_range=(135, 150),
                    drums=(
                        *_d(KICK, 0, 0.75, v=115),
                        *_d(SNARE, 2, v=115),
                        *_grid(CLOSED_HAT, 0.5, 4, 55, 70),
                        *_d(OPEN_HAT, 3.5, v=70),
                    ),
                    bass=_bass((0, 0, 1.5), (2.75, 0, 1)),
                    comp=_comp((0, 4), v=55),
                    comp_style="pad",
                ),
            ),
            lead_programs=(29, 81, 30, 62, 56),
            chord_programs=(30, 48, 90, 0),
            bass_programs=(33, 34, 38, 39),
        ),
        Family(
            "trap",
            (
                Pattern(
                    name="trap eighths",
                    bpm_range=(130, 165),
                    drums=(
                        *_d(KICK, 0, 0.75, 2.5, 3.25, v=115),
                        *_d(CLAP, 2, v=110),
                        *_grid(CLOSED_HAT, 0.5, 4, 70),
                        *_d(CLOSED_HAT, 1.25, 3.125, 3.25, 3.375, v=55),
                    ),
                    bass=_bass((0, 0, 0.7), (0.75, 0, 1.5), (2.5, 2, 1), (3.25, 0, 0.7)),
                    comp=_comp((0, 4), v=55),
                    comp_style="pad",
                ),
                Pattern(
                    name="triplet rolls",
                    bpm_range=(135, 170),
                    drums=(
                        *_d(KICK, 0, 1.5, 2.75, v=115),
                        *_d(CLAP, 2, v=110),
                        *_grid(CLOSED_HAT, 0.25, 2, 60),
                        *_grid(CLOSED_HAT, 1 / 6, 1, 50, start=2),
                        *_grid(CLOSED_HAT, 0.5, 1, 65, start=3),
                        *_grid(CLOSED_HAT, 0.125, 0.5, 45, start=3.5),
                    ),
                    bass=_bass((0, 0, 1.5), (1.5, 0, 1.2), (2.75, 4, 1)),
                    comp=_comp((0, 1), (1, 1), (2, 1), (3, 1), v=55),
                    comp_style="arpeggio",
                ),
                Pattern(
                    name="drill",
                    bpm_range=(138, 146),
                    drums=(
                        *_d(KICK, 0, 1.25, 2.75, v=110),
                        *_d(SNARE, 2, 3.5, v=110),
                        *_grid(CLOSED_HAT, 1 / 3, 2, 50, 70),
                        *_d(CLOSED_HAT, 2, 2.5, 3, 3.25, 3.5, 3.75, v=60),
                    ),
                    bass=_bass((0, 0, 1.2), (1.25, 4, 1), (2.75, 0, 1)),
                    comp=_comp((0, 4), v=55),
                    comp_style="pad",
                ),
            ),
            lead_programs=(10, 8, 80, 46, 11),
            chord_programs=(89, 48, 90, 0),
            bass_programs=(38, 39, 87),
        ),
        Family(
            "drum and bass",
            (
                Pattern(
                    name="two-step",
                    bpm_range=(160, 178),
                    drums=(*_d(KICK, 0, 2.5, v=115), *_d(SNARE, 1, 3, v=115), *_grid(CLOSED_HAT, 0.5, 4, 65, 75)),
                    bass=_bass((0, 0, 2), (2.5, 0, 1.5)),
                    comp=_comp((0, 4), v=55),
                    comp_style="pad",
                ),
                Pattern(
                    name="jungle",
                    bpm_range=(160, 175),
                    drums=(
                        *_d(KICK, 0, 0.5, 2.5, v=105),
                        *_d(SNARE, 1, 3, v=110),
                        *_ghosts((1.75, 2.25, 3.5, 3.75), v=45),
                        *_grid(RIDE, 0.5, 4, 60, 70),
                    ),
                    bass=_bass((0, 0, 2), (2.5, 3, 1.5)),
                    comp=_comp((0, 2), (2, 2), v=55),
                    comp_style="pad",
                ),
                Pattern(
                    name="liquid",
                    bpm_range=(168, 176),
                    drums=(
                        *_d(KICK, 0, 2.5, 2.75, v=105),
                        *_d(SNARE, 1, 3, v=100),
                        *_grid(SHAKER, 0.25, 4, 45, 60),
                        *_d(RIDE, 0, 1, 2, 3, v=60),
                    ),
                    bass=_bass((0, 0, 1.5), (2.5, 2, 1)),
                    comp=_comp((0, 1), (1, 1), (2, 1), (3, 1), v=55),
                    comp_style="arpeggio",
                ),
            ),
            lead_programs=(88, 81, 52, 4, 73),
            chord_programs=(88, 89, 4, 48),
            bass_programs=(38, 39, 33),
        ),
        Family(
            "reggae",
            (
                Pattern(
                    name="one drop",
                    bpm_range=(60, 88),
                    drums=(*_d(KICK, 2, v=110), *_d(RIM, 2, v=100), *_grid(CLOSED_HAT, 0.5, 4, 55, 70)),
                    bass=_bass((0, 0, 0.75), (1, 2, 0.5), (1.5, 3, 0.5), (2.5, 0, 1)),
                    comp=_OFFBEATS,
                    comp_style="skank",
                    swing=0.1,
                ),
                Pattern(
                    name="rockers",
                    bpm_range=(70, 95),
                    drums=(*_d(KICK, 0, 1, 2, 3, v=100), *_d(RIM, 2, v=100), *_grid(CLOSED_HAT, 0.5, 4, 60, 65)),
                    bass=_bass((0, 0, 0.5), (0.75, 0, 0.25), (1.5, 2, 0.5), (2, 0, 0.5), (3, 3, 0.5)),
                    comp=_OFFBEATS,
                    comp_style="skank",
                ),
                Pattern(
                    name="steppers",
                    bpm_range=(65, 85),
                    drums=(*_d(KICK, 0, 1, 2, 3, v=110), *_d(SNARE, 2, v=105), *_grid(OPEN_HAT, 1, 4, 55, start=0.5)),
                    bass=_bass((0, 0, 1), (1.5, 2, 0.5), (2, 0, 1), (3.5, 4, 0.5)),
                    comp=_comp((1, 0.2), (3, 0.2), v=70),
                    comp_style="skank",
                ),
            ),
            lead_programs=(16, 56, 11, 65, 22),
            chord_programs=(27, 16, 0, 26),
            bass_programs=(33, 32, 38),
        ),
        Family(
            "bossa-samba",
            (
                Pattern(
                    name="bossa nova",
                    bpm_range=(110, 145),
                    bars=2,
                    drums=(
                        *_d(KICK, 0, 1.5, 2, 3.5, 4, 5.5, 6, 7.5, v=85),
                        *_d(RIM, 0, 1.5, 3, 5, 6.5, v=80),
                        *_grid(CLOSED_HAT, 0.5, 8, 45, 55),
                    ),
                    bass=_bass((0, 0, 1.5), (1.5, 2, 0.5), (2, 2, 1.5), (3.5, 0, 0.5)),
                    comp=_comp((0, 0.5), (0.75, 0.5), (1.5, 0.75), (2.5, 0.5), (3.25, 0.5), v=62),
                ),
                Pattern(
                    name="samba",
                    bpm_range=(90, 112),
                    beats_per_bar=2,
                    drums=(
                        *_d(SURDO, 0, v=70),
                        *_d(LOW_TOM, 1, v=110),
                        *_grid(SHAKER, 0.25, 2, 55, 70),
                        *_d(TAMBOURINE, 0, 0.25, 0.75, 1.25, 1.5, v=70),
                        *_d(KICK, 0, 0.75, 1, 1.75, v=80),
                    ),
                    bass=_bass((0, 0, 0.75), (0.75, 2, 0.25), (1, 2, 0.75), (1.75, 0, 0.25)),
                    comp=_comp((0, 0.2), (0.5, 0.2), (0.75, 0.2), (1.25, 0.2), (1.75, 0.2), v=65),
                ),
                Pattern(
                    name="bossa ride",
                    bpm_range=(120, 150),
                    drums=(
                        *_d(KICK, 0, 1.5, 2, 3.5, v=80),
                        *_d(RIM, 0.75, 2.5, v=75),
                        *_grid(RIDE, 0.5, 4, 50, 60),
                        *_d(CABASA, 0.5, 1.5, 2.5, 3.5, v=50),
                    ),
                    bass=_bass((0, 0, 1.5), (1.5, 2, 0.5), (2, 2, 1.5), (3.5, 0, 0.5)),
                    comp=_comp((0, 1), (1, 1), (2, 1), (3, 1), v=55),
                    comp_style="arpeggio",
                ),
            ),
            lead_programs=(73, 66, 24, 0, 11),
            chord_programs=(24, 0, 4, 25),
            bass_programs=(32, 33, 35),
        ),
        Family(
            "compound",
            (
                Pattern(
                    name="12/8 slow blues",
                    compound=True,
                    bpm_range=(55, 76),
                    subdivision=3,
                    drums=(*_d(KICK, 0, 2, 2.667, v=95), *_d(SNARE, 1, 3, v=100), *_grid(RIDE, 1 / 3, 4, 55, 75)),
                    bass=_bass(
                        (0, 0, 0.667),
                        (0.667, 2, 0.333),
                        (1, 3, 0.667),
                        (1.667, 2, 0.333),
                        (2, 0, 0.667),
                        (2.667, 2, 0.333),
                        (3, 3, 0.667),
                        (3.667, 4, 0.333),
                    ),
                    comp=_comp(
                        (0, 1 / 3),
                        (1 / 3, 1 / 3),
                        (2 / 3, 1 / 3),
                        (1, 1 / 3),
                        (4 / 3, 1 / 3),
                        (5 / 3, 1 / 3),
                        (2, 1 / 3),
                        (7 / 3, 1 / 3),
                        (8 / 3, 1 / 3),
                        (3, 1 / 3),
                        (10 / 3, 1 / 3),
                        (11 / 3, 1 / 3),
                        v=55,
                    ),
                    comp_style="arpeggio",
                ),
                Pattern(
                    name="6/8 ballad",
                    compound=True,
                    bpm_range=(55, 85),
                    beats_per_bar=2,
                    subdivision=3,
                    drums=(*_d(KICK, 0, v=100), *_d(SNARE, 1, v=100), *_grid(CLOSED_HAT, 1 / 3, 2, 55, 70)),
                    bass=_bass((0, 0, 1), (1, 2, 1)),
                    comp=_comp(
                        (0, 1 / 3), (1 / 3, 1 / 3), (2 / 3, 1 / 3), (1, 1 / 3), (4 / 3, 1 / 3), (5 / 3, 1 / 3), v=55
                    ),
                    comp_style="arpeggio",
                ),
                Pattern(
                    name="jig",
                    compound=True,
                    bpm_range=(95, 125),
                    beats_per_bar=2,
                    subdivision=3,
                    drums=(*_d(LOW_TOM, 0, 1, v=95), *_d(HIGH_CONGA, 1 / 3, 2 / 3, 4 / 3, 5 / 3, v=60)),
                    bass=_bass((0, 0, 1), (1, 2, 1)),
                    comp=_comp((0, 0.3), (2 / 3, 0.3), (1, 0.3), (5 / 3, 0.3), v=60),
                ),
                Pattern(
                    name="6/8 afro bell",
                    compound=True,
                    bpm_range=(75, 110),
                    beats_per_bar=4,
                    subdivision=3,
                    drums=(
                        *_d(HIGH_AGOGO, 0, 2 / 3, 4 / 3, 5 / 3, 7 / 3, 3, 11 / 3, v=80),
                        *_d(KICK, 0, 2, v=95),
                        *_d(LOW_CONGA, 1, 1.667, 3, 3.667, v=80),
                        *_grid(SHAKER, 1 / 3, 4, 45, 60),
                    ),
                    bass=_bass((0, 0, 1), (1.667, 2, 0.333), (2, 0, 1), (3.667, 2, 0.333)),
                    comp=_comp((0, 0.6), (1, 0.6), (2, 0.6), (3, 0.6), v=60),
                ),
            ),
            lead_programs=(73, 74, 40, 22, 0, 71),
            chord_programs=(24, 0, 46, 25, 48),
            bass_programs=(32, 33, 43),
        ),
        Family(
            "waltz",
            (
                Pattern(
                    name="oom-pah-pah",
                    beats_per_bar=3,
                    bpm_range=(84, 140),
                    drums=(*_d(KICK, 0, v=95), *_d(SNARE, 1, 2, v=60), *_d(CLOSED_HAT, 1, 2, v=60)),
                    bass=_bass((0, 0, 0.9)),
                    comp=_comp((1, 0.6), (2, 0.6), v=65),
                ),
                Pattern(
                    name="jazz waltz",
                    beats_per_bar=3,
                    bpm_range=(110, 170),
                    drums=(*_d(RIDE, 0, 1, 1.67, 2, v=65), *_d(PEDAL_HAT, 1, 2, v=50), *_d(KICK, 0, v=60)),
                    bass=_bass((0, 0, 1), (1, 2, 1), (2, 4, 1)),
                    comp=_comp((0, 0.5), (1.5, 0.5), v=60),
                    swing=0.3,
                ),
                Pattern(
                    name="viennese",
                    beats_per_bar=3,
                    bpm_range=(160, 190),
                    drums=(*_d(TAMBOURINE, 1, 2, v=55),),
                    bass=_bass((0, 0, 0.9)),
                    comp=_comp((1, 0.5), (2, 0.5), v=65),
                ),
                Pattern(
                    name="slow waltz",
                    beats_per_bar=3,
                    bpm_range=(84, 100),
                    drums=(*_d(KICK, 0, v=85), *_d(RIM, 1, 2, v=55), *_grid(CLOSED_HAT, 0.5, 3, 45, 55)),
                    bass=_bass((0, 0, 1.9), (2, 2, 0.9)),
                    comp=_comp((0, 1), (1, 1), (2, 1), v=55),
                    comp_style="arpeggio",
                ),
            ),
            lead_programs=(40, 21, 0, 73, 68),
            chord_programs=(48, 0, 21, 46),
            bass_programs=(32, 43, 58),
        ),
        Family(
            "swing",
            (
                Pattern(
                    name="ride two-four",
                    bpm_range=(110, 190),
                    drums=(*_d(RIDE, 0, 1, 1.5, 2, 3, 3.5, v=75), *_d(PEDAL_HAT, 1, 3, v=60)),
                    bass=_bass((0, 0, 0.9), (1, 1, 0.9), (2, 2, 0.9), (3, 4, 0.9)),
                    comp=_comp((0, 0.9), (1.5, 0.4), v=60),
                    swing=0.33,
                ),
                Pattern(
                    name="feathered",
                    bpm_range=(120, 180),
                    drums=(
                        *_d(RIDE, 0, 1, 1.5, 2, 3, 3.5, v=72),
                        *_d(PEDAL_HAT, 1, 3, v=58),
                        *_d(KICK, 0, 1, 2, 3, v=40),
                        *_ghosts((2.5,), v=35),
                    ),
                    bass=_bass((0, 0, 0.9), (1, 2, 0.9), (2, 3, 0.9), (3, 4, 0.9)),
                    comp=_comp((1.5, 0.4), (3.5, 0.4), v=60),
                    swing=0.3,
                ),
                Pattern(
                    name="ballad brushes",
                    bpm_range=(65, 100),
                    subdivision=3,
                    drums=(
                        *_grid(SNARE, 1 / 3, 4, 22, 35),
                        *_d(PEDAL_HAT, 1, 3, v=55),
                        *_d(RIDE, 0, 1, 1.667, 2, 3, 3.667, v=55),
                    ),
                    bass=_bass((0, 0, 1.9), (2, 2, 1.9)),
                    comp=_comp((0, 2), (2, 2), v=55),
                ),
            ),
            lead_programs=(66, 56, 11, 65, 57),
            chord_programs=(0, 4, 26, 11),
            bass_programs=(32, 32, 33),
        ),
        Family(
            "funk",
            (
                Pattern(
                    name="sixteenth funk",
                    bpm_range=(90, 118),
                    drums=(
                        *_d(KICK, 0, 0.75, 2.5, v=105),
                        *_d(SNARE, 1, 3, v=110),
                        *_ghosts((1.25, 1.75, 2.75, 3.25), v=35),
                        *_grid(CLOSED_HAT, 0.25, 4, 50, 70),
                    ),
                    bass=_bass(
                        (0, 0, 0.25), (0.75, 3, 0.25), (1.5, 0, 0.25), (2.5, 2, 0.25), (3.25, 0, 0.25), (3.75, 4, 0.25)
                    ),
                    comp=_comp((0.25, 0.1), (0.75, 0.1), (1.5, 0.1), (2.25, 0.1), (3.5, 0.1), v=65),
                    comp_style="skank",
                ),
                Pattern(
                    name="open hat funk",
                    bpm_range=(95, 120),
                    drums=(
                        *_d(KICK, 0, 1.5, 2.25, v=105),
                        *_d(SNARE, 1, 3, v=110),
                        *_ghosts((0.5, 2.75), v=35),
                        *_d(OPEN_HAT, 1.5, 3.5, v=80),
                        *_grid(CLOSED_HAT, 0.5, 4, 60),
                    ),
                    bass=_bass((0, 0, 0.5), (1.5, 3, 0.25), (2.25, 0, 0.5), (3, 2, 0.5)),
                    comp=_comp((0.5, 0.2), (1.75, 0.2), (2.5, 0.2), v=65),
                    comp_style="skank",
                    swing16=0.15,
                ),
                Pattern(
                    name="go-go",
                    bpm_range=(90, 110),
                    drums=(
                        *_d(KICK, 0, 1.5, 2, v=100),
                        *_d(SNARE, 1, 3, v=100),
                        *_d(LOW_CONGA, 0.5, 1.75, 2.5, 3.75, v=85),
                        *_d(COWBELL, 0, 1, 1.5, 2.5, 3, v=60),
                    ),
                    bass=_bass((0, 0, 0.5), (1.5, 2, 0.5), (2, 0, 0.5), (3.5, 4, 0.25)),
                    comp=_comp((0.5, 0.2), (2.5, 0.2), v=65),
                    comp_style="skank",
                    swing16=0.2,
                ),
            ),
            lead_programs=(61, 62, 66, 17, 80),
            chord_programs=(27, 4, 17, 61),
            bass_programs=(36, 37, 38),
        ),
        Family(
            "drumless",
            (
                Pattern(
                    name="arpeggio",
                    bpm_range=(66, 140),
                    bass=_bass((0, 0, 4)),
                    comp=_grid(0, 0.5, 4, 62, 72),
                    comp_style="arpeggio",
                    lead=False,
                ),
                Pattern(
                    name="pad and melody",
                    bpm_range=(60, 110),
                    bass=_bass((0, 0, 0.9), (1, 0, 0.9), (2, 2, 0.9), (3, 2, 0.9)),
                    comp=_comp((0, 2), (2, 2), v=58),
                    comp_style="pad",
                ),
                Pattern(
                    name="piano",
                    bpm_range=(66, 150),
                    bass=_bass((0, 0, 0.9), (2, 2, 0.9)),
                    comp=_comp((1, 0.8), (3, 0.8), v=60),
                ),
                Pattern(
                    name="pizzicato",
                    bpm_range=(66, 130),
                    bass=_bass((0, 0, 0.5), (1, 2, 0.5), (2, 3, 0.5), (3, 2, 0.5)),
                    comp=_grid(0, 0.5, 4, 58, 68),
                    comp_style="arpeggio",
                ),
                Pattern(
                    name="solo bass",
                    bpm_range=(70, 140),
                    bass=_bass((0, 0, 0.9), (1, 1, 0.9), (2, 2, 0.9), (3, 4, 0.9)),
                    lead=False,
                ),
            ),
            lead_programs=(0, 73, 40, 71, 11),
            chord_programs=(0, 46, 24, 89, 45),
            bass_programs=(32, 33, 43, 35),
        ),
    )
}
"""The style families (the leave-one-out unit of the benchmark) and their patterns."""

_PATTERN_PROGRAMS: dict[str, dict[str, tuple[int, ...]]] = {
    # Drumless patterns fix the instrument that defines them (GM programs).
    "arpeggio": {"chord": (46, 0, 24, 8, 11), "bass": (32, 0)},
    "pad and melody": {"chord": (88, 89, 91, 94, 50)},
    "piano": {"chord": (0, 1, 2), "bass": (0, 1, 2), "lead": (0, 1, 2)},
    "pizzicato": {"chord": (45,), "bass": (45,), "lead": (45, 40, 73)},
    "solo bass": {"bass": (32, 33, 35, 34, 36)},
}


# --------------------------------------------------------------------------------------------------------- clips


@dataclass(frozen=True, slots=True, kw_only=True)
class RhythmClip:
    """One clip of the corpus; the same clip always renders the same audio.

    ``bpm`` is the truth (notated beat, see the module docstring), ``key`` the key truth. ``swing_extra`` is
    added to the pattern's swing where it swings; ``jitter_s`` is the standard deviation of the timing
    humanisation; ``transpose`` moves every part by that many octaves (register); ``velocity_scale`` scales
    velocities (dynamics).
    """

    family: str
    pattern: str
    bpm: float
    key: KeySignature
    soundfont: str
    duration_s: float
    seed: int
    lead_program: int
    chord_program: int
    bass_program: int
    transpose: int = 0
    velocity_scale: float = 1.0
    jitter_s: float = 0.004
    swing_extra: float = 0.0
    gain_db: float = 0.0
    meter: str = field(default="4/4")
    chords_per_bar: float = 1.0

    @property
    def title(self) -> str:
        return f"{self.family} / {self.pattern} {self.bpm:g} BPM {self.meter} {self.key.name} [{self.soundfont}]"

    def digest(self) -> str:
        """A short stable hash of everything that determines the audio."""
        payload: dict[str, Any] = asdict(self)
        payload["key"] = self.key.name
        payload["generator"] = _GENERATOR_VERSION
        payload["pattern_notes"] = repr(pattern(self))
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


_GENERATOR_VERSION = 2
"""Bumped whenever the event generation code changes, so cached renders of older code are not reused (a
changed pattern changes the digest by itself)."""


def pattern(clip: RhythmClip) -> Pattern:
    """The :class:`Pattern` a clip plays."""
    return next(p for p in FAMILIES[clip.family].patterns if p.name == clip.pattern)


def meter_name(p: Pattern) -> str:
    """Time signature: ``2/4``, ``3/4``, ``4/4`` in simple meters (triplet-feel grooves such as shuffles are
    notated in 4/4), ``6/8`` or ``12/8`` in compound ones, whose beat is the dotted quarter."""
    return f"{3 * p.beats_per_bar}/8" if p.compound else f"{p.beats_per_bar}/4"


HARMONIC_RHYTHMS: tuple[tuple[float, float], ...] = ((2.0, 0.25), (1.0, 0.5), (0.5, 0.25))
"""(chords per bar, probability) the clips draw their harmonic rhythm from. One chord a bar is the commonest case in
popular music; two a bar (ballads, jazz and gospel turnarounds, fast pop progressions) and one every two bars (vamps:
funk, reggae, dance music, slow grooves) are both common. No corpus statistic was at hand: the weights are a
judgement, chosen so that half of the clips do not change chord on every bar line. Meters with an odd number of
beats (3/4) do not split the bar: they draw from the other two, renormalised."""


def harmonic_rhythm_options(
    beats_per_bar: int, harmonic_rhythms: Sequence[tuple[float, float]] = HARMONIC_RHYTHMS
) -> tuple[tuple[float, float], ...]:
    """The (chords per bar, probability) options of ``harmonic_rhythms`` for a meter with ``beats_per_bar`` notated
    beats (no split bar in odd meters)."""
    options = [(rate, weight) for rate, weight in harmonic_rhythms if beats_per_bar % 2 == 0 or rate <= 1.0]
    total = sum(weight for _, weight in options)
    return tuple((rate, weight / total) for rate, weight in options)


def rhythm_corpus(
    clips_per_family: int = 12,
    *,
    soundfonts: Sequence[str] = SOUNDFONT_NAMES,
    duration_s: float = 24.0,
    seed: int = 0,
    harmonic_rhythms: Sequence[tuple[float, float]] = HARMONIC_RHYTHMS,
) -> list[RhythmClip]:
    """``clips_per_family`` clips for every family in :data:`FAMILIES` (deterministic for a given ``seed``).

    Patterns are used in turn; tempos are spread evenly over each pattern's range (rounded to 0.5 BPM) and
    shuffled; keys cycle over the 24 keys; soundfonts cycle over ``soundfonts`` so that every family is rendered
    with every soundfont; instruments, register, dynamics, swing, humanisation and the harmonic rhythm are drawn
    per clip (the harmonic rhythm from a generator of its own, so the other draws are those of generator version 1;
    ``harmonic_rhythms=((1.0, 1.0),)`` gives that version's corpus, one chord a bar everywhere).
    """
    if not soundfonts:
        raise ValueError("at least one soundfont is needed")
    rng = np.random.default_rng(seed)
    harmony_rng = np.random.default_rng([seed, 1])
    clips: list[RhythmClip] = []
    for f_index, family in enumerate(FAMILIES.values()):
        n_patterns = len(family.patterns)
        for i in range(clips_per_family):
            p = family.patterns[i % n_patterns]
            uses = clips_per_family // n_patterns + (1 if i % n_patterns < clips_per_family % n_patterns else 0)
            slot = i // n_patterns
            lo, hi = p.bpm_range
            # Evenly spaced over the range, jittered within the slot, rounded to half a BPM.
            position = (slot + float(rng.uniform(0.2, 0.8))) / max(1, uses)
            bpm = round(2.0 * (lo + (hi - lo) * position)) / 2.0
            programs = _PATTERN_PROGRAMS.get(p.name, {})
            key = ALL_KEYS[(7 * f_index + 5 * i) % len(ALL_KEYS)]
            swinging = p.swing > 0 or p.swing16 > 0
            rates, weights = zip(*harmonic_rhythm_options(p.beats_per_bar, harmonic_rhythms), strict=True)
            chords_per_bar = float(rates[int(harmony_rng.choice(len(rates), p=weights))])
            clips.append(
                RhythmClip(
                    family=family.name,
                    pattern=p.name,
                    bpm=bpm,
                    key=key,
                    soundfont=soundfonts[(i + f_index) % len(soundfonts)],
                    duration_s=duration_s,
                    seed=seed * 100_000 + f_index * 1000 + i,
                    lead_program=_pick(rng, programs.get("lead", family.lead_programs)),
                    chord_program=_pick(rng, programs.get("chord", family.chord_programs)),
                    bass_program=_pick(rng, programs.get("bass", family.bass_programs)),
                    transpose=int(rng.choice([-1, 0, 0, 1])) if family.name != "drumless" else 0,
                    velocity_scale=round(float(rng.uniform(0.75, 1.1)), 3),
                    jitter_s=round(float(rng.uniform(0.002, 0.009)), 4),
                    swing_extra=round(float(rng.uniform(-0.05, 0.05)), 3) if swinging else 0.0,
                    gain_db=-round(float(rng.uniform(0.0, 10.0)), 2),
                    meter=meter_name(p),
                    chords_per_bar=chords_per_bar,
                )
            )
    return clips


def _pick(rng: np.random.Generator, options: Sequence[int]) -> int:
    return int(options[int(rng.integers(len(options)))])


# ----------------------------------------------------------------------------------------------------- rendering


PROGRESSIONS: dict[str, tuple[tuple[int, ...], ...]] = {
    "major": ((0, 4, 5, 3), (0, 3, 4, 0), (0, 5, 3, 4), (1, 4, 0, 0)),
    "minor": ((0, 3, 4, 0), (0, 5, 2, 4), (0, 6, 5, 4), (0, 3, 6, 4)),
}
"""The chord loops (scale degrees of the chord roots, one chord per ``RhythmClip.chords_per_bar``) a clip draws
from, by mode."""


def _draw_progression(clip: RhythmClip, rng: np.random.Generator) -> tuple[int, ...]:
    options = PROGRESSIONS[clip.key.mode]
    return options[int(rng.integers(len(options)))]


def progression(clip: RhythmClip) -> tuple[int, ...]:
    """The chord loop ``clip`` plays: the first draw of its seeded generator, as :func:`events` makes it."""
    return _draw_progression(clip, np.random.default_rng(clip.seed))


def events(clip: RhythmClip) -> list[NoteEvent]:
    """The clip's note events, sorted by time (note-offs before note-ons at the same time)."""
    rng = np.random.default_rng(clip.seed)
    p = pattern(clip)
    beat_s = 60.0 / clip.bpm
    bpb = p.beats_per_bar
    n_bars = math.ceil(clip.duration_s / (beat_s * bpb)) + 1
    progression = _draw_progression(clip, rng)
    tonic = clip.key.pitch_class
    scale = _scale(clip.key)
    swing = p.swing + clip.swing_extra if p.swing > 0 else 0.0
    swing16 = p.swing16 + clip.swing_extra if p.swing16 > 0 else 0.0
    out: list[NoteEvent] = []

    def when(beat: float) -> float:
        frac = beat % 1.0
        if swing and abs(frac - 0.5) < 1e-6:
            beat += swing * 0.5
        if swing16 and (abs(frac - 0.25) < 1e-6 or abs(frac - 0.75) < 1e-6):
            beat += swing16 * 0.25
        return max(0.0, beat * beat_s + float(rng.normal(0.0, clip.jitter_s)))

    def add(channel: int, pitch: int, beat: float, length_beats: float, velocity: float) -> None:
        start = when(beat)
        vel = int(np.clip(velocity * clip.velocity_scale + rng.normal(0.0, 6.0), 15, 127))
        out.append(NoteEvent(start, True, channel, int(np.clip(pitch, 12, 115)), vel))
        out.append(
            NoteEvent(start + max(0.04, length_beats * beat_s * 0.95), False, channel, int(np.clip(pitch, 12, 115)), 0)
        )

    octave = 12 * clip.transpose
    lead_base = 72 + tonic - (12 if tonic > 6 else 0) + octave
    chord_root = 60 + tonic - (12 if tonic > 7 else 0) + (octave if clip.transpose < 0 else 0)
    bass_base = 36 + (12 if clip.bass_program in (0, 1, 2, 45) else 0)
    melody_degree = 0
    lead_lengths = (0.5, 1.0, 1.0, 2.0) if p.subdivision == 2 else (1 / 3, 2 / 3, 1.0, 1.0, 2.0)
    chord_beats = bpb / clip.chords_per_bar

    def degree_at(beat: float) -> int:
        return progression[math.floor(beat / chord_beats + 1e-9) % len(progression)]

    for bar in range(n_bars):
        bar_beat = bar * bpb
        degree = degree_at(bar_beat)
        next_degree = degree_at(bar_beat + bpb)
        offset_in_pattern = (bar % p.bars) * bpb
        for hit in p.drums:
            if offset_in_pattern <= hit.beat < offset_in_pattern + bpb:
                add(DRUM_CHANNEL, hit.pitch, bar_beat + hit.beat - offset_in_pattern, 0.25, hit.velocity)
        # Bass: tones of the chord sounding at each note; approach tone = the scale step below the next bar's root.
        for note in p.bass:
            if note.beat >= bpb:
                continue
            if note.pitch == 4:
                pitch = bass_base + (tonic + scale[(next_degree - 1) % 7]) % 12
            else:
                chord = _chord(clip.key, degree_at(bar_beat + note.beat))
                tone = (0, chord[1] - chord[0], chord[2] - chord[0], 12)[note.pitch]
                pitch = bass_base + (tonic + chord[0]) % 12 + tone
            add(2, pitch, bar_beat + note.beat, note.length, note.velocity)
        # Chords.
        for index, note in enumerate(p.comp):
            if note.beat >= bpb:
                continue
            beat = bar_beat + note.beat
            chord = _chord(clip.key, degree_at(beat))
            if p.comp_style == "arpeggio":
                tones = (*chord, chord[0] + 12)
                add(1, chord_root + tones[index % len(tones)], beat, max(note.length, 0.5), note.velocity)
            else:
                length = note.length if p.comp_style != "skank" else min(note.length, 0.2)
                for tone in chord:
                    add(1, chord_root + tone, beat, length, note.velocity)
        # Melody: stepwise, chord tones on the downbeat, tonic at the end of every 4-bar phrase.
        if p.lead:
            position = 0.0
            while position < bpb - 1e-9:
                length = float(rng.choice(lead_lengths)) if bpb - position >= 2 else min(1.0, bpb - position)
                length = min(length, bpb - position)
                if position == 0:
                    melody_degree = degree + 2 * int(rng.integers(3))
                else:
                    melody_degree += int(rng.choice([-2, -1, -1, 1, 1, 2]))
                melody_degree = int(np.clip(melody_degree, -3, 10))
                if bar % 4 == 3 and position + length >= bpb - 1e-9:
                    melody_degree = 7 if melody_degree > 3 else 0
                step_octave, step = divmod(melody_degree, 7)
                offset = scale[step] + 12 * step_octave
                if clip.key.mode == "minor" and degree_at(bar_beat + position) == 4 and step == 6:
                    offset += 1
                add(0, lead_base + offset, bar_beat + position, length, 84)
                position += length
    out.sort(key=lambda e: (e.time_s, e.on))
    return out


@functools.cache
def _synth(path: str) -> tuple[Any, int]:
    """One loaded synthesizer per soundfont file per process (loading FluidR3 or MuseScore takes seconds)."""
    import tinysoundfont  # optional dependency of the demo and the benchmark corpus

    synth = tinysoundfont.Synth(samplerate=SAMPLE_RATE_HZ)
    return synth, synth.sfload(path)


def play(
    soundfont: str | Path,
    programs: tuple[int, int, int],
    notes: Iterable[NoteEvent],
    *,
    duration_s: float,
    gain_db: float,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> npt.NDArray[np.float32]:
    """:func:`~sidecar.demo.music.perform` ``notes`` on a soundfont given by name (:data:`SOUNDFONTS`) or file,
    after the voices of the previous clip have ended. Raises FileNotFoundError naming the Debian package of a
    missing soundfont."""
    if isinstance(soundfont, str):
        found, missing = find_soundfonts([soundfont], cache_dir=cache_dir)
        if missing:
            raise FileNotFoundError(missing[0])
        soundfont = found[soundfont]
    synth, sfid = _synth(str(soundfont))
    synth.sounds_off()
    synth.generate(SAMPLE_RATE_HZ // 10)  # let released voices end before this clip starts
    return perform(synth, sfid, programs, notes, duration_s=duration_s, gain_db=gain_db)


def render_clip(
    clip: RhythmClip, soundfont_path: Path | None = None, *, cache_dir: Path = DEFAULT_CACHE_DIR
) -> npt.NDArray[np.float32]:
    """Render ``clip`` to float32 stereo at 44.1 kHz, shape (n, 2), exactly ``duration_s`` long, peak at -1 dBFS
    plus ``gain_db``. ``soundfont_path`` overrides the file of ``clip.soundfont`` (tests)."""
    programs = (clip.lead_program, clip.chord_program, clip.bass_program)
    return play(
        soundfont_path or clip.soundfont,
        programs,
        events(clip),
        duration_s=clip.duration_s,
        gain_db=clip.gain_db,
        cache_dir=cache_dir,
    )


class _Rendered(Protocol):
    def digest(self) -> str: ...


_R = TypeVar("_R", bound=_Rendered)


def cached_renders(items: Sequence[_R], folder: Path, render: Callable[[_R], npt.NDArray[np.float32]]) -> list[Path]:
    """FLAC files (44.1 kHz) of ``items`` in ``folder``, named by their digest; those not there yet are rendered
    (written beside, then renamed, so an interrupted run leaves no partial file under the final name)."""
    from sidecar.demo.encode import write_audio

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for item in items:
        path = folder / f"{item.digest()}.flac"
        if not path.exists():
            partial = path.with_suffix(".partial.flac")
            write_audio(render(item), SAMPLE_RATE_HZ, partial, format_name="flac")
            partial.replace(path)
        paths.append(path)
    return paths


def cached_clip_paths(clips: Sequence[RhythmClip], cache_dir: Path = DEFAULT_CACHE_DIR) -> list[Path]:
    """FLAC files of ``clips`` under ``cache_dir/rhythm``, rendering those not there yet (named by digest)."""
    return cached_renders(clips, cache_dir / "rhythm", lambda clip: render_clip(clip, cache_dir=cache_dir))


def load_mono(path: Path) -> npt.NDArray[np.float32]:
    """The file's mono signal at the analysis rate (22050 Hz) through the project's decoder."""
    from sidecar.analyzers.audio import AudioReader

    with AudioReader(path) as reader:
        blocks = [block.mono for block in reader.blocks()]
    return np.concatenate(blocks) if blocks else np.zeros(0, np.float32)
