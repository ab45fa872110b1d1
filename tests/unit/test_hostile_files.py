"""Hostile files in the library (issue 12): every one is a per-track error with a precise reason, never a crash,
a hang or a read outside the library."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from typer.testing import CliRunner

from sidecar.analyzers.audio import AudioReader
from sidecar.analyzers.base import Analyzer, AnalyzerSession
from sidecar.analyzers.pipeline import TrackAnalysis, analyze_file
from sidecar.analyzers.registry import CORE_ANALYZERS, build_analyzers
from sidecar.cli import app
from sidecar.demo.encode import write_audio, write_raw_wav
from sidecar.domain import AnalyzerOutput, AudioInfo
from sidecar.errors import AudioDecodeError
from sidecar.services.sync import file_stat
from sidecar.settings import get_settings

RATE_HZ = 22050


def _tone(seconds: float, channels: int = 2) -> np.ndarray:
    t = np.arange(int(seconds * RATE_HZ)) / RATE_HZ
    return np.repeat((0.3 * np.sin(2 * np.pi * 440.0 * t))[:, None], channels, axis=1).astype(np.float32)


def _analyze(path: Path, *, library_root: Path | None = None) -> TrackAnalysis:
    return analyze_file(path, build_analyzers(get_settings(), CORE_ANALYZERS), library_root=library_root)


def _within(seconds: float, call: Callable[[], TrackAnalysis]) -> TrackAnalysis:
    """Run ``call`` in a daemon thread; fail (instead of hanging the suite) when it blocks longer than ``seconds``."""
    box: list[TrackAnalysis] = []
    thread = threading.Thread(target=lambda: box.append(call()), daemon=True)
    thread.start()
    thread.join(seconds)
    assert box, f"still blocked after {seconds} s"
    return box[0]


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_float_wav_is_an_error_with_its_position(tmp_path: Path, bad: float) -> None:
    samples = _tone(3.0)
    samples[int(1.5 * RATE_HZ), 1] = bad
    path = write_raw_wav(samples, RATE_HZ, tmp_path / "nan.wav")
    analysis = _analyze(path)
    assert analysis.error is not None
    assert "non-finite samples (NaN or infinity) at 1.50 s" in analysis.error
    assert set(analysis.failures) == set(CORE_ANALYZERS)


def test_denormal_and_32_channel_wavs_are_analysed(tmp_path: Path) -> None:
    tiny = np.full((RATE_HZ * 2, 2), 1e-42, np.float32)  # subnormal float32
    assert _analyze(write_raw_wav(tiny, RATE_HZ, tmp_path / "denormal.wav")).error is None
    wide = _analyze(write_raw_wav(_tone(2.0, channels=32), RATE_HZ, tmp_path / "wide.wav"))
    assert wide.error is None
    assert wide.info is not None
    assert wide.info.channels == 32


class _Exploding:
    """An analyzer whose session raises an exception type no handler lists (KeyError)."""

    name: ClassVar[str] = "exploding"
    version: ClassVar[int] = 1

    def check(self) -> None:
        """Nothing to probe."""

    def start(self, info: AudioInfo) -> AnalyzerSession[AnalyzerOutput]:
        return self

    def feed(self, block: object) -> None:
        raise KeyError("boom")

    def finish(self) -> AnalyzerOutput:
        raise AssertionError("never reached")


def test_an_analyzer_exception_of_any_type_is_that_analyzers_failure(tmp_path: Path) -> None:
    path = write_audio(_tone(3.0), RATE_HZ, tmp_path / "ok.flac")
    analyzers: list[Analyzer[AnalyzerOutput]] = [*build_analyzers(get_settings(), ("loudness",)), _Exploding()]
    analysis = analyze_file(path, analyzers)
    assert analysis.error is None
    assert set(analysis.results) == {"loudness"}
    assert analysis.failures["exploding"].error == "internal error in exploding: KeyError: 'boom'"


def test_fifo_is_refused_at_once_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.flac"
    os.mkfifo(fifo)
    analysis = _within(10.0, lambda: _analyze(fifo))
    assert analysis.error == f"{fifo} is a FIFO (named pipe), not an audio file"


def test_directory_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "album.flac"
    folder.mkdir()
    assert _analyze(folder).error == f"{folder} is a directory, not an audio file"


def test_symlink_out_of_the_library_is_refused_at_open(tmp_path: Path) -> None:
    library = tmp_path / "library"
    library.mkdir()
    outside = write_audio(_tone(2.0), RATE_HZ, tmp_path / "secret.flac")
    inside = write_audio(_tone(2.0), RATE_HZ, library / "real.flac")
    (library / "inner-link.flac").symlink_to(inside)
    (library / "swapped.flac").symlink_to(outside)  # replaced by a link after sync
    assert _analyze(library / "inner-link.flac", library_root=library).error is None
    refused = _analyze(library / "swapped.flac", library_root=library)
    assert refused.error == (
        f"{library / 'swapped.flac'} resolves to {outside}, outside the library {library}; refusing it"
    )
    assert _analyze(library / "swapped.flac").error is None  # files named on the command line have no root


def _decode_all(path: Path) -> None:
    with AudioReader(path) as reader:
        for _ in reader.blocks():
            pass


def test_wav_cut_short_of_its_header_is_truncated(tmp_path: Path) -> None:
    samples = (_tone(1.1) * 32767).astype(np.int16)
    path = write_raw_wav(samples, RATE_HZ, tmp_path / "cut.wav", declared_frames=10 * RATE_HZ)
    with pytest.raises(AudioDecodeError, match=r"file is truncated: decoded 1\.1 s of the 10\.0 s its header"):
        _decode_all(path)


def test_sync_tracks_only_regular_files(tmp_path: Path) -> None:
    regular = write_audio(_tone(1.0), RATE_HZ, tmp_path / "a.flac")
    folder = tmp_path / "folder"
    folder.mkdir()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    assert file_stat(str(regular)) is not None
    assert file_stat(str(folder)) is None
    assert file_stat(str(fifo)) is None


def test_cli_analyze_prints_the_error_line_and_goes_on(tmp_path: Path) -> None:
    samples = _tone(3.0)
    samples[100, 0] = np.nan
    bad = write_raw_wav(samples, RATE_HZ, tmp_path / "a-nan.wav")
    good = write_audio(_tone(3.0), RATE_HZ, tmp_path / "b-good.flac")
    result = CliRunner().invoke(app, ["analyze", "--json", str(bad), str(good)])
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [line["path"] for line in lines] == [str(bad), str(good)]
    assert set(lines[0]) == {"path", "error"}
    assert "non-finite samples" in str(lines[0]["error"])
    assert "error" not in lines[1]
    assert lines[1]["duration_s"] == pytest.approx(3.0, abs=0.05)
