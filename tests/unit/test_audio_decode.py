"""Read-only streamed decoding: every format, odd inputs, and clear errors for bad files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
import pytest
import soundfile

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, AudioReader
from sidecar.demo.encode import FORMATS, suffix_for, write_audio
from sidecar.errors import AudioDecodeError


def _tone(seconds: float, rate: int, channels: int = 2, freq: float = 440.0) -> npt.NDArray[np.float32]:
    t = np.arange(int(seconds * rate)) / rate
    return np.repeat((0.5 * np.sin(2 * np.pi * freq * t))[:, None], channels, axis=1).astype(np.float32)


def _decode(path: Path) -> tuple[AudioReader, int, int, float]:
    native = mono = 0
    peak = 0.0
    with AudioReader(path) as reader:
        for block in reader.blocks():
            assert block.native.dtype == np.float32
            assert block.native.shape[0] == reader.info.channels
            native += block.native.shape[1]
            mono += block.mono.shape[0]
            peak = max(peak, float(np.abs(block.native).max(initial=0.0)))
    return reader, native, mono, peak


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_decode_every_format(tmp_path: Path, name: str) -> None:
    path = write_audio(_tone(3.0, 44100), 44100, tmp_path / f"tone{suffix_for(name)}", format_name=name)
    reader, native, mono, peak = _decode(path)
    assert reader.info.channels == 2
    assert native / reader.info.sample_rate_hz == pytest.approx(3.0, abs=0.06)
    assert mono / ANALYSIS_RATE_HZ == pytest.approx(3.0, abs=0.06)
    assert 0.4 < peak < 1.0


@pytest.mark.parametrize(("rate", "channels"), [(8000, 1), (192000, 2), (48000, 6)])
def test_decode_odd_rates_and_channels(tmp_path: Path, rate: int, channels: int) -> None:
    path = write_audio(_tone(2.0, rate, channels), rate, tmp_path / "odd.flac")
    reader, native, mono, _ = _decode(path)
    assert (reader.info.sample_rate_hz, reader.info.channels) == (rate, channels)
    assert native == 2 * rate
    assert mono == pytest.approx(2 * ANALYSIS_RATE_HZ, abs=2)


def test_decode_blocks_are_bounded(tmp_path: Path) -> None:
    path = write_audio(_tone(30.0, 44100), 44100, tmp_path / "long.flac")
    with AudioReader(path, block_s=2.0) as reader:
        sizes = [block.native.shape[1] for block in reader.blocks()]
    assert max(sizes) < 2.2 * 44100
    assert sum(sizes) == 30 * 44100


def test_decode_opens_the_original_read_only(tmp_path: Path) -> None:
    path = write_audio(_tone(1.0, 44100), 44100, tmp_path / "ro.flac")
    path.chmod(stat.S_IRUSR | stat.S_IRGRP)
    before = path.stat()
    _decode(path)
    after = path.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)


def test_decode_missing_file(tmp_path: Path) -> None:
    with pytest.raises(AudioDecodeError, match="file not found"):
        AudioReader(tmp_path / "nope.flac")


def test_decode_empty_file(tmp_path: Path) -> None:
    (tmp_path / "empty.flac").write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty"):
        AudioReader(tmp_path / "empty.flac")


def test_decode_text_file_named_mp3(tmp_path: Path) -> None:
    (tmp_path / "notes.mp3").write_text("these are my notes, not audio\n" * 20)
    with pytest.raises(AudioDecodeError, match=r"not a decodable audio file|no audio"):
        _decode(tmp_path / "notes.mp3")


def test_decode_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_audio(_tone(1.0, 44100), 44100, tmp_path / "locked.flac")
    path.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the open fail the way it does for other users

        def refuse(name: object, *args: object, **kwargs: object) -> None:
            raise PermissionError(13, "Permission denied", str(name))

        monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(AudioDecodeError, match="no permission to read"):
        AudioReader(path)


def test_decode_truncated_flac(tmp_path: Path) -> None:
    path = write_audio(_tone(20.0, 44100), 44100, tmp_path / "whole.flac")
    data = path.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(AudioDecodeError, match="truncated"):
        _decode(cut)


@pytest.mark.parametrize(
    ("name", "scale"), [("flac", 32768.0), ("alac", 32768.0), ("wav", 32768.0), ("flac24", 8388608.0)]
)
def test_decode_integer_samples_exactly(tmp_path: Path, name: str, scale: float) -> None:
    """Packed (FLAC, WAV) and planar (ALAC) integer samples come out as exactly value / full scale, channels apart."""
    rng = np.random.default_rng(5)
    ints = rng.integers(-int(scale), int(scale), size=(3 * 44100, 2))
    path = write_audio((ints / scale).astype(np.float32), 44100, tmp_path / f"x{suffix_for(name)}", format_name=name)
    with AudioReader(path, block_s=1.0) as reader:
        native = np.concatenate([block.native for block in reader.blocks()], axis=1)
    assert native.flags.c_contiguous
    np.testing.assert_array_equal(native, (ints.T / scale).astype(np.float32))


@pytest.mark.parametrize("name", ["mp3", "opus"])
def test_decode_float_samples_as_pyav_gives_them(tmp_path: Path, name: str) -> None:
    """Planar (MP3) and packed (Opus) float frames: the blocks hold PyAV's own samples, unchanged, in order."""
    rate = 44100 if name == "mp3" else 48000
    path = write_audio(_tone(2.0, rate), rate, tmp_path / f"x{suffix_for(name)}", format_name=name)
    with av.open(str(path)) as container:
        frames = [frame.to_ndarray() for frame in container.decode(audio=0)]
    planar = [f if f.shape[0] == 2 else f.reshape(-1, 2).T for f in frames]
    with AudioReader(path, block_s=0.5) as reader:
        native = np.concatenate([block.native for block in reader.blocks()], axis=1)
    np.testing.assert_array_equal(native, np.concatenate(planar, axis=1))


def test_decode_falls_back_to_libsndfile_for_a_file_ffmpeg_refuses(tmp_path: Path) -> None:
    """Some valid Ogg Vorbis files are refused by the bundled FFmpeg and read by libsndfile; a MATLAB 5 sound file
    (which FFmpeg has no demuxer for) takes the same path here."""
    rng = np.random.default_rng(5)
    written = (rng.integers(-20000, 20000, size=(44100 * 3 + 17, 2))).astype(np.int16)
    path = tmp_path / "take.mat"
    soundfile.write(path, written, 44100, format="MAT5", subtype="PCM_16")
    with pytest.raises(av.error.InvalidDataError):
        av.open(str(path))
    with AudioReader(path, block_s=1.0) as reader:
        info = reader.info
        blocks = list(reader.blocks())
    assert (info.codec, info.sample_rate_hz, info.channels) == ("pcm_16", 44100, 2)
    assert info.duration_s == pytest.approx(written.shape[0] / 44100)
    native = np.concatenate([block.native for block in blocks], axis=1)
    np.testing.assert_array_equal(native, written.T.astype(np.float32) / 32768.0)
    assert [block.start_s for block in blocks] == [0.0, 1.0, 2.0, 3.0]
    mono_s = sum(block.mono.shape[0] for block in blocks) / ANALYSIS_RATE_HZ
    assert mono_s == pytest.approx(written.shape[0] / 44100, abs=1e-3)
