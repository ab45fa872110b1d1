"""Musical key (tonic + mode) with a confidence value, from spectral-peak chroma and key-profile correlation.

Method (measured choices, see ``docs/benchmarks/key.md``):

1. The mono analysis signal (22050 Hz) is cut into Hann frames of 4096 samples (186 ms, 5.4 Hz per bin) every
   2048 samples. Frame positions are fixed in the track, so the result does not depend on how the decoder cut the
   signal into blocks.
2. In each frame the spectral peaks between G2 and C7 that reach -40 dB of the frame's strongest peak are found;
   parabolic interpolation of the log magnitude gives each peak's frequency to a fraction of a bin. Each peak's
   amplitude is weighted by a broad register window centred on C4, and each frame's weights are scaled to sum
   to the square root of their total (between "every frame counts once" and "loud frames count more"). Frames
   quieter than :data:`SILENCE_DBFS` are skipped.
3. Only statistics are kept: a pitch-class histogram in 10-cent bins (for the opt-in fitted model a second one,
   of the peaks from G3 up without the register window: the *upper* register, melody and chord voicings without
   the bass line) and the complex sum of the peaks' phases on the semitone grid. The latter gives the tuning (A4
   away from 440 Hz, up to +-50 cents) and the *tuning coherence*: how tightly the spectral peaks sit on one
   semitone grid (near 1 for pitched music, near 0 for noise). Memory is constant whatever the track length.
4. The histogram, shifted by the tuning, is folded into 12 pitch classes and correlated (Pearson) with the 24
   rotations of a key profile. Real tones carry harmonics (the 3rd sounds a fifth above the note, the 5th a
   major third), so each profile is first convolved with a harmonic-series kernel whose partials decay by
   ``harmonic_decay`` each: the profile then describes the chroma a key *sounds* like, not the notes it uses. The
   best correlation and the tuning coherence make the *tonal evidence*: too little of it (silence, noise,
   unpitched drums, under a few seconds) gives no key, with the reason (``few_tonal_frames``, ``weak_tonality``).
5. The best-correlating rotation is the key; its confidence is the tonal evidence times a ramp on its margin over
   the runner-up. Opt-in (``KeyAnalyzer(model=DEFAULT_KEY_MODEL)``): a fitted classifier
   (:mod:`sidecar.analyzers.key_model`) over both chromas chooses the key instead. It scores 0.98 leave-one-family-out
   on the rhythm corpus against 0.87 for the default, but 0.91 when the chord progression is left out, and agrees
   with Essentia on fewer real recordings (24 of 52 against 33): it learned the harmony of the corpus generator,
   see ``docs/benchmarks/key.md``. Not the default.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import librosa
import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioBlock
from sidecar.analyzers.key_model import KeyModel, probabilities
from sidecar.analyzers.versions import VERSIONS
from sidecar.domain import AudioInfo, KeyMissingReason, KeyResult, KeySignature

UPPER_MIN_PITCH = 55.0
"""Lowest MIDI pitch (G3) of the upper-register chroma the fitted key model reads: melody and chord voicings without
the bass line."""
SILENCE_DBFS = -70.0
"""A frame whose strongest spectral peak is below this level (dB relative to a full-scale sine) is skipped."""

_HISTOGRAM_BINS_PER_SEMITONE = 10
_HISTOGRAM_BINS = 12 * _HISTOGRAM_BINS_PER_SEMITONE


@dataclass(frozen=True, slots=True)
class KeyProfile:
    """A pair of 12-value key profiles, tonic first (index 0 = tonic, 1 = minor second, ...)."""

    name: str
    major: tuple[float, ...]
    minor: tuple[float, ...]
    source: str


KRUMHANSL_KESSLER = KeyProfile(
    "krumhansl-kessler",
    (6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88),
    (6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17),
    "Krumhansl & Kessler (1982) probe-tone ratings, as tabulated in Krumhansl (1990)",
)
TEMPERLEY = KeyProfile(
    "temperley",
    (5.0, 2.0, 3.5, 2.0, 4.5, 4.0, 2.0, 4.5, 2.0, 3.5, 1.5, 4.0),
    (5.0, 2.0, 3.5, 4.5, 2.0, 4.0, 2.0, 4.5, 3.5, 2.0, 1.5, 4.0),
    "Temperley (1999), 'What's key for key?', Music Perception 17(1)",
)
EDMA = KeyProfile(
    "edma",
    (
        0.16519551,
        0.04749026,
        0.08293076,
        0.06687112,
        0.09994645,
        0.09274123,
        0.05294487,
        0.13159476,
        0.05218986,
        0.07443653,
        0.06940723,
        0.0642515,
    ),
    (
        0.17235348,
        0.05336489,
        0.0761009,
        0.10043649,
        0.05621498,
        0.08527853,
        0.0497915,
        0.13451001,
        0.07458916,
        0.05003023,
        0.09187879,
        0.05545106,
    ),
    "Faraldo, Gomez, Jorda & Herrera (2016), 'Key Estimation in Electronic Dance Music', ECIR (EDMA profiles)",
)
KEY_PROFILES: dict[str, KeyProfile] = {p.name: p for p in (KRUMHANSL_KESSLER, TEMPERLEY, EDMA)}
"""The published profiles compared in ``scripts/bench_key.py``, by name."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChromaSummary:
    """What a track's pitched content looks like, reduced to a few numbers.

    ``chroma``: 12 pitch-class weights (C first), tuning-corrected, summing to 1 (zeros when nothing was found).
    ``tuning_semitones``: the track's offset from A4 = 440 Hz tuning, in semitones (-0.5..0.5).
    ``tuning_coherence``: 0..1, how tightly the spectral peaks sit on one semitone grid.
    ``upper_chroma``: the same from the peaks at or above the accumulator's ``upper_min_pitch`` only, without the
    register window (melody and chord voicings, without the bass line and its harmonics).
    ``tonal_frames`` / ``frames``: frames that contributed / frames analysed (each is ``hop_s`` apart).
    """

    chroma: npt.NDArray[np.float64]
    upper_chroma: npt.NDArray[np.float64]
    tuning_semitones: float
    tuning_coherence: float
    tonal_frames: int
    frames: int
    hop_s: float


