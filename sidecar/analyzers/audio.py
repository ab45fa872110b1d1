"""Streamed, read-only decoding of every format the sidecar analyses. The only module that touches codecs.

Files are opened with ``open(path, "rb")`` and handed to PyAV (FFmpeg's decoders bundled in the ``av`` wheel), so
an original is never opened for writing. A file FFmpeg refuses to open is handed to libsndfile (the ``soundfile``
wheel) on the same read-only handle: some valid Ogg Vorbis files are refused by the bundled FFmpeg only. Decoding
yields :class:`AudioBlock` objects of a few seconds each: memory stays bounded whatever the track length, so a
3-hour DJ mix is analysed without holding 3 hours of samples.
"""

from __future__ import annotations

import errno
import itertools
import operator
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import av
import av.error
import numpy as np
import numpy.typing as npt
import soundfile
import soxr
from av.audio.stream import AudioStream

from sidecar.domain import AudioInfo
from sidecar.errors import AudioDecodeError

ANALYSIS_RATE_HZ = 22050
"""Sample rate of the mono analysis signal (tempo, key, timbre)."""

AUDIO_SUFFIXES = frozenset(
    {".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".mp4", ".aac", ".alac", ".wav", ".aif", ".aiff", ".wma", ".wv"}
)
"""File name endings taken as audio when a folder is scanned (a file named explicitly is always tried)."""

_INT_SCALE = {"u8": 128.0, "s16": 32768.0, "s32": 2147483648.0, "s64": 9223372036854775808.0}
_MAX_BAD_PACKET_FRACTION = 0.05
_MIN_DECODED_FRACTION = 0.9


@dataclass(frozen=True, slots=True)
class AudioBlock:
    """A few seconds of decoded audio, in two forms.

    ``native``: float32, shape (channels, n), the file's own rate and channels, full scale = 1.0.
    ``mono``: float32, shape (m,), the channel mean resampled to :data:`ANALYSIS_RATE_HZ` (streamed, so blocks
    join without seams). ``start_s``: position of the first native sample in the track, seconds.
    """

    native: npt.NDArray[np.float32]
    mono: npt.NDArray[np.float32]
    start_s: float


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _opened_path(fd: int, path: Path) -> str:
    """The real path of the file behind ``fd`` (symlinks resolved by the kernel at open time)."""
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # no /proc: resolve the name instead
        return os.path.realpath(path)


def _inside(real: str, root: str | os.PathLike[str]) -> bool:
    root_real = os.path.realpath(root).rstrip("/") or "/"
    return real == root_real or real.startswith(root_real.rstrip("/") + "/")


def _readable_file(path: Path, library_root: str | os.PathLike[str] | None) -> tuple[IO[bytes], os.stat_result]:
    """Open ``path`` read-only, turning OS errors into messages a user can act on.

    Only a regular file is accepted, checked on the open descriptor (opened non-blocking, so a FIFO cannot hang
    the open). With ``library_root``, the file actually opened (symlinks resolved) must lie inside it: a link
    swapped in after sync that points elsewhere is refused.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except FileNotFoundError:
        raise AudioDecodeError(f"file not found: {path}") from None
    except PermissionError:
        raise AudioDecodeError(f"no permission to read {path}") from None
    except OSError as exc:
        raise AudioDecodeError(f"cannot open {path}: {os.strerror(exc.errno or errno.EIO)}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise AudioDecodeError(f"{path} is {_kind(info.st_mode)}, not an audio file")
        if library_root is not None and not _inside(real := _opened_path(fd, path), library_root):
            raise AudioDecodeError(f"{path} resolves to {real}, outside the library {library_root}; refusing it")
        if info.st_size == 0:
            raise AudioDecodeError(f"file is empty (0 bytes): {path}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), info
    except BaseException:
        os.close(fd)
        raise


_RIFF_HEADER_BYTES = 65536


def _riff_declared_s(head: bytes) -> float | None:
    """The length a WAV header's ``data`` chunk declares, in seconds (FFmpeg clamps it to the file's size, which
    hides a truncated file); ``None`` for anything else, or a streaming header with no size."""
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    byte_rate = 0
    offset = 12
    while offset + 8 <= len(head):
        chunk, size = head[offset : offset + 4], int.from_bytes(head[offset + 4 : offset + 8], "little")
        if chunk == b"fmt " and offset + 20 <= len(head):
            byte_rate = int.from_bytes(head[offset + 16 : offset + 20], "little")
        elif chunk == b"data":
            if byte_rate <= 0 or size in (0, 0xFFFFFFFF):
                return None
            return size / byte_rate
        offset += 8 + size + (size & 1)
    return None


def _to_planar_float(
    sample_format: str, samples: list[npt.NDArray[np.generic]], channels: int
) -> npt.NDArray[np.float32]:
    """Consecutive decoded frames of one sample format as one float32 (channels, n) array in [-1, 1].

    ``samples`` are the frames' ``to_ndarray()`` arrays: (channels, n) when the format is planar, (1, n * channels)
    when it is packed (interleaved). Converting a whole block at once instead of each frame (about 0.1 s of audio)
    saves most of the per-call overhead.
    """
    data = np.concatenate(samples, axis=1) if len(samples) > 1 else samples[0]
    if not sample_format.endswith("p"):
        data = data.reshape(-1, channels).T
    out = np.ascontiguousarray(data, dtype=np.float32)
    base = sample_format.rstrip("p")
    if base in _INT_SCALE:
        if base == "u8":
            out -= 128.0
        out /= _INT_SCALE[base]
    return out


def _native_block(frames: list[tuple[str, npt.NDArray[np.generic]]], channels: int) -> npt.NDArray[np.float32]:
    """Decoded frames, each (sample format, ``to_ndarray()``), as one float32 (channels, n) array."""
    parts = [
        _to_planar_float(sample_format, [samples for _, samples in run], channels)
        for sample_format, run in itertools.groupby(frames, key=operator.itemgetter(0))
    ]
    if not parts:
        return np.zeros((channels, 0), np.float32)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)


def mono_resampler(sample_rate_hz: int) -> soxr.ResampleStream:
    """The streamed resampler from ``sample_rate_hz`` to :data:`ANALYSIS_RATE_HZ` behind :attr:`AudioBlock.mono`
    (libsoxr, high quality, float32, one channel)."""
    return soxr.ResampleStream(sample_rate_hz, ANALYSIS_RATE_HZ, 1, dtype="float32", quality="HQ")


class AudioReader:
    """Read-only streamed decoder for one file.

    Use as a context manager::

        with AudioReader(path) as reader:
            info = reader.info
            for block in reader.blocks():
                ...

    Raises :class:`AudioDecodeError` with a clear reason for a missing, unreadable, empty, non-regular (FIFO,
    directory, device), non-audio, corrupt, truncated or non-finite (NaN/Inf samples) file, at open time or while
    iterating. With ``library_root``, a file whose real path (symlinks resolved when it is opened) lies outside
    that folder is refused.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        block_s: float = 5.0,
        library_root: str | os.PathLike[str] | None = None,
    ) -> None:
        self._path = Path(path)
        self._block_s = block_s
        self._handle, file_stat = _readable_file(self._path, library_root)
        riff_s = _riff_declared_s(self._handle.read(_RIFF_HEADER_BYTES))
        self._handle.seek(0)
        self._soundfile: soundfile.SoundFile | None = None
        try:
            self._container = av.open(self._handle, mode="r")
        except (av.error.FFmpegError, ValueError, OSError) as exc:
            self._handle.seek(0)
            self._soundfile = _libsndfile(self._handle)
            if self._soundfile is None:
                self._handle.close()
                raise AudioDecodeError(f"not a decodable audio file: {self._path} ({_reason(exc)})") from None
            self.info = AudioInfo(
                path=str(self._path),
                codec=self._soundfile.subtype.lower(),
                sample_rate_hz=self._soundfile.samplerate,
                channels=self._soundfile.channels,
                duration_s=self._soundfile.frames / self._soundfile.samplerate,
                size_bytes=file_stat.st_size,
                mtime_ns=file_stat.st_mtime_ns,
            )
            return
        if not self._container.streams.audio:
            self.close()
            raise AudioDecodeError(f"no audio stream in {self._path}")
        stream = self._container.streams.audio[0]
        rate = stream.codec_context.sample_rate or stream.rate
        channels = stream.codec_context.channels
        if not rate or not channels:
            self.close()
            raise AudioDecodeError(f"audio stream of {self._path} has no sample rate or channel count")
        self._stream = stream
        self.info = AudioInfo(
            path=str(self._path),
            codec=stream.codec_context.name,
            sample_rate_hz=int(rate),
            channels=int(channels),
            duration_s=max(filter(None, (self._declared_duration_s(), riff_s)), default=None),
            size_bytes=file_stat.st_size,
            mtime_ns=file_stat.st_mtime_ns,
        )

    def _declared_duration_s(self) -> float | None:
        stream = self._stream
        if stream.duration is not None and stream.time_base is not None:
            return float(stream.duration * stream.time_base)
        if self._container.duration is not None:
            return float(self._container.duration) / av.time_base
        return None

    def blocks(self) -> Iterator[AudioBlock]:
        """Decode the whole file once, yielding blocks of about ``block_s`` seconds."""
        info = self.info
        block_len = max(1, int(self._block_s * info.sample_rate_hz))
        resampler = mono_resampler(info.sample_rate_hz)
        if self._soundfile is not None:
            yield from self._libsndfile_blocks(self._soundfile, block_len, resampler)
            return
        pending: list[tuple[str, npt.NDArray[np.generic]]] = []
        pending_len = 0
        emitted = 0
        packets = bad_packets = 0
        first_error = ""
        for packet in self._packets():
            if packet.size == 0:
                continue
            packets += 1
            try:
                frames = packet.decode()
            except av.error.FFmpegError as exc:
                bad_packets += 1
                first_error = first_error or _reason(exc)
                continue
            for frame in frames:
                pending.append((frame.format.name, frame.to_ndarray()))
                pending_len += frame.samples
            if pending_len >= block_len:
                native = _native_block(pending, info.channels)
                pending, pending_len = [], 0
                yield self._block(native, resampler, emitted, last=False)
                emitted += native.shape[1]
        if packets and bad_packets / packets > _MAX_BAD_PACKET_FRACTION:
            raise AudioDecodeError(
                f"corrupt audio in {self._path}: {bad_packets} of {packets} packets failed to decode ({first_error})"
            )
        native = _native_block(pending, info.channels)
        total = emitted + native.shape[1]
        if total == 0:
            raise AudioDecodeError(f"no audio could be decoded from {self._path} ({first_error or 'no samples'})")
        declared = info.duration_s
        decoded_s = total / info.sample_rate_hz
        if declared and declared > 1.0 and decoded_s < _MIN_DECODED_FRACTION * declared:
            raise AudioDecodeError(
                f"file is truncated: decoded {decoded_s:.1f} s of the {declared:.1f} s its header declares"
                f" ({self._path})"
            )
        yield self._block(native, resampler, emitted, last=True)

    def _libsndfile_blocks(
        self, source: soundfile.SoundFile, block_len: int, resampler: soxr.ResampleStream
    ) -> Iterator[AudioBlock]:
        """:meth:`blocks` for a file only libsndfile opens; a read error mid-file is reported as corrupt audio."""
        emitted = 0
        try:
            chunk = source.read(block_len, dtype="float32", always_2d=True)
            while chunk.shape[0]:
                following = source.read(block_len, dtype="float32", always_2d=True)
                native = np.ascontiguousarray(chunk.T)
                yield self._block(native, resampler, emitted, last=not following.shape[0])
                emitted += native.shape[1]
                chunk = following
        except (soundfile.LibsndfileError, RuntimeError) as exc:
            raise AudioDecodeError(f"corrupt audio in {self._path} ({exc})") from None
        if emitted == 0:
            raise AudioDecodeError(f"no audio could be decoded from {self._path} (no samples)")

    def _packets(self) -> Iterator[av.Packet[AudioStream]]:
        """Demux the audio stream; a container that breaks mid-file is reported as corrupt."""
        demux = self._container.demux(self._stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                raise AudioDecodeError(f"corrupt audio container {self._path} ({_reason(exc)})") from None
            yield packet

    def _block(
        self, native: npt.NDArray[np.float32], resampler: soxr.ResampleStream, offset: int, *, last: bool
    ) -> AudioBlock:
        if not np.isfinite(native).all():
            bad = int(np.argmin(np.isfinite(native).all(axis=0)))
            raise AudioDecodeError(
                f"{self._path} holds non-finite samples (NaN or infinity) at"
                f" {(offset + bad) / self.info.sample_rate_hz:.2f} s: not valid audio"
            )
        mono_native = _channel_mean(native)
        mono = resampler.resample_chunk(np.ascontiguousarray(mono_native), last=last)
        return AudioBlock(native=native, mono=mono, start_s=offset / self.info.sample_rate_hz)

    def close(self) -> None:
        """Release the decoder and the file handle."""
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
        if self._soundfile is not None:
            self._soundfile.close()
        self._handle.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _libsndfile(handle: IO[bytes]) -> soundfile.SoundFile | None:
    """``handle`` opened read-only by libsndfile, or ``None`` when it cannot read it either (or finds no audio)."""
    try:
        opened = soundfile.SoundFile(handle, mode="r")
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None
    if opened.frames <= 0 or opened.samplerate <= 0 or opened.channels <= 0:
        opened.close()
        return None
    return opened


def _reason(exc: BaseException) -> str:
    """A one-line reason from an FFmpeg/OS error, without the file path FFmpeg repeats."""
    if isinstance(exc, av.error.FFmpegError):
        return exc.strerror or type(exc).__name__
    return str(exc) or type(exc).__name__


def _channel_mean(native: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Mean of the channels (row by row: several times faster than ``mean(axis=0)`` on planar audio)."""
    mono: npt.NDArray[np.float32] = native[0].copy()
    for channel in native[1:]:
        mono += channel
    if native.shape[0] > 1:
        mono *= np.float32(1.0 / native.shape[0])
    return mono


def declared_duration_s(path: str | os.PathLike[str]) -> float | None:
    """The length the file's header declares, in seconds, without decoding; ``None`` when unknown or unreadable
    (the decoder then reports the problem when the file is analysed)."""
    try:
        with AudioReader(path) as reader:
            return reader.info.duration_s
    except AudioDecodeError:
        return None


def audio_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Expand ``paths``: a folder yields its audio files (recursively, sorted, by :data:`AUDIO_SUFFIXES`);
    anything else is yielded as given, so a missing or misnamed file is reported by the decoder."""
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        else:
            yield path


def read_mono(path: str | os.PathLike[str], *, max_s: float | None = None) -> npt.NDArray[np.float32]:
    """Decode ``path`` to one mono float32 array at :data:`ANALYSIS_RATE_HZ`.

    For short excerpts, tests and tools; analysis uses :meth:`AudioReader.blocks`. ``max_s`` stops early.
    """
    parts: list[npt.NDArray[np.float32]] = []
    total = 0
    with AudioReader(path) as reader:
        for block in reader.blocks():
            parts.append(block.mono)
            total += block.mono.shape[0]
            if max_s is not None and total >= max_s * ANALYSIS_RATE_HZ:
                break
    mono = np.concatenate(parts) if parts else np.zeros(0, np.float32)
    return mono[: int(max_s * ANALYSIS_RATE_HZ)] if max_s is not None else mono
