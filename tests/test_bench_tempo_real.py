"""The real-recordings tempo benchmark (scripts/bench_tempo_real.py) cuts its excerpts through the product's decoder:
a file the bundled FFmpeg refuses but libsndfile reads is cut, not skipped."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from scripts.bench_tempo_real import EXCERPT_RATE_HZ, MIN_SOURCE_S, _cut
from sidecar.analyzers.audio import AudioReader


def _mat5(path: Path, duration_s: float) -> npt.NDArray[np.int16]:
    """A stereo 44.1 kHz MATLAB 5 sound file (FFmpeg has no demuxer for it, libsndfile reads it); its samples."""
    rng = np.random.default_rng(11)
    samples = rng.integers(-20000, 20000, size=(round(duration_s * EXCERPT_RATE_HZ), 2)).astype(np.int16)
    soundfile.write(path, samples, EXCERPT_RATE_HZ, format="MAT5", subtype="PCM_16")
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(path))
    return samples


def test_a_file_ffmpeg_refuses_is_cut_not_skipped(tmp_path: Path) -> None:
    samples = _mat5(tmp_path / "take.mat", MIN_SOURCE_S + 1.0)
    excerpt = tmp_path / "excerpt.flac"
    assert _cut(tmp_path / "take.mat", excerpt, excerpt_s=10.0)
    with AudioReader(excerpt) as reader:
        assert (reader.info.sample_rate_hz, reader.info.channels) == (EXCERPT_RATE_HZ, 2)
        cut = np.concatenate([block.native for block in reader.blocks()], axis=1).T
    start = round(15.5 * EXCERPT_RATE_HZ)  # a 41-s file: its middle 10 s (they start before 20 s in)
    np.testing.assert_array_equal(cut, samples[start : start + 10 * EXCERPT_RATE_HZ].astype(np.float32) / 32768.0)


def test_short_and_unreadable_files_are_skipped(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _mat5(tmp_path / "jingle.mat", MIN_SOURCE_S - 1.0)
    assert not _cut(tmp_path / "jingle.mat", tmp_path / "jingle.flac", excerpt_s=10.0)
    (tmp_path / "notes.ogg").write_text("not audio")
    assert not _cut(tmp_path / "notes.ogg", tmp_path / "notes.flac", excerpt_s=10.0)
    assert not (tmp_path / "jingle.flac").exists()
    assert not (tmp_path / "notes.flac").exists()
    assert capsys.readouterr().out.count("skipped") == 1  # the unreadable file; a short one is left out silently