class ChromaAccumulator:
    """Streaming spectral-peak chroma statistics over a mono signal; memory does not grow with its length.

    Parameters
    ----------
    sample_rate_hz
        Rate of the mono signal fed in.
    frame_length
        STFT frame in samples (Hann window); ``hop_length`` is the step between frames.
    min_pitch, max_pitch
        MIDI pitch range of the peaks used (43 = G2, the lowest pitch whose semitone neighbours are a whole
        frequency bin apart at the default frame length; 96 = C7).
    peak_floor_db
        Peaks weaker than this relative to the frame's strongest peak are ignored.
    register_centre_pitch, register_width_semitones
        Gaussian weight over pitch: the middle register, where fundamentals are, counts most.
    frame_weight_power
        A frame's peaks are scaled to sum to (their summed amplitude) ** this: 0 counts every frame once, 1
        weights frames by loudness; 0.5 lies between.
    upper_min_pitch
        Lowest MIDI pitch of the peaks that make the upper-register chroma (:data:`UPPER_MIN_PITCH`, G3, for the
        fitted key model); each frame's upper peaks are scaled the same way, by their own sum. None (the default):
        no upper chroma is kept (zeros in the summary).
    """

    def __init__(
        self,
        *,
        sample_rate_hz: int = ANALYSIS_RATE_HZ,
        frame_length: int = 4096,
        hop_length: int = 2048,
        min_pitch: float = 43.0,
        max_pitch: float = 96.0,
        peak_floor_db: float = -40.0,
        register_centre_pitch: float = 60.0,
        register_width_semitones: float = 18.0,
        frame_weight_power: float = 0.5,
        upper_min_pitch: float | None = None,
    ) -> None:
        if not 0 < hop_length <= frame_length:
            raise ValueError(f"hop_length {hop_length} must be in 1..frame_length ({frame_length})")
        self._rate = sample_rate_hz
        self._frame = frame_length
        self._hop = hop_length
        self._min_pitch = min_pitch
        self._max_pitch = max_pitch
        self._peak_floor = 10.0 ** (peak_floor_db / 20.0)
        self._register = (register_centre_pitch, register_width_semitones)
        self._frame_power = frame_weight_power
        self._upper_min_pitch = upper_min_pitch
        bin_hz = sample_rate_hz / frame_length
        self._first_bin = max(1, math.floor(librosa.midi_to_hz(min_pitch) / bin_hz) - 1)
        self._last_bin = min(frame_length // 2 - 1, math.ceil(librosa.midi_to_hz(max_pitch) / bin_hz) + 1)
        # A full-scale sine peaks at sum(window) / 2 in the magnitude spectrum.
        self._silence_amp = float(np.hanning(frame_length).sum() / 2.0) * 10.0 ** (SILENCE_DBFS / 20.0)
        self._pending = np.zeros(0, dtype=np.float32)
        self._histogram = np.zeros(_HISTOGRAM_BINS, dtype=np.float64)
        self._upper_histogram = np.zeros(_HISTOGRAM_BINS, dtype=np.float64)
        self._phase_sum = 0j
        self._weight_sum = 0.0
        self._frames = 0
        self._tonal_frames = 0

    def feed(self, samples: npt.NDArray[np.float32]) -> None:
        """Add the next samples (any length, including zero); frames straddling calls are handled."""
        if samples.size == 0:
            return
        buffer = np.concatenate((self._pending, samples.astype(np.float32, copy=False)))
        n_frames = 0 if buffer.size < self._frame else (buffer.size - self._frame) // self._hop + 1
        if n_frames:
            used = (n_frames - 1) * self._hop + self._frame
            self._add_frames(buffer[:used])
        self._pending = buffer[n_frames * self._hop :].copy()

    @property
    def pending_samples(self) -> int:
        """Samples held back for the next frame (always fewer than one frame)."""
        return int(self._pending.size)

    def _add_frames(self, signal: npt.NDArray[np.float32]) -> None:
        spectrum = librosa.stft(signal, n_fft=self._frame, hop_length=self._hop, center=False, window="hann")
        magnitude = np.abs(spectrum[self._first_bin - 1 : self._last_bin + 2].T)
        self._frames += magnitude.shape[0]
        loudest = magnitude.max(axis=1)
        magnitude = magnitude[loudest >= self._silence_amp]
        loudest = loudest[loudest >= self._silence_amp]
        if magnitude.size == 0:
            return
        log_mag = np.log(np.maximum(magnitude, 1e-30))
        centre = log_mag[:, 1:-1]
        is_peak = (centre > log_mag[:, :-2]) & (centre >= log_mag[:, 2:])
        is_peak &= magnitude[:, 1:-1] >= (loudest * self._peak_floor)[:, None]
        frame_idx, col = np.nonzero(is_peak)
        col += 1
        left, mid, right = log_mag[frame_idx, col - 1], log_mag[frame_idx, col], log_mag[frame_idx, col + 1]
        curvature = left - 2.0 * mid + right
        offset = np.where(curvature < 0.0, 0.5 * (left - right) / np.where(curvature < 0.0, curvature, -1.0), 0.0)
        freq_hz = (col + self._first_bin - 1 + offset) * (self._rate / self._frame)
        pitch = 69.0 + 12.0 * np.log2(freq_hz / 440.0)
        amplitude = np.exp(mid - 0.25 * (left - right) * offset)
        in_range = (pitch >= self._min_pitch) & (pitch < self._max_pitch)
        frame_idx, pitch, amplitude = frame_idx[in_range], pitch[in_range], amplitude[in_range]
        centre_pitch, width = self._register
        weight = amplitude * np.exp(-0.5 * ((pitch - centre_pitch) / width) ** 2)
        per_frame = np.bincount(frame_idx, weights=weight, minlength=magnitude.shape[0])
        weight *= per_frame[frame_idx] ** (self._frame_power - 1.0)
        self._tonal_frames += int(np.count_nonzero(per_frame))
        bins = np.round(pitch * _HISTOGRAM_BINS_PER_SEMITONE).astype(np.int64) % _HISTOGRAM_BINS
        self._histogram += np.bincount(bins, weights=weight, minlength=_HISTOGRAM_BINS)
        self._phase_sum += complex(np.sum(weight * np.exp(2j * np.pi * pitch)))
        self._weight_sum += float(weight.sum())
        if self._upper_min_pitch is not None:
            upper = pitch >= self._upper_min_pitch
            upper_weight = amplitude[upper]
            upper_frames = np.bincount(frame_idx[upper], weights=upper_weight, minlength=magnitude.shape[0])
            upper_weight *= upper_frames[frame_idx[upper]] ** (self._frame_power - 1.0)
            self._upper_histogram += np.bincount(bins[upper], weights=upper_weight, minlength=_HISTOGRAM_BINS)

    def summary(self) -> ChromaSummary:
        """The tuning-corrected 12-bin chroma and the tuning statistics of everything fed so far."""
        hop_s = self._hop / self._rate
        if self._weight_sum <= 0.0:
            return ChromaSummary(
                chroma=np.zeros(12),
                upper_chroma=np.zeros(12),
                tuning_semitones=0.0,
                tuning_coherence=0.0,
                tonal_frames=self._tonal_frames,
                frames=self._frames,
                hop_s=hop_s,
            )
        tuning = float(np.angle(self._phase_sum) / (2.0 * np.pi))
        coherence = float(abs(self._phase_sum) / self._weight_sum)
        return ChromaSummary(
            chroma=_fold(self._histogram, tuning),
            upper_chroma=_fold(self._upper_histogram, tuning),
            tuning_semitones=tuning,
            tuning_coherence=coherence,
            tonal_frames=self._tonal_frames,
            frames=self._frames,
            hop_s=hop_s,
        )


def _fold(histogram: npt.NDArray[np.float64], tuning_semitones: float) -> npt.NDArray[np.float64]:
    """A 10-cent pitch-class histogram shifted by the tuning and folded into 12 classes summing to 1 (or zeros)."""
    position = np.arange(_HISTOGRAM_BINS) / _HISTOGRAM_BINS_PER_SEMITONE - tuning_semitones
    lower = np.floor(position)
    upper_share = position - lower
    lower_class = lower.astype(np.int64) % 12
    chroma = np.bincount(lower_class, weights=histogram * (1.0 - upper_share), minlength=12)
    chroma += np.bincount((lower_class + 1) % 12, weights=histogram * upper_share, minlength=12)
    total = float(chroma.sum())
    return chroma / total if total > 0.0 else np.zeros(12)


def harmonic_kernel(decay: float, *, n_harmonics: int = 8) -> npt.NDArray[np.float64]:
    """Pitch-class energy of one note with ``n_harmonics`` partials, the k-th of amplitude ``decay ** (k - 1)``.

    Index 0 is the note's own pitch class; partials between two semitones are split linearly between them.
    ``decay = 0`` gives the fundamental alone.
    """
    kernel = np.zeros(12)
    for harmonic in range(1, n_harmonics + 1):
        semitones = 12.0 * math.log2(harmonic)
        lower = math.floor(semitones)
        share = semitones - lower
        amplitude = decay ** (harmonic - 1)
        kernel[lower % 12] += amplitude * (1.0 - share)
        kernel[(lower + 1) % 12] += amplitude * share
    return kernel


def key_templates(profile: KeyProfile, *, harmonic_decay: float) -> npt.NDArray[np.float64]:
    """The 24 expected chroma vectors, shape (24, 12): rows 0-11 major on C..B, rows 12-23 minor on C..B.

    Each profile is circularly convolved with :func:`harmonic_kernel` (the chroma its notes produce).
    """
    kernel_spectrum = np.fft.rfft(harmonic_kernel(harmonic_decay))
    rows: list[npt.NDArray[np.float64]] = []
    for values in (profile.major, profile.minor):
        sounding = np.fft.irfft(np.fft.rfft(np.asarray(values, dtype=np.float64)) * kernel_spectrum, n=12)
        rows.extend(np.roll(sounding, tonic) for tonic in range(12))
    return np.stack(rows)


def key_correlations(chroma: npt.NDArray[np.float64], templates: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Pearson correlation of ``chroma`` (12,) with each template row; all zeros for a flat chroma."""
    centred = chroma - chroma.mean()
    norm = float(np.linalg.norm(centred))
    if norm == 0.0:
        return np.zeros(templates.shape[0])
    rows = templates - templates.mean(axis=1, keepdims=True)
    return np.asarray(rows @ centred / (np.linalg.norm(rows, axis=1) * norm), dtype=np.float64)


def key_of_template(index: int) -> KeySignature:
    """The key of row ``index`` of :func:`key_templates`."""
    return KeySignature.from_pitch_class(index % 12, "major" if index < 12 else "minor")


def _clip01(value: float) -> float:
    return min(1.0, max(0.0, value))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyDecision:
    """Tunables that turn correlations into a key and a confidence (defaults measured, see docs/benchmarks/key.md).

    ``full_margin``: best-minus-second correlation that counts as fully certain. ``min_correlation`` /
    ``full_correlation``: best correlation below which there is no tonal evidence / above which it is full.
    ``min_coherence`` / ``full_coherence``: the same for the tuning coherence. ``min_tonal_s``: least duration
    of frames with spectral peaks for any key. ``min_tonality``: below this tonal evidence the key is None.
    """

    full_margin: float = 0.15
    min_correlation: float = 0.5
    full_correlation: float = 0.8
    min_coherence: float = 0.15
    full_coherence: float = 0.35
    min_tonal_s: float = 2.0
    min_tonality: float = 0.05


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyChoice:
    """What :func:`decide_key` found: the ``key`` (None without enough tonal evidence, and then
    ``missing_reason`` says why), its ``confidence`` (0..1) and all 24 template ``correlations``."""

    key: KeySignature | None
    confidence: float
    correlations: npt.NDArray[np.float64]
    missing_reason: KeyMissingReason | None = None


def decide_key(
    summary: ChromaSummary,
    templates: npt.NDArray[np.float64],
    decision: KeyDecision,
    model: KeyModel | None = None,
) -> KeyChoice:
    """Best key, its confidence (0..1) and all 24 template correlations for a chroma summary.

    Tonal evidence is the product of two 0..1 ramps, on the best template correlation and on the tuning coherence.
    Without ``model`` the best-correlating template is the key and the confidence is the tonal evidence times a
    ramp on its margin over the runner-up. With ``model`` the key with the highest model probability wins and the
    confidence is the tonal evidence times its probability margin over the runner-up. No key (None, 0.0) when
    frames with spectral peaks cover less than ``decision.min_tonal_s`` (reason ``few_tonal_frames``: silence, a
    very short file) or the tonal evidence is below ``decision.min_tonality`` (``weak_tonality``: noise, unpitched
    drums).
    """
    correlations = key_correlations(summary.chroma, templates)
    if summary.tonal_frames * summary.hop_s < decision.min_tonal_s:
        return KeyChoice(key=None, confidence=0.0, correlations=correlations, missing_reason="few_tonal_frames")
    best = float(correlations.max())
    correlation_part = _clip01(
        (best - decision.min_correlation) / (decision.full_correlation - decision.min_correlation)
    )
    coherence_part = _clip01(
        (summary.tuning_coherence - decision.min_coherence) / (decision.full_coherence - decision.min_coherence)
    )
    tonality = correlation_part * coherence_part
    if tonality < decision.min_tonality:
        return KeyChoice(key=None, confidence=0.0, correlations=correlations, missing_reason="weak_tonality")
    if model is not None:
        p = probabilities(model.scores(summary.chroma, summary.upper_chroma))
        order = np.argsort(p)
        confidence = tonality * float(p[order[-1]] - p[order[-2]])
        return KeyChoice(key=key_of_template(int(order[-1])), confidence=confidence, correlations=correlations)
    order = np.argsort(correlations)
    second = float(correlations[order[-2]])
    confidence = tonality * _clip01((best - second) / decision.full_margin)
    return KeyChoice(key=key_of_template(int(order[-1])), confidence=confidence, correlations=correlations)


class KeySession:
    """Key analysis of one track: feed mono blocks, then :meth:`finish`."""

    def __init__(
        self,
        accumulator: ChromaAccumulator,
        templates: npt.NDArray[np.float64],
        decision: KeyDecision,
        model: KeyModel | None,
    ):
        self._accumulator = accumulator
        self._templates = templates
        self._decision = decision
        self._model = model

    def feed(self, block: AudioBlock) -> None:
        """Consume the block's mono signal (22050 Hz); an empty block is fine."""
        self._accumulator.feed(block.mono)

    def finish(self) -> KeyResult:
        """The key of everything fed; ``key`` is None (confidence 0.0, with the reason) without enough pitched
        content."""
        choice = decide_key(self._accumulator.summary(), self._templates, self._decision, self._model)
        return KeyResult(
            key=choice.key, key_confidence=round(choice.confidence, 4), key_missing_reason=choice.missing_reason
        )


class KeyAnalyzer:
    """Key + mode analyzer (name ``key``), streaming over the decoder's mono blocks.

    Parameters
    ----------
    profile
        Key profile whose correlation measures the tonal evidence (:data:`KEY_PROFILES`), and chooses the key when
        ``model`` is None.
    harmonic_decay
        Amplitude ratio between successive harmonics assumed when turning the profile into expected chroma.
    decision
        Confidence and no-key thresholds.
    model
        A fitted key classifier that chooses the key instead of the profile (opt-in, e.g.
        :data:`sidecar.analyzers.key_model.DEFAULT_KEY_MODEL`; not the default, see the module docstring).
    """

    name: ClassVar[str] = "key"
    version: ClassVar[int] = VERSIONS[name]

    def __init__(
        self,
        *,
        profile: KeyProfile = KRUMHANSL_KESSLER,
        harmonic_decay: float = 0.6,
        decision: KeyDecision | None = None,
        model: KeyModel | None = None,
    ) -> None:
        if not 0.0 <= harmonic_decay < 1.0:
            raise ValueError(f"harmonic_decay must be in [0, 1), got {harmonic_decay}")
        self._templates = key_templates(profile, harmonic_decay=harmonic_decay)
        self._decision = decision or KeyDecision()
        self._model = model

    def check(self) -> None:
        """Nothing to probe: numpy and librosa are imported with the module."""

    def start(self, info: AudioInfo) -> KeySession:
        """Begin one track (``info`` is not needed: the mono signal is always at the analysis rate)."""
        upper = UPPER_MIN_PITCH if self._model is not None else None
        return KeySession(ChromaAccumulator(upper_min_pitch=upper), self._templates, self._decision, self._model)
