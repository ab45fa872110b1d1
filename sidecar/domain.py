"""Value types shared by the analyzers, the worker, storage and the API. Units are in the field names."""

from __future__ import annotations

import enum
import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # numpy only types the arrays here: the command line imports this module without loading it
    import numpy as np
    import numpy.typing as npt

PITCH_CLASSES: tuple[str, ...] = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")
"""Canonical tonic spellings (sharps only), index = pitch class (C = 0)."""

_FLAT_TO_SHARP = {"DB": "C#", "EB": "D#", "GB": "F#", "AB": "G#", "BB": "A#", "CB": "B", "FB": "E"}
_SHARP_ALIASES = {"E#": "F", "B#": "C"}

Mode = Literal["major", "minor"]

BpmMissingReason = Literal["too_short", "no_onsets", "no_periodicity"]
"""Why the tempo analyzer found no tempo: ``too_short``, the audio is shorter than about 2.2 beats at its slowest
tempo (3.4 s at 40 BPM); ``no_onsets``, it has too few audible onsets to carry a beat (silence, a held chord or
drone); ``no_periodicity``, it has onsets but they do not repeat at any tempo (noise, free time, irregular hits)."""
KeyMissingReason = Literal["few_tonal_frames", "weak_tonality"]
"""Why the key analyzer found no key: ``few_tonal_frames``, less than about 2 s of pitched sound (silence, a very
short file); ``weak_tonality``, there is sound but it does not fit a key (noise, unpitched drums)."""


class Priority(enum.StrEnum):
    """Job priority: on-play work always runs before scan work."""

    ON_PLAY = "on_play"
    SCAN = "scan"


@dataclass(frozen=True, slots=True, order=True)
class TrackKey:
    """A track as the host knows it: host kind (``navidrome``, ``jellyfin``, ``local``) and the host's id."""

    host: str
    host_track_id: str

    def __str__(self) -> str:
        return f"{self.host}:{self.host_track_id}"


@dataclass(frozen=True, slots=True)
class KeySignature:
    """A musical key in one canonical spelling: ``tonic`` in C, C#, D ... B (sharps only), ``mode``.

    Camelot and Open Key are derived notations for output; storage keeps :attr:`name` (``"A minor"``).
    """

    tonic: str
    mode: Mode

    def __post_init__(self) -> None:
        if self.tonic not in PITCH_CLASSES:
            raise ValueError(f"tonic {self.tonic!r} is not one of {', '.join(PITCH_CLASSES)}")
        if self.mode not in ("major", "minor"):
            raise ValueError(f"mode {self.mode!r} is not 'major' or 'minor'")

    @classmethod
    def from_pitch_class(cls, pitch_class: int, mode: Mode) -> KeySignature:
        """Key from a pitch class (0 = C, any integer is taken modulo 12)."""
        return cls(PITCH_CLASSES[pitch_class % 12], mode)

    @classmethod
    def parse(cls, text: str) -> KeySignature:
        """Parse the spellings found in tags and APIs.

        Accepts ``"A minor"``, ``"Am"``, ``"a min"``, ``"Bbm"``, ``"Db major"``, ``"C#"``, Camelot ``"8A"`` and
        Open Key ``"1m"`` / ``"1d"``. Raises ``ValueError`` with the input on anything else.
        """
        raw = text.strip()
        camelot = re.fullmatch(r"(1[0-2]|[1-9])\s*([ABab])", raw)
        if camelot:
            number, letter = int(camelot.group(1)), camelot.group(2).upper()
            return _from_camelot(number, "minor" if letter == "A" else "major")
        open_key = re.fullmatch(r"(1[0-2]|[1-9])\s*([mdMD])", raw)
        if open_key:
            number, letter = int(open_key.group(1)), open_key.group(2).lower()
            return _from_camelot((number + 6) % 12 + 1, "minor" if letter == "m" else "major")
        match = re.fullmatch(
            r"([A-Ga-g])\s*([#♯b♭]?)\s*(major|maj|minor|min|m|M)?",
            raw.replace("-", " ").strip(),
            re.IGNORECASE,
        )
        if not match:
            raise ValueError(f"cannot read a musical key from {text!r}")
        letter, accidental, mode_text = match.group(1).upper(), match.group(2), match.group(3) or ""
        accidental = {"♯": "#", "♭": "b"}.get(accidental, accidental)
        name = letter + accidental
        if accidental == "b":
            name = _FLAT_TO_SHARP.get(name.upper(), name)
        name = _SHARP_ALIASES.get(name, name)
        mode: Mode = "minor" if mode_text == "m" or mode_text.lower().startswith("min") else "major"
        return cls(name, mode)

    @property
    def pitch_class(self) -> int:
        """Tonic pitch class, C = 0."""
        return PITCH_CLASSES.index(self.tonic)

    @property
    def name(self) -> str:
        """Canonical spelling, e.g. ``"A minor"``, ``"C# major"``."""
        return f"{self.tonic} {self.mode}"

    @property
    def camelot_number(self) -> int:
        """Camelot wheel hour, 1-12 (C major and A minor are 8)."""
        relative_major = self.pitch_class if self.mode == "major" else (self.pitch_class + 3) % 12
        # Each step clockwise is a fifth up (7 semitones): C=8, G=9, D=10, ... B=1.
        return ((relative_major * 7) % 12 + 7) % 12 + 1

    @property
    def camelot(self) -> str:
        """Camelot notation: ``"8A"`` (A minor), ``"8B"`` (C major)."""
        return f"{self.camelot_number}{'A' if self.mode == 'minor' else 'B'}"

    @property
    def open_key(self) -> str:
        """Open Key notation: ``"1m"`` (A minor), ``"1d"`` (C major)."""
        return f"{(self.camelot_number - 8) % 12 + 1}{'m' if self.mode == 'minor' else 'd'}"

    def compatible_camelot(self) -> tuple[str, ...]:
        """Harmonic-mixing neighbours: itself, one step either way on the wheel, and the relative key."""
        number, letter = self.camelot_number, self.camelot[-1]
        other = "B" if letter == "A" else "A"
        down, up = (number - 2) % 12 + 1, number % 12 + 1
        return (f"{number}{letter}", f"{down}{letter}", f"{up}{letter}", f"{number}{other}")

    def __str__(self) -> str:
        return self.name


