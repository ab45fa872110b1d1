"""EBU R128 / ITU-R BS.1770-4 loudness, loudness range, true peak and ReplayGain 2.0 values, streamed.

A numpy/scipy implementation fed block by block (chosen over pyloudnorm and pyebur128 by measurement, see
``docs/benchmarks/loudness.md``). Memory is bounded whatever the track length: the filter state, the last 3 s of
100-ms energies and two fixed histograms of block loudness.

What is measured, on the file's native channels and rate:

- **K-weighting**: the two BS.1770 biquads (high shelf +4 dB, 38 Hz high pass) designed for the file's rate.
- **Channel weights** (BS.1770-4 table 3): 1.0 for L, R, C; 1.41 for the surround pair; the LFE is excluded.
  1-5 channels follow libebur128's default order (mono; L R; L R C; L R C S...; L R C Ls Rs: channels 4 and 5
  of a 5-channel file weigh 1.41). 6 channels are FFmpeg's 5.1 order L R C LFE Ls Rs (weights 1, 1, 1, 0,
  1.41, 1.41). More than 6 channels: the analyzer is told only the channel count, so it assumes FFmpeg's
  6.1/7.1 order, excludes channel 4 (index 3) as the LFE and weighs every other channel 1.0, except indices 4
  and 5 (the surround pair of 5.1, 6.1 and 7.1), which weigh 1.41.
- **Integrated loudness** (LUFS): 400-ms blocks every 100 ms (a block of 100 ms is ``round(rate / 10)``
  samples), absolute gate -70 LUFS, relative gate -10 LU. Only whole blocks count: less than 0.4 s of audio has
  no block and no loudness (None).
- **Loudness range** (LU, EBU Tech 3342): 3-s short-term blocks every 100 ms, gates -70 LUFS and -20 LU, the
  spread between the 10th and 95th percentile. 0.0 when no 3-s block is above the gates.
- **True peak** (dBTP, BS.1770-4 annex 2): the signal oversampled 4x below 96 kHz, 2x below 176.4 kHz and not at
  all from 176.4 kHz up (already 4x of 44.1 kHz), with libsoxr's linear-phase low-pass, maximum over all channels
  including the LFE.
- **Sample peak** (dBFS): maximum absolute sample over all channels.
- **ReplayGain 2.0**: track gain = -18 LUFS - integrated loudness (dB); the peak written beside it is the true
  peak, linear (1.0 = full scale), which is never below the sample peak and protects against inter-sample clipping.

The gating blocks are kept as a histogram of block loudness (:data:`HISTOGRAM_BINS` bins of
:data:`HISTOGRAM_STEP_LU` from :data:`HISTOGRAM_FLOOR_LUFS`); :func:`album_gain` pools the histograms of an
album's tracks as one programme. A block's loudness is represented by its bin centre, so its energy is off by at
most half a bin (0.005 LU) and the integrated loudness computed from the histogram by at most 0.005 LU (the gates
move by as much); the same holds for the LRA percentiles (0.01 LU at most for their difference).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt
import soxr
from numpy.lib.stride_tricks import sliding_window_view
from scipy import signal

from sidecar.analyzers.audio import AudioBlock
from sidecar.analyzers.versions import VERSIONS
from sidecar.domain import AudioInfo, LoudnessResult
from sidecar.errors import AnalyzerError

REFERENCE_LUFS = -18.0
"""ReplayGain 2.0 reference level."""

HISTOGRAM_FLOOR_LUFS = -70.0
"""Lower edge of the first histogram bin: the BS.1770 absolute gate (quieter blocks are not counted)."""
HISTOGRAM_STEP_LU = 0.01
"""Width of one histogram bin."""
HISTOGRAM_BINS = 10000
"""Number of bins: -70 to +30 LUFS. A louder block counts in the last bin; no real file gets there (K-weighting
lifts a full-scale signal by at most about 4 dB, so even 24 full-scale channels stay below +20 LUFS)."""

_BLOCK_SEGMENTS = 4  # 400-ms gating block = 4 x 100 ms
_SHORT_TERM_SEGMENTS = 30  # 3-s short-term block = 30 x 100 ms
_ABSOLUTE_GATE_LUFS = -70.0
_RELATIVE_GATE_LU = -10.0
_RANGE_RELATIVE_GATE_LU = -20.0
_RANGE_LOW_PERCENTILE = 0.10
_RANGE_HIGH_PERCENTILE = 0.95
_LOUDNESS_OFFSET = -0.691  # BS.1770: L = -0.691 + 10 log10(sum of weighted mean squares)
_SURROUND_WEIGHT = 1.41


def channel_weights(channels: int) -> npt.NDArray[np.float64]:
    """BS.1770-4 weight of each channel for a file with ``channels`` channels (order as in the module docstring).

    Raises ``ValueError`` for fewer than one channel.
    """
    if channels < 1:
        raise ValueError(f"a track needs at least one channel, got {channels}")
    weights = np.ones(channels)
    if channels == 5:
        weights[3:5] = _SURROUND_WEIGHT
    elif channels >= 6:
        weights[3] = 0.0
        weights[4:6] = _SURROUND_WEIGHT
    return weights


def k_weighting_sos(sample_rate_hz: int) -> npt.NDArray[np.float64]:
    """The BS.1770 K-weighting filter for ``sample_rate_hz`` as second-order sections, shape (2, 6).

    The analogue prototypes of the two 48 kHz biquads in BS.1770 (shelf: 1681.97 Hz, +4.00 dB, Q 0.7072; high
    pass: 38.135 Hz, Q 0.5003) mapped with the bilinear transform, so every rate gets the same response; at 48 kHz
    the coefficients equal the standard's to about 1e-8.
    """
    shelf_hz, shelf_gain_db, shelf_q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * shelf_hz / sample_rate_hz)
    vh = 10.0 ** (shelf_gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / shelf_q + k * k
    shelf = [
        (vh + vb * k / shelf_q + k * k) / a0,
        2.0 * (k * k - vh) / a0,
        (vh - vb * k / shelf_q + k * k) / a0,
        1.0,
        2.0 * (k * k - 1.0) / a0,
        (1.0 - k / shelf_q + k * k) / a0,
    ]
    pass_hz, pass_q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * pass_hz / sample_rate_hz)
    a0 = 1.0 + k / pass_q + k * k
    high_pass = [1.0, -2.0, 1.0, 1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / pass_q + k * k) / a0]
    return np.array([shelf, high_pass])


def oversampling_factor(sample_rate_hz: int) -> int:
    """True-peak oversampling: 4x below 96 kHz, 2x below 176.4 kHz, none from 176.4 kHz up."""
    if sample_rate_hz < 96000:
        return 4
    if sample_rate_hz < 176400:
        return 2
    return 1


_BIN_LUFS: npt.NDArray[np.float64] = HISTOGRAM_FLOOR_LUFS + (np.arange(HISTOGRAM_BINS, dtype=np.float64) + 0.5) * (
    HISTOGRAM_STEP_LU
)
_BIN_ENERGY = 10.0 ** ((_BIN_LUFS - _LOUDNESS_OFFSET) / 10.0)
_FLOOR_ENERGY = 10.0 ** ((HISTOGRAM_FLOOR_LUFS - _LOUDNESS_OFFSET) / 10.0)


def _add_to_histogram(histogram: npt.NDArray[np.float64], mean_energy: npt.NDArray[np.float64]) -> None:
    """Count blocks (weighted mean squares) at or above -70 LUFS into ``histogram`` in place."""
    loud = mean_energy[mean_energy >= _FLOOR_ENERGY]
    if loud.size == 0:
        return
    lufs = _LOUDNESS_OFFSET + 10.0 * np.log10(loud)
    index = np.clip(((lufs - HISTOGRAM_FLOOR_LUFS) / HISTOGRAM_STEP_LU).astype(np.int64), 0, HISTOGRAM_BINS - 1)
    histogram += np.bincount(index, minlength=HISTOGRAM_BINS)


def _gated_mean_lufs(counts: npt.NDArray[np.float64], relative_gate_lu: float) -> tuple[float, npt.NDArray[np.bool_]]:
    """Loudness of the blocks above the absolute and relative gates, and the mask of bins that passed.

    ``counts`` is a histogram of blocks at or above -70 LUFS (so the absolute gate is already applied); returns
    (-inf, empty mask) when it is empty.
    """
    total = counts.sum()
    if total == 0:
        return -math.inf, np.zeros(HISTOGRAM_BINS, dtype=np.bool_)
    ungated = float(counts @ _BIN_ENERGY) / total
    gate_lufs = _LOUDNESS_OFFSET + 10.0 * math.log10(ungated) + relative_gate_lu
    passed = np.greater(_BIN_LUFS, gate_lufs)
    kept = counts * passed
    return _LOUDNESS_OFFSET + 10.0 * math.log10(float(kept @ _BIN_ENERGY) / kept.sum()), passed


def integrated_loudness_lufs(histogram: npt.NDArray[np.float64]) -> float | None:
    """BS.1770-4 gated loudness of the 400-ms blocks counted in ``histogram`` (None when it holds no block).

    Raises ``ValueError`` when ``histogram`` is not a :data:`HISTOGRAM_BINS`-bin gating histogram.
    """
    if histogram.shape != (HISTOGRAM_BINS,):
        raise ValueError(f"gating histogram must have shape ({HISTOGRAM_BINS},), got {histogram.shape}")
    lufs, _ = _gated_mean_lufs(histogram, _RELATIVE_GATE_LU)
    return None if math.isinf(lufs) else lufs


def _loudness_range_lu(short_term: npt.NDArray[np.float64]) -> float:
    """EBU Tech 3342 LRA from a histogram of 3-s short-term loudness; 0.0 when no block passes the gates."""
    _, passed = _gated_mean_lufs(short_term, _RANGE_RELATIVE_GATE_LU)
    kept = short_term * passed
    total = int(kept.sum())
    if total == 0:
        return 0.0
    cumulative = np.cumsum(kept)

    def percentile_lufs(fraction: float) -> float:
        rank = math.floor((total - 1) * fraction + 0.5)  # 0-based rank of the value, nearest rank
        return float(_BIN_LUFS[int(np.searchsorted(cumulative, rank + 1))])

    return percentile_lufs(_RANGE_HIGH_PERCENTILE) - percentile_lufs(_RANGE_LOW_PERCENTILE)


def _dbfs(linear: float) -> float | None:
    return 20.0 * math.log10(linear) if linear > 0.0 else None


def _abs_max(samples: npt.NDArray[np.float32]) -> float:
    """Largest absolute value of a non-empty array, without the temporary array ``np.abs`` would allocate."""
    return max(float(samples.max()), -float(samples.min()))


class TruePeakMeter:
    """Streaming true peak and sample peak (linear, 1.0 = full scale) of native audio, all channels.

    Each channel is oversampled by its own libsoxr stream (the same filter as one multi-channel stream, without the
    interleaving copy), in pieces of :attr:`CHUNK_SAMPLES` input samples so that the oversampled piece stays in the
    CPU cache while its maximum is taken.
    """

    CHUNK_SAMPLES: ClassVar[int] = 16384

    def __init__(self, *, sample_rate_hz: int, channels: int) -> None:
        self._sample_peak = 0.0
        self._true_peak = 0.0
        factor = oversampling_factor(sample_rate_hz)
        self._oversamplers = [
            soxr.ResampleStream(sample_rate_hz, sample_rate_hz * factor, 1, dtype="float32", quality="HQ")
            for _ in range(channels if factor > 1 else 0)
        ]

    def feed(self, native: npt.NDArray[np.float32]) -> None:
        """Consume the next samples, float32 of shape (channels, n) with n > 0."""
        self._sample_peak = max(self._sample_peak, _abs_max(native))
        for start in range(0, native.shape[1] if self._oversamplers else 0, self.CHUNK_SAMPLES):
            for channel, oversampler in zip(native, self._oversamplers, strict=True):
                piece = np.ascontiguousarray(channel[start : start + self.CHUNK_SAMPLES], dtype=np.float32)
                self._track(oversampler.resample_chunk(piece))

    def _track(self, oversampled: npt.NDArray[np.float32]) -> None:
        if oversampled.size:
            self._true_peak = max(self._true_peak, _abs_max(oversampled))

    def finish(self) -> tuple[float, float]:
        """(true peak, sample peak) of everything fed; the true peak is never below the sample peak, and both are
        0.0 for digital silence."""
        for oversampler in self._oversamplers:
            self._track(oversampler.resample_chunk(np.zeros(0, np.float32), last=True))
        if not self._oversamplers:
            self._true_peak = self._sample_peak
        true_peak = max(self._true_peak, self._sample_peak) if self._sample_peak > 0.0 else 0.0
        return true_peak, self._sample_peak


class GatedEnergy:
    """Streaming K-weighted block energies of native audio, counted into the gating and short-term histograms."""

    def __init__(self, *, sample_rate_hz: int, channels: int) -> None:
        weights = channel_weights(channels)
        self._measured = np.flatnonzero(weights > 0.0)
        self._weights = weights[self._measured]
        self._sos = k_weighting_sos(sample_rate_hz)
        self._filter_state = np.zeros((self._sos.shape[0], self._measured.size, 2))
        self._segment_len = max(1, round(sample_rate_hz / 10))
        self._partial = np.zeros(0)
        self._recent = np.zeros(0)  # the last (up to 29) 100-ms energy sums, for the overlapping blocks
        self.gating = np.zeros(HISTOGRAM_BINS)
        """Histogram of the 400-ms block loudness (see the module docstring)."""
        self.short_term = np.zeros(HISTOGRAM_BINS)
        """Histogram of the 3-s short-term loudness."""

    def feed(self, native: npt.NDArray[np.float32]) -> None:
        """Consume the next samples, float32 of shape (channels, n)."""
        measured = native if self._measured.size == native.shape[0] else native[self._measured]
        filtered, self._filter_state = signal.sosfilt(self._sos, measured, axis=-1, zi=self._filter_state)
        np.square(filtered, out=filtered)
        filtered *= self._weights[:, np.newaxis]
        self._add_energy(filtered.sum(axis=0))

    def _add_energy(self, energy: npt.NDArray[np.float64]) -> None:
        """Cut the weighted squared samples into 100-ms sums and count the blocks they complete."""
        joined = np.concatenate([self._partial, energy])
        whole = joined.size // self._segment_len * self._segment_len
        self._partial = joined[whole:]
        if whole == 0:
            return
        segments = np.concatenate([self._recent, joined[:whole].reshape(-1, self._segment_len).sum(axis=1)])
        new = segments.size - self._recent.size
        self._count_blocks(segments, new, _BLOCK_SEGMENTS, self.gating)
        self._count_blocks(segments, new, _SHORT_TERM_SEGMENTS, self.short_term)
        self._recent = segments[-(_SHORT_TERM_SEGMENTS - 1) :]

    def _count_blocks(
        self, segments: npt.NDArray[np.float64], new: int, length: int, histogram: npt.NDArray[np.float64]
    ) -> None:
        """Count every block of ``length`` segments that ends in one of the ``new`` last segments."""
        usable = segments[max(0, segments.size - new - length + 1) :]
        if usable.size < length:
            return
        sums = sliding_window_view(usable, length).sum(axis=1)
        _add_to_histogram(histogram, sums / (length * self._segment_len))


class LoudnessSession:
    """Streaming state for one track: see the module docstring for what is measured."""

    def __init__(self, *, sample_rate_hz: int, channels: int) -> None:
        if sample_rate_hz <= 0:
            raise AnalyzerError(f"loudness needs a positive sample rate, got {sample_rate_hz} Hz")
        if channels < 1:
            raise AnalyzerError(f"loudness needs at least one channel, got {channels}")
        self._channels = channels
        self._peaks = TruePeakMeter(sample_rate_hz=sample_rate_hz, channels=channels)
        self._energy = GatedEnergy(sample_rate_hz=sample_rate_hz, channels=channels)

    def feed(self, block: AudioBlock) -> None:
        """Consume the next block of native audio, float32 of shape (channels, n)."""
        native = block.native
        if native.ndim != 2 or native.shape[0] != self._channels:
            raise AnalyzerError(f"expected audio of shape ({self._channels}, n), got {native.shape}")
        if native.shape[1] == 0:
            return
        self._peaks.feed(native)
        self._energy.feed(native)

    def finish(self) -> LoudnessResult:
        """The result for everything fed; silence and input shorter than 0.4 s give None loudness."""
        true_peak, sample_peak = self._peaks.finish()
        loudness = integrated_loudness_lufs(self._energy.gating)
        return LoudnessResult(
            loudness_lufs=loudness,
            loudness_range_lu=_loudness_range_lu(self._energy.short_term),
            true_peak_dbtp=_dbfs(true_peak),
            sample_peak_dbfs=_dbfs(sample_peak),
            replaygain_track_gain_db=None if loudness is None else REFERENCE_LUFS - loudness,
            replaygain_track_peak=true_peak,
            gating_histogram=self._energy.gating.copy(),
        )


class LoudnessAnalyzer:
    """EBU R128 loudness, LRA, true and sample peak, ReplayGain 2.0 track values (``"loudness"``)."""

    name: ClassVar[str] = "loudness"
    version: ClassVar[int] = VERSIONS[name]

    def check(self) -> None:
        """Nothing to probe: numpy, scipy and soxr are imported with the module."""

    def start(self, info: AudioInfo) -> LoudnessSession:
        """Begin measuring one track at its native rate and channel count."""
        return LoudnessSession(sample_rate_hz=info.sample_rate_hz, channels=info.channels)


@dataclass(frozen=True, slots=True, kw_only=True)
class AlbumGain:
    """ReplayGain 2.0 album values: the album's tracks measured as one programme."""

    replaygain_album_gain_db: float | None  # -18 LUFS - loudness_lufs; None when every track is silent
    replaygain_album_peak: float  # highest track peak, linear (1.0 = full scale)
    loudness_lufs: float | None  # integrated loudness of the pooled gating blocks


def album_gain(results: Sequence[LoudnessResult]) -> AlbumGain:
    """Album gain and peak per ReplayGain 2.0: the gating blocks of all ``results`` pooled as one programme.

    Equal to measuring the tracks played back to back, except for the few blocks that would straddle two
    tracks, within the histogram's quantisation (0.005 LU). Raises ``ValueError`` for no results or a result
    whose ``gating_histogram`` is not a :data:`HISTOGRAM_BINS`-bin histogram.
    """
    if not results:
        raise ValueError("album_gain needs at least one track result")
    pooled = np.zeros(HISTOGRAM_BINS)
    for result in results:
        if result.gating_histogram.shape != (HISTOGRAM_BINS,):
            raise ValueError(
                f"gating histogram must have shape ({HISTOGRAM_BINS},), got {result.gating_histogram.shape}"
            )
        pooled += result.gating_histogram
    loudness = integrated_loudness_lufs(pooled)
    return AlbumGain(
        replaygain_album_gain_db=None if loudness is None else REFERENCE_LUFS - loudness,
        replaygain_album_peak=max(result.replaygain_track_peak for result in results),
        loudness_lufs=loudness,
    )
