"""Tempo in beats per minute, with a confidence value and beat positions, from a streamed onset envelope.

Method (choices measured on the ground-truth corpus, see ``docs/benchmarks/tempo.md``):

1. **Onset envelopes, streamed.** The 22050 Hz mono signal is cut into Hann frames of 1024 samples every 256
   (86.1 frames/s; frame ``k`` is centred on ``k * 256`` samples, as librosa's ``center=True``). Each frame's power
   spectrum goes through a 64-band mel filterbank (30 Hz - 11 kHz) to decibels (floor -80 dB re a full-scale
   sine). The spectral flux (the mean rise in dB from the previous frame) is kept per frame for five band sets:
   all bands (the *full* envelope), the bands below 2.5 kHz (the *accent* envelope: kick, snare body, bass and
   chord attacks, without the hi-hats and cymbals that mostly mark subdivisions), below 200 Hz (*low*: kick and
   bass), 200 Hz - 2.5 kHz (*mid*: snare, chords) and from 2.5 kHz up (*high*: hats, cymbals). Only these five
   floats per frame are kept, so a 3-hour mix holds about 19 MB.
2. **Metrical level.** The autocorrelations of the five envelopes (local mean removed, the rest equalised over 8 s
   so that a louder part without a pulse does not hide the pulse of the rest; 1 at lag 0) give candidate
   beat periods: simple ratios (1/4 .. 4) of each one's strongest peak between ``min_bpm`` and ``max_bpm``, and the
   highest peaks of the accent + full autocorrelation. Each candidate gets its metrical profile (each envelope's
   autocorrelation at 1/4 .. 4 times its period) and a tempo prior, and :mod:`sidecar.analyzers.tempo_octave`
   chooses among them with a conditional-logit model whose weights are fitted on the rhythm corpus (14 style
   families, checked leave-one-style-out; see ``docs/tempo.md``); version 5 multiplies its probabilities by a
   real-music tempo prior (:func:`real_tempo_prior`). Version 1 moved to the *fastest regular level*
   (ratio 0.7) instead, which read breakbeat and half-time grooves at half tempo and drumless material at double.
   An octave model may also read BeatNet's beat and downbeat activations (:mod:`sidecar.analyzers.beatnet`, on
   ``network_window_s`` in the middle of the track) as two more envelopes; measured and not used by default
   (``docs/benchmarks/tempo.md``).
3. **Beats and refinement.** librosa's dynamic-programming beat tracker (Ellis 2007) places beats on the full
   envelope at that tempo. A robust straight-line fit of beat time against beat number (beat numbers counted
   across skipped beats, outliers dropped) gives the period to a small fraction of a frame, so a 120 BPM track
   reads 120.0, not the 117.45 of the lag grid, and a 93.5 BPM track reads 93.5.
4. **Confidence** is the model's probability that the chosen candidate is the beat: low when two metrical levels
   are about as likely, and then the runner-up's tempo is reported as ``bpm_alternative``. Below
   ``min_periodicity`` (the strongest accent or full autocorrelation peak among the candidates), with fewer than
   ``min_onsets_per_min`` audible onsets a minute (version 4: a held chord or drone, whose vibrato, chorus or
   leakage ripple the level-free autocorrelation reads as a pulse; version 3 gave held organ chords 185 BPM at
   confidence 0.999), for silence and for audio shorter than about 2.2 beats at ``min_bpm`` (3.4 s at the default
   40 BPM) no tempo is reported: ``bpm`` None, confidence 0, no beats, and ``bpm_missing_reason`` says which check
   failed (:func:`missing_reason`: ``too_short``, ``no_onsets``, ``no_periodicity``).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import librosa
import numpy as np
import numpy.typing as npt
import scipy.fft
import scipy.ndimage
import scipy.signal
import scipy.sparse

from sidecar.analyzers import tempo_harmony
from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioBlock
from sidecar.analyzers.tempo_octave import (
    ENVELOPES,
    HARMONY_ENVELOPES,
    NETWORK_ENVELOPES,
    Candidates,
    OctaveModel,
    candidates,
    correct_index,
    fit_octave_model,
)
from sidecar.analyzers.versions import VERSIONS
from sidecar.domain import AudioInfo, BpmMissingReason, TempoResult
from sidecar.errors import AnalyzerError, FatalAnalyzerError

if TYPE_CHECKING:  # the network (and torch) is imported only where an octave model reads it
    from sidecar.analyzers import beatnet

FRAME_LENGTH = 1024
"""Samples per analysis frame at :data:`ANALYSIS_RATE_HZ` (46 ms)."""
HOP_LENGTH = 256
"""Samples between frames (11.6 ms)."""
FRAME_RATE_HZ = ANALYSIS_RATE_HZ / HOP_LENGTH
"""Onset-envelope frames per second (86.13)."""

_ONSET_DELAY_FRAMES = 0.5
"""Beat times are placed half a hop after the frame whose flux peaks: the flux of a centred frame rises while a
note is still entering the window, so frame centres lead the note onsets (by 6.5 ms, median over the 96-piece
corpus; by 12 ms for clicks in silence)."""
_N_MELS = 64
_FMIN_HZ = 30.0
_FMAX_HZ = 11000.0
_FLOOR_DB = -80.0
_LOW_MAX_HZ = 200.0
"""Upper edge of the *low* envelope's bands (kick drum, bass)."""
_LOCAL_MEAN_S = 0.5
_AUDIBLE_RISE_DB = 1.0
"""An onset counts toward the pulse check when the full flux (dB per band) peaks this far above its 0.5 s moving
average: about the smallest change of level listeners notice (the just-noticeable difference of level is about
1 dB)."""
_DENSEST_S = 15.0
"""Seconds of the densest stretch whose onsets the pulse check counts: ten beats at 40 BPM, short enough that a
pulse in one section of a long track counts (a fixed choice)."""
_REAL_PRIOR_CENTRE_BPM = 120.0
_REAL_PRIOR_WIDTH_OCTAVES = 1.0
"""Centre and width (standard deviation of log2 tempo) of the tempo prior of real music (:func:`real_tempo_prior`):
preferred and most common tempi cluster around 2 beats a second, fewer than one track in six lies an octave away.
Fixed choices, not fitted."""
_BALANCE_S = 8.0
"""Seconds over which the onset detail's RMS is equalised before the autocorrelation (a fixed choice: several bars
at any tempo, shorter than a song's sections)."""
_MAX_DRIFT = 0.04
_OUTLIER_PERIODS = 0.1
_BPM_DECIMALS = 2
DEFAULT_MIN_BPM = 40.0
DEFAULT_MAX_BPM = 210.0
_FRAMES_PER_STEP = 1024
"""Frames transformed at once: bounds the working memory (about 4 MB) whatever size the fed pieces have."""
_CONFIDENCE_DECIMALS = 3
DEFAULT_NETWORK_WINDOW_S = 30.0
"""Seconds of audio (the middle of the track) the beat network reads: its LSTM is the costly part, and the octave
cues need a few bars, not the whole track. A fixed choice, not fitted."""


