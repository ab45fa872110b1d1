"""WindowSampler: windows spread over the track, bounded memory, whatever the duration estimate says."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.analyzers.embedding.windows import WindowSampler


def _ramp_track(seconds: float, rate_hz: int) -> np.ndarray:
    """A signal whose value encodes time: a window's mean tells where it came from (DC is kept by resampling)."""
    return (np.arange(round(seconds * rate_hz)) / rate_hz / 1000.0).astype(np.float32)


def _feed(sampler: WindowSampler, signal: np.ndarray, block: int) -> None:
    for start in range(0, signal.size, block):
        sampler.feed(signal[None, start : start + block])


@pytest.mark.parametrize(("seconds", "block"), [(60.0, 48000 * 5), (37.0, 4096), (300.0, 48000 * 5)])
def test_window_sampler_spreads_windows_over_the_track(seconds: float, block: int) -> None:
    sampler = WindowSampler(sample_rate_hz=48000, n_windows=6)
    _feed(sampler, _ramp_track(seconds, 48000), block)
    centres_s = sampler.windows().mean(axis=1) * 1000.0
    first_s, last_s = float(centres_s.min()), float(centres_s.max())
    assert (centres_s.size, first_s < 0.25 * seconds, last_s > 0.75 * seconds) == (6, True, True)


def test_window_sampler_resamples_to_48k() -> None:
    rate = 22050
    t = np.arange(10 * rate) / rate
    sampler = WindowSampler(sample_rate_hz=rate, n_windows=3)
    _feed(sampler, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 4096)
    windows = sampler.windows()
    peak_bin = int(np.argmax(np.abs(np.fft.rfft(windows[1]))))  # 1 Hz bins at 48000 samples per second
    assert (windows.shape, peak_bin) == ((3, 48000), 1000)


def test_window_sampler_keeps_bounded_memory_on_a_long_track_without_duration() -> None:
    sampler = WindowSampler(sample_rate_hz=8000, n_windows=4)
    for _ in range(600):  # ten minutes in one-second blocks
        sampler.feed(np.zeros((1, 8000), np.float32))
        assert len(sampler._open) + len(sampler._done) <= 8


def test_window_sampler_short_track_gives_one_padded_window() -> None:
    sampler = WindowSampler(sample_rate_hz=48000, n_windows=5)
    sampler.feed(np.ones((2, 14400), np.float32))
    windows = sampler.windows()
    assert (windows.shape, float(windows[0, :14400].mean()), float(windows[0, 20000:].max())) == ((1, 48000), 1.0, 0.0)


def test_window_sampler_rejects_zero_windows() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WindowSampler(sample_rate_hz=48000, n_windows=0)


def test_window_sampler_passes_over_silent_windows() -> None:
    rate = 8000
    t = np.arange(30 * rate) / rate
    signal = (0.3 * np.sin(2 * np.pi * 440 * t) * (t >= 12.0)).astype(np.float32)  # 12 s of silence first
    sampler = WindowSampler(sample_rate_hz=rate, n_windows=4)
    _feed(sampler, signal, rate)
    rms = np.sqrt(np.mean(np.square(sampler.windows()), axis=1))
    assert (rms.size, bool(rms.min() > 0.1)) == (4, True)


def test_window_sampler_all_silent_track_still_gives_windows() -> None:
    sampler = WindowSampler(sample_rate_hz=8000, n_windows=3)
    _feed(sampler, np.zeros(10 * 8000, np.float32), 8000)
    assert sampler.windows().shape == (3, 48000)
