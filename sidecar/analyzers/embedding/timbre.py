"""``timbre-v1``: a DSP "how it sounds" embedding that needs no model weights.

Computed in one streaming pass over the 22 050 Hz mono signal (2048-sample Hann frames, hop 1024 = 46.4 ms; frames
quieter than -70 dBFS RMS are skipped). Per frame:

=====================  ====  ==============================================================================
group                  dims  per-frame value (statistics taken over the track)
=====================  ====  ==============================================================================
MFCC mean              19    c1..c19 of the DCT-II (orthonormal) of 64 log-mel bands (dB, 0-11 025 Hz)
MFCC std               20    c0..c19 (c0 is the frame level; its spread, not its mean, is kept)
delta-MFCC std         20    frame-to-frame change of c0..c19
spectral contrast      14    mean and std of 7 octave bands (<200 Hz, 200-400 ... 6.4-11 kHz): peak minus
                             valley level in dB (top/bottom 2 % of the band's bins)
chroma                 24    mean and std of the 12 pitch-class energies (max-normalised per frame), rotated
                             so the strongest mean pitch class comes first: key-independent
spectral shape          8    mean and std of centroid and bandwidth (octaves re 1 kHz), 85 % roll-off
                             (octaves re 1 kHz) and flatness (dB)
dynamics                3    std of the frame level (dB); mean and std of spectral flux (mean positive
                             log-mel increase per frame, dB)
tempo                   1    log2(tempo / 120 BPM), tempo from the flux envelope's autocorrelation
=====================  ====  ==============================================================================

Every dimension is independent of the input gain (levels enter only as differences of dB values), so a track
played 6 dB louder has the same vector (up to the -70 dBFS silence gate and the 80 dB per-frame floor).

**Standardisation** is fixed, not fitted per library, so vectors from any two tracks are comparable: each dimension
is centred on the mean of a reference corpus of generic full mixes and divided by one scale per group (the RMS of
the group's standard deviations on that corpus), both rounded and frozen in :data:`_CENTER` and
:data:`_GROUP_SCALE` (``scripts/timbre_reference.py`` prints them); then each group is multiplied by
``sqrt(weight / dims)`` so that its share of the squared norm follows :data:`_GROUP_WEIGHTS` whatever its size, and
the vector is L2-normalised. Changing any constant changes the model: it would be ``timbre-v2``.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
from scipy import fft as sp_fft

SAMPLE_RATE_HZ = 22050
N_FFT = 2048
HOP_SAMPLES = 1024
N_MELS = 64
N_MFCC = 20
SILENCE_DBFS = -70.0
DYNAMIC_RANGE_DB = 80.0  # per-frame floor of log-mel and contrast values below the frame's peak
_CONTRAST_EDGES_HZ = (0.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0, SAMPLE_RATE_HZ / 2)
_CONTRAST_QUANTILE = 0.02
_ROLLOFF = 0.85
_EPS = 1e-10

MODEL_NAME = "timbre-v1"
"""Name stored with every vector of this model."""

# Per-frame feature layout (before statistics).
_MFCC = slice(0, N_MFCC)
_DELTA = slice(N_MFCC, 2 * N_MFCC)
_CONTRAST = slice(2 * N_MFCC, 2 * N_MFCC + 7)
_CHROMA = slice(_CONTRAST.stop, _CONTRAST.stop + 12)
_SHAPE = slice(_CHROMA.stop, _CHROMA.stop + 4)
_LEVEL = _SHAPE.stop
_FLUX = _LEVEL + 1
_N_FRAME_FEATURES = _FLUX + 1

GROUPS: dict[str, int] = {
    "mfcc_mean": N_MFCC - 1,
    "mfcc_std": N_MFCC,
    "delta_mfcc_std": N_MFCC,
    "contrast": 14,
    "chroma": 24,
    "shape": 8,
    "dynamics": 3,
    "tempo": 1,
}
"""Dimension of each feature group, in vector order."""
DIM = sum(GROUPS.values())
"""Length of a ``timbre-v1`` vector (109)."""

_GROUP_WEIGHTS: dict[str, float] = {
    "mfcc_mean": 1.0,
    "mfcc_std": 0.7,
    "delta_mfcc_std": 0.5,
    "contrast": 0.7,
    "chroma": 0.4,
    "shape": 0.6,
    "dynamics": 0.4,
    "tempo": 0.2,
}
"""Share of the squared norm each group gets (before the final L2), independent of its number of dimensions."""


# Fixed standardisation (printed by scripts/timbre_reference.py; see the module docstring): per-dimension centre
# and one scale per group, from a reference corpus of generic full mixes. Frozen for timbre-v1.
# fmt: off
_CENTER: dict[str, tuple[float, ...]] = {
    "mfcc_mean": (
        94.0, -14.0, 5.6, -12.0, -6.5, -8.1, -1.2, -4.1, 2.6, -1.0, 0.46, -0.58, 1.5, -3.5, -0.23,
        -2.3, -2.3, -1.7, -0.26
    ),
    "mfcc_std": (
        48.0, 34.0, 21.0, 14.0, 13.0, 10.0, 9.6, 9.0, 8.8, 8.7, 9.7, 9.9, 11.0, 11.0, 11.0, 10.0,
        9.7, 9.0, 9.5, 10.0
    ),
    "delta_mfcc_std": (
        45.0, 23.0, 16.0, 11.0, 11.0, 7.4, 6.9, 5.9, 6.0, 5.3, 5.5, 5.4, 5.5, 5.7, 5.8, 5.3,
        5.4, 5.3, 5.4, 5.9
    ),
    "contrast": (47.0, 42.0, 56.0, 61.0, 56.0, 52.0, 80.0, 12.0, 13.0, 12.0, 13.0, 13.0, 13.0, 0.31),
    "chroma": (
        0.47, 0.14, 0.24, 0.18, 0.18, 0.29, 0.1, 0.28, 0.18, 0.16, 0.17, 0.18, 0.37, 0.2, 0.3, 0.23,
        0.23, 0.35, 0.13, 0.31, 0.22, 0.21, 0.26, 0.24
    ),
    "shape": (-0.25, 0.61, 1.9, 0.3, -0.42, 0.77, -18.0, 4.4),
    "dynamics": (3.2, 2.5, 4.4),
    "tempo": (-0.069,),
}
# fmt: on
_GROUP_SCALE: dict[str, float] = {
    "mfcc_mean": 9.3,
    "mfcc_std": 5.6,
    "delta_mfcc_std": 4.4,
    "contrast": 4.4,
    "chroma": 0.1,
    "shape": 1.6,
    "dynamics": 1.1,
    "tempo": 0.41,
}

_CENTER_VECTOR = np.concatenate([np.asarray(_CENTER[g], dtype=np.float64) for g in GROUPS])
_SCALE_VECTOR = np.concatenate([np.full(size, _GROUP_SCALE[g]) for g, size in GROUPS.items()])


def _hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _mel_edges_hz() -> npt.NDArray[np.float64]:
    """N_MELS + 2 band edges, equally spaced on the HTK mel scale from 0 Hz to Nyquist."""
    mel_points = np.linspace(0.0, float(_hz_to_mel(np.array(SAMPLE_RATE_HZ / 2))), N_MELS + 2)
    return np.asarray(700.0 * (10.0 ** (mel_points / 2595.0) - 1.0))


def _mel_centers_hz() -> npt.NDArray[np.float64]:
    return _mel_edges_hz()[1:-1]


def _mel_filterbank() -> npt.NDArray[np.float32]:
    """Triangular HTK-mel filters, area-normalised, shape (N_MELS, N_FFT // 2 + 1)."""
    freqs = np.linspace(0.0, SAMPLE_RATE_HZ / 2, N_FFT // 2 + 1)
    hz_points = _mel_edges_hz()
    bank = np.zeros((N_MELS, freqs.size))
    for m in range(N_MELS):
        lo, mid, hi = hz_points[m], hz_points[m + 1], hz_points[m + 2]
        rising = (freqs - lo) / (mid - lo)
        falling = (hi - freqs) / (hi - mid)
        bank[m] = np.maximum(0.0, np.minimum(rising, falling)) * 2.0 / (hi - lo)
    return bank.astype(np.float32)


def _chroma_filterbank() -> npt.NDArray[np.float32]:
    """Each FFT bin from 55 Hz to 5 kHz assigned to its nearest pitch class, shape (12, N_FFT // 2 + 1)."""
    freqs = np.linspace(0.0, SAMPLE_RATE_HZ / 2, N_FFT // 2 + 1)
    bank = np.zeros((12, freqs.size), dtype=np.float32)
    usable = (freqs >= 55.0) & (freqs <= 5000.0)
    pitch = np.round(12.0 * np.log2(freqs[usable] / 440.0) + 69.0).astype(int) % 12
    bank[pitch, np.flatnonzero(usable)] = 1.0
    return bank


def _dct_matrix() -> npt.NDArray[np.float32]:
    """Orthonormal DCT-II rows 0..N_MFCC-1 over N_MELS bands, shape (N_MELS, N_MFCC)."""
    return np.asarray(sp_fft.dct(np.eye(N_MELS), type=2, norm="ortho", axis=0)[:N_MFCC].T, dtype=np.float32)


class TimbreExtractor:
    """Streaming ``timbre-v1`` computation: :meth:`feed` mono 22 050 Hz chunks in order, then :meth:`finish`."""

    def __init__(self) -> None:
        self._window = np.hanning(N_FFT + 1)[:-1].astype(np.float32)
        # Mel and chroma filters in one (bins, N_MELS + 12) matrix: one matrix product per chunk.
        self._filters = np.ascontiguousarray(np.concatenate((_mel_filterbank(), _chroma_filterbank())).T)
        self._dct = _dct_matrix()
        freqs = np.linspace(0.0, SAMPLE_RATE_HZ / 2, N_FFT // 2 + 1)
        self._log_freqs = np.log2(np.maximum(freqs, 1.0) / 1000.0).astype(np.float32)
        self._log_freqs_sq = self._log_freqs**2
        self._mel_log_freqs = np.log2(np.maximum(_mel_centers_hz(), 1.0) / 1000.0).astype(np.float32)
        self._bands = [
            np.flatnonzero((freqs >= lo) & (freqs < hi)) for lo, hi in itertools.pairwise(_CONTRAST_EDGES_HZ)
        ]
        self._tail = np.zeros(0, np.float32)
        self._prev_log_mel: npt.NDArray[np.float32] | None = None
        self._prev_mfcc: npt.NDArray[np.float32] | None = None
        self._sum = np.zeros(_N_FRAME_FEATURES)
        self._sum_sq = np.zeros(_N_FRAME_FEATURES)
        self._count = 0
        self._flux_envelope: list[npt.NDArray[np.float32]] = []

    def feed(self, mono: npt.NDArray[np.float32]) -> None:
        """Consume the next chunk of the mono signal (any length)."""
        buffer = np.concatenate((self._tail, mono.astype(np.float32, copy=False)))
        n_frames = 0 if buffer.size < N_FFT else 1 + (buffer.size - N_FFT) // HOP_SAMPLES
        if n_frames:
            frames = np.lib.stride_tricks.sliding_window_view(buffer, N_FFT)[::HOP_SAMPLES][:n_frames]
            self._frames(frames)
        self._tail = buffer[n_frames * HOP_SAMPLES :].copy()

    def _frames(self, frames: npt.NDArray[np.float32]) -> None:
        spectrum = np.abs(sp_fft.rfft(frames * self._window, axis=1))  # (frames, bins)
        power = spectrum * spectrum
        filtered = power @ self._filters
        mel_power, chroma = filtered[:, :N_MELS], filtered[:, N_MELS:]
        log_mel = 10.0 * np.log10(mel_power + _EPS)
        log_mel = np.maximum(log_mel, log_mel.max(axis=1, keepdims=True) - DYNAMIC_RANGE_DB)
        # Flux runs over every frame (silent ones included) so the tempo envelope keeps its time base.
        previous = log_mel[:1] if self._prev_log_mel is None else self._prev_log_mel[None, :]
        flux = np.maximum(np.diff(log_mel, axis=0, prepend=previous), 0.0).mean(axis=1)
        self._prev_log_mel = log_mel[-1]
        self._flux_envelope.append(flux.astype(np.float32))

        level_db = 10.0 * np.log10(power.sum(axis=1) * (2.0 / (self._window**2).sum() / N_FFT) + _EPS)
        voiced = level_db > SILENCE_DBFS
        if not voiced.any():
            return
        spectrum, mel_power, chroma, log_mel = spectrum[voiced], mel_power[voiced], chroma[voiced], log_mel[voiced]
        mfcc = log_mel @ self._dct
        previous_mfcc = mfcc[:1] if self._prev_mfcc is None else self._prev_mfcc[None, :]
        delta = np.diff(mfcc, axis=0, prepend=previous_mfcc)
        self._prev_mfcc = mfcc[-1]

        features = np.empty((mfcc.shape[0], _N_FRAME_FEATURES), np.float32)
        features[:, _MFCC] = mfcc
        features[:, _DELTA] = delta
        features[:, _CONTRAST] = self._contrast(spectrum)
        features[:, _CHROMA] = chroma / (chroma.max(axis=1, keepdims=True) + _EPS)
        features[:, _SHAPE] = self._shape(spectrum, mel_power)
        features[:, _LEVEL] = level_db[voiced]
        features[:, _FLUX] = flux[voiced]
        self._sum += features.sum(axis=0, dtype=np.float64)
        self._sum_sq += np.square(features, dtype=np.float64).sum(axis=0)
        self._count += features.shape[0]

    def _contrast(self, spectrum: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = np.empty((spectrum.shape[0], len(self._bands)), np.float32)
        for b, bins in enumerate(self._bands):
            band = spectrum[:, bins]
            k = max(1, round(_CONTRAST_QUANTILE * bins.size))
            ordered = np.partition(band, (k - 1, bins.size - k), axis=1)
            valley = ordered[:, :k].mean(axis=1)
            peak = ordered[:, bins.size - k :].mean(axis=1)
            out[:, b] = np.minimum(20.0 * (np.log10(peak + _EPS) - np.log10(valley + _EPS)), DYNAMIC_RANGE_DB)
        return out

    def _shape(self, spectrum: npt.NDArray[np.float32], mel_power: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        total = spectrum.sum(axis=1) + _EPS
        centroid = (spectrum @ self._log_freqs) / total
        bandwidth = np.sqrt(np.maximum((spectrum @ self._log_freqs_sq) / total - centroid**2, 0.0))
        cumulative = np.cumsum(mel_power, axis=1)
        rolloff_band = np.minimum((cumulative < _ROLLOFF * cumulative[:, -1:]).sum(axis=1), N_MELS - 1)
        rolloff = self._mel_log_freqs[rolloff_band]
        log_power = np.log(mel_power + _EPS)
        flatness_db = 10.0 / math.log(10.0) * (log_power.mean(axis=1) - np.log(mel_power.mean(axis=1) + _EPS))
        return np.stack((centroid, bandwidth, rolloff, flatness_db), axis=1)

    def _tempo_bpm(self) -> float:
        """Tempo of the flux envelope (autocorrelation peak, 60-200 BPM, log-Gaussian prior at 120); 120 if flat."""
        envelope = np.concatenate(self._flux_envelope) if self._flux_envelope else np.zeros(0, np.float32)
        frame_rate = SAMPLE_RATE_HZ / HOP_SAMPLES
        min_lag, max_lag = math.floor(frame_rate * 60 / 200), math.ceil(frame_rate * 60 / 60)
        if envelope.size <= max_lag * 2:
            return 120.0
        centred = envelope - envelope.mean()
        spectrum = sp_fft.rfft(centred, n=2 * envelope.size)
        autocorr = sp_fft.irfft(np.abs(spectrum) ** 2)[: max_lag + 1]
        if autocorr[0] <= 0:
            return 120.0
        lags = np.arange(min_lag, max_lag + 1)
        bpm = 60.0 * frame_rate / lags
        prior = np.exp(-0.5 * (np.log2(bpm / 120.0) / 1.0) ** 2)
        best = int(np.argmax(autocorr[min_lag:] / autocorr[0] * prior))
        return float(bpm[best])

    def raw_features(self) -> npt.NDArray[np.float64]:
        """The unstandardised statistics in vector order, shape (:data:`DIM`,); zeros for silent input."""
        if self._count == 0:
            return np.zeros(DIM)
        mean = self._sum / self._count
        std = np.sqrt(np.maximum(self._sum_sq / self._count - mean * mean, 0.0))
        chroma_mean, chroma_std = mean[_CHROMA], std[_CHROMA]
        shift = int(np.argmax(chroma_mean))
        return np.concatenate(
            (
                mean[_MFCC][1:],
                std[_MFCC],
                std[_DELTA],
                mean[_CONTRAST],
                std[_CONTRAST],
                np.roll(chroma_mean, -shift),
                np.roll(chroma_std, -shift),
                np.stack((mean[_SHAPE], std[_SHAPE]), axis=1).reshape(-1),
                [std[_LEVEL], mean[_FLUX], std[_FLUX]],
                [math.log2(self._tempo_bpm() / 120.0)],
            )
        )

    def finish(self) -> npt.NDArray[np.float32]:
        """The L2-normalised ``timbre-v1`` vector; for silent input a fixed unit vector (no timbre to compare)."""
        if self._count == 0:
            vector = np.zeros(DIM, np.float32)
            vector[0] = 1.0
            return vector
        return standardise(self.raw_features())


def standardise(raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Fixed centring, scaling and group weighting of raw statistics, then L2 normalisation."""
    z: npt.NDArray[np.float64] = (raw - _CENTER_VECTOR) / _SCALE_VECTOR
    start = 0
    for group, size in GROUPS.items():
        z[start : start + size] *= math.sqrt(_GROUP_WEIGHTS[group] / size)
        start += size
    norm = float(np.linalg.norm(z))
    return (z / norm).astype(np.float32) if norm > 0 else z.astype(np.float32)
