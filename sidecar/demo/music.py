"""Music with known tempo, key and instruments, written in code and rendered with a General MIDI soundfont.

This is the ground truth for the accuracy tests and benchmarks and the source of the demo library. Each piece is
a chord progression in one key (with the dominant of the harmonic minor in minor keys, as tonal music has it),
a bass line, a seeded melody and a drum groove typical of its tempo range, slightly humanised (timing jitter of a
few milliseconds, velocity variation) but at an exact tempo. Rendering uses TinySoundFont with ``TimGM6mb.sf2``,
the soundfont shipped inside the ``pretty_midi`` wheel.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sidecar.domain import PITCH_CLASSES, KeySignature

SAMPLE_RATE_HZ = 44100
DRUM_CHANNEL = 9

KICK, SNARE, CLAP, CLOSED_HAT, PEDAL_HAT, OPEN_HAT, RIDE, CRASH = 36, 38, 39, 42, 44, 46, 51, 49

_MAJOR_SCALE = (0, 2, 4, 5, 7, 9, 11)
_MINOR_SCALE = (0, 2, 3, 5, 7, 8, 10)

_MAJOR_PROGRESSIONS = ((0, 4, 5, 3), (0, 3, 4, 0), (1, 4, 0, 0), (0, 5, 3, 4), (0, 3, 0, 4))
_MINOR_PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 2, 4), (0, 6, 5, 4), (0, 3, 6, 4), (0, 5, 3, 4))


@dataclass(frozen=True, slots=True)
class Hit:
    """One drum hit in a bar: position in beats from the bar start, GM drum note, velocity (1-127)."""

    beat: float
    note: int
    velocity: int


@dataclass(frozen=True, slots=True)
class Groove:
    """A one-bar drum pattern; ``swing`` delays off-beat eighths by that fraction of a beat."""

    beats_per_bar: int
    hits: tuple[Hit, ...]
    swing: float = 0.0


def _eighths(note: int, velocity: int, beats: int = 4) -> tuple[Hit, ...]:
    return tuple(Hit(i / 2, note, velocity if i % 2 == 0 else velocity - 20) for i in range(beats * 2))


GROOVES: dict[str, Groove] = {
    # Slow backbeat with eighth-note hi-hats: the hats run at twice the tempo.
    "ballad": Groove(
        4,
        (Hit(0, KICK, 100), Hit(2, KICK, 90), Hit(1, SNARE, 95), Hit(3, SNARE, 95), *_eighths(CLOSED_HAT, 70)),
    ),
    "hiphop": Groove(
        4,
        (
            Hit(0, KICK, 110),
            Hit(1.5, KICK, 90),
            Hit(2.5, KICK, 95),
            Hit(1, SNARE, 105),
            Hit(3, SNARE, 105),
            *_eighths(CLOSED_HAT, 75),
        ),
        swing=0.12,
    ),
    "rock": Groove(
        4,
        (
            Hit(0, KICK, 110),
            Hit(2, KICK, 105),
            Hit(2.5, KICK, 80),
            Hit(1, SNARE, 110),
            Hit(3, SNARE, 110),
            *_eighths(CLOSED_HAT, 85),
        ),
    ),
    "house": Groove(
        4,
        (
            *tuple(Hit(b, KICK, 115) for b in range(4)),
            Hit(1, CLAP, 100),
            Hit(3, CLAP, 100),
            *tuple(Hit(b + 0.5, OPEN_HAT, 80) for b in range(4)),
        ),
    ),
    "shuffle": Groove(
        4,
        (Hit(0, KICK, 105), Hit(2, KICK, 100), Hit(1, SNARE, 100), Hit(3, SNARE, 100), *_eighths(RIDE, 80)),
        swing=0.33,
    ),
    "punk": Groove(
        4,
        (
            Hit(0, KICK, 115),
            Hit(2, KICK, 110),
            Hit(1, SNARE, 115),
            Hit(3, SNARE, 115),
            *tuple(Hit(b, CLOSED_HAT, 90) for b in range(4)),
        ),
    ),
    "dnb": Groove(
        4,
        (Hit(0, KICK, 115), Hit(2.5, KICK, 105), Hit(1, SNARE, 115), Hit(3, SNARE, 115), *_eighths(CLOSED_HAT, 80)),
    ),
    "waltz": Groove(
        3,
        (
            Hit(0, KICK, 105),
            Hit(1, SNARE, 70),
            Hit(2, SNARE, 70),
            Hit(0, PEDAL_HAT, 60),
            Hit(1, CLOSED_HAT, 65),
            Hit(2, CLOSED_HAT, 65),
        ),
    ),
    # No drums: the pulse comes from the bass and chord rhythm alone.
    "none": Groove(4, ()),
}

TEMPO_RANGES_BPM: dict[str, tuple[int, int]] = {
    "ballad": (60, 84),
    "hiphop": (80, 100),
    "shuffle": (90, 130),
    "rock": (100, 160),
    "house": (118, 132),
    "waltz": (84, 180),
    "none": (66, 140),
    "dnb": (165, 178),
    "punk": (160, 190),
}
"""Where each groove is idiomatic; the corpus only puts a groove at tempos inside its range."""

LEAD_PROGRAMS = (0, 4, 11, 19, 24, 40, 56, 65, 71, 73, 80, 81)
"""GM programs for melodies: piano, e-piano, vibraphone, organ, nylon guitar, violin, trumpet, alto sax,
clarinet, flute, square lead, saw lead."""
CHORD_PROGRAMS = (0, 4, 48, 49, 19, 24, 88, 89)
BASS_PROGRAMS = (32, 33, 34, 38)


@dataclass(frozen=True, slots=True, kw_only=True)
class PieceSpec:
    """Everything that determines a piece. The same spec always renders the same audio."""

    title: str
    bpm: float
    key: KeySignature
    groove: str
    duration_s: float
    seed: int
    lead_program: int = 0
    chord_program: int = 48
    bass_program: int = 33
    accompaniment: bool = True
    gain_db: float = 0.0

    @property
    def beats_per_bar(self) -> int:
        return GROOVES[self.groove].beats_per_bar


@dataclass(frozen=True, slots=True)
class NoteEvent:
    """A note on or off at ``time_s`` on a MIDI channel (0 lead, 1 chords, 2 bass, 9 drums)."""

    time_s: float
    on: bool
    channel: int
    pitch: int
    velocity: int


def soundfont_path() -> Path:
    """The General MIDI soundfont shipped inside the pretty_midi wheel."""
    return Path(str(resources.files("pretty_midi").joinpath("TimGM6mb.sf2")))


def _scale(key: KeySignature) -> tuple[int, ...]:
    return _MAJOR_SCALE if key.mode == "major" else _MINOR_SCALE


def _chord(key: KeySignature, degree: int) -> tuple[int, int, int]:
    """Pitch classes (relative to the tonic, may exceed 11) of the triad on a scale degree.

    In minor the dominant (degree 4) takes the raised seventh, as in the harmonic minor.
    """
    scale = _scale(key)
    tones = [scale[(degree + step) % 7] + 12 * ((degree + step) // 7) for step in (0, 2, 4)]
    if key.mode == "minor" and degree == 4:
        tones[1] += 1  # leading tone
    return tones[0], tones[1], tones[2]


def _note_events(spec: PieceSpec, rng: np.random.Generator) -> list[NoteEvent]:
    beat_s = 60.0 / spec.bpm
    groove = GROOVES[spec.groove]
    bpb = groove.beats_per_bar
    n_bars = math.ceil(spec.duration_s / (beat_s * bpb)) + 1
    progression_pool = _MAJOR_PROGRESSIONS if spec.key.mode == "major" else _MINOR_PROGRESSIONS
    progression = progression_pool[int(rng.integers(len(progression_pool)))]
    tonic = spec.key.pitch_class
    events: list[NoteEvent] = []

    def beat_time(beat: float) -> float:
        frac = beat % 1.0
        if groove.swing and abs(frac - 0.5) < 1e-9:
            beat += groove.swing * 0.5
        return max(0.0, beat * beat_s + float(rng.normal(0.0, 0.004)))

    def add(channel: int, pitch: int, start_beat: float, length_beats: float, velocity: float) -> None:
        start = beat_time(start_beat)
        vel = int(np.clip(velocity + rng.normal(0.0, 6.0), 20, 127))
        events.append(NoteEvent(start, True, channel, pitch, vel))
        events.append(NoteEvent(start + max(0.05, length_beats * beat_s * 0.95), False, channel, pitch, 0))

    scale = _scale(spec.key)
    lead_base = 72 + tonic - (12 if tonic > 6 else 0)
    melody_degree = 0
    for bar in range(n_bars):
        bar_beat = bar * bpb
        degree = progression[bar % len(progression)]
        chord = _chord(spec.key, degree)
        if spec.accompaniment:
            chord_root = 60 + tonic - (12 if tonic > 7 else 0)
            for tone in chord:
                for chord_beat in range(bpb) if spec.groove != "ballad" else (0,):
                    length = 0.9 if spec.groove != "ballad" else bpb
                    add(1, chord_root + tone, bar_beat + chord_beat, length, 62 if chord_beat else 72)
            bass_root = 36 + (tonic + chord[0]) % 12
            bass_beats: Sequence[float] = (0, 2) if bpb == 4 else (0,)
            if spec.groove in ("house", "none", "punk"):
                bass_beats = tuple(range(bpb))
            for beat in bass_beats:
                add(2, bass_root, bar_beat + beat, 0.9, 95)
        # Melody: mostly stepwise, chord tones on the downbeat, the tonic at the end of every 4-bar phrase.
        position = 0.0
        while position < bpb - 1e-9:
            length = float(rng.choice([0.5, 1.0, 1.0, 2.0])) if bpb - position >= 2 else 1.0
            length = min(length, bpb - position)
            if position == 0:
                melody_degree = degree + 2 * int(rng.integers(3))
            else:
                melody_degree += int(rng.choice([-2, -1, -1, 1, 1, 2]))
            melody_degree = int(np.clip(melody_degree, -3, 10))
            if bar % 4 == 3 and position + length >= bpb - 1e-9:
                melody_degree = 7 if melody_degree > 3 else 0
            octave, step = divmod(melody_degree, 7)
            pitch_offset = scale[step] + 12 * octave
            if spec.key.mode == "minor" and degree == 4 and step == 6:
                pitch_offset += 1
            add(0, lead_base + pitch_offset, bar_beat + position, length, 88)
            position += length
        for hit in groove.hits:
            add(DRUM_CHANNEL, hit.note, bar_beat + hit.beat, 0.25, hit.velocity)
    return events


def render(
    spec: PieceSpec, *, sample_rate_hz: int = SAMPLE_RATE_HZ, soundfont: Path | None = None
) -> npt.NDArray[np.float32]:
    """Render ``spec`` to float32 stereo, shape (n, 2), exactly ``duration_s`` long.

    The peak is normalised to -1 dBFS and then ``gain_db`` is applied (so pieces differ in level). Requires the
    ``tinysoundfont`` package (installed by the Makefile) and a General MIDI soundfont (``.sf2``, or ``.sf3``):
    ``soundfont``, by default the one from ``pretty_midi``.
    """
    import tinysoundfont  # optional dependency of the demo and the test corpus

    rng = np.random.default_rng(spec.seed)
    events = sorted(_note_events(spec, rng), key=lambda e: (e.time_s, e.on))
    synth = tinysoundfont.Synth(samplerate=sample_rate_hz)
    sfid = synth.sfload(str(soundfont or soundfont_path()))
    programs = (spec.lead_program, spec.chord_program, spec.bass_program)
    return perform(synth, sfid, programs, events, duration_s=spec.duration_s, gain_db=spec.gain_db)


def perform(
    synth: Any,
    sfid: int,
    programs: tuple[int, int, int],
    events: Iterable[NoteEvent],
    *,
    duration_s: float,
    gain_db: float,
) -> npt.NDArray[np.float32]:
    """Play time-sorted ``events`` on a loaded ``tinysoundfont.Synth`` (soundfont ``sfid``; lead, chord and bass
    ``programs`` on channels 0-2, the standard drum kit on channel 9): float32 stereo at the synth's rate, shape
    (n, 2), exactly ``duration_s`` long, peak at -1 dBFS plus ``gain_db`` (silence stays silent). Events past the
    end are ignored; every voice is silenced afterwards, so the synth can play the next piece."""
    sample_rate_hz = round(synth.samplerate)
    for channel, program in enumerate(programs):
        synth.program_select(channel, sfid, 0, program)
    synth.program_select(DRUM_CHANNEL, sfid, 128, 0, True)
    total = round(duration_s * sample_rate_hz)
    out = np.zeros((total, 2), dtype=np.float32)
    cursor = 0
    for event in events:
        target = min(total, round(event.time_s * sample_rate_hz))
        if target > cursor:
            out[cursor:target] = np.frombuffer(synth.generate(target - cursor), np.float32).reshape(-1, 2)
            cursor = target
        if cursor >= total:
            break
        if event.on:
            synth.noteon(event.channel, event.pitch, event.velocity)
        else:
            synth.noteoff(event.channel, event.pitch)
    if cursor < total:
        out[cursor:] = np.frombuffer(synth.generate(total - cursor), np.float32).reshape(-1, 2)
    synth.sounds_off()
    peak = float(np.abs(out).max())
    if peak > 0:
        out *= np.float32(10 ** ((-1.0 + gain_db) / 20) / peak)
    return out


ALL_KEYS: tuple[KeySignature, ...] = tuple(
    KeySignature(tonic, mode) for mode in ("major", "minor") for tonic in PITCH_CLASSES
)


def tempo_key_corpus(n_pieces: int, *, duration_s: float = 30.0, seed: int = 0) -> list[PieceSpec]:
    """``n_pieces`` pieces covering 60-190 BPM, every groove and (for n >= 24) all 24 keys.

    Tempos are integers spread evenly over the range and shuffled against keys; each piece gets a groove that
    is idiomatic at its tempo, and instruments and levels vary. Deterministic for a given ``seed``.
    """
    rng = np.random.default_rng(seed)
    tempos = np.round(np.linspace(60, 190, n_pieces)).astype(int)
    rng.shuffle(tempos)
    pieces: list[PieceSpec] = []
    used = dict.fromkeys(TEMPO_RANGES_BPM, 0)
    for i, bpm in enumerate(tempos):
        eligible = [g for g, (lo, hi) in TEMPO_RANGES_BPM.items() if lo <= bpm <= hi]
        groove = min(eligible, key=lambda g: (used[g], float(rng.random())))
        used[groove] += 1
        key = ALL_KEYS[i % len(ALL_KEYS)]
        pieces.append(
            PieceSpec(
                title=f"{i:03d} {key.name} {bpm} BPM {groove}",
                bpm=float(bpm),
                key=key,
                groove=groove,
                duration_s=duration_s,
                seed=seed * 1000 + i,
                lead_program=LEAD_PROGRAMS[i % len(LEAD_PROGRAMS)],
                chord_program=CHORD_PROGRAMS[(i // 3) % len(CHORD_PROGRAMS)],
                bass_program=BASS_PROGRAMS[i % len(BASS_PROGRAMS)],
                gain_db=-float(rng.uniform(0.0, 12.0)),
            )
        )
    return pieces


def instrument_corpus(
    programs: Sequence[int], melodies_per_program: int, *, duration_s: float = 20.0, seed: int = 0
) -> list[PieceSpec]:
    """Solo pieces: each GM program in ``programs`` plays ``melodies_per_program`` different melodies.

    No drums, no accompaniment; key and tempo vary with the melody. The ground truth for "sounds like" tests:
    a piece's nearest neighbours should be the other pieces played on the same instrument.
    """
    rng = np.random.default_rng(seed)
    pieces: list[PieceSpec] = []
    for program in programs:
        for m in range(melodies_per_program):
            key = ALL_KEYS[int(rng.integers(len(ALL_KEYS)))]
            bpm = float(rng.integers(70, 150))
            pieces.append(
                PieceSpec(
                    title=f"program {program} melody {m}",
                    bpm=bpm,
                    key=key,
                    groove="none",
                    duration_s=duration_s,
                    seed=seed * 100000 + program * 100 + m,
                    lead_program=program,
                    accompaniment=False,
                    gain_db=-float(rng.uniform(0.0, 6.0)),
                )
            )
    return pieces
