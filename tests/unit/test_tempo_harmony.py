"""Harmony envelopes: pitch classes land where they should, chord changes are seen, streaming does not matter."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sidecar.analyzers import tempo_harmony
from sidecar.analyzers.audio import ANALYSIS_RATE_HZ
from sidecar.analyzers.tempo import FRAME_RATE_HZ, OnsetEnvelopeStream, mono_envelopes

_C_MAJOR = (261.63, 329.63, 392.0)
_F_SHARP_MAJOR = (369.99, 466.16, 554.37)


def _chords(chords: list[tuple[float, ...]], chord_s: float) -> npt.NDArray[np.float32]:
    """Sustained sine chords, each ``chord_s`` long, without gaps (so only the pitch content changes)."""
    t = np.arange(round(chord_s * ANALYSIS_RATE_HZ)) / ANALYSIS_RATE_HZ
    parts = [sum(0.2 * np.sin(2 * np.pi * f * t) for f in chord) for chord in chords]
    return np.concatenate(parts).astype(np.float32)


def test_chroma_basis_folds_bins_into_pitch_classes() -> None:
    basis = tempo_harmony.chroma_basis(ANALYSIS_RATE_HZ, 1024).toarray()
    frequencies_hz = np.fft.rfftfreq(1024, 1.0 / ANALYSIS_RATE_HZ)
    assert basis.shape == (12, 513)
    assert np.all(basis.sum(axis=0)[(frequencies_hz >= 200) & (frequencies_hz <= 5000)] == 1)  # one class per bin
    assert basis[:, frequencies_hz < 200].sum() == 0
    assert basis[9, int(np.argmin(np.abs(frequencies_hz - 440.0)))] == 1  # A
    assert basis[0, int(np.argmin(np.abs(frequencies_hz - 1046.5)))] == 1  # C


def test_chord_changes_are_peaks_of_the_chroma_envelope() -> None:
    chord_s = 1.0
    envelopes = mono_envelopes(_chords([_C_MAJOR, _F_SHARP_MAJOR] * 4, chord_s), harmony=True)
    assert envelopes.chroma is not None
    assert envelopes.bass is not None
    chroma = envelopes.chroma
    assert chroma.size == envelopes.full.size
    changes = np.arange(1, 8) * chord_s * FRAME_RATE_HZ
    steady = np.ones(chroma.size, bool)
    for change in changes:
        steady[int(change) - 4 : int(change) + tempo_harmony.NOVELTY_FRAMES + 6] = False
        around = chroma[int(change) : int(change) + tempo_harmony.NOVELTY_FRAMES + 4]
        assert around.max() > 0.2, change  # C and F# major share no pitch class (the 1024-point FFT smears them)
    steady[: tempo_harmony.NOVELTY_FRAMES * 2] = False
    assert np.percentile(chroma[steady], 95) < 0.02


def test_silence_has_flat_harmony_envelopes() -> None:
    envelopes = mono_envelopes(np.zeros(5 * ANALYSIS_RATE_HZ, np.float32), harmony=True)
    assert envelopes.chroma is not None
    assert envelopes.bass is not None
    assert not envelopes.chroma.any()
    assert not envelopes.bass.any()


def test_harmony_envelopes_do_not_depend_on_how_the_signal_is_cut() -> None:
    signal = _chords([_C_MAJOR, _F_SHARP_MAJOR, _C_MAJOR], 0.7) + np.random.default_rng(0).normal(
        0.0, 0.01, round(2.1 * ANALYSIS_RATE_HZ)
    ).astype(np.float32)
    whole = mono_envelopes(signal, harmony=True)
    stream = OnsetEnvelopeStream(harmony=True)
    for start in range(0, signal.size, 3001):
        stream.feed(signal[start : start + 3001])
    pieces = stream.envelopes()
    assert whole.chroma is not None
    assert pieces.chroma is not None
    assert whole.bass is not None
    assert pieces.bass is not None
    np.testing.assert_allclose(pieces.chroma, whole.chroma, atol=1e-5)
    np.testing.assert_allclose(pieces.bass, whole.bass, atol=1e-5)
    assert OnsetEnvelopeStream().envelopes().chroma is None  # computed only when asked for
