"""The beat grid's phase (``TempoResult.beat_offset_s``): the first beat of the grid the stored BPM runs on,
from the tempo analyzer's beats (circular mean, so beats jittering around the bar line do not average to half a
beat), and measured on click tracks whose first beat is known."""

from __future__ import annotations

import numpy as np
import pytest

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioBlock
from sidecar.analyzers.tempo import TempoAnalyzer
from sidecar.domain import AudioInfo, TempoResult


def _result(bpm: float, beats: list[float]) -> TempoResult:
    return TempoResult(bpm=bpm, bpm_confidence=0.9, beat_times_s=np.array(beats))


def test_offset_of_an_exact_grid() -> None:
    result = _result(120.0, [0.25 + 0.5 * k for k in range(20)])
    assert result.beat_offset_s == pytest.approx(0.25)


def test_beats_on_both_sides_of_a_grid_line_do_not_average_to_half_a_beat() -> None:
    jitter = [0.01, -0.01] * 10
    result = _result(120.0, [1.0 + 0.5 * k + j for k, j in enumerate(jitter)])
    offset = result.beat_offset_s
    assert offset is not None
    assert min(offset, 0.5 - offset) < 1e-9  # on the grid line 0 (= 0.5), not at 0.25
    assert 0.0 <= offset < 0.5


def test_no_offset_without_tempo_or_beats() -> None:
    assert TempoResult(bpm=None, bpm_confidence=0.0, beat_times_s=np.zeros(0)).beat_offset_s is None
    assert _result(120.0, []).beat_offset_s is None


@pytest.mark.parametrize(("bpm", "first_beat_s"), [(120.0, 0.3), (96.0, 0.05), (140.0, 0.4)])
def test_the_analyzer_finds_where_a_click_track_starts(bpm: float, first_beat_s: float) -> None:
    seconds = 12.0
    out = np.zeros(round(seconds * ANALYSIS_RATE_HZ), np.float32)
    t = np.arange(round(0.02 * ANALYSIS_RATE_HZ)) / ANALYSIS_RATE_HZ
    click = (0.5 * np.sin(2 * np.pi * 1000.0 * t) * np.exp(-t / 0.004)).astype(np.float32)
    for beat_s in np.arange(first_beat_s, seconds - 0.05, 60.0 / bpm):
        start = round(beat_s * ANALYSIS_RATE_HZ)
        out[start : start + click.size] += click
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
    session.feed(AudioBlock(native=np.zeros((1, 0), np.float32), mono=out, start_s=0))
    result = session.finish()
    assert result.bpm == pytest.approx(bpm, rel=0.01)
    assert result.beat_offset_s == pytest.approx(first_beat_s, abs=0.02)
