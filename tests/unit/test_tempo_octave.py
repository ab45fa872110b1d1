"""Tempo octave choice: synthetic drum grooves whose beat is unambiguous, the fitted model, confidence and the
alternative tempo."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioBlock
from sidecar.analyzers.tempo import FRAME_RATE_HZ, ClipFeatures, TempoAnalyzer, fit_octave, mono_features
from sidecar.analyzers.tempo_octave import (
    FEATURE_NAMES,
    Candidates,
    OctaveModel,
    correct_index,
    fit_octave_model,
)
from sidecar.domain import AudioInfo


def _kick(rng: np.random.Generator) -> npt.NDArray[np.float32]:
    t = np.arange(round(0.25 * ANALYSIS_RATE_HZ)) / ANALYSIS_RATE_HZ
    return (np.sin(2 * np.pi * (55.0 * t + 40.0 * (1 - np.exp(-t / 0.03)))) * np.exp(-t / 0.12)).astype(np.float32)


def _noise_hit(rng: np.random.Generator, decay_s: float, level: float) -> npt.NDArray[np.float32]:
    n = round(5 * decay_s * ANALYSIS_RATE_HZ)
    t = np.arange(n) / ANALYSIS_RATE_HZ
    noise = rng.standard_normal(n)
    if decay_s < 0.05:  # hats: only the highs
        noise = np.diff(noise, prepend=0.0)
    return (level * noise * np.exp(-t / decay_s)).astype(np.float32)


def _groove(
    bpm: float, hits: dict[str, list[float]], *, beats_per_bar: int = 4, seconds: float = 30.0
) -> npt.NDArray[np.float32]:
    """Mix a one-bar pattern (positions in beats per instrument: kick, snare, hat) repeated at ``bpm``."""
    rng = np.random.default_rng(0)
    out = np.zeros(round(seconds * ANALYSIS_RATE_HZ) + ANALYSIS_RATE_HZ, np.float32)
    beat_s = 60.0 / bpm
    sounds = {
        "kick": lambda: _kick(rng),
        "snare": lambda: _noise_hit(rng, 0.08, 0.5),
        "hat": lambda: _noise_hit(rng, 0.02, 0.25),
    }
    bar = 0
    while (bar * beats_per_bar) * beat_s < seconds:
        for name, positions in hits.items():
            for position in positions:
                start = round(((bar * beats_per_bar) + position) * beat_s * ANALYSIS_RATE_HZ)
                sound = sounds[name]()
                out[start : start + sound.size] += sound[: max(0, out.size - start)]
        bar += 1
    return out[: round(seconds * ANALYSIS_RATE_HZ)]


EIGHTHS = [i / 2 for i in range(8)]


@pytest.mark.parametrize(
    ("bpm", "hits"),
    [
        # four on the floor with off-beat hats: the kick is the beat, not the bar or the hats
        (138.0, {"kick": [0, 1, 2, 3], "hat": [0.5, 1.5, 2.5, 3.5]}),
        # backbeat rock with eighth hats at a slow tempo: not read at the hats' double tempo
        (84.0, {"kick": [0, 2.5], "snare": [1, 3], "hat": EIGHTHS}),
        # fast punk backbeat: not read at half tempo
        (180.0, {"kick": [0, 2], "snare": [1, 3], "hat": [0, 1, 2, 3]}),
    ],
)
def test_octave_synthetic_groove_reads_the_notated_beat(bpm: float, hits: dict[str, list[float]]) -> None:
    result = TempoAnalyzer().estimate(mono_features(_groove(bpm, hits)))
    assert result.bpm == pytest.approx(bpm, rel=0.02)


def test_octave_estimate_equals_the_streamed_analyzer() -> None:
    mono = _groove(120.0, {"kick": [0, 2], "snare": [1, 3], "hat": EIGHTHS}, seconds=12.0)
    info = AudioInfo(
        path="memory",
        codec="pcm_f32le",
        sample_rate_hz=ANALYSIS_RATE_HZ,
        channels=1,
        duration_s=None,
        size_bytes=0,
        mtime_ns=0,
    )
    session = TempoAnalyzer().start(info)
    for first in range(0, mono.size, 30000):
        session.feed(AudioBlock(native=np.zeros((1, 0), np.float32), mono=mono[first : first + 30000], start_s=0))
    streamed = session.finish()
    direct = TempoAnalyzer().estimate(mono_features(mono))
    assert (streamed.bpm, streamed.bpm_confidence, streamed.bpm_alternative) == (
        direct.bpm,
        direct.bpm_confidence,
        direct.bpm_alternative,
    )


def _uniform_model() -> OctaveModel:
    n = len(FEATURE_NAMES)
    return OctaveModel(weights=(0.0,) * n, means=(0.0,) * n, scales=(1.0,) * n, min_regularity=0.0)


def test_octave_undecided_model_gives_low_confidence_and_an_alternative() -> None:
    """A model that cannot tell the candidates apart is not confident and names the runner-up tempo."""
    features = mono_features(_groove(100.0, {"kick": [0, 1, 2, 3], "snare": [1, 3]}))
    assert features.candidates is not None
    n_eligible = int(_uniform_model().eligible(features.candidates).sum())
    assert n_eligible >= 2
    model_only = TempoAnalyzer(octave_model=_uniform_model(), real_prior_weight=0.0).estimate(features)
    assert model_only.bpm_confidence == pytest.approx(1.0 / n_eligible, abs=0.001)
    result = TempoAnalyzer(octave_model=_uniform_model()).estimate(features)  # with the real-music tempo prior
    assert 1.0 / n_eligible < result.bpm_confidence < 0.5
    assert result.bpm_alternative is not None
    assert result.bpm is not None
    assert abs(result.bpm_alternative / result.bpm - 1.0) > 0.03


def test_octave_clear_pulse_is_confident_without_alternative() -> None:
    result = TempoAnalyzer().estimate(
        mono_features(_groove(128.0, {"kick": [0, 1, 2, 3], "hat": [0.5, 1.5, 2.5, 3.5]}))
    )
    assert result.bpm_confidence >= 0.75
    assert result.bpm_alternative is None


def test_octave_alternative_threshold_is_a_setting() -> None:
    features = mono_features(_groove(100.0, {"kick": [0, 1, 2, 3], "snare": [1, 3]}))
    never = TempoAnalyzer(octave_model=_uniform_model(), alternative_below=0.0).estimate(features)
    assert never.bpm_alternative is None
    assert never.bpm == TempoAnalyzer(octave_model=_uniform_model()).estimate(features).bpm


def _fake_candidates(rng: np.random.Generator, correct: int, n: int = 4) -> Candidates:
    """Random cues where the correct candidate has the highest first cue."""
    features = rng.uniform(0.0, 1.0, (n, len(FEATURE_NAMES)))
    features[correct, 0] = features[:, 0].max() + 0.2
    return Candidates(
        lags=np.arange(10.0, 10.0 + 10 * n, 10.0), features=features, periodicity=0.5, regularity=np.ones(n)
    )


def test_octave_fit_learns_the_deciding_cue() -> None:
    rng = np.random.default_rng(4)
    train: list[tuple[Candidates, int]] = []
    for _ in range(400):
        correct = int(rng.integers(4))
        train.append((_fake_candidates(rng, correct), correct))
    model = fit_octave_model(train)
    assert int(np.argmax(np.abs(model.weights))) == 0
    assert model.weights[0] > 0
    hits = []
    for _ in range(40):
        correct = int(rng.integers(4))
        hits.append(int(np.argmax(model.probabilities(_fake_candidates(rng, correct)))) == correct)
    assert np.mean(hits) >= 0.95


def test_octave_fit_on_grooves_keeps_them_right() -> None:
    grooves = [
        (bpm, _groove(bpm, {"kick": [0, 2], "snare": [1, 3], "hat": EIGHTHS}, seconds=15.0)) for bpm in (80.0, 150.0)
    ]
    model = fit_octave([(mono_features(mono), bpm) for bpm, mono in grooves])
    for bpm, mono in grooves:
        assert TempoAnalyzer(octave_model=model).estimate(mono_features(mono)).bpm == pytest.approx(bpm, rel=0.02)


def test_octave_fit_without_usable_clips_is_an_error() -> None:
    silent = mono_features(np.zeros(10 * ANALYSIS_RATE_HZ, np.float32))
    assert (silent.candidates, silent.missing_reason) == (None, "no_onsets")
    with pytest.raises(ValueError, match="no clip"):
        fit_octave([(silent, 120.0)])


def test_clip_features_without_candidates_say_why() -> None:
    silent = mono_features(np.zeros(10 * ANALYSIS_RATE_HZ, np.float32))
    with pytest.raises(ValueError, match="reason"):
        ClipFeatures(silent.envelopes, None)


def test_octave_correct_index_finds_the_truth_within_four_percent() -> None:
    lags = np.array([20.0, 40.0, 80.0])
    assert correct_index(lags, FRAME_RATE_HZ, 60.0 * FRAME_RATE_HZ / 40.0 * 1.03) == 1
    assert correct_index(lags, FRAME_RATE_HZ, 60.0 * FRAME_RATE_HZ / 40.0 * 1.2) is None


N = len(FEATURE_NAMES)


@pytest.mark.parametrize(
    ("weights", "means", "scales", "min_regularity", "message"),
    [
        ((0.0,), (0.0,), (1.0,), 0.0, "needs"),
        ((float("nan"),) + (0.0,) * (N - 1), (0.0,) * N, (1.0,) * N, 0.0, "finite"),
        ((0.0,) * N, (0.0,) * N, (0.0,) * N, 0.0, "positive"),
        ((0.0,) * N, (0.0,) * N, (1.0,) * N, 1.5, "min_regularity"),
    ],
)
def test_octave_model_rejects_bad_values(
    weights: tuple[float, ...], means: tuple[float, ...], scales: tuple[float, ...], min_regularity: float, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        OctaveModel(weights=weights, means=means, scales=scales, min_regularity=min_regularity)


def test_octave_irregular_candidates_are_not_eligible() -> None:
    """A candidate at which the envelope does not recur gets probability 0 whatever its score."""
    rng = np.random.default_rng(5)
    found = _fake_candidates(rng, 0)
    found = Candidates(found.lags, found.features, found.periodicity, np.array([0.01, 1.0, 1.0, 1.0]))
    model = fit_octave_model([(_fake_candidates(rng, int(i % 4)), int(i % 4)) for i in range(40)])
    strict = OctaveModel(model.weights, model.means, model.scales, min_regularity=0.05)
    assert strict.probabilities(found)[0] == 0.0
    assert strict.probabilities(found).sum() == pytest.approx(1.0)


def test_octave_default_model_matches_the_cues() -> None:
    model = OctaveModel.default()
    assert len(model.weights) == len(FEATURE_NAMES)
    found = Candidates(np.array([10.0, 20.0, 40.0]), np.zeros((3, N)), 0.5, np.array([1.0, 1.0, 1.0]))
    assert model.probabilities(found).sum() == pytest.approx(1.0)
