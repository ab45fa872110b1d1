"""Held chords without a pulse, rendered with the rhythm corpus's General MIDI soundfonts: the material of the tempo
analyzer's pulse check (``scripts/bench_tempo_pulse.py``).

Each drone is one chord struck once and held for the whole clip, or moved to the next chord of a slow progression
every ``change_every_s`` seconds (never faster than 7.5 chords a minute: no beat at 40 BPM or above). A sustained
soundfont voice still moves: vibrato, tremolo, chorus and filter envelopes ripple its level a little, which is what
a level-free autocorrelation reads as a pulse. Two program sets, so that a threshold chosen while looking at one is
scored on the other: :data:`SEEN_PROGRAMS` (organs, string and choir ensembles, pads, a held piano; looked at while
the pulse check was designed) and :data:`HELD_OUT_PROGRAMS` (other organs, accordions, solo strings, brass, reeds,
flute, leads and atmosphere pads; scored once).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sidecar.demo.music import NoteEvent
from sidecar.demo.rhythm_corpus import DEFAULT_CACHE_DIR, SOUNDFONT_NAMES, cached_renders, play

SEEN_PROGRAMS: tuple[int, ...] = (0, 16, 19, 20, 48, 49, 50, 52, 53, 54, 81, 88, 89, 90, 91, 92, 93, 94, 95)
"""General MIDI programs (0-based) of the drones looked at while the pulse check was designed."""
HELD_OUT_PROGRAMS: tuple[int, ...] = (17, 18, 21, 22, 23, 40, 41, 42, 43, 51, 60, 61, 68, 70, 71, 73, 80, 82, 85, 99)
"""Programs never looked at before the pulse check was fixed: scored once."""
CLOSE_MAJOR: tuple[int, ...] = (48, 55, 60, 64)
"""C major, close voicing around middle C (the seen drones' chord)."""
OPEN_MINOR: tuple[int, ...] = (45, 57, 64, 69, 72)
"""A minor, open voicing over a low A."""
PROGRESSION_STEPS: tuple[int, ...] = (0, 5, -2, 3)
"""Semitone offsets of a slow progression's chords (i, iv, VII, III of a minor key)."""


@dataclass(frozen=True, slots=True)
class Drone:
    """One clip: ``pitches`` (MIDI numbers) on ``program`` in ``soundfont``, held ``duration_s`` seconds, or moved
    through :data:`PROGRESSION_STEPS` every ``change_every_s`` seconds."""

    program: int
    pitches: tuple[int, ...]
    soundfont: str
    change_every_s: float | None = None
    duration_s: float = 24.0
    velocity: int = 90

    @property
    def label(self) -> str:
        motion = "held" if self.change_every_s is None else f"every {self.change_every_s:g} s"
        return f"program {self.program} {motion} [{self.soundfont}]"

    def digest(self) -> str:
        """A short name for the rendered file (changes with anything that changes the audio)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:16]

    def events(self) -> list[NoteEvent]:
        """Note on/off events on the chord channel (1), time-sorted."""
        starts = (
            [0.0]
            if self.change_every_s is None
            else [float(t) for t in np.arange(0.0, self.duration_s, self.change_every_s)]
        )
        events = []
        for index, start_s in enumerate(starts):
            shift = 0 if self.change_every_s is None else PROGRESSION_STEPS[index % len(PROGRESSION_STEPS)]
            if index:
                previous = PROGRESSION_STEPS[(index - 1) % len(PROGRESSION_STEPS)]
                events += [NoteEvent(start_s, False, 1, pitch + previous, 0) for pitch in self.pitches]
            events += [NoteEvent(start_s, True, 1, pitch + shift, self.velocity) for pitch in self.pitches]
        return events


def drone_set(programs: Sequence[int], soundfonts: Sequence[str] = SOUNDFONT_NAMES, *, held_out: bool) -> list[Drone]:
    """The seen set (``held_out`` False: :data:`CLOSE_MAJOR` held) or the held-out one (each program twice:
    :data:`OPEN_MINOR` held, and the same chord moving every 8 s) over ``programs`` x ``soundfonts``."""
    if not held_out:
        return [Drone(program, CLOSE_MAJOR, soundfont) for soundfont in soundfonts for program in programs]
    return [
        Drone(program, OPEN_MINOR, soundfont, change_every_s=change)
        for soundfont in soundfonts
        for program in programs
        for change in (None, 8.0)
    ]


def render_drone(drone: Drone, *, cache_dir: Path = DEFAULT_CACHE_DIR) -> npt.NDArray[np.float32]:
    """``drone`` as float32 stereo at 44.1 kHz, shape (n, 2), peak at -1 dBFS. Raises FileNotFoundError naming the
    Debian package of a missing soundfont."""
    programs = (drone.program, drone.program, drone.program)
    return play(
        drone.soundfont, programs, drone.events(), duration_s=drone.duration_s, gain_db=0.0, cache_dir=cache_dir
    )


def cached_drone_paths(drones: Sequence[Drone], cache_dir: Path = DEFAULT_CACHE_DIR) -> list[Path]:
    """FLAC files of ``drones`` under ``cache_dir/drones``, rendering those not there yet."""
    return cached_renders(drones, cache_dir / "drones", lambda drone: render_drone(drone, cache_dir=cache_dir))