def _from_camelot(number: int, mode: Mode) -> KeySignature:
    """Key for a Camelot hour (1-12) and mode."""
    relative_major = ((number - 8) * 7) % 12  # inverse of the fifth-steps walk (7 is its own inverse mod 12)
    pitch_class = relative_major if mode == "major" else (relative_major - 3) % 12
    return KeySignature.from_pitch_class(pitch_class, mode)


@dataclass(frozen=True, slots=True, kw_only=True)
class AudioInfo:
    """What the container says about a file, before decoding it."""

    path: str
    codec: str  # decoder name, e.g. "flac", "mp3", "aac"
    sample_rate_hz: int
    channels: int
    duration_s: float | None  # container estimate; None when the container does not say
    size_bytes: int
    mtime_ns: int


@dataclass(frozen=True, slots=True, kw_only=True)
class LoudnessResult:
    """EBU R128 / ITU-R BS.1770-4 loudness and the ReplayGain 2.0 values derived from it.

    ``gating_histogram`` lets an album be measured later by pooling its tracks' gating blocks: counts of 400-ms
    blocks per 0.01-LU bin from -70 to +30 LUFS, shape (10000,) (see ``sidecar.analyzers.loudness``).
    """

    loudness_lufs: float | None  # integrated loudness; None when every block is below the -70 LUFS gate
    loudness_range_lu: float  # EBU Tech 3342 LRA; 0.0 for silence or very short files
    true_peak_dbtp: float | None  # 4x oversampled (BS.1770 Annex 2); None for digital silence
    sample_peak_dbfs: float | None  # None for digital silence
    replaygain_track_gain_db: float | None  # -18 LUFS - loudness_lufs; None for silence
    replaygain_track_peak: float  # linear true peak (1.0 = full scale) written beside the gain; 0.0 for silence
    gating_histogram: npt.NDArray[np.float64] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class TempoResult:
    """Tempo in beats per minute, with beat positions."""

    bpm: float | None  # None when no pulse was found (silence, very short files)
    bpm_confidence: float  # 0..1
    bpm_alternative: float | None = None  # the runner-up metrical level's tempo, when the confidence is low
    bpm_missing_reason: BpmMissingReason | None = None  # why ``bpm`` is None; None when there is a tempo
    beat_times_s: npt.NDArray[np.float64] = field(repr=False, compare=False)

    @property
    def beat_offset_s(self) -> float | None:
        """The beat grid's phase: the time (s) of its first beat, in [0, 60 / bpm), as the circular mean of the
        beat times' phases at ``bpm`` (beats at ``beat_offset_s + k * 60 / bpm``); ``None`` without tempo or beats."""
        import numpy as np

        if self.bpm is None or self.beat_times_s.size == 0:
            return None
        period_s = 60.0 / self.bpm
        angles = 2 * np.pi * self.beat_times_s / period_s
        phase = float(np.arctan2(np.mean(np.sin(angles)), np.mean(np.cos(angles)))) % (2 * np.pi)
        return min(phase / (2 * np.pi) * period_s, math.nextafter(period_s, 0.0))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyResult:
    """Musical key with a confidence value."""

    key: KeySignature | None  # None when there is no tonal content (silence, noise, drums only)
    key_confidence: float  # 0..1
    key_missing_reason: KeyMissingReason | None = None  # why ``key`` is None; None when there is a key


@dataclass(frozen=True, slots=True, kw_only=True)
class EmbeddingResult:
    """A fixed-length 'how it sounds' vector from one named model."""

    model: str  # e.g. "openl3-music-mel128-512", "timbre-v1"
    vector: npt.NDArray[np.float32] = field(repr=False, compare=False)  # L2-normalised, shape (dim,)
    # (tag, probability 0..1) of the 50 MSD tags in model order, from MusiCNN models; () for the others
    tags: tuple[tuple[str, float], ...] = field(default=(), compare=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class WaveformResult:
    """A waveform overview: the lowest and highest sample (full scale 1.0, over all channels) of each successive
    ``bucket_s`` seconds of the track; empty arrays for an empty file."""

    bucket_s: float
    minimum: npt.NDArray[np.float32] = field(repr=False, compare=False)  # shape (points,)
    maximum: npt.NDArray[np.float32] = field(repr=False, compare=False)  # shape (points,)


AnalyzerOutput = LoudnessResult | TempoResult | KeyResult | EmbeddingResult | WaveformResult
