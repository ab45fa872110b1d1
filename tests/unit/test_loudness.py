"""EBU R128 loudness, LRA, true peak and ReplayGain 2.0 values on generated EBU test signals and edge inputs."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pyebur128
import pytest

from sidecar.analyzers.audio import AudioBlock
from sidecar.analyzers.base import Analyzer
from sidecar.analyzers.loudness import HISTOGRAM_BINS, AlbumGain, LoudnessAnalyzer, album_gain
from sidecar.analyzers.pipeline import analyze_file
from sidecar.demo.ebu import EbuCase, tech3341_loudness_cases, tech3341_true_peak_cases, tech3342_range_cases
from sidecar.demo.encode import write_audio
from sidecar.domain import AudioInfo, LoudnessResult
from sidecar.errors import AnalyzerError

Signal = npt.NDArray[np.float32]


def _measure(x: Signal, rate_hz: int, *, block_s: float = 5.0) -> LoudnessResult:
    info = AudioInfo(
        path="test", codec="pcm", sample_rate_hz=rate_hz, channels=x.shape[0], duration_s=None, size_bytes=0, mtime_ns=0
    )
    session = LoudnessAnalyzer().start(info)
    step = max(1, round(block_s * rate_hz))
    for start in range(0, x.shape[1], step):
        session.feed(AudioBlock(native=x[:, start : start + step], mono=np.zeros(0, np.float32), start_s=0.0))
    return session.finish()


def _tone(level_dbfs: float, seconds: float, rate_hz: int, *, channels: int = 2, hz: float = 1000.0) -> Signal:
    t = np.arange(round(seconds * rate_hz)) / rate_hz
    x = 10.0 ** (level_dbfs / 20.0) * np.sin(2.0 * math.pi * hz * t)
    return np.tile(x, (channels, 1)).astype(np.float32)


def _noise(level_dbfs: float, seconds: float, rate_hz: int, seed: int) -> Signal:
    rng = np.random.default_rng(seed)
    noise: Signal = (10.0 ** (level_dbfs / 20.0) * rng.standard_normal((2, round(seconds * rate_hz)))).astype(
        np.float32
    )
    return noise


@pytest.mark.parametrize("case", tech3341_loudness_cases(), ids=lambda c: c.name)
def test_loudness_ebu3341_integrated_within_0_1_lu(case: EbuCase) -> None:
    assert case.expected_loudness_lufs is not None
    result = _measure(case.render(), case.sample_rate_hz)
    assert result.loudness_lufs == pytest.approx(case.expected_loudness_lufs, abs=0.1)
    assert result.replaygain_track_gain_db == pytest.approx(-18.0 - case.expected_loudness_lufs, abs=0.1)


@pytest.mark.parametrize("case", tech3341_true_peak_cases(), ids=lambda c: c.name)
def test_loudness_ebu3341_true_peak_within_tolerance(case: EbuCase) -> None:
    assert case.expected_true_peak_dbtp is not None
    result = _measure(case.render(), case.sample_rate_hz)
    assert result.true_peak_dbtp is not None
    assert result.sample_peak_dbfs is not None
    assert case.expected_true_peak_dbtp - 0.4 <= result.true_peak_dbtp <= case.expected_true_peak_dbtp + 0.2
    assert result.sample_peak_dbfs <= result.true_peak_dbtp + 1e-6
    assert result.replaygain_track_peak == pytest.approx(10.0 ** (result.true_peak_dbtp / 20.0))


def test_loudness_true_peak_above_sample_peak_between_samples() -> None:
    case = next(c for c in tech3341_true_peak_cases() if c.name == "3341-16")
    result = _measure(case.render(), case.sample_rate_hz)
    assert result.sample_peak_dbfs == pytest.approx(-9.03, abs=0.05)
    assert result.true_peak_dbtp == pytest.approx(-6.02, abs=0.1)


@pytest.mark.parametrize("case", tech3342_range_cases(), ids=lambda c: c.name)
def test_loudness_ebu3342_range_within_1_lu(case: EbuCase) -> None:
    assert case.expected_range_lu is not None
    result = _measure(case.render(), case.sample_rate_hz)
    assert result.loudness_range_lu == pytest.approx(case.expected_range_lu, abs=1.0)


def _album_tracks() -> list[Signal]:
    rate = 44100
    return [
        _noise(-20.0, 12.0, rate, seed=1),
        _tone(-30.0, 15.0, rate, hz=440.0),
        np.concatenate([_noise(-14.0, 6.0, rate, seed=2), _tone(-45.0, 9.0, rate)], axis=1),
        _noise(-26.0, 8.0, rate, seed=3),
    ]


def test_loudness_album_gain_equals_concatenation_gain() -> None:
    tracks = _album_tracks()
    results = [_measure(track, 44100) for track in tracks]
    album = album_gain(results)
    whole = _measure(np.concatenate(tracks, axis=1), 44100)
    assert album.replaygain_album_gain_db is not None
    assert whole.replaygain_track_gain_db is not None
    assert album.replaygain_album_gain_db == pytest.approx(whole.replaygain_track_gain_db, abs=0.1)
    track_gains = [r.replaygain_track_gain_db for r in results]
    assert album.replaygain_album_gain_db != pytest.approx(track_gains[0], abs=0.5)


def test_loudness_album_gain_agrees_with_libebur128_pooling() -> None:
    tracks = _album_tracks()
    states = []
    for track in tracks:
        state = pyebur128.R128State(2, 44100, pyebur128.MeasurementMode.MODE_I)
        state.add_frames(np.ascontiguousarray(track.T).ravel(), track.shape[1])
        states.append(state)
    album = album_gain([_measure(track, 44100) for track in tracks])
    assert album.loudness_lufs == pytest.approx(pyebur128.get_loudness_global_multiple(states), abs=0.05)


def test_loudness_album_peak_is_highest_track_peak() -> None:
    results = [_measure(_tone(level, 2.0, 44100), 44100) for level in (-12.0, -3.0, -20.0)]
    album = album_gain(results)
    assert album.replaygain_album_peak == max(r.replaygain_track_peak for r in results)
    assert album.replaygain_album_peak == pytest.approx(10.0 ** (-3.0 / 20.0), abs=0.01)


def test_loudness_album_gain_of_silent_album_is_none() -> None:
    silent = _measure(np.zeros((2, 44100 * 2), np.float32), 44100)
    assert album_gain([silent, silent]) == AlbumGain(
        replaygain_album_gain_db=None, replaygain_album_peak=0.0, loudness_lufs=None
    )


def test_loudness_album_gain_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one track"):
        album_gain([])
    good = _measure(_tone(-20.0, 1.0, 44100), 44100)
    bad = LoudnessResult(
        loudness_lufs=-20.0,
        loudness_range_lu=0.0,
        true_peak_dbtp=-20.0,
        sample_peak_dbfs=-20.0,
        replaygain_track_gain_db=2.0,
        replaygain_track_peak=0.1,
        gating_histogram=np.zeros(10),
    )
    with pytest.raises(ValueError, match="histogram"):
        album_gain([good, bad])


def test_loudness_histogram_is_bounded_and_counts_blocks() -> None:
    result = _measure(_tone(-20.0, 10.0, 44100), 44100)
    assert result.gating_histogram.shape == (HISTOGRAM_BINS,)
    assert result.gating_histogram.sum() == (100 - 4) + 1  # 400-ms blocks every 100 ms in 10 s


def test_loudness_silence_gives_none_fields() -> None:
    result = _measure(np.zeros((2, 44100 * 5), np.float32), 44100)
    assert result.loudness_lufs is None
    assert result.replaygain_track_gain_db is None
    assert result.true_peak_dbtp is None
    assert result.sample_peak_dbfs is None
    assert result.loudness_range_lu == 0.0
    assert result.replaygain_track_peak == 0.0


def test_loudness_short_input_has_peaks_but_no_loudness() -> None:
    result = _measure(_tone(-10.0, 0.2, 44100), 44100)
    assert result.loudness_lufs is None
    assert result.loudness_range_lu == 0.0
    assert result.sample_peak_dbfs == pytest.approx(-10.0, abs=0.05)
    assert result.true_peak_dbtp == pytest.approx(-10.0, abs=0.1)


def test_loudness_mono_counts_one_channel() -> None:
    result = _measure(_tone(-23.0, 10.0, 44100, channels=1), 44100)
    assert result.loudness_lufs == pytest.approx(-23.0 - 10.0 * math.log10(2.0), abs=0.1)


@pytest.mark.parametrize("rate_hz", [8000, 22050, 44100, 96000, 192000])
def test_loudness_tone_reads_the_same_at_every_rate(rate_hz: int) -> None:
    result = _measure(_tone(-23.0, 6.0, rate_hz), rate_hz)
    assert result.loudness_lufs == pytest.approx(-23.0, abs=0.1)
    assert result.true_peak_dbtp == pytest.approx(-23.0, abs=0.1)


def test_loudness_eight_channels_exclude_the_lfe() -> None:
    x = _tone(-30.0, 5.0, 48000, channels=8)
    with_lfe = x.copy()
    with_lfe[3] *= 30.0
    assert _measure(with_lfe, 48000).loudness_lufs == pytest.approx(_measure(x, 48000).loudness_lufs, abs=1e-9)


def test_loudness_dc_offset_does_not_change_loudness() -> None:
    tone = _tone(-20.0, 10.0, 44100)
    result = _measure(tone + np.float32(0.3), 44100)
    reference = _measure(tone, 44100)
    assert reference.loudness_lufs is not None
    assert result.loudness_lufs == pytest.approx(reference.loudness_lufs, abs=0.05)
    assert result.sample_peak_dbfs == pytest.approx(20.0 * math.log10(0.1 + 0.3), abs=0.05)


def test_loudness_clipped_input_is_defined() -> None:
    clipped = np.clip(_tone(6.0, 5.0, 44100), -1.0, 1.0)
    result = _measure(clipped, 44100)
    assert result.sample_peak_dbfs == pytest.approx(0.0, abs=1e-6)
    assert result.true_peak_dbtp is not None
    assert result.true_peak_dbtp >= 0.0
    assert result.loudness_lufs is not None
    assert -10.0 < result.loudness_lufs < 3.0


def test_loudness_result_independent_of_block_size() -> None:
    x = np.concatenate([_noise(-18.0, 7.0, 44100, seed=5), _tone(-35.0, 6.0, 44100)], axis=1)
    results = [_measure(x, 44100, block_s=block_s) for block_s in (0.013, 0.37, 5.0, 60.0)]
    for other in results[1:]:
        assert other.loudness_lufs == pytest.approx(results[0].loudness_lufs, abs=1e-9)
        assert other.loudness_range_lu == pytest.approx(results[0].loudness_range_lu, abs=1e-9)
        assert other.true_peak_dbtp == pytest.approx(results[0].true_peak_dbtp, abs=1e-6)
        assert other.sample_peak_dbfs == results[0].sample_peak_dbfs
        assert np.array_equal(other.gating_histogram, results[0].gating_histogram)


def test_loudness_analyzer_is_named_and_versioned() -> None:
    analyzer = LoudnessAnalyzer()
    assert isinstance(analyzer, Analyzer)
    assert (analyzer.name, analyzer.version) == ("loudness", 1)


def test_loudness_session_refuses_wrong_channel_count() -> None:
    info = AudioInfo(path="t", codec="pcm", sample_rate_hz=44100, channels=2, duration_s=None, size_bytes=0, mtime_ns=0)
    session = LoudnessAnalyzer().start(info)
    block = AudioBlock(native=np.zeros((1, 100), np.float32), mono=np.zeros(0, np.float32), start_s=0.0)
    with pytest.raises(AnalyzerError, match="shape"):
        session.feed(block)


@pytest.mark.parametrize("name", ["3341-1", "3341-6-5.1"])
def test_loudness_through_the_pipeline_on_a_flac_file(tmp_path: Path, name: str) -> None:
    case = next(c for c in tech3341_loudness_cases() if c.name == name)
    path = write_audio(case.render().T.copy(), case.sample_rate_hz, tmp_path / "case.flac", format_name="flac24")
    analysis = analyze_file(path, [LoudnessAnalyzer()])
    result = analysis.results["loudness"]
    assert isinstance(result, LoudnessResult)
    assert result.loudness_lufs == pytest.approx(-23.0, abs=0.1)


def _streamed_peak_bytes(seconds: int) -> int:
    """Peak traced memory while streaming ``seconds`` of 8 kHz stereo noise in 5-s blocks (made one at a time)."""
    rate = 8000
    info = AudioInfo(path="t", codec="pcm", sample_rate_hz=rate, channels=2, duration_s=None, size_bytes=0, mtime_ns=0)
    rng = np.random.default_rng(11)
    session = LoudnessAnalyzer().start(info)
    tracemalloc.start()
    try:
        for _ in range(seconds // 5):
            native = (0.1 * rng.standard_normal((2, 5 * rate))).astype(np.float32)
            session.feed(AudioBlock(native=native, mono=np.zeros(0, np.float32), start_s=0.0))
        session.finish()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_loudness_memory_does_not_grow_with_track_length() -> None:
    assert _streamed_peak_bytes(600) < 1.2 * _streamed_peak_bytes(30)
