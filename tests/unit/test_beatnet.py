"""The BeatNet port: features, shapes, determinism, activations on a click track, and the weights' loading path."""

from __future__ import annotations

import importlib.metadata

import numpy as np
import numpy.typing as npt
import pytest

from sidecar.analyzers import beatnet
from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioBlock
from sidecar.analyzers.tempo import FRAME_RATE_HZ, TempoAnalyzer, TempoSession, mono_features, network_window
from sidecar.analyzers.tempo_octave import ENVELOPES, NETWORK_ENVELOPES, OctaveModel, feature_names
from sidecar.domain import AudioInfo
from sidecar.errors import FatalAnalyzerError

RATE = beatnet.SAMPLE_RATE_HZ


def _clicks(bpm: float, seconds: float) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float64]]:
    """Short 1 kHz Hann-windowed blips at ``bpm``, and their times (s)."""
    out = np.zeros(round(seconds * RATE), np.float32)
    blip = (np.sin(2 * np.pi * 1000.0 * np.arange(200) / RATE) * np.hanning(200)).astype(np.float32)
    times = np.arange(0.0, seconds - 0.1, 60.0 / bpm)
    for t in times:
        start = round(t * RATE)
        out[start : start + blip.size] += blip
    return out, times


def test_beatnet_filterbank_has_the_networks_input_size() -> None:
    bank = beatnet.filterbank()
    assert bank.shape == (beatnet.FRAME_LENGTH // 2, beatnet.N_BANDS)
    np.testing.assert_allclose(bank.sum(axis=0), 1.0, rtol=1e-5)


@pytest.mark.parametrize("n_samples", [1, 441, 442, 10 * RATE + 17])
def test_beatnet_one_frame_per_hop_started(n_samples: int) -> None:
    signal = (0.1 * np.random.default_rng(1).standard_normal(n_samples)).astype(np.float32)
    result = beatnet.activations(signal)
    n_frames = -(-n_samples // beatnet.HOP_LENGTH)
    assert result.beat.shape == result.downbeat.shape == (n_frames,)
    assert np.all((result.beat >= 0) & (result.beat + result.downbeat <= 1.0 + 1e-6))


def test_beatnet_output_is_deterministic_and_independent_of_the_pieces() -> None:
    signal, _ = _clicks(100.0, 12.0)
    whole = beatnet.activations(signal)
    again = beatnet.activations(signal)
    stream = beatnet.ActivationStream()
    for first in range(0, signal.size, 12345):
        stream.feed(signal[first : first + 12345])
    pieces = stream.activations()
    np.testing.assert_array_equal(whole.beat, again.beat)
    np.testing.assert_array_equal(whole.downbeat, again.downbeat)
    np.testing.assert_allclose(pieces.beat, whole.beat, atol=1e-6)
    np.testing.assert_allclose(pieces.downbeat, whole.downbeat, atol=1e-6)


def test_beatnet_click_track_peaks_on_the_clicks() -> None:
    """After two seconds of warm-up (the LSTM starts from zeros), every click carries a beat-activation peak within
    two frames (40 ms), and there is no strong peak between the clicks."""
    signal, times = _clicks(120.0, 20.0)
    result = beatnet.activations(signal)
    any_beat = result.beat + result.downbeat
    inner = any_beat[1:-1]
    peaks = np.flatnonzero((inner > any_beat[:-2]) & (inner >= any_beat[2:]) & (inner > 0.3)) + 1
    peak_s = peaks / beatnet.FRAME_RATE_HZ
    later = times[times > 2.0]
    assert later.size >= 30
    distance_s = np.abs(peak_s[None, :] - later[:, None]).min(axis=1)
    assert distance_s.max() <= 2 / beatnet.FRAME_RATE_HZ
    stray = peak_s[(peak_s > 2.0) & (np.abs(peak_s[:, None] - times[None, :]).min(axis=1) > 0.1)]
    assert stray.size == 0


def test_beatnet_missing_wheel_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    beatnet.load_network.cache_clear()
    try:
        with pytest.raises(FatalAnalyzerError, match=r"BeatNet wheel.*pip install --no-deps BeatNet==1\.1\.3"):
            beatnet.ActivationStream()
    finally:
        beatnet.load_network.cache_clear()


def test_beatnet_other_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "1.0.0")
    with pytest.raises(beatnet.BeatNetUnavailableError, match=r"BeatNet 1\.0\.0 is installed.*1\.1\.3"):
        beatnet.weights_path(1)


def test_beatnet_unknown_model_is_refused() -> None:
    with pytest.raises(ValueError, match="model"):
        beatnet.weights_path(4)


@pytest.mark.parametrize(
    ("duration_s", "expected"),
    [(None, (0.0, 30.0)), (20.0, (0.0, 30.0)), (240.0, (105.0, 135.0))],
)
def test_beatnet_window_is_the_middle_of_the_track(duration_s: float | None, expected: tuple[float, float]) -> None:
    assert network_window(duration_s, 30.0) == expected


def _network_model() -> OctaveModel:
    n = len(feature_names(ENVELOPES + NETWORK_ENVELOPES))
    return OctaveModel(
        weights=(0.0,) * n,
        means=(0.0,) * n,
        scales=(1.0,) * n,
        min_regularity=0.0,
        envelopes=ENVELOPES + NETWORK_ENVELOPES,
    )


def _info(duration_s: float | None) -> AudioInfo:
    return AudioInfo(
        path="memory",
        codec="pcm_f32le",
        sample_rate_hz=ANALYSIS_RATE_HZ,
        channels=1,
        duration_s=duration_s,
        size_bytes=0,
        mtime_ns=0,
    )


def _feed(analyzer: TempoAnalyzer, mono: npt.NDArray[np.float32], duration_s: float | None) -> TempoSession:
    session = analyzer.start(_info(duration_s))
    for first in range(0, mono.size, 30000):
        piece = mono[first : first + 30000]
        session.feed(AudioBlock(native=piece[None, :], mono=piece, start_s=first / ANALYSIS_RATE_HZ))
    return session


def test_beatnet_cues_streamed_equal_direct() -> None:
    """An octave model that reads the network: the streamed analyzer and the whole-signal features agree, and the
    candidates carry the cues of all seven envelopes."""
    mono, _ = _clicks(110.0, 14.0)
    analyzer = TempoAnalyzer(octave_model=_network_model())
    streamed = _feed(analyzer, mono, None).finish()
    features = mono_features(mono, network=True)
    assert features.candidates is not None
    assert features.candidates.envelopes == ENVELOPES + NETWORK_ENVELOPES
    assert features.candidates.features.shape[1] == len(feature_names(ENVELOPES + NETWORK_ENVELOPES))
    direct = analyzer.estimate(features)
    assert (streamed.bpm, streamed.bpm_confidence, streamed.bpm_alternative) == (
        direct.bpm,
        direct.bpm_confidence,
        direct.bpm_alternative,
    )


def test_beatnet_reads_only_the_window_in_the_middle() -> None:
    mono, _ = _clicks(100.0, 40.0)
    analyzer = TempoAnalyzer(octave_model=_network_model(), network_window_s=10.0)
    envelopes = _feed(analyzer, mono, 40.0).envelopes()
    assert envelopes.beat is not None
    assert abs(envelopes.beat.size - 10.0 * FRAME_RATE_HZ) <= 2
    assert envelopes.accent.size >= 40.0 * FRAME_RATE_HZ


def test_beatnet_cue_sets_do_not_mix() -> None:
    features = mono_features(_clicks(100.0, 10.0)[0])
    assert features.candidates is not None
    with pytest.raises(ValueError, match="octave model"):
        _network_model().probabilities(features.candidates)


def test_beatnet_analyzer_check_names_the_missing_package(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    beatnet.load_network.cache_clear()
    try:
        with pytest.raises(FatalAnalyzerError, match="BeatNet"):
            TempoAnalyzer(octave_model=_network_model()).check()
    finally:
        beatnet.load_network.cache_clear()


def test_beatnet_window_past_the_end_leaves_empty_cues() -> None:
    """A container duration far longer than the audio puts the window after the end: the network reads nothing, its
    cues read zero, and the tempo still comes from the onset envelopes."""
    mono, _ = _clicks(100.0, 20.0)
    analyzer = TempoAnalyzer(octave_model=_network_model(), network_window_s=10.0)
    session = _feed(analyzer, mono, 600.0)
    beat = session.envelopes().beat
    assert beat is not None
    assert beat.size == 0
    assert session.finish().bpm is not None
