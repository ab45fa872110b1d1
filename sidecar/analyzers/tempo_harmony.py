"""Harmony envelopes for the octave choice: how much the pitch content changed, frame by frame, from the same power
spectra the onset envelopes are made of.

Chord changes mostly fall on beats and bar lines (Goto and Muraoka's beat tracker used chord-change detection to
find bar lines), so the periodicity of a chord-change envelope at 2, 3 and 4 beats is evidence for the metrical level
a candidate tempo sits at, and it does not depend on the drums. Two envelopes, each a per-frame float:

- ``chroma``: the spectrum's power between :data:`CHROMA_MIN_HZ` and :data:`CHROMA_MAX_HZ`, folded into the 12
  pitch classes by each FFT bin's centre frequency (equal temperament, A = 440 Hz), square-rooted;
- ``bass``: the square-rooted power spectrum of the bins between :data:`BASS_MIN_HZ` and :data:`BASS_MAX_HZ`
  (bass notes; at 21.5 Hz per bin the bins are too coarse to name pitch classes, not to see a note change).

For each, the value at frame ``k`` is the cosine distance between the mean vector of frames ``k - w + 1 .. k`` and
that of the ``w`` frames before (:data:`NOVELTY_FRAMES`): 0 for a steady chord, up to 1 for a change to disjoint
pitch classes; 0 where either window is near silent (below :data:`SILENCE_LEVEL` per frame). The envelope lags the
change by ``w`` frames, which does not matter to the autocorrelation the cues read.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt
import scipy.sparse

CHROMA_MIN_HZ = 200.0
CHROMA_MAX_HZ = 5000.0
BASS_MIN_HZ = 40.0
BASS_MAX_HZ = 250.0
NOVELTY_FRAMES = 8
"""Frames per window of the change measure (93 ms at 86.13 frames/s): long enough to average over drum hits, short
enough for two chords a bar at 210 BPM. A fixed choice, not tuned."""
SILENCE_LEVEL = 1e-4
"""Square-rooted power per frame (full-scale sine = 1) below which a window counts as silent (-80 dB)."""


@functools.cache
def chroma_basis(sample_rate_hz: float, frame_length: int) -> scipy.sparse.csr_array:
    """Sparse (12, frame_length // 2 + 1) matrix summing the power of each FFT bin into its pitch class (row 0 = C)."""
    frequencies_hz = np.fft.rfftfreq(frame_length, 1.0 / sample_rate_hz)
    bins = np.flatnonzero((frequencies_hz >= CHROMA_MIN_HZ) & (frequencies_hz <= CHROMA_MAX_HZ))
    pitch_class = np.round(12.0 * np.log2(frequencies_hz[bins] / 440.0) + 9.0).astype(int) % 12
    values = np.ones(bins.size, np.float32)
    return scipy.sparse.csr_array((values, (pitch_class, bins)), shape=(12, frequencies_hz.size))


@functools.cache
def bass_bins(sample_rate_hz: float, frame_length: int) -> slice:
    """The FFT bins of the bass envelope."""
    frequencies_hz = np.fft.rfftfreq(frame_length, 1.0 / sample_rate_hz)
    inside = np.flatnonzero((frequencies_hz >= BASS_MIN_HZ) & (frequencies_hz <= BASS_MAX_HZ))
    return slice(int(inside[0]), int(inside[-1]) + 1)


class WindowNovelty:
    """The streamed change measure of one envelope: push vectors (one row per frame), get one value per frame."""

    def __init__(self, width: int = NOVELTY_FRAMES) -> None:
        self._width = width
        self._tail: npt.NDArray[np.float64] | None = None

    def push(self, rows: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Novelty of each of ``rows`` (shape (n, d)), continuing from the rows pushed before (zeros before the
        first)."""
        w = self._width
        if self._tail is None:
            self._tail = np.zeros((2 * w - 1, rows.shape[1]))
        joined = np.concatenate([self._tail, rows.astype(np.float64)])
        sums = np.concatenate([np.zeros((1, joined.shape[1])), np.cumsum(joined, axis=0)])
        end = np.arange(2 * w - 1, joined.shape[0]) + 1
        recent = sums[end] - sums[end - w]
        older = sums[end - w] - sums[end - 2 * w]
        recent_norm = np.linalg.norm(recent, axis=1)
        older_norm = np.linalg.norm(older, axis=1)
        audible = (recent.sum(axis=1) >= SILENCE_LEVEL * w) & (older.sum(axis=1) >= SILENCE_LEVEL * w)
        cosine = np.einsum("ij,ij->i", recent, older) / np.maximum(recent_norm * older_norm, 1e-30)
        self._tail = joined[-(2 * w - 1) :]
        return np.where(audible, 1.0 - cosine, 0.0).astype(np.float32)
