"""Write float samples to audio files in every format the sidecar reads (demo library, tests, benchmarks)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream


@dataclass(frozen=True, slots=True)
class Format:
    """An output format: container, encoder, sample format, and the rates the encoder accepts."""

    container: str
    codec: str
    sample_format: str
    rates_hz: tuple[int, ...] = ()  # empty: any rate
    bit_rate: int | None = None


FORMATS: dict[str, Format] = {
    "flac": Format("flac", "flac", "s16"),
    "flac24": Format("flac", "flac", "s32"),
    "mp3": Format(
        "mp3", "libmp3lame", "fltp", (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000), bit_rate=192_000
    ),
    "ogg": Format("ogg", "vorbis", "fltp", (), bit_rate=160_000),
    "opus": Format("ogg", "libopus", "flt", (48000,), bit_rate=128_000),
    "m4a": Format("mp4", "aac", "fltp", (), bit_rate=192_000),
    "alac": Format("mp4", "alac", "s16p"),
    "wav": Format("wav", "pcm_s16le", "s16"),
    "aiff": Format("aiff", "pcm_s16be", "s16"),
}
"""Name -> format. The file suffix is the name, except ``flac24`` (.flac), ``opus`` (.opus), ``alac`` (.m4a)."""

SUFFIXES = {"flac24": ".flac", "alac": ".m4a", "aiff": ".aiff"}


def suffix_for(name: str) -> str:
    """File suffix for a format name."""
    return SUFFIXES.get(name, f".{name}")


def write_audio(
    samples: npt.NDArray[np.float32],
    sample_rate_hz: int,
    path: str | os.PathLike[str],
    *,
    format_name: str = "flac",
    bit_rate: int | None = None,
) -> Path:
    """Encode ``samples`` (float32, shape (n, channels), full scale 1.0) to ``path`` in ``format_name``.

    Input at a rate the encoder does not accept (Opus: 48 kHz only) is resampled by the encoder pipeline.
    """
    fmt = FORMATS[format_name]
    out_path = Path(path)
    n, channels = samples.shape
    layout = {1: "mono", 2: "stereo", 6: "5.1"}.get(channels)
    if layout is None:
        raise ValueError(f"cannot encode {channels} channels (1, 2 or 6 supported)")
    out_rate = sample_rate_hz if not fmt.rates_hz or sample_rate_hz in fmt.rates_hz else max(fmt.rates_hz)
    options = {"strict": "experimental"} if fmt.codec == "vorbis" else {}
    with av.open(str(out_path), mode="w", format=fmt.container) as container:
        stream = container.add_stream(fmt.codec, rate=out_rate, options=options)
        if not isinstance(stream, AudioStream):
            raise TypeError(f"{fmt.codec} is not an audio encoder")
        stream.layout = layout
        stream.format = fmt.sample_format
        chosen_bit_rate = bit_rate or fmt.bit_rate
        if chosen_bit_rate:
            stream.bit_rate = chosen_bit_rate
        resampler = av.AudioResampler(format=fmt.sample_format, layout=layout, rate=out_rate)
        chunk = 4096
        clipped = np.clip(samples, -1.0, 1.0).astype(np.float32)
        pts = 0
        for start in range(0, n, chunk):
            block = np.ascontiguousarray(clipped[start : start + chunk].T)
            frame = av.AudioFrame.from_ndarray(block, format="fltp", layout=layout)
            frame.sample_rate = sample_rate_hz
            frame.pts = pts
            frame.time_base = Fraction(1, sample_rate_hz)
            pts += block.shape[1]
            for converted in resampler.resample(frame):
                container.mux(stream.encode(converted))
        for converted in resampler.resample(None):
            container.mux(stream.encode(converted))
        container.mux(stream.encode(None))
    return out_path


def write_raw_wav(
    samples: npt.NDArray[np.float32] | npt.NDArray[np.int16],
    sample_rate_hz: int,
    path: str | os.PathLike[str],
    *,
    declared_frames: int | None = None,
) -> Path:
    """Write ``samples`` (shape (n, channels)) as a WAV byte for byte, with no clipping or checks.

    float32 becomes IEEE-float WAV (format 3, so NaN and infinity survive), int16 PCM (format 1); any channel
    count. ``declared_frames`` writes a header claiming that many frames (a truncated file when it is more than
    ``n``). For hostile-input tests and the chaos run.
    """
    n, channels = samples.shape
    is_float = samples.dtype == np.float32
    width = samples.dtype.itemsize
    frames = n if declared_frames is None else declared_frames
    data_bytes = frames * channels * width
    header = b"RIFF" + (36 + data_bytes).to_bytes(4, "little") + b"WAVE"
    header += b"fmt " + (16).to_bytes(4, "little")
    header += (3 if is_float else 1).to_bytes(2, "little") + channels.to_bytes(2, "little")
    header += sample_rate_hz.to_bytes(4, "little") + (sample_rate_hz * channels * width).to_bytes(4, "little")
    header += (channels * width).to_bytes(2, "little") + (8 * width).to_bytes(2, "little")
    header += b"data" + data_bytes.to_bytes(4, "little")
    out_path = Path(path)
    out_path.write_bytes(header + np.ascontiguousarray(samples).astype(samples.dtype.newbyteorder("<")).tobytes())
    return out_path
