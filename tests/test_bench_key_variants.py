"""The key-variant benchmark (scripts/bench_key_variants.py): its peaks are the analyzer's, its held-out choice never
sees the scored group, and its variants do what their names say."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from scripts.bench_key_variants import (
    DEFAULT,
    SIGNATURE_FIRST,
    Item,
    Variant,
    estimate_all,
    find_peaks,
    held_out,
)
from sidecar.analyzers.audio import ANALYSIS_RATE_HZ
from sidecar.analyzers.key import ChromaAccumulator
from sidecar.domain import KeySignature

C_MAJOR = KeySignature.parse("C major")


def _tones(midi_notes: tuple[int, ...], duration_s: float) -> npt.NDArray[np.float32]:
    """Notes with six decaying harmonics, sounding together for ``duration_s``."""
    t = np.arange(round(duration_s * ANALYSIS_RATE_HZ)) / ANALYSIS_RATE_HZ
    out = np.zeros_like(t)
    for note in midi_notes:
        f0 = 440.0 * 2.0 ** ((note - 69) / 12)
        out += sum(0.6 ** (k - 1) * np.sin(2 * np.pi * k * f0 * t) for k in range(1, 7))
    return (0.1 * out).astype(np.float32)


def _ii_v_i_i() -> npt.NDArray[np.float32]:
    chords = ((50, 53, 57), (55, 59, 62), (48, 52, 55), (48, 52, 55))  # Dm, G, C, C
    return np.concatenate([_tones(chord, 1.5) for chord in chords] * 2)


def test_find_peaks_summary_is_the_analyzers_chroma() -> None:
    signal = _ii_v_i_i()
    accumulator = ChromaAccumulator()
    accumulator.feed(signal)
    expected = accumulator.summary()
    peaks = find_peaks(signal)
    np.testing.assert_allclose(peaks.summary.chroma, expected.chroma, atol=1e-9)
    assert math.isclose(peaks.summary.tuning_coherence, expected.tuning_coherence, abs_tol=1e-9)
    assert peaks.summary.tonal_frames == expected.tonal_frames


def test_harmonic_share_separates_a_held_tone_from_noise_bursts() -> None:
    tone = _tones((69,), 4.0)
    rng = np.random.default_rng(0)
    bursts = np.zeros_like(tone)
    for start in range(0, tone.size - 2048, ANALYSIS_RATE_HZ // 2):
        bursts[start : start + 1024] = rng.normal(0.0, 0.3, 1024)
    peaks = find_peaks(tone + bursts)
    near_tone = np.abs(peaks.pitch - 69.0) < 0.3
    assert np.median(peaks.harmonic[near_tone]) > 0.8
    assert np.median(peaks.harmonic[~near_tone]) < 0.5


def test_signature_first_keeps_to_the_diatonic_collection() -> None:
    keys = estimate_all(find_peaks(_ii_v_i_i()), [DEFAULT, SIGNATURE_FIRST])
    assert keys[SIGNATURE_FIRST] == C_MAJOR


def test_held_out_choice_never_uses_the_scored_group() -> None:
    good_elsewhere = Variant("plain", "a", 0.0, 0.0)
    good_here = Variant("plain", "b", 0.0, 0.0)
    wrong = KeySignature.parse("F# major")
    items = [
        Item("x", C_MAJOR, {"family": family}, {good_elsewhere: C_MAJOR if family != "f1" else wrong, good_here: wrong})
        for family in ("f1", "f2", "f3")
        for _ in range(2)
    ]
    items[0].keys[good_here] = C_MAJOR  # right only on its own family: must not be chosen for it
    scores, chosen = held_out(items, "family", [good_elsewhere, good_here])
    assert chosen == {"f1": good_elsewhere, "f2": good_elsewhere, "f3": good_elsewhere}
    assert scores[:2] == [0.0, 0.0]
    assert scores[2:] == [1.0] * 4