@functools.cache
def _filterbank(accent_max_hz: float) -> tuple[npt.NDArray[np.float32], scipy.sparse.csr_array, int, int]:
    """Hann window scaled so a full-scale sine has power 1 in its bin, the mel basis (bands x bins, unit-peak
    triangles; sparse, so the product is single-threaded whatever BLAS does), the number of bands centred
    below ``accent_max_hz`` and the number centred below :data:`_LOW_MAX_HZ`."""
    window = scipy.signal.get_window("hann", FRAME_LENGTH, fftbins=True).astype(np.float32)
    window *= np.float32(2.0 / window.sum())
    basis = librosa.filters.mel(
        sr=ANALYSIS_RATE_HZ, n_fft=FRAME_LENGTH, n_mels=_N_MELS, fmin=_FMIN_HZ, fmax=_FMAX_HZ, norm=None
    )
    centres_hz = librosa.mel_frequencies(n_mels=_N_MELS + 2, fmin=_FMIN_HZ, fmax=_FMAX_HZ)[1:-1]
    n_accent = int(np.count_nonzero(centres_hz < accent_max_hz))
    n_low = int(np.count_nonzero(centres_hz < _LOW_MAX_HZ))
    return window, scipy.sparse.csr_array(basis.astype(np.float32)), n_accent, n_low


