"""Loudness candidates compared: pyloudnorm 0.2.0, pyebur128 0.1.1 (libebur128) and sidecar's own analyzer.

Prints, per EBU case (sidecar.demo.ebu), the expected value and what each candidate measures (integrated
loudness, true peak or LRA, whichever the case specifies; "-" where a candidate has no such measure), then the
seconds each needs for a 4-minute stereo 44.1 kHz track (median of --repeats runs, analysis only, no decoding).

    python scripts/bench_loudness.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyebur128
import pyloudnorm

from sidecar.analyzers.audio import AudioBlock
from sidecar.analyzers.loudness import LoudnessAnalyzer
from sidecar.demo.ebu import EbuCase, all_cases
from sidecar.domain import AudioInfo

BLOCK_S = 5.0
TRACK_S = 240.0
TRACK_RATE_HZ = 44100


@dataclass(frozen=True, slots=True)
class Measured:
    loudness_lufs: float | None
    true_peak_dbtp: float | None
    range_lu: float | None


def _blocks(x: npt.NDArray[np.float32], rate_hz: int) -> list[npt.NDArray[np.float32]]:
    step = int(BLOCK_S * rate_hz)
    return [x[:, i : i + step] for i in range(0, x.shape[1], step)]


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def measure_pyloudnorm(x: npt.NDArray[np.float32], rate_hz: int) -> Measured:
    """pyloudnorm: whole-track arrays only, at most 5 channels (L R C Ls Rs: the LFE of a 5.1 file is dropped
    first), no true peak; it raises ValueError for input shorter than 3 s for LRA, shown as "-"."""
    data = (np.delete(x, 3, axis=0) if x.shape[0] == 6 else x).T.astype(np.float64)
    meter = pyloudnorm.Meter(rate_hz)
    loudness = _finite(float(meter.integrated_loudness(data)))
    try:
        range_lu = _finite(float(meter.loudness_range(data)))
    except ValueError:
        range_lu = None
    return Measured(loudness, None, range_lu)


def measure_pyebur128(x: npt.NDArray[np.float32], rate_hz: int) -> Measured:
    """pyebur128, streamed in 5-s blocks; channel 4 of a 6-channel file is marked unused (LFE)."""
    channels = x.shape[0]
    mode = pyebur128.MeasurementMode
    state = pyebur128.R128State(
        channels, rate_hz, mode.MODE_I | mode.MODE_LRA | mode.MODE_TRUE_PEAK | mode.MODE_SAMPLE_PEAK
    )
    if channels == 6:
        for index, kind in enumerate(
            (
                pyebur128.ChannelType.LEFT,
                pyebur128.ChannelType.RIGHT,
                pyebur128.ChannelType.CENTER,
                pyebur128.ChannelType.UNUSED,
                pyebur128.ChannelType.LEFT_SURROUND,
                pyebur128.ChannelType.RIGHT_SURROUND,
            )
        ):
            state.set_channel(index, kind)
    for block in _blocks(x, rate_hz):
        interleaved = np.ascontiguousarray(block.T).ravel()
        state.add_frames(interleaved, block.shape[1])
    peak = max(pyebur128.get_true_peak(state, c) for c in range(channels))
    return Measured(
        _finite(pyebur128.get_loudness_global(state)),
        20.0 * math.log10(peak) if peak > 0 else None,
        _finite(pyebur128.get_loudness_range(state)),
    )


def measure_sidecar(x: npt.NDArray[np.float32], rate_hz: int) -> Measured:
    """sidecar's LoudnessAnalyzer, streamed in 5-s blocks."""
    info = AudioInfo(
        path="bench",
        codec="pcm",
        sample_rate_hz=rate_hz,
        channels=x.shape[0],
        duration_s=None,
        size_bytes=0,
        mtime_ns=0,
    )
    session = LoudnessAnalyzer().start(info)
    for block in _blocks(x, rate_hz):
        session.feed(AudioBlock(native=block, mono=np.zeros(0, np.float32), start_s=0.0))
    result = session.finish()
    return Measured(result.loudness_lufs, result.true_peak_dbtp, result.loudness_range_lu)


CANDIDATES: dict[str, Callable[[npt.NDArray[np.float32], int], Measured]] = {
    "pyloudnorm": measure_pyloudnorm,
    "pyebur128": measure_pyebur128,
    "sidecar": measure_sidecar,
}


def _cell(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _case_rows(case: EbuCase) -> list[str]:
    x = case.render()
    results = {name: measure(x, case.sample_rate_hz) for name, measure in CANDIDATES.items()}
    rows = []
    for label, expected, field in (
        ("I LUFS", case.expected_loudness_lufs, "loudness_lufs"),
        ("TP dBTP", case.expected_true_peak_dbtp, "true_peak_dbtp"),
        ("LRA LU", case.expected_range_lu, "range_lu"),
    ):
        if expected is None:
            continue
        cells = " | ".join(_cell(getattr(results[name], field)) for name in CANDIDATES)
        rows.append(f"| {case.name} | {label} | {expected:+.1f} | {cells} |")
    return rows


def _track(seconds: float, rate_hz: int) -> npt.NDArray[np.float32]:
    """Stereo noise with a slow level envelope (content does not change the cost)."""
    rng = np.random.default_rng(7)
    n = int(seconds * rate_hz)
    envelope = 0.1 * (1.2 + np.sin(2 * math.pi * np.arange(n) / (rate_hz * 7.0)))
    track: npt.NDArray[np.float32] = (rng.standard_normal((2, n)) * envelope).astype(np.float32)
    return track


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    names = " | ".join(CANDIDATES)
    print(f"| case | measure | expected | {names} |")
    print("|---|---|---|" + "---|" * len(CANDIDATES))
    for case in all_cases():
        for row in _case_rows(case):
            print(row)
    track = _track(TRACK_S, TRACK_RATE_HZ)
    print()
    print(f"seconds per {TRACK_S / 60:.0f}-min stereo {TRACK_RATE_HZ} Hz track (median of {args.repeats}):")
    for name, measure in CANDIDATES.items():
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            measure(track, TRACK_RATE_HZ)
            times.append(time.perf_counter() - start)
        print(f"| {name} | {statistics.median(times):.3f} s |")


if __name__ == "__main__":
    main()
