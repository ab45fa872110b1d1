"""The waveform analyzer: min/max per 10 ms over all channels, independent of how the decoder cuts blocks, merged
down to at most 2000 points, and run in the same decode pass as the other analyzers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sidecar.analyzers.audio import AudioBlock
from sidecar.analyzers.pipeline import analyze_file
from sidecar.analyzers.tempo import TempoAnalyzer
from sidecar.analyzers.waveform import MAX_POINTS, WaveformAnalyzer
from sidecar.demo.encode import write_audio
from sidecar.domain import AudioInfo, TempoResult, WaveformResult


def _info(rate_hz: int) -> AudioInfo:
    return AudioInfo(
        path="memory", codec="pcm_f32le", sample_rate_hz=rate_hz, channels=2, duration_s=None, size_bytes=0, mtime_ns=0
    )


def _run(native: np.ndarray, rate_hz: int, block_sizes: list[int]) -> WaveformResult:
    session = WaveformAnalyzer().start(_info(rate_hz))
    position = 0
    for size in block_sizes:
        part = native[:, position : position + size]
        session.feed(AudioBlock(native=part, mono=part.mean(axis=0), start_s=position / rate_hz))
        position += size
    return session.finish()


def _signal(rate_hz: int, seconds: float) -> np.ndarray:
    """Left: a 0.5 sine for the first second, then silence; right: a 200 Hz pulse between 0 and -0.25 throughout."""
    t = np.arange(int(seconds * rate_hz)) / rate_hz
    left = np.where(t < 1.0, 0.5 * np.sin(2 * np.pi * 100 * t), 0.0)
    right = -0.25 * (np.sin(2 * np.pi * 200 * t) > 0)
    return np.stack([left, right]).astype(np.float32)


def test_ten_millisecond_buckets_over_all_channels() -> None:
    native = _signal(44100, 2.0)
    result = _run(native, 44100, [native.shape[1]])
    assert result.bucket_s == pytest.approx(0.01)
    assert result.minimum.size == result.maximum.size == 200
    assert np.allclose(result.maximum[:100], 0.5, atol=0.01)  # 100 Hz: a whole period in every 10 ms
    assert np.allclose(result.minimum[:100], -0.5, atol=0.01)
    assert np.allclose(result.maximum[100:], 0.0)
    assert np.allclose(result.minimum[100:], -0.25)


def test_the_result_does_not_depend_on_block_sizes() -> None:
    native = _signal(48000, 3.0)
    whole = _run(native, 48000, [native.shape[1]])
    sizes = list(np.random.default_rng(1).integers(1, 5000, size=200))
    sizes.append(native.shape[1] - sum(sizes))
    pieces = _run(native, 48000, sizes)
    assert np.array_equal(whole.minimum, pieces.minimum)
    assert np.array_equal(whole.maximum, pieces.maximum)


def test_long_tracks_are_merged_to_at_most_2000_points() -> None:
    native = _signal(8000, 30.05)  # 3005 buckets of 10 ms, the last one short
    result = _run(native, 8000, [native.shape[1]])
    assert result.minimum.size == 1503 <= MAX_POINTS
    assert result.bucket_s == pytest.approx(0.02)
    assert result.maximum.max() == pytest.approx(native.max())
    assert result.minimum.min() == pytest.approx(native.min())
    assert np.allclose(result.maximum[:50], 0.5, atol=0.01)
    assert np.allclose(result.maximum[51:], 0.0)


def test_nothing_decoded_gives_an_empty_waveform() -> None:
    result = WaveformAnalyzer().start(_info(44100)).finish()
    assert result.minimum.size == result.maximum.size == 0


def test_in_the_same_decode_pass_as_the_other_analyzers(tmp_path: Path) -> None:
    native = _signal(44100, 4.0)
    path = write_audio(native.T.copy(), 44100, tmp_path / "t.flac")
    analysis = analyze_file(path, [TempoAnalyzer(), WaveformAnalyzer()])
    waveform = analysis.results["waveform"]
    assert isinstance(waveform, WaveformResult)
    assert isinstance(analysis.results["tempo"], TempoResult)
    assert waveform.minimum.size == 400
    assert np.allclose(waveform.maximum[:100], 0.5, atol=0.01)
