"""The key analyzer: accuracy on the rendered ground-truth corpus, numpy test signals, atonal input, streaming."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import soxr

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioBlock
from sidecar.analyzers.base import Analyzer
from sidecar.analyzers.key import (
    KEY_PROFILES,
    UPPER_MIN_PITCH,
    ChromaAccumulator,
    ChromaSummary,
    KeyAnalyzer,
    harmonic_kernel,
    key_correlations,
    key_of_template,
    key_templates,
)
from sidecar.analyzers.key_model import DEFAULT_KEY_MODEL
from sidecar.analyzers.pipeline import analyze_file
from sidecar.demo.evaluation import mirex_key_score
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import DRUM_CHANNEL, GROOVES, SAMPLE_RATE_HZ, soundfont_path, tempo_key_corpus
from sidecar.domain import AudioInfo, KeyResult, KeySignature

SR = ANALYSIS_RATE_HZ
Signal = npt.NDArray[np.float32]

_INFO = AudioInfo(
    path="test.flac",
    codec="flac",
    sample_rate_hz=SAMPLE_RATE_HZ,
    channels=2,
    duration_s=None,
    size_bytes=1,
    mtime_ns=0,
)


def _tone(midi: float, seconds: float, *, harmonics: int = 6) -> Signal:
    """A note with ``harmonics`` partials of amplitude 1/k and short fades."""
    t = np.arange(int(seconds * SR)) / SR
    freq = 440.0 * 2.0 ** ((midi - 69.0) / 12.0)
    y = sum(np.sin(2 * np.pi * freq * k * t) / k for k in range(1, harmonics + 1) if freq * k < SR / 2)
    envelope = np.minimum(1.0, np.minimum(t / 0.01, (seconds - t) / 0.05))
    return np.asarray(y * envelope, dtype=np.float32)


def _chord(pitches: Sequence[float], seconds: float) -> Signal:
    return np.asarray(sum(_tone(p, seconds) for p in pitches), dtype=np.float32)


def _normalised(y: Signal) -> Signal:
    return np.asarray(0.3 * y / np.abs(y).max(), dtype=np.float32)


def _cadence(key: KeySignature, *, repeats: int = 4, detune_semitones: float = 0.0) -> Signal:
    """I-IV-V-I (major) or i-iv-V-i with the raised leading tone (minor), one second per chord."""
    root = 48 + key.pitch_class + detune_semitones
    third = 4 if key.mode == "major" else 3
    sixth = 9 if key.mode == "major" else 8
    chords = ([0, third, 7], [5, sixth, 12], [7, 11, 14], [0, third, 7])
    bar = np.concatenate([_chord([root + step for step in chord], 1.0) for chord in chords])
    return _normalised(np.tile(bar, repeats))


def _scale(key: KeySignature) -> Signal:
    """The scale up and down an octave from the tonic and back, twice, 0.4 s per note."""
    steps = (0, 2, 4, 5, 7, 9, 11, 12) if key.mode == "major" else (0, 2, 3, 5, 7, 8, 10, 12)
    tour = (*steps, *reversed(steps[:-1]))
    root = 60 + key.pitch_class
    return _normalised(np.concatenate([_tone(root + s, 0.4) for s in tour * 2]))


def _drums(groove: str, bpm: float, seconds: float) -> Signal:
    """A General MIDI drum kit (the corpus soundfont) playing ``groove`` alone, as mono at the analysis rate."""
    import tinysoundfont

    synth = tinysoundfont.Synth(samplerate=SAMPLE_RATE_HZ)
    synth.program_select(DRUM_CHANNEL, synth.sfload(str(soundfont_path())), 128, 0, True)
    pattern = GROOVES[groove]
    beat_s = 60.0 / bpm
    bars = int(seconds / (beat_s * pattern.beats_per_bar)) + 1
    hits = sorted(
        ((bar * pattern.beats_per_bar + hit.beat) * beat_s, hit.note, hit.velocity)
        for bar in range(bars)
        for hit in pattern.hits
    )
    total = int(seconds * SAMPLE_RATE_HZ)
    out = np.zeros((total, 2), dtype=np.float32)
    cursor = 0
    for time_s, note, velocity in hits:
        target = min(total, int(time_s * SAMPLE_RATE_HZ))
        if target > cursor:
            out[cursor:target] = np.frombuffer(synth.generate(target - cursor), np.float32).reshape(-1, 2)
            cursor = target
        synth.noteon(DRUM_CHANNEL, note, velocity)
    if cursor < total:
        out[cursor:] = np.frombuffer(synth.generate(total - cursor), np.float32).reshape(-1, 2)
    return np.asarray(soxr.resample(out.mean(axis=1), SAMPLE_RATE_HZ, SR), dtype=np.float32)


def _analyze(
    y: Signal, *, block_samples: int | Sequence[int] = 5 * SR, analyzer: KeyAnalyzer | None = None
) -> KeyResult:
    """Feed ``y`` to a fresh session in blocks (a size, or a list of sizes cycled), then an empty last block."""
    session = (analyzer or KeyAnalyzer()).start(_INFO)
    sizes = [block_samples] if isinstance(block_samples, int) else list(block_samples)
    position = index = 0
    while position < y.size:
        size = sizes[index % len(sizes)]
        session.feed(AudioBlock(native=np.zeros((2, 0), np.float32), mono=y[position : position + size], start_s=0.0))
        position += size
        index += 1
    session.feed(AudioBlock(native=np.zeros((2, 0), np.float32), mono=np.zeros(0, np.float32), start_s=0.0))
    return session.finish()


@pytest.fixture(scope="module")
def corpus_results(corpus_dir: Path) -> list[tuple[KeySignature, KeyResult]]:
    """One 30 s piece per key (24), rendered once and cached, analysed through the real decoding pipeline."""
    specs = tempo_key_corpus(24, duration_s=30.0, seed=2)
    results: list[tuple[KeySignature, KeyResult]] = []
    for spec, path in zip(specs, cached_corpus(specs, corpus_dir), strict=True):
        analysis = analyze_file(path, [KeyAnalyzer()])
        assert analysis.failures == {}
        result = analysis.results["key"]
        assert isinstance(result, KeyResult)
        results.append((spec.key, result))
    return results


def test_key_analyzer_follows_the_protocol() -> None:
    analyzer = KeyAnalyzer()
    assert isinstance(analyzer, Analyzer)
    assert (analyzer.name, analyzer.version) == ("key", 1)


def test_key_corpus_covers_all_keys(corpus_results: list[tuple[KeySignature, KeyResult]]) -> None:
    assert len({truth for truth, _ in corpus_results}) == 24


def test_key_corpus_mirex_weighted_score(corpus_results: list[tuple[KeySignature, KeyResult]]) -> None:
    scores = [mirex_key_score(result.key, truth) for truth, result in corpus_results]
    assert float(np.mean(scores)) >= 0.95


def test_key_corpus_exact_accuracy(corpus_results: list[tuple[KeySignature, KeyResult]]) -> None:
    exact = [result.key == truth for truth, result in corpus_results]
    assert float(np.mean(exact)) >= 0.90


def test_key_corpus_confidence_in_range(corpus_results: list[tuple[KeySignature, KeyResult]]) -> None:
    confidences = [result.key_confidence for _, result in corpus_results]
    assert min(confidences) >= 0.0
    assert max(confidences) <= 1.0
    assert float(np.median(confidences)) >= 0.5


def test_key_corpus_camelot_matches_truth(corpus_results: list[tuple[KeySignature, KeyResult]]) -> None:
    for truth, result in corpus_results:
        if result.key == truth:
            assert result.key.camelot == truth.camelot


@pytest.mark.parametrize("name", ["C major", "D major", "A# major", "A minor", "F# minor", "C minor"])
def test_key_cadence_gives_its_key(name: str) -> None:
    key = KeySignature.parse(name)
    result = _analyze(_cadence(key))
    assert result.key == key
    assert result.key_confidence >= 0.8
    assert result.key_missing_reason is None


@pytest.mark.parametrize("name", ["C major", "A# major", "A minor", "F# minor"])
def test_key_fitted_model_opt_in_gives_the_cadence_key(name: str) -> None:
    key = KeySignature.parse(name)
    result = _analyze(_cadence(key), analyzer=KeyAnalyzer(model=DEFAULT_KEY_MODEL))
    assert result.key == key
    assert 0.0 < result.key_confidence <= 1.0


def test_key_fitted_model_opt_in_keeps_silence_and_drums_keyless() -> None:
    analyzer = KeyAnalyzer(model=DEFAULT_KEY_MODEL)
    silence = KeyResult(key=None, key_confidence=0.0, key_missing_reason="few_tonal_frames")
    assert _analyze(np.zeros(10 * SR, np.float32), analyzer=analyzer) == silence
    drums = _analyze(_drums("rock", 120.0, 20.0), analyzer=analyzer)
    assert (drums.key, drums.key_missing_reason) == (None, "weak_tonality")


def _summary(y: Signal, upper_min_pitch: float | None) -> ChromaSummary:
    accumulator = ChromaAccumulator(upper_min_pitch=upper_min_pitch)
    accumulator.feed(y)
    return accumulator.summary()


def test_key_upper_chroma_leaves_out_the_bass() -> None:
    """A pure A2 drone (no harmonics) under a C major triad: the upper chroma holds no A, the whole one does."""
    y = _normalised(_tone(45, 8.0, harmonics=1) + _chord([60, 64, 67], 8.0))
    assert not _summary(y, None).upper_chroma.any()  # not kept unless asked for
    summary = _summary(y, UPPER_MIN_PITCH)
    assert summary.chroma[9] > 0.05
    assert summary.upper_chroma[9] < 0.01
    assert summary.upper_chroma[[0, 4, 7]].sum() > 0.6


@pytest.mark.parametrize("name", ["C major", "G major", "E minor", "A# minor"])
def test_key_sustained_triad_gives_its_key(name: str) -> None:
    key = KeySignature.parse(name)
    third = 4 if key.mode == "major" else 3
    root = 48 + key.pitch_class
    result = _analyze(_normalised(np.tile(_chord([root, root + third, root + 7], 2.0), 5)))
    assert result.key == key


@pytest.mark.parametrize("name", ["D major", "F major", "A minor", "G minor"])
def test_key_scale_gives_its_key(name: str) -> None:
    key = KeySignature.parse(name)
    assert _analyze(_scale(key)).key == key


@pytest.mark.parametrize(
    ("name", "camelot", "open_key"),
    [("A minor", "8A", "1m"), ("C major", "8B", "1d"), ("F# minor", "11A", "4m"), ("A# major", "6B", "11d")],
)
def test_key_result_camelot_and_open_key(name: str, camelot: str, open_key: str) -> None:
    result = _analyze(_cadence(KeySignature.parse(name)))
    assert result.key is not None
    assert result.key.name == name
    assert result.key.camelot == camelot
    assert result.key.open_key == open_key


@pytest.mark.parametrize("detune_semitones", [0.4, -0.3])
def test_key_detuned_recording_keeps_its_key(detune_semitones: float) -> None:
    key = KeySignature("E", "major")
    y = _cadence(key, detune_semitones=detune_semitones)
    accumulator = ChromaAccumulator()
    accumulator.feed(y)
    assert accumulator.summary().tuning_semitones == pytest.approx(detune_semitones, abs=0.03)
    assert _analyze(y).key == key


_FEW_TONAL_FRAMES = KeyResult(key=None, key_confidence=0.0, key_missing_reason="few_tonal_frames")


def test_key_silence_has_no_key() -> None:
    assert _analyze(np.zeros(10 * SR, np.float32)) == _FEW_TONAL_FRAMES


def test_key_empty_input_has_no_key() -> None:
    assert _analyze(np.zeros(0, np.float32)) == _FEW_TONAL_FRAMES


def test_key_very_short_input_has_no_key() -> None:
    chord = _normalised(_chord([60, 64, 67], 0.2))
    assert _analyze(chord) == _FEW_TONAL_FRAMES


@pytest.mark.parametrize("colour", ["white", "pink"])
def test_key_noise_has_no_key(colour: str) -> None:
    rng = np.random.default_rng(3)
    noise = rng.standard_normal(20 * SR)
    if colour == "pink":
        spectrum = np.fft.rfft(noise) / np.sqrt(np.arange(1, noise.size // 2 + 2))
        noise = np.fft.irfft(spectrum, n=noise.size)
    result = _analyze(_normalised(noise.astype(np.float32)))
    assert result == KeyResult(key=None, key_confidence=0.0, key_missing_reason="weak_tonality")


@pytest.mark.parametrize(("groove", "bpm"), [("rock", 120.0), ("house", 125.0), ("hiphop", 90.0), ("dnb", 172.0)])
def test_key_drums_only_have_no_key(groove: str, bpm: float) -> None:
    result = _analyze(_drums(groove, bpm, 20.0))
    assert result.key is None
    assert result.key_confidence == 0.0
    assert result.key_missing_reason == "weak_tonality"


def test_key_noise_under_music_lowers_confidence() -> None:
    key = KeySignature("G", "minor")
    music = _cadence(key)
    noise = np.random.default_rng(5).standard_normal(music.size).astype(np.float32)
    clean = _analyze(music)
    noisy = _analyze(music + 0.3 * noise)
    assert noisy.key == key
    assert noisy.key_confidence < clean.key_confidence


@pytest.mark.parametrize("block_samples", [SR // 3, 4096, 2048 * 3 + 1, [1000, 50_000, 7, 22050]])
def test_key_result_independent_of_block_sizes(block_samples: int | list[int]) -> None:
    y = _cadence(KeySignature("D", "minor"), repeats=3)
    whole = _analyze(y, block_samples=y.size)
    blocked = _analyze(y, block_samples=block_samples)
    assert blocked.key == whole.key
    assert blocked.key_confidence == pytest.approx(whole.key_confidence, abs=1e-6)


def test_key_accumulator_memory_does_not_grow() -> None:
    accumulator = ChromaAccumulator()
    block = _cadence(KeySignature("C", "major"), repeats=2)
    for _ in range(30):
        accumulator.feed(block)
    summary = accumulator.summary()
    assert summary.frames == (30 * block.size - 4096) // 2048 + 1
    assert accumulator.pending_samples < 4096


def test_key_templates_rotate_with_the_tonic() -> None:
    for profile in KEY_PROFILES.values():
        templates = key_templates(profile, harmonic_decay=0.6)
        for index in range(24):
            key = key_of_template(index)
            correlations = key_correlations(templates[index], templates)
            assert key_of_template(int(np.argmax(correlations))) == key


def test_key_harmonic_kernel_places_partials() -> None:
    kernel = harmonic_kernel(0.5, n_harmonics=3)
    assert kernel[0] == pytest.approx(1.0 + 0.5)  # fundamental and octave
    assert kernel[7] + kernel[8] == pytest.approx(0.25)  # the third partial, a fifth (+2 cents) up
    assert kernel[7] > 0.9 * 0.25


def test_key_flat_chroma_correlates_with_nothing() -> None:
    templates = key_templates(KEY_PROFILES["krumhansl-kessler"], harmonic_decay=0.6)
    assert not key_correlations(np.full(12, 1 / 12), templates).any()


def test_key_rejects_bad_harmonic_decay() -> None:
    with pytest.raises(ValueError, match="harmonic_decay"):
        KeyAnalyzer(harmonic_decay=1.5)
