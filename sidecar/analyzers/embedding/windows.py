"""Pick a few windows spread over a track while it streams past, at a network's rate (OpenL3: 1 s at 48 kHz).

OpenL3 looks at one second at a time. Embedding every 0.1 s hop of a 4-minute track would take 2400 network
passes; a track-level vector needs far fewer. :class:`WindowSampler` captures ``n_windows`` windows spread evenly
over the track from the native-rate blocks (mono mix), resamples each to the network rate on its own, keeps nothing
else, so memory stays bounded whatever the track length.

The track length is not trusted (container estimates can be missing or wrong), so the windows lie on a grid that
adapts: it starts at one window per second from the start of the track, and whenever more than ``2 n`` windows
have been opened, every other one is dropped and the grid spacing doubles. At the end, ``n`` windows are chosen
evenly from those captured (between ``n`` and ``2 n`` for a track longer than ``n`` seconds) and only those are
resampled. Silent windows (RMS below ``silence_dbfs``: intros, gaps, fade-outs) are passed over unless every
captured window is silent, since OpenL3 normalises each window to its own peak and would see silence as a sound.
A track shorter than its first window yields one zero-padded window (the first grid window is never dropped).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import soxr

from sidecar.analyzers.embedding.openl3_params import SAMPLE_RATE_HZ as TARGET_RATE_HZ

WINDOW_S = 1.0
_MARGIN_S = 0.05  # captured on each side so that resampling has context; trimmed off afterwards


class WindowSampler:
    """Collect up to ``n_windows`` mono windows of ``window_s`` seconds at ``target_rate_hz`` (default: one second
    at 48 kHz, OpenL3's) from native-rate blocks fed in order."""

    def __init__(
        self,
        *,
        sample_rate_hz: int,
        n_windows: int,
        silence_dbfs: float = -60.0,
        window_s: float = WINDOW_S,
        target_rate_hz: int = TARGET_RATE_HZ,
    ) -> None:
        if n_windows < 1:
            raise ValueError(f"n_windows must be at least 1, got {n_windows}")
        self._rate = sample_rate_hz
        self._n = n_windows
        self._target_rate = target_rate_hz
        self._target_window = round(window_s * target_rate_hz)
        self._window = round(window_s * sample_rate_hz)
        self._margin = math.ceil(_MARGIN_S * sample_rate_hz)
        self._capture = self._window + 2 * self._margin
        self._silence_rms = 10.0 ** (silence_dbfs / 20.0)
        self._spacing = window_s * sample_rate_hz
        self._next = 0  # grid index of the next window to open
        self._open: dict[int, npt.NDArray[np.float32]] = {}
        self._done: dict[int, npt.NDArray[np.float32]] = {}
        self._position = 0  # native samples consumed

    def _capture_start(self, index: int) -> int:
        return round(index * self._spacing) - self._margin

    def feed(self, native: npt.NDArray[np.float32]) -> None:
        """Consume the next block, shape (channels, n) at the native rate."""
        mono = native.mean(axis=0, dtype=np.float32) if native.shape[0] > 1 else native[0]
        begin, end = self._position, self._position + mono.shape[0]
        while self._capture_start(self._next) < end:
            self._open[self._next] = np.zeros(self._capture, np.float32)
            self._next += 1
            while len(self._open) + len(self._done) > 2 * self._n:
                self._decimate()
        for index, buffer in list(self._open.items()):
            start = self._capture_start(index)
            lo, hi = max(start, begin), min(start + self._capture, end)
            if hi > lo:
                buffer[lo - start : hi - start] = mono[lo - begin : hi - begin]
            if start + self._capture <= end:
                self._done[index] = buffer
                del self._open[index]
        self._position = end

    def _decimate(self) -> None:
        """Keep every other grid point and double the spacing."""
        self._open = {index // 2: buf for index, buf in self._open.items() if index % 2 == 0}
        self._done = {index // 2: win for index, win in self._done.items() if index % 2 == 0}
        self._next = (self._next + 1) // 2
        self._spacing *= 2

    def _to_target_rate(self, buffer: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        if self._rate == self._target_rate:
            return buffer[self._margin : self._margin + self._window].copy()
        resampled = soxr.resample(buffer, self._rate, self._target_rate, quality="HQ")
        offset = round(self._margin * self._target_rate / self._rate)
        window = np.zeros(self._target_window, np.float32)
        piece = resampled[offset : offset + self._target_window]
        window[: piece.shape[0]] = piece
        return window

    def _rms(self, buffer: npt.NDArray[np.float32]) -> float:
        window = buffer[self._margin : self._margin + self._window]
        return float(np.sqrt(np.mean(np.square(window, dtype=np.float64))))

    def windows(self) -> npt.NDArray[np.float32]:
        """The chosen windows in track order, float32 shape (k, window samples at the target rate), 1 <= k <= n.

        Windows the track ended inside are used only when no complete window exists; silent windows only when no
        complete window is audible.
        """
        ready = [self._done[i] for i in sorted(self._done)]
        audible = [buffer for buffer in ready if self._rms(buffer) >= self._silence_rms]
        ready = audible or ready
        if not ready:
            ready = [self._open[i] for i in sorted(self._open)][:1]
        if not ready:  # nothing was fed
            ready = [np.zeros(self._capture, np.float32)]
        if len(ready) > self._n:
            chosen = np.unique(np.round(np.linspace(0, len(ready) - 1, self._n)).astype(int))
            ready = [ready[i] for i in chosen]
        return np.stack([self._to_target_rate(buffer) for buffer in ready])