@dataclass(frozen=True, slots=True)
class OnsetEnvelopes:
    """Per-frame spectral flux at :data:`FRAME_RATE_HZ`, frame ``k`` centred at ``k / FRAME_RATE_HZ`` seconds.

    ``accent``: flux of the bands below the accent limit (dB per band); ``full``: flux of all bands; ``low``: of
    the bands below 200 Hz; ``mid``: from 200 Hz to the accent limit; ``high``: from the accent limit up.
    ``beat`` and ``downbeat``: the beat network's probabilities of a beat (downbeats included) and of a downbeat,
    resampled to the same frame rate, over the window of the track it read (None when it did not run).
    ``chroma`` and ``bass``: pitch-class and bass-spectrum change (:mod:`sidecar.analyzers.tempo_harmony`; None when
    not computed).
    """

    accent: npt.NDArray[np.float32]
    full: npt.NDArray[np.float32]
    low: npt.NDArray[np.float32]
    mid: npt.NDArray[np.float32]
    high: npt.NDArray[np.float32]
    beat: npt.NDArray[np.float32] | None = None
    downbeat: npt.NDArray[np.float32] | None = None
    chroma: npt.NDArray[np.float32] | None = None
    bass: npt.NDArray[np.float32] | None = None

    def with_network(self, activations: beatnet.Activations) -> OnsetEnvelopes:
        """These envelopes plus the network's activations (50 frames/s), linearly resampled to
        :data:`FRAME_RATE_HZ` (empty when the network read nothing, e.g. a container duration far too long)."""
        from sidecar.analyzers import beatnet

        if activations.beat.size == 0:
            return dataclasses.replace(self, beat=np.zeros(0, np.float32), downbeat=np.zeros(0, np.float32))
        n_frames = math.floor((activations.beat.size - 1) / beatnet.FRAME_RATE_HZ * FRAME_RATE_HZ) + 1
        at = np.arange(n_frames) * (beatnet.FRAME_RATE_HZ / FRAME_RATE_HZ)
        source = np.arange(activations.beat.size)
        beat = activations.beat + activations.downbeat
        return dataclasses.replace(
            self,
            beat=np.interp(at, source, beat).astype(np.float32),
            downbeat=np.interp(at, source, activations.downbeat).astype(np.float32),
        )


def network_window(duration_s: float | None, window_s: float) -> tuple[float, float]:
    """The part of a track the beat network reads, (start, end) in seconds: ``window_s`` in the middle of the track,
    or from the start when the duration is unknown or shorter."""
    if duration_s is None or duration_s <= window_s:
        return 0.0, window_s
    start_s = (duration_s - window_s) / 2.0
    return start_s, start_s + window_s


