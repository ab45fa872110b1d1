"""Audio in and out for separations: the original decoded read-only as stereo at the model's rate, and one
streaming encoder per stem file (FLAC 16-bit, or Opus in Ogg at 48 kHz)."""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from types import TracebackType
from typing import Literal, Self

import av
import numpy as np
import numpy.typing as npt
import soxr
from av.audio.stream import AudioStream

from sidecar.analyzers.audio import AudioReader

StemFormat = Literal["flac", "opus"]

CONTENT_TYPE: dict[str, str] = {".flac": "audio/flac", ".opus": "audio/ogg; codecs=opus"}
"""HTTP ``Content-Type`` per stem file ending."""

_OPUS_RATE_HZ = 48000


def stereo_blocks(path: str, rate_hz: int, *, block_s: float = 5.0) -> Iterator[npt.NDArray[np.float32]]:
    """Decode ``path`` (opened read-only) as float32 blocks of shape (2, n) at ``rate_hz``.

    Mono is duplicated to both channels; more than two channels keep the first two (as Demucs does). Raises
    :class:`~sidecar.errors.AudioDecodeError` for a file that cannot be decoded.
    """
    with AudioReader(path, block_s=block_s) as reader:
        source_rate = reader.info.sample_rate_hz
        resampler = (
            None
            if source_rate == rate_hz
            else soxr.ResampleStream(source_rate, rate_hz, 2, dtype="float32", quality="HQ")
        )
        blocks = reader.blocks()
        pending = next(blocks, None)
        while pending is not None:
            following = next(blocks, None)
            native = pending.native
            stereo = np.repeat(native, 2, axis=0) if native.shape[0] == 1 else native[:2]
            if resampler is not None:
                # soxr takes (frames, channels)
                out = resampler.resample_chunk(np.ascontiguousarray(stereo.T), last=following is None)
                stereo = np.ascontiguousarray(out.T)
            yield np.ascontiguousarray(stereo, dtype=np.float32)
            pending = following


class StemWriter:
    """Streams float32 (2, n) blocks at ``rate_hz`` into one stem file; samples are clipped to full scale."""

    def __init__(self, path: Path, fmt: StemFormat, rate_hz: int, *, opus_bitrate_kbps: int = 96) -> None:
        self.path = path
        self._rate_hz = rate_hz
        self._pts = 0
        out_rate = _OPUS_RATE_HZ if fmt == "opus" else rate_hz
        sample_format = "flt" if fmt == "opus" else "s16"
        self._container = av.open(str(path), mode="w", format="ogg" if fmt == "opus" else "flac")
        stream = self._container.add_stream("libopus" if fmt == "opus" else "flac", rate=out_rate)
        if not isinstance(stream, AudioStream):
            raise TypeError("not an audio encoder")
        stream.layout = "stereo"
        stream.format = sample_format
        if fmt == "opus":
            stream.bit_rate = opus_bitrate_kbps * 1000
        self._stream = stream
        self._resampler = av.AudioResampler(format=sample_format, layout="stereo", rate=out_rate)

    def write(self, samples: npt.NDArray[np.float32]) -> None:
        """Append ``samples`` (float32, shape (2, n))."""
        block = np.ascontiguousarray(np.clip(samples, -1.0, 1.0), dtype=np.float32)
        frame = av.AudioFrame.from_ndarray(block, format="fltp", layout="stereo")
        frame.sample_rate = self._rate_hz
        frame.pts = self._pts
        frame.time_base = Fraction(1, self._rate_hz)
        self._pts += block.shape[1]
        for converted in self._resampler.resample(frame):
            self._container.mux(self._stream.encode(converted))

    def close(self) -> None:
        """Flush the encoder and close the file."""
        for converted in self._resampler.resample(None):
            self._container.mux(self._stream.encode(converted))
        self._container.mux(self._stream.encode(None))
        self._container.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._container.close()
