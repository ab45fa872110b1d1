"""The decode + loudness path gives the values it gave before it was made faster, and agrees with libebur128.

The reference values were computed once with the implementation of commit a4c4e1b (main before the DSP speed-up:
one multi-channel libsoxr stream per track for the true peak, per-frame sample conversion, BLAS weighting) through
``analyze_file`` on the same files this test writes; the speed-up reproduces them bit for bit on this machine, and
the tolerances (1e-9 LU, 1e-6 dB) leave room only for float rounding on another CPU or BLAS.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyebur128
import pytest

from sidecar.analyzers.loudness import LoudnessAnalyzer
from sidecar.analyzers.pipeline import analyze_file
from sidecar.demo.encode import suffix_for, write_audio
from sidecar.domain import LoudnessResult

_LOUDNESS_TOLERANCE_LU = 1e-9  # loudness, LRA and gain come from 0.01-LU histogram bins: equal or off by a bin
_PEAK_TOLERANCE_DB = 1e-6  # peaks are float32 maxima

# (format, rate Hz, channels) -> (loudness LUFS, LRA LU, true peak dBTP, sample peak dBFS, track gain dB, track peak)
REFERENCE: dict[tuple[str, int, int], tuple[float, float, float, float, float, float]] = {
    ("flac", 44100, 2): (
        -11.108660010751633,
        14.38,
        -0.338190618017622,
        -3.45580861641198,
        -6.891339989248367,
        0.9618126153945923,
    ),
    ("flac24", 48000, 1): (
        -11.631782873900791,
        17.1,
        -0.35913589658301576,
        -3.4558271132096503,
        -6.368217126099209,
        0.9594960808753967,
    ),
    ("wav", 96000, 2): (
        -11.127357735872929,
        14.38,
        -0.3608265471960676,
        -3.45580861641198,
        -6.872642264127071,
        0.9593093395233154,
    ),
    ("alac", 44100, 2): (
        -11.108660010751633,
        14.38,
        -0.338190618017622,
        -3.45580861641198,
        -6.891339989248367,
        0.9618126153945923,
    ),
    ("flac", 48000, 6): (
        -9.169820546662113,
        10.72,
        -0.3591251051049651,
        -3.45580861641198,
        -8.830179453337887,
        0.9594972729682922,
    ),
    ("flac", 192000, 2): (
        -11.134911799765025,
        14.38,
        -3.45580861641198,
        -3.45580861641198,
        -6.865088200234975,
        0.6717529296875,
    ),
}


def clip(rate_hz: int, channels: int, *, seconds: float = 12.0, seed: int = 3) -> npt.NDArray[np.float32]:
    """A music-like test clip, shape (n, channels): four partials with slow swells, noise bursts, clicks, a quiet
    passage (for the gates) and half a second of a tone at a quarter of the rate, sampled 45 degrees off its crests
    (inter-sample peaks 3 dB above the samples) in the first channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    x = np.zeros((channels, t.size))
    for c in range(channels):
        for k, hz in enumerate((110.0, 277.2, 659.3, 3520.0)):
            swell = 1.0 + 0.8 * np.sin(2 * math.pi * 0.3 * (k + 1) * t)
            x[c] += 0.12 / (k + 1) * np.sin(2 * math.pi * hz * t + c) * swell
        x[c] += 0.05 * rng.standard_normal(t.size) * (np.sin(2 * math.pi * 0.5 * t) > 0.6)
        x[c, round(4.3 * rate_hz) :: round(0.7 * rate_hz)] += 0.3
    x[:, round(6 * rate_hz) : round(8 * rate_hz)] *= 0.05
    tone = 0.95 * np.sin(2 * math.pi * (rate_hz / 4) * t + math.pi / 4)
    x[0, round(9 * rate_hz) : round(9.5 * rate_hz)] = tone[round(9 * rate_hz) : round(9.5 * rate_hz)]
    return x.T.astype(np.float32)


def _analyse(tmp_path: Path, format_name: str, rate_hz: int, channels: int) -> LoudnessResult:
    path = write_audio(
        clip(rate_hz, channels), rate_hz, tmp_path / f"clip{suffix_for(format_name)}", format_name=format_name
    )
    result = analyze_file(path, [LoudnessAnalyzer()]).results["loudness"]
    assert isinstance(result, LoudnessResult)
    return result


@pytest.mark.parametrize(("format_name", "rate_hz", "channels"), sorted(REFERENCE))
def test_loudness_values_equal_the_previous_implementation(
    tmp_path: Path, format_name: str, rate_hz: int, channels: int
) -> None:
    loudness, lra, true_peak, sample_peak, gain, peak = REFERENCE[(format_name, rate_hz, channels)]
    result = _analyse(tmp_path, format_name, rate_hz, channels)
    assert result.loudness_lufs == pytest.approx(loudness, abs=_LOUDNESS_TOLERANCE_LU)
    assert result.loudness_range_lu == pytest.approx(lra, abs=_LOUDNESS_TOLERANCE_LU)
    assert result.replaygain_track_gain_db == pytest.approx(gain, abs=_LOUDNESS_TOLERANCE_LU)
    assert result.true_peak_dbtp == pytest.approx(true_peak, abs=_PEAK_TOLERANCE_DB)
    assert result.sample_peak_dbfs == pytest.approx(sample_peak, abs=_PEAK_TOLERANCE_DB)
    assert result.replaygain_track_peak == pytest.approx(peak, rel=1e-7)


@pytest.mark.parametrize(("rate_hz", "channels"), [(44100, 2), (48000, 1), (96000, 2)])
def test_loudness_values_agree_with_libebur128(tmp_path: Path, rate_hz: int, channels: int) -> None:
    """An independent implementation on the same clip: integrated loudness and true peak (libebur128 oversamples
    with its own, shorter filter, hence the wider true-peak tolerance)."""
    result = _analyse(tmp_path, "flac", rate_hz, channels)
    samples = clip(rate_hz, channels)
    decoded = np.round(samples.astype(np.float64) * 32768.0).clip(-32768, 32767) / 32768.0  # what the FLAC holds
    mode = pyebur128.MeasurementMode.MODE_I | pyebur128.MeasurementMode.MODE_TRUE_PEAK
    state = pyebur128.R128State(channels, rate_hz, mode)
    state.add_frames(decoded.ravel(), decoded.shape[0])
    expected_peak_db = 20.0 * math.log10(max(pyebur128.get_true_peak(state, c) for c in range(channels)))
    assert result.loudness_lufs == pytest.approx(pyebur128.get_loudness_global(state), abs=0.05)
    assert result.true_peak_dbtp == pytest.approx(expected_peak_db, abs=0.1)
