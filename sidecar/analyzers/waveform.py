"""A waveform overview (min/max peaks) computed in the same decode pass as the other analyzers.

Every 10 ms of native audio (:data:`BASE_BUCKET_S`) gives the lowest and the highest sample over all channels;
at the end, neighbouring buckets are merged (min of mins, max of maxes) until at most :data:`MAX_POINTS` remain,
so a track under 20 s keeps its 10-ms buckets, a 3-minute track has 2000 points of 90 ms and an hour-long set
2000 points of 1.8 s. Memory: two float32
per 10 ms while decoding (1.4 MB for an hour).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import AudioBlock
from sidecar.analyzers.versions import VERSIONS
from sidecar.domain import AudioInfo, WaveformResult

BASE_BUCKET_S = 0.01
MAX_POINTS = 2000


class WaveformSession:
    """Per-track min/max buckets, fed native blocks of any size (a bucket may span blocks)."""

    def __init__(self, sample_rate_hz: int) -> None:
        self._frames = max(1, round(BASE_BUCKET_S * sample_rate_hz))
        self._bucket_s = self._frames / sample_rate_hz
        self._minimum: list[npt.NDArray[np.float32]] = []
        self._maximum: list[npt.NDArray[np.float32]] = []
        self._low = np.zeros(0, np.float32)  # per-frame extremes of the unfinished bucket
        self._high = np.zeros(0, np.float32)

    def feed(self, block: AudioBlock) -> None:
        if block.native.shape[1] == 0:
            return
        low = np.concatenate([self._low, block.native.min(axis=0)])
        high = np.concatenate([self._high, block.native.max(axis=0)])
        whole = low.size - low.size % self._frames
        if whole:
            self._minimum.append(low[:whole].reshape(-1, self._frames).min(axis=1))
            self._maximum.append(high[:whole].reshape(-1, self._frames).max(axis=1))
        self._low, self._high = low[whole:], high[whole:]

    def finish(self) -> WaveformResult:
        minimum = np.concatenate([*self._minimum, self._low.min(keepdims=True) if self._low.size else []])
        maximum = np.concatenate([*self._maximum, self._high.max(keepdims=True) if self._high.size else []])
        factor = max(1, -(-minimum.size // MAX_POINTS))
        if factor > 1:
            padded = -(-minimum.size // factor) * factor
            minimum = np.pad(minimum, (0, padded - minimum.size), mode="edge").reshape(-1, factor).min(axis=1)
            maximum = np.pad(maximum, (0, padded - maximum.size), mode="edge").reshape(-1, factor).max(axis=1)
        return WaveformResult(
            bucket_s=self._bucket_s * factor, minimum=minimum.astype(np.float32), maximum=maximum.astype(np.float32)
        )


class WaveformAnalyzer:
    """Min/max waveform overview, version 1."""

    name: ClassVar[str] = "waveform"
    version: ClassVar[int] = VERSIONS[name]

    def check(self) -> None:
        """Nothing to probe: numpy only."""

    def start(self, info: AudioInfo) -> WaveformSession:
        return WaveformSession(info.sample_rate_hz)