class OnsetEnvelopeStream:
    """Computes :class:`OnsetEnvelopes` from mono audio fed in pieces of any size.

    The frame grid is fixed in the signal (the last ``FRAME_LENGTH - HOP_LENGTH`` samples are carried to the next
    piece), so the result does not depend on how the signal was cut. Memory: five float32 per frame (seven with
    ``harmony``, which adds the harmony envelopes).
    """

    def __init__(self, *, accent_max_hz: float = 2500.0, harmony: bool = False) -> None:
        self._window, self._basis, self._n_accent, self._n_low = _filterbank(accent_max_hz)
        self._pending: npt.NDArray[np.float32] = np.zeros(FRAME_LENGTH // 2, np.float32)
        self._previous_db: npt.NDArray[np.float32] | None = None
        names = ENVELOPES + HARMONY_ENVELOPES if harmony else ENVELOPES
        self._parts: dict[str, list[npt.NDArray[np.float32]]] = {name: [] for name in names}
        self._harmony = (
            (
                tempo_harmony.chroma_basis(ANALYSIS_RATE_HZ, FRAME_LENGTH),
                tempo_harmony.bass_bins(ANALYSIS_RATE_HZ, FRAME_LENGTH),
                tempo_harmony.WindowNovelty(),
                tempo_harmony.WindowNovelty(),
            )
            if harmony
            else None
        )
        self._finished = False

    def feed(self, samples: npt.NDArray[np.float32]) -> None:
        """Append mono samples at :data:`ANALYSIS_RATE_HZ` (float32, full scale 1.0)."""
        if self._finished:
            raise RuntimeError("feed() after envelopes()")
        if samples.size:
            self._pending = np.concatenate([self._pending, samples.astype(np.float32, copy=False)])
            self._consume()

    def envelopes(self) -> OnsetEnvelopes:
        """Flush the end of the signal (centred framing pads half a frame of zeros) and return the envelopes."""
        if not self._finished:
            self._pending = np.concatenate([self._pending, np.zeros(FRAME_LENGTH // 2, np.float32)])
            self._consume()
            self._finished = True
        joined = {
            name: np.concatenate(parts) if parts else np.zeros(0, np.float32) for name, parts in self._parts.items()
        }
        return OnsetEnvelopes(**joined)

    def _consume(self) -> None:
        n_frames = (self._pending.size - FRAME_LENGTH) // HOP_LENGTH + 1
        if n_frames <= 0:
            return
        frames = np.lib.stride_tricks.sliding_window_view(self._pending, FRAME_LENGTH)[::HOP_LENGTH][:n_frames]
        for first in range(0, n_frames, _FRAMES_PER_STEP):
            self._flux(frames[first : first + _FRAMES_PER_STEP])
        self._pending = self._pending[n_frames * HOP_LENGTH :].copy()

    def _flux(self, frames: npt.NDArray[np.float32]) -> None:
        """Append the accent and full flux of consecutive ``frames`` (shape (n, FRAME_LENGTH))."""
        spectrum = scipy.fft.rfft(frames * self._window, axis=1)
        power = spectrum.real**2 + spectrum.imag**2
        band_power = (self._basis @ power.T).T
        level_db = 10.0 * np.log10(np.maximum(band_power, np.float32(10.0 ** (_FLOOR_DB / 10.0))))
        previous = level_db[:1] if self._previous_db is None else self._previous_db
        rise = np.maximum(np.diff(level_db, axis=0, prepend=previous), np.float32(0.0))
        self._parts["accent"].append(rise[:, : self._n_accent].mean(axis=1, dtype=np.float32))
        self._parts["full"].append(rise.mean(axis=1, dtype=np.float32))
        self._parts["low"].append(rise[:, : self._n_low].mean(axis=1, dtype=np.float32))
        self._parts["mid"].append(rise[:, self._n_low : self._n_accent].mean(axis=1, dtype=np.float32))
        self._parts["high"].append(rise[:, self._n_accent :].mean(axis=1, dtype=np.float32))
        self._previous_db = level_db[-1:]
        if self._harmony is not None:
            chroma_basis, bass_bins, chroma_novelty, bass_novelty = self._harmony
            self._parts["chroma"].append(chroma_novelty.push(np.sqrt((chroma_basis @ power.T).T)))
            self._parts["bass"].append(bass_novelty.push(np.sqrt(power[:, bass_bins])))


def _detail(envelope: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    """``envelope`` minus its :data:`_LOCAL_MEAN_S` moving average."""
    width = max(1, round(_LOCAL_MEAN_S * FRAME_RATE_HZ))
    values = envelope.astype(np.float64)
    return np.asarray(values - scipy.ndimage.uniform_filter1d(values, width, mode="nearest"), dtype=np.float64)


def onset_rate_per_min(envelope: npt.NDArray[np.float32]) -> float:
    """Audible onsets per minute in the densest :data:`_DENSEST_S` seconds of ``envelope`` (a flux at
    :data:`FRAME_RATE_HZ`, dB per band; the whole envelope when shorter): its local maxima at least
    :data:`_AUDIBLE_RISE_DB` above the 0.5 s moving average. 0 for an empty envelope.

    A held note or chord has one onset and then none, however periodic the small level ripple of its vibrato,
    chorus or spectral leakage, which the autocorrelation (normalised to any level) would read as a pulse.
    """
    if envelope.size == 0:
        return 0.0
    detail = _detail(envelope)
    peaks = np.zeros(detail.size, dtype=np.int64)
    middle = detail[1:-1]
    peaks[1:-1] = (middle > detail[:-2]) & (middle >= detail[2:]) & (middle >= _AUDIBLE_RISE_DB)
    counts = np.concatenate([[0], np.cumsum(peaks)])
    window = min(round(_DENSEST_S * FRAME_RATE_HZ), detail.size)
    return float(np.max(counts[window:] - counts[:-window])) * 60.0 * FRAME_RATE_HZ / window


def autocorrelation(envelope: npt.NDArray[np.float32], *, max_lag: int) -> npt.NDArray[np.float64]:
    """Autocorrelation of ``envelope`` minus its 0.5 s moving average, lags ``0..max_lag`` (frames).

    Before correlating, the detail is divided by its RMS over :data:`_BALANCE_S` around each frame (at least a tenth
    of its overall RMS), so every part of a track weighs by its duration, not by how strong its onsets are: a pulse
    in one part is not drowned by a louder part without one. Normalised to 1 at lag 0; all zeros for a constant
    envelope (silence).
    """
    detail = _detail(envelope)
    power = scipy.ndimage.uniform_filter1d(detail**2, max(1, round(_BALANCE_S * FRAME_RATE_HZ)), mode="nearest")
    local_rms = np.sqrt(np.maximum(power, 0.0))
    overall_rms = math.sqrt(float(np.mean(detail**2))) if detail.size else 0.0
    if overall_rms > 0.0:
        detail /= np.maximum(local_rms, 0.1 * overall_rms)
    n_fft = scipy.fft.next_fast_len(detail.size + max_lag + 1, real=True)
    spectrum = scipy.fft.rfft(detail, n_fft)
    acf = scipy.fft.irfft(spectrum.real**2 + spectrum.imag**2, n_fft)[: max_lag + 1]
    if acf[0] <= 0.0:
        return np.zeros(max_lag + 1)
    return np.asarray(acf / acf[0], dtype=np.float64)


def track_beats(envelope: npt.NDArray[np.float32], bpm: float) -> npt.NDArray[np.float64]:
    """Beat times (s) on ``envelope`` at about ``bpm``, by librosa's dynamic-programming beat tracker.

    Times are frame times plus :data:`_ONSET_DELAY_FRAMES`; empty when the envelope has no onsets.
    """
    _, frames = librosa.beat.beat_track(
        onset_envelope=envelope, sr=ANALYSIS_RATE_HZ, hop_length=HOP_LENGTH, bpm=float(bpm), units="frames"
    )
    return (np.asarray(frames, dtype=np.float64) + _ONSET_DELAY_FRAMES) / FRAME_RATE_HZ


def refine_bpm(beat_times_s: npt.NDArray[np.float64], bpm: float) -> float:
    """Tempo from a robust straight-line fit of beat time against beat number; ``bpm`` when that is not possible.

    Beat numbers count the beats the tracker skipped (gaps of about two periods are two beats). Beats further
    than a tenth of a period (or three robust standard deviations, if larger) from the line are dropped and the
    line is fitted again. A fit that ends more than 4 % from ``bpm`` is not trusted.
    """
    period_s = 60.0 / bpm
    if beat_times_s.size < 4:
        return bpm
    steps = np.maximum(1.0, np.round(np.diff(beat_times_s) / period_s))
    numbers = np.concatenate([[0.0], np.cumsum(steps)])
    keep = np.ones(beat_times_s.size, dtype=bool)
    slope = period_s
    for _ in range(3):
        slope, intercept = np.polyfit(numbers[keep], beat_times_s[keep], 1)
        residual = beat_times_s - (intercept + slope * numbers)
        spread = 1.4826 * float(np.median(np.abs(residual[keep] - np.median(residual[keep]))))
        new_keep = np.abs(residual) <= max(_OUTLIER_PERIODS * period_s, 3.0 * spread)
        if np.count_nonzero(new_keep) < 4 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    refined = 60.0 / float(slope) if slope > 0 else bpm
    return refined if abs(refined / bpm - 1.0) <= _MAX_DRIFT else bpm


@dataclass(frozen=True, slots=True, kw_only=True)
class TempoSettings:
    """Tunables of :class:`TempoAnalyzer` (see there)."""

    min_bpm: float
    max_bpm: float
    min_periodicity: float
    min_onsets_per_min: float
    accent_max_hz: float
    alternative_below: float
    real_prior_weight: float
    octave_model: OctaveModel
    network_window_s: float


@dataclass(frozen=True, slots=True)
class ClipFeatures:
    """What the tempo estimate of one track is made from: its onset envelopes and its candidate tempi (None when
    the track is too short or silent to have any, and then ``missing_reason`` says which: ``too_short``,
    ``no_onsets`` for an envelope without any change, ``no_periodicity`` for no autocorrelation peak in the tempo
    range). Raises ValueError when exactly one of ``candidates`` and ``missing_reason`` is not None."""

    envelopes: OnsetEnvelopes
    candidates: Candidates | None
    missing_reason: BpmMissingReason | None = None

    def __post_init__(self) -> None:
        if (self.candidates is None) == (self.missing_reason is None):
            raise ValueError("clip features have either candidates or the reason they have none")


def _max_lag(min_bpm: float) -> int:
    return math.ceil(60.0 * FRAME_RATE_HZ / min_bpm * 1.1) + 2


def clip_features(
    envelopes: OnsetEnvelopes,
    *,
    min_bpm: float = DEFAULT_MIN_BPM,
    max_bpm: float = DEFAULT_MAX_BPM,
    network: bool = False,
    harmony: bool = False,
) -> ClipFeatures:
    """Candidate tempi and their cues from complete onset envelopes (the part that does not depend on the fitted
    :class:`OctaveModel`); with ``network``, the cues read the beat network's activations too (``envelopes.beat``
    and ``downbeat`` must be there), with ``harmony`` the harmony envelopes (``chroma``, ``bass``; not both).
    Raises AnalyzerError for non-finite envelopes (NaN or infinite samples)."""
    if network and harmony:
        raise ValueError("no octave model reads both the network and the harmony envelopes")
    names = ENVELOPES + (NETWORK_ENVELOPES if network else HARMONY_ENVELOPES if harmony else ())
    rows = [getattr(envelopes, name) for name in names]
    if any(row is None for row in rows):
        raise ValueError(f"the cues read {names}, and the envelopes lack some of them")
    if not all(np.isfinite(row).all() for row in rows):
        raise AnalyzerError("tempo: the audio contains non-finite samples (NaN or infinity)")
    max_lag = _max_lag(min_bpm)
    if envelopes.accent.size < 2 * max_lag:
        return ClipFeatures(envelopes, None, "too_short")
    acfs = np.stack([autocorrelation(row, max_lag=4 * max_lag) for row in rows])
    if not acfs[:2].any():
        return ClipFeatures(envelopes, None, "no_onsets")
    found = candidates(acfs, frame_rate_hz=FRAME_RATE_HZ, min_bpm=min_bpm, max_bpm=max_bpm, envelopes=names)
    return ClipFeatures(envelopes, found) if found.lags.size else ClipFeatures(envelopes, None, "no_periodicity")


def mono_envelopes(
    mono: npt.NDArray[np.float32],
    *,
    network_window_s: float | None = None,
    beatnet_model: int = 1,
    harmony: bool = False,
) -> OnsetEnvelopes:
    """The onset envelopes of a whole mono signal at :data:`ANALYSIS_RATE_HZ`; with ``network_window_s``, plus the
    activations of BeatNet model ``beatnet_model`` over that many seconds in the middle (as the analyzer reads them
    with model 1); with ``harmony``, plus the harmony envelopes."""
    stream = OnsetEnvelopeStream(harmony=harmony)
    stream.feed(mono)
    envelopes = stream.envelopes()
    if network_window_s is None:
        return envelopes
    from sidecar.analyzers import beatnet

    start_s, end_s = network_window(mono.size / ANALYSIS_RATE_HZ, network_window_s)
    window = mono[round(start_s * ANALYSIS_RATE_HZ) : round(end_s * ANALYSIS_RATE_HZ)]
    return envelopes.with_network(beatnet.activations(window, beatnet_model))


def mono_features(
    mono: npt.NDArray[np.float32],
    *,
    min_bpm: float = DEFAULT_MIN_BPM,
    max_bpm: float = DEFAULT_MAX_BPM,
    network: bool = False,
    harmony: bool = False,
) -> ClipFeatures:
    """:func:`clip_features` of a whole mono signal at :data:`ANALYSIS_RATE_HZ` (for benchmarks and fitting)."""
    envelopes = mono_envelopes(mono, network_window_s=DEFAULT_NETWORK_WINDOW_S if network else None, harmony=harmony)
    return clip_features(envelopes, min_bpm=min_bpm, max_bpm=max_bpm, network=network, harmony=harmony)


def fit_octave(clips: Sequence[tuple[ClipFeatures, float]]) -> OctaveModel:
    """Fit the octave choice on (features, true BPM) pairs; clips without a candidate within 4 % of the truth are
    left out of the fit. Raises ValueError when no clip can be used."""
    examples = []
    for features, truth_bpm in clips:
        if features.candidates is not None:
            index = correct_index(features.candidates.lags, FRAME_RATE_HZ, truth_bpm)
            if index is not None:
                examples.append((features.candidates, index))
    return fit_octave_model(examples)


def real_tempo_prior(
    probabilities: npt.NDArray[np.float64], bpms: npt.NDArray[np.float64], weight: float
) -> npt.NDArray[np.float64]:
    """The octave model's ``probabilities`` of candidate tempi ``bpms`` times a log-normal prior of real music's
    tempi (centre :data:`_REAL_PRIOR_CENTRE_BPM`, :data:`_REAL_PRIOR_WIDTH_OCTAVES` octave) raised to ``weight``,
    renormalised; unchanged for ``weight`` 0.

    The octave model learns its own tempo prior from the rhythm corpus, whose tempi are spread evenly over each
    style's range, so fast styles weigh as much as the slower, commoner tempi of a music library; this moves the
    choice back toward where music's tempi are (version 5: on real recordings it read 100 BPM tracks at 200).
    """
    if weight == 0:
        return probabilities
    prior = np.exp(-0.5 * (np.log2(bpms / _REAL_PRIOR_CENTRE_BPM) / _REAL_PRIOR_WIDTH_OCTAVES) ** 2)
    weighted = probabilities * prior**weight
    total = float(weighted.sum())
    return np.asarray(weighted / total if total > 0 else probabilities, dtype=np.float64)


def missing_reason(features: ClipFeatures, settings: TempoSettings) -> BpmMissingReason | None:
    """Why the track has no tempo, None when it has one: ``too_short`` (shorter than about 2.2 beats at
    ``settings.min_bpm``), ``no_onsets`` (fewer than ``settings.min_onsets_per_min`` audible onsets a minute,
    :func:`onset_rate_per_min`: silence, a held chord or drone) or ``no_periodicity`` (the strongest candidate
    peak is below ``settings.min_periodicity``: noise, irregular hits). The periodicity is checked first: white
    noise fails both checks (fewer than 20 audible onsets a minute), a held chord only the onset check."""
    found = features.candidates
    if found is None:
        return features.missing_reason
    if found.periodicity < settings.min_periodicity:
        return "no_periodicity"
    if onset_rate_per_min(features.envelopes.full) < settings.min_onsets_per_min:
        return "no_onsets"
    return None


def estimate_tempo(features: ClipFeatures, settings: TempoSettings) -> TempoResult:
    """Tempo, confidence, alternative and beats; no tempo (None, 0, no beats, and the :func:`missing_reason`) for
    silence, noise, held notes and audio shorter than about 2.2 beats at ``settings.min_bpm``.

    The confidence is the octave model's probability for the chosen candidate. When it is below
    ``settings.alternative_below``, the runner-up candidate's tempo (scaled like the chosen one by the beat fit) is
    the ``bpm_alternative``.
    """
    found = features.candidates
    reason = missing_reason(features, settings)
    if found is None or reason is not None:
        return TempoResult(bpm=None, bpm_confidence=0.0, beat_times_s=np.zeros(0), bpm_missing_reason=reason)
    probabilities = real_tempo_prior(
        settings.octave_model.probabilities(found), 60.0 * FRAME_RATE_HZ / found.lags, settings.real_prior_weight
    )
    order = np.argsort(-probabilities, kind="stable")
    confidence = round(float(probabilities[order[0]]), _CONFIDENCE_DECIMALS)
    coarse_bpm = 60.0 * FRAME_RATE_HZ / float(found.lags[order[0]])
    beats = track_beats(features.envelopes.full, coarse_bpm)
    bpm = refine_bpm(beats, coarse_bpm)
    alternative = None
    if confidence < settings.alternative_below and order.size > 1 and probabilities[order[1]] > 0:
        alternative_bpm = 60.0 * FRAME_RATE_HZ / float(found.lags[order[1]]) * bpm / coarse_bpm
        alternative = round(alternative_bpm, _BPM_DECIMALS)
    return TempoResult(
        bpm=round(bpm, _BPM_DECIMALS), bpm_confidence=confidence, bpm_alternative=alternative, beat_times_s=beats
    )


class TempoSession:
    """Per-track state: the streamed onset envelopes and, when the octave model reads them, the beat network's
    activations over the window :func:`network_window` picks from the track's duration."""

    def __init__(self, settings: TempoSettings, duration_s: float | None) -> None:
        self._settings = settings
        self._stream = OnsetEnvelopeStream(
            accent_max_hz=settings.accent_max_hz, harmony=settings.octave_model.uses_harmony
        )
        self._network: beatnet.ActivationStream | None = None
        self._window = (0, 0)
        if settings.octave_model.uses_network:
            from sidecar.analyzers import beatnet

            self._network = beatnet.ActivationStream()
            start_s, end_s = network_window(duration_s, settings.network_window_s)
            self._window = (round(start_s * ANALYSIS_RATE_HZ), round(end_s * ANALYSIS_RATE_HZ))
        self._fed = 0

    def feed(self, block: AudioBlock) -> None:
        """Consume the next block's mono signal."""
        self._stream.feed(block.mono)
        if self._network is not None:
            first, stop = self._window
            lo, hi = max(first - self._fed, 0), min(stop - self._fed, block.mono.size)
            if lo < hi:
                self._network.feed(block.mono[lo:hi])
        self._fed += block.mono.size

    def envelopes(self) -> OnsetEnvelopes:
        """The envelopes of everything fed (with the network's activations when it ran)."""
        envelopes = self._stream.envelopes()
        return envelopes if self._network is None else envelopes.with_network(self._network.activations())

    def features(self) -> ClipFeatures:
        """The candidate tempi and cues of everything fed (what :meth:`finish` estimates from; for fitting)."""
        settings = self._settings
        return clip_features(
            self.envelopes(),
            min_bpm=settings.min_bpm,
            max_bpm=settings.max_bpm,
            network=settings.octave_model.uses_network,
            harmony=settings.octave_model.uses_harmony,
        )

    def finish(self) -> TempoResult:
        """Estimate the tempo of everything fed."""
        return estimate_tempo(self.features(), self._settings)


class TempoAnalyzer:
    """BPM (refined to about 0.01 BPM), confidence 0..1, an alternative octave and beat positions (s) of a track.

    Parameters
    ----------
    min_bpm, max_bpm
        The range a beat may fall in (beats per minute).
    min_periodicity
        Below this autocorrelation peak the track has no pulse: ``bpm`` is None.
    min_onsets_per_min
        With fewer audible onsets a minute than this in its densest 15 s (:func:`onset_rate_per_min`), the track
        has no pulse either (a held chord, a drone): ``bpm`` is None. The default, 20, is one onset every other
        beat at 40 BPM.
    accent_max_hz
        Upper edge (Hz) of the bands whose onsets count as accents (the rest are the *high* envelope).
    alternative_below
        Below this confidence the result carries ``bpm_alternative``, the runner-up candidate tempo.
    octave_model
        The fitted choice between candidate metrical levels; :meth:`OctaveModel.default` when None. When its cues
        read the beat network (:mod:`sidecar.analyzers.beatnet`), the network runs on ``network_window_s`` seconds
        in the middle of each track, and a missing BeatNet wheel raises FatalAnalyzerError naming the package.
    network_window_s
        Seconds of audio the beat network reads.
    """

    name: ClassVar[str] = "tempo"
    version: ClassVar[int] = VERSIONS[name]

    def __init__(
        self,
        *,
        min_bpm: float = DEFAULT_MIN_BPM,
        max_bpm: float = DEFAULT_MAX_BPM,
        min_periodicity: float = 0.1,
        min_onsets_per_min: float = 20.0,
        accent_max_hz: float = 2500.0,
        alternative_below: float = 0.75,
        real_prior_weight: float = 1.0,
        octave_model: OctaveModel | None = None,
        network_window_s: float = DEFAULT_NETWORK_WINDOW_S,
    ) -> None:
        if not 0 < min_bpm < max_bpm / 2:
            raise ValueError(f"need 0 < min_bpm < max_bpm / 2, got {min_bpm} and {max_bpm}")
        if not 0 <= min_periodicity < 1:
            raise ValueError(f"min_periodicity must be in [0, 1), got {min_periodicity}")
        if not min_onsets_per_min >= 0:
            raise ValueError(f"min_onsets_per_min must be >= 0, got {min_onsets_per_min}")
        if not 0 <= alternative_below <= 1:
            raise ValueError(f"alternative_below must be in [0, 1], got {alternative_below}")
        if not real_prior_weight >= 0:
            raise ValueError(f"real_prior_weight must be >= 0, got {real_prior_weight}")
        if not 0 < _filterbank(accent_max_hz)[2] < _N_MELS:
            raise ValueError(f"accent_max_hz must be inside the mel bands (30 Hz - 11 kHz), got {accent_max_hz} Hz")
        if not network_window_s > 60.0 / min_bpm * 4:
            raise ValueError(f"network_window_s must hold four beats at min_bpm, got {network_window_s} s")
        self.settings = TempoSettings(
            min_bpm=min_bpm,
            max_bpm=max_bpm,
            min_periodicity=min_periodicity,
            min_onsets_per_min=min_onsets_per_min,
            accent_max_hz=accent_max_hz,
            alternative_below=alternative_below,
            real_prior_weight=real_prior_weight,
            octave_model=octave_model if octave_model is not None else OctaveModel.default(),
            network_window_s=network_window_s,
        )

    def check(self) -> None:
        """Analyse a click track in the middle of the BPM range end to end (this also compiles librosa's numba
        beat tracker, a few seconds once per process); raise FatalAnalyzerError when the result is wrong."""
        period = round(60.0 * ANALYSIS_RATE_HZ / math.sqrt(self.settings.min_bpm * self.settings.max_bpm))
        bpm = 60.0 * ANALYSIS_RATE_HZ / period
        clicks = np.zeros(round(max(3.0 * 60.0 / self.settings.min_bpm, 12.0 * 60.0 / bpm) * ANALYSIS_RATE_HZ))
        clicks[::period] = 1.0
        session = TempoSession(self.settings, clicks.size / ANALYSIS_RATE_HZ)
        session.feed(AudioBlock(native=clicks[None, :].astype(np.float32), mono=clicks.astype(np.float32), start_s=0.0))
        result = session.finish()
        if result.bpm is None or abs(result.bpm - bpm) > 0.5 or result.beat_times_s.size < 10:
            raise FatalAnalyzerError(
                f"tempo: a {bpm:.2f} BPM click track read {result.bpm} BPM with {result.beat_times_s.size} beats"
            )

    def estimate(self, features: ClipFeatures) -> TempoResult:
        """The result for a track's precomputed :func:`clip_features` (the same as feeding its audio)."""
        return estimate_tempo(features, self.settings)

    def start(self, info: AudioInfo) -> TempoSession:
        """Begin analysing one track (its format does not matter: the session reads the mono signal)."""
        return TempoSession(self.settings, info.duration_s)
