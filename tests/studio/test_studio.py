"""The Studio in headless Chromium, fed signals generated here and served through the real API from a temporary
library: goniometer and correlation, VU ballistics and peak, loudness, the DR meter against Python, and the stems
mixer (sample-locked playback, solo, karaoke)."""

from __future__ import annotations

from pathlib import Path
from typing import TypedDict

import numpy as np
import numpy.typing as npt
import pytest
from playwright.sync_api import Page

from sidecar.analyzers.pipeline import analyze_file
from sidecar.analyzers.registry import build_analyzers
from sidecar.analyzers.versions import VERSIONS
from sidecar.demo.encode import write_audio, write_raw_wav
from sidecar.stems import STEM_NAMES
from sidecar.storage import analyses, status, stems, tracks
from sidecar.storage.db import transaction
from tests.keyboard import focus_outline, tab_to
from tests.studio.conftest import StudioServer
from tests.studio.dr_meter import dr_meter

RATE_HZ = 48000


def _tone(seconds: float, hz: float, amplitude: float) -> npt.NDArray[np.float64]:
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    return amplitude * np.sin(2 * np.pi * hz * t)


def _write_wav(path: Path, left: npt.NDArray[np.float64], right: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """16-bit stereo WAV; returns the samples as stored (quantised)."""
    pcm = np.round(np.clip(np.stack([left, right], axis=1), -1, 32767 / 32768) * 32768).astype("<i2")
    write_raw_wav(pcm, RATE_HZ, path)
    return pcm.astype(np.float64) / 32768


async def _register(server: StudioServer, path: Path) -> int:
    async with transaction(server.runtime.pool) as conn:
        saved = await tracks.upsert_track(
            conn, tracks.TrackUpsert(host="navidrome", host_track_id=path.stem, title=path.stem, path=str(path))
        )
    return saved.track_id


def _track(server: StudioServer, name: str, left: npt.NDArray[np.float64], right: npt.NDArray[np.float64]) -> int:
    path = server.library / f"{name}.wav"
    _write_wav(path, left, right)
    return server.call(_register(server, path))


def _open(page: Page, track_id: int) -> None:
    page.goto(f"/studio/?track={track_id}")
    page.wait_for_function("window.studio && (window.studio.ready || window.studio.error)")
    assert page.evaluate("window.studio.error") is None


class _Dr(TypedDict):
    """The DR meter's reading (``result()`` in dsp.js): per channel and overall (``None`` before a full block)."""

    channels: list[float | None]
    value: float | None
    blocks: int


# The meters' readings (``readings()`` in dsp.js) that these tests read; the keys are the JavaScript names.
class _Readings(TypedDict):
    vu: list[float]
    vuLevelDbfs: list[float]
    peakDbfs: list[float]
    maxPeakDbfs: list[float]
    correlation: float
    momentaryLufs: float
    dr: _Dr


def _play_for(page: Page, seconds: float) -> _Readings:
    page.get_by_role("button", name="Play").click()
    page.wait_for_function(f"window.studio.position() > {seconds}", timeout=15000)
    readings: _Readings = page.evaluate("window.studio.readings")
    return readings


GONIOMETER_HITS = """() => {
  const canvas = document.getElementById("goniometer");
  const size = canvas.width, c = size / 2;
  const data = canvas.getContext("2d").getImageData(0, 0, size, size).data;
  const hits = { leftAxis: 0, rightAxis: 0, elsewhere: 0 };
  for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) {
    const i = 4 * (y * size + x);
    const [r, g] = [data[i], data[i + 1]];
    if (!(g > 120 && g > r + 60) || Math.hypot(x - c, y - c) < 12) continue;
    if (Math.abs(x - y) <= 3) hits.leftAxis++;
    else if (Math.abs(x + y - size) <= 3) hits.rightAxis++;
    else hits.elsewhere++;
  }
  return hits;
}"""


def test_goniometer_and_correlation_of_left_only_mono_and_anti_phase(page: Page, studio_server: StudioServer) -> None:
    tone = _tone(3.0, 440, 0.5)
    left_only = _track(studio_server, "left-only", tone, np.zeros_like(tone))
    mono = _track(studio_server, "mono", tone, tone)
    anti = _track(studio_server, "anti-phase", tone, -tone)

    _open(page, left_only)
    readings = _play_for(page, 1.2)
    assert readings["correlation"] == 0
    hits = page.evaluate(GONIOMETER_HITS)
    assert hits["leftAxis"] > 40, hits
    assert hits["rightAxis"] == 0, hits
    assert hits["elsewhere"] == 0, hits

    _open(page, mono)
    assert _play_for(page, 1.2)["correlation"] > 0.99
    _open(page, anti)
    assert _play_for(page, 1.2)["correlation"] < -0.99


def test_vu_peak_and_loudness_of_a_minus_20_dbfs_sine(page: Page, studio_server: StudioServer) -> None:
    sine = _tone(4.0, 1000, 0.1)  # -20 dBFS: a full-scale sine is 0 dBFS
    _open(page, _track(studio_server, "minus-20", sine, sine))
    page.wait_for_timeout(3200)  # more than a DR block of silence before playing, which the DR meter must not count
    readings = _play_for(page, 1.5)
    assert readings["dr"]["blocks"] == 1
    for channel in range(2):
        assert abs(readings["vuLevelDbfs"][channel] - -20.0) < 0.2
        assert abs(readings["vu"][channel] - -2.0) < 0.2  # 0 VU = -18 dBFS
        assert abs(readings["maxPeakDbfs"][channel] - -20.0) < 0.1
        assert abs(readings["peakDbfs"][channel] - -20.0) < 0.1
    assert abs(readings["momentaryLufs"] - -20.0) < 0.3


VU_STEP = """async () => {
  const { VuMeter } = await import("/studio/dsp.js");
  const rate = 48000, meter = new VuMeter(rate), one = new Float32Array(480).fill(1);
  let at300 = null, highest = 0;
  for (let block = 0; block < 200; block++) {  // 2 s of a rectified level of 1.0, in 10 ms blocks
    meter.process(one, one.length);
    if (block === 29) at300 = meter.position;
    highest = Math.max(highest, meter.position);
  }
  return { at300, highest, settled: meter.position };
}"""


def test_vu_ballistics_reach_99_percent_in_300_ms_with_a_small_overshoot(page: Page) -> None:
    page.goto("/studio/")  # the Studio without a track still loads the module
    step = page.evaluate(VU_STEP)
    assert abs(step["at300"] - 0.99) < 0.003
    assert 1.01 < step["highest"] < 1.02
    assert abs(step["settled"] - 1.0) < 0.001


LEFT_BLOCK_LEVELS = (0.05, 0.5, 0.1, 0.25, 0.02, 0.35, 0.08, 0.15, 0.03, 0.12, 0.06)
RIGHT_BLOCK_LEVELS = (0.3, 0.04, 0.45, 0.1, 0.2, 0.02, 0.15, 0.06, 0.25, 0.01, 0.08)


def _dr_signal() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """31.5 s (ten 3-s blocks and a shorter one): tones whose level changes from block to block, spread widely so
    that taking the loudest 30 % instead of 20 % of the blocks moves the DR by about 1, and sine bursts (50 ms)
    as the two highest peaks of each channel (the highest instead of the second-highest moves it by 2)."""
    t = np.arange(int(31.5 * RATE_HZ)) / RATE_HZ
    block = (t // 3).astype(int)
    left = np.array(LEFT_BLOCK_LEVELS)[block] * np.sin(2 * np.pi * 220 * t)
    right = np.array(RIGHT_BLOCK_LEVELS)[block] * np.sin(2 * np.pi * 330 * t)
    burst = np.arange(int(0.05 * RATE_HZ))
    for channel, at_s, amplitude in ((left, 4.0, 0.95), (left, 19.0, 0.75), (right, 10.0, 0.85), (right, 25, 0.65)):
        channel[int(at_s * RATE_HZ) + burst] = amplitude * np.sin(2 * np.pi * 1000 * burst / RATE_HZ)
    return left, right


def test_the_dr_meter_matches_the_same_method_in_python(page: Page, studio_server: StudioServer) -> None:
    left, right = _dr_signal()
    path = studio_server.library / "dynamics.wav"
    stored = _write_wav(path, left, right)
    expected, expected_channels = dr_meter(stored, RATE_HZ)
    _open(page, studio_server.call(_register(studio_server, path)))
    page.get_by_role("button", name="Measure").click()
    page.wait_for_function("window.studio.trackDr !== null", timeout=30000)
    measured = page.evaluate("window.studio.trackDr")
    assert measured["blocks"] == 11
    assert abs(measured["value"] - expected) < 0.5, (measured, expected)
    for got, want in zip(measured["channels"], expected_channels, strict=True):
        assert abs(got - want) < 0.5
    assert page.locator("#track-dr").inner_text().startswith(f"DR{round(measured['value'])}")


async def _with_stems(server: StudioServer, name: str, parts: dict[str, npt.NDArray[np.float64]]) -> int:
    """A track whose original is the sum of ``parts`` (stereo arrays for vocals, drums, bass and other), with those
    four and the instrumental recorded as its stems (FLAC in the stems folder)."""
    path = server.library / f"{name}.wav"
    mix = parts["vocals"] + parts["drums"] + parts["bass"] + parts["other"]
    _write_wav(path, mix[:, 0], mix[:, 1])
    track_id = await _register(server, path)
    folder = server.settings.stems_root / str(track_id)
    folder.mkdir(parents=True)
    files = {**parts, "instrumental": parts["drums"] + parts["bass"] + parts["other"]}
    sizes = {
        stem: write_audio(files[stem].astype(np.float32), RATE_HZ, folder / f"{stem}.flac").stat().st_size
        for stem in STEM_NAMES
    }
    async with transaction(server.runtime.pool) as conn:
        await stems.record_stems(
            conn, track_id, location=str(folder), size_bytes=sum(sizes.values()), format="flac", files=sizes
        )
    return track_id


def _stereo(mono: npt.NDArray[np.float64], left: float = 1.0, right: float = 1.0) -> npt.NDArray[np.float64]:
    return np.stack([left * mono, right * mono], axis=1)


def _tones_with_stems(server: StudioServer, seconds: float, name: str = "tones-with-stems") -> int:
    """Vocals 1 kHz, other 3 kHz, and drums and bass the same 500 Hz tone in opposite phase (they cancel only
    when the stems play sample-locked)."""
    parts = {
        "vocals": _stereo(_tone(seconds, 1000, 0.1)),
        "drums": _stereo(_tone(seconds, 500, 0.1)),
        "bass": _stereo(-_tone(seconds, 500, 0.1)),
        "other": _stereo(_tone(seconds, 3000, 0.1)),
    }
    return server.call(_with_stems(server, name, parts))


def _band(page: Page, hz: float) -> float:
    return float(page.evaluate(f"window.studio.bandDb({hz})"))


def test_stems_play_sample_locked_and_karaoke_removes_the_vocals(page: Page, studio_server: StudioServer) -> None:
    _open(page, _tones_with_stems(studio_server, 8.0))
    page.wait_for_function("window.studio.stems.loaded")
    page.get_by_role("radio", name="Stems").check()
    _play_for(page, 1.0)
    page.wait_for_timeout(300)  # the analyser's smoothing settles
    assert _band(page, 1000) > -45
    assert _band(page, 3000) > -45
    assert _band(page, 500) < _band(page, 3000) - 40  # drums and bass cancel: the four started together

    page.get_by_role("button", name="Karaoke").click()
    page.wait_for_function("window.studio.bandDb(1000) < window.studio.bandDb(3000) - 40", timeout=5000)
    assert page.get_by_role("button", name="Karaoke").get_attribute("aria-pressed") == "true"
    assert _band(page, 3000) > -45

    page.locator("#solo-drums").click()  # soloed, the drums no longer meet the bass that cancelled them
    page.wait_for_function("window.studio.bandDb(500) > window.studio.bandDb(3000) + 40", timeout=5000)


def _reach(page: Page, selector: str) -> None:
    """Tab to ``selector`` and check that the focus can be seen there."""
    tab_to(page, selector)
    assert focus_outline(page) != "none", f"no visible focus on {selector}"


def test_keyboard_alone_plays_seeks_and_mixes_the_stems(page: Page, studio_server: StudioServer) -> None:
    _open(page, _tones_with_stems(studio_server, 8.0, name="keyboard-stems"))
    page.wait_for_function("window.studio.stems.loaded")
    _reach(page, "#play")
    page.keyboard.press("Space")
    page.wait_for_function("window.studio.playing && window.studio.position() > 0.3", timeout=15000)
    page.keyboard.press("Enter")
    page.wait_for_function("!window.studio.playing")
    _reach(page, "#position")
    before = page.evaluate("window.studio.position()")
    page.keyboard.press("PageUp")  # a tenth of the track further
    page.wait_for_function(f"window.studio.position() > {before} + 0.5")
    _reach(page, "input[name=source][value=original]")
    page.keyboard.press("ArrowRight")  # the radio group: Original -> Stems
    page.wait_for_function("window.studio.source === 'stems'")
    _reach(page, "#measure-dr")
    page.keyboard.press("Enter")
    page.wait_for_function("window.studio.trackDr !== null", timeout=30000)
    _reach(page, "#karaoke")
    page.keyboard.press("Enter")
    page.wait_for_function("window.studio.karaoke && window.studio.mixer.vocals.mute")
    assert page.locator("#karaoke").get_attribute("aria-pressed") == "true"
    _reach(page, "#gain-drums")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("window.studio.mixer.drums.gainDb === -1")
    assert page.locator("#gain-drums-text").inner_text() == "-1.0 dB"
    _reach(page, "#mute-drums")
    page.keyboard.press("Space")
    page.wait_for_function("window.studio.mixer.drums.mute")
    assert page.locator("#mute-drums").get_attribute("aria-pressed") == "true"
    _reach(page, "#solo-other")
    page.keyboard.press("Enter")
    page.wait_for_function("window.studio.mixer.other.solo")
    assert page.locator("#solo-other").get_attribute("aria-pressed") == "true"
    tab_to(page, "#play", backwards=True)  # back to Play: only the soloed stem sounds
    page.keyboard.press("Enter")
    page.wait_for_function("window.studio.playing && window.studio.position() > 1.5", timeout=15000)
    page.wait_for_function("window.studio.bandDb(3000) > window.studio.bandDb(1000) + 40", timeout=5000)


BPM = 120.0
FIRST_BEAT_S = 0.3


def _song(seconds: float) -> dict[str, npt.NDArray[np.float64]]:
    """A small A-minor song at 120 BPM whose first beat is at 0.3 s, as four stereo stems."""
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    since_beat = (t - FIRST_BEAT_S) % (60 / BPM)
    beat = np.floor((t - FIRST_BEAT_S) * BPM / 60).astype(int)
    kick = np.where(t >= FIRST_BEAT_S, np.sin(2 * np.pi * 55 * since_beat) * np.exp(-since_beat / 0.06), 0.0)
    melody_hz = np.array([440.0, 523.25, 659.25, 587.33])[beat % 4]
    vocals = 0.12 * np.sin(2 * np.pi * melody_hz * t + 0.3 * np.sin(2 * np.pi * 5 * t))
    pad = sum(0.04 * np.sin(2 * np.pi * hz * t) for hz in (220.0, 261.63, 329.63))
    bass = 0.15 * np.sin(2 * np.pi * 110 * t) * np.exp(-since_beat / 0.3)
    return {
        "vocals": _stereo(vocals, 0.9, 0.6),
        "drums": _stereo(0.5 * kick),
        "bass": _stereo(bass),
        "other": np.stack([0.8 * pad, 0.8 * np.roll(pad, 96)], axis=1),
    }


async def _analyse(server: StudioServer, track_id: int, path: Path) -> None:
    names = ("loudness", "tempo", "key", "waveform")
    analysis = analyze_file(path, build_analyzers(server.settings, names))
    versions = {name: VERSIONS[name] for name in names}
    async with transaction(server.runtime.pool) as conn:
        await status.ensure_status(conn, versions, track_ids=[track_id])
        await analyses.store_results(conn, track_id, results=analysis.results, versions=versions)


def test_an_analysed_song_shows_its_analysis_and_pulses_on_the_stored_beat_grid(
    page: Page, studio_server: StudioServer, tmp_path: Path
) -> None:
    track_id = studio_server.call(_with_stems(studio_server, "song", _song(12.0)))
    studio_server.call(_analyse(studio_server, track_id, studio_server.library / "song.wav"))
    _open(page, track_id)
    analysis = page.evaluate("window.studio.analysis")
    assert analysis["bpm"] == pytest.approx(BPM, rel=0.01)
    assert analysis["beat_offset_s"] == pytest.approx(FIRST_BEAT_S, abs=0.03)
    assert "120.0 BPM" in page.locator("#facts").inner_text()
    assert page.locator("#integrated").inner_text() == f"{analysis['loudness_lufs']:.1f} LUFS"
    page.wait_for_function("window.studio.stems.loaded")
    page.get_by_role("radio", name="Stems").check()
    page.get_by_role("button", name="Karaoke").click()
    _play_for(page, 3.5)
    beats = page.evaluate("window.studio.beats")
    assert 3 <= beats <= 8  # seven grid beats by 3.5 s (0.3, 0.8, ... s); a stalled frame on a busy machine skips one
    assert "LU)" in page.locator("#short-term").inner_text()  # shown against the stored integrated value
    page.get_by_role("button", name="Measure").click()
    page.wait_for_function("window.studio.trackDr !== null", timeout=30000)
    page.screenshot(path=str(tmp_path / "studio.png"), full_page=True)  # docs/client/studio.png
    assert (tmp_path / "studio.png").stat().st_size > 10_000
    waveform = page.evaluate("window.studio.waveform")
    assert waveform == {"points": 1200, "bucketS": pytest.approx(0.01)}  # the stored overview, drawn
    box = page.locator("#overview").bounding_box()
    assert box is not None
    page.locator("#overview").click(position={"x": box["width"] * 0.75, "y": 30})
    assert page.evaluate("window.studio.position()") > 8.5  # clicking the overview plays from there (9 s)
    page.set_viewport_size({"width": 360, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # readable on a phone: no sideways scroll
    page.screenshot(path=str(tmp_path / "studio-360.png"), full_page=True)  # docs/client/studio-360.png
