"""Run a Demucs model over a whole track in bounded memory and write the stems.

The track is separated in blocks of ``block_s`` seconds, each with ``margin`` seconds of real audio on both sides
that are computed and thrown away, so a block boundary sees the same context as the middle of a block; inside a
block Demucs' own ``apply_model`` works in overlapping segments. Memory therefore depends on ``block_s``, not on the
track's length. Input is normalised by the mean and standard deviation of the whole track's mix (a first, cheap
decoding pass), as Demucs' command line does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from sidecar.stems import INSTRUMENTAL, STEM_NAMES, STEMS, SUFFIX
from sidecar.stems.codec import StemFormat, StemWriter, stereo_blocks

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class SeparationConfig:
    """How to run the model and what to write."""

    device: str = "cpu"
    segment_s: float | None = None  # None: the model's own
    overlap: float = 0.25
    block_s: float = 60.0
    margin_s: float = 5.0
    fmt: StemFormat = "flac"
    opus_bitrate_kbps: int = 96


@dataclass(frozen=True, slots=True)
class SeparationResult:
    """What one separation wrote: ``files`` maps a stem name to its size in bytes; ``duration_s`` of the track."""

    files: dict[str, int]
    duration_s: float


def resolve_device(setting: str) -> str:
    """``auto`` -> ``cuda`` when a CUDA device is present, else ``cpu``; ``cuda`` without one raises ValueError."""
    import torch

    available = torch.cuda.is_available()
    if setting == "auto":
        return "cuda" if available else "cpu"
    if setting == "cuda" and not available:
        raise ValueError("SONANTICA_STEMS__DEVICE=cuda but torch sees no CUDA device")
    return setting


def _mix_stats(blocks: Iterable[npt.NDArray[np.float32]]) -> tuple[float, float]:
    """Mean and standard deviation of the channel mean over the whole track."""
    count, total, squares = 0, 0.0, 0.0
    for block in blocks:
        mono = block.mean(axis=0, dtype=np.float64)
        count += mono.size
        total += float(mono.sum())
        squares += float(np.square(mono).sum())
    if count == 0:
        return 0.0, 1.0
    mean = total / count
    std = math.sqrt(max(squares / count - mean * mean, 0.0))
    return mean, std if std > 1e-8 else 1.0


def _run_model(
    model: Any, audio: npt.NDArray[np.float32], config: SeparationConfig, mean: float, std: float
) -> npt.NDArray[np.float32]:
    """Sources of ``audio`` (2, n): float32 (sources, 2, n) in the model's source order."""
    import torch
    from demucs.apply import apply_model

    mix = torch.from_numpy((audio - mean) / std)[None]
    with torch.no_grad():
        estimates = apply_model(
            model,
            mix,
            shifts=0,
            split=True,
            overlap=config.overlap,
            progress=False,
            device=config.device,
            segment=config.segment_s,
        )[0]
    out: npt.NDArray[np.float32] = (estimates.cpu().numpy() * std + mean).astype(np.float32)
    return out


def separate_file(
    path: str,
    out_dir: Path,
    model: Any,
    config: SeparationConfig,
    *,
    on_block: Callable[[float], None] | None = None,
) -> SeparationResult:
    """Separate ``path`` (read-only) into ``out_dir``: one file per name in :data:`STEM_NAMES`.

    ``on_block`` gets the seconds written so far after each block (progress, tests). Raises
    :class:`~sidecar.errors.AudioDecodeError` for an undecodable original; ``out_dir`` then holds a partial set,
    which the caller discards.
    """
    rate = int(model.samplerate)
    sources: list[str] = list(model.sources)
    missing = [s for s in STEMS if s not in sources]
    if missing:
        raise ValueError(f"the Demucs model has sources {sources}; stems need {list(STEMS)}")
    index = {name: sources.index(name) for name in STEMS}
    mean, std = _mix_stats(stereo_blocks(path, rate))
    block = max(1, int(config.block_s * rate))
    margin = int(min(config.margin_s, config.block_s / 4) * rate)
    suffix = SUFFIX[config.fmt]
    writers = {
        name: StemWriter(out_dir / f"{name}{suffix}", config.fmt, rate, opus_bitrate_kbps=config.opus_bitrate_kbps)
        for name in STEM_NAMES
    }
    buffer = np.zeros((2, 0), np.float32)
    buffer_start = 0  # track position (samples) of buffer[:, 0]
    written = 0  # track position of the next output sample

    def emit(end: int) -> None:
        nonlocal buffer, buffer_start, written
        left = max(buffer_start, written - margin)
        right = min(buffer_start + buffer.shape[1], end + margin)
        estimates = _run_model(model, buffer[:, left - buffer_start : right - buffer_start], config, mean, std)
        keep = estimates[:, :, written - left : end - left]
        for name in STEMS:
            writers[name].write(keep[index[name]])
        writers[INSTRUMENTAL].write(keep[index["drums"]] + keep[index["bass"]] + keep[index["other"]])
        written = end
        drop = max(0, written - margin - buffer_start)
        buffer = buffer[:, drop:]
        buffer_start += drop
        if on_block is not None:
            on_block(written / rate)

    try:
        for chunk in stereo_blocks(path, rate):
            buffer = np.concatenate([buffer, chunk], axis=1)
            while buffer_start + buffer.shape[1] >= written + block + margin:
                emit(written + block)
        end = buffer_start + buffer.shape[1]
        while written < end:
            emit(min(end, written + block))
    finally:
        for writer in writers.values():
            writer.close()
    files = {name: (out_dir / f"{name}{suffix}").stat().st_size for name in STEM_NAMES}
    return SeparationResult(files=files, duration_s=written / rate)
