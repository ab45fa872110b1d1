"""The DR meter's number in Python (the published method of the Pleasurize Music Foundation's DR meter), to check
the Studio's JavaScript meter against: 3-s blocks (a shorter last block counts as one), per channel each block's
RMS as sqrt(2 * mean square) and its sample peak; DR = 20 log10(second-highest block peak / RMS of the loudest
20 % of blocks, at least one); the track's DR is the mean over channels."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

BLOCK_S = 3.0
LOUDEST_FRACTION = 0.2


def dr_meter(samples: npt.NDArray[np.float64], rate_hz: float) -> tuple[float, list[float]]:
    """``(DR, [DR per channel])`` of ``samples`` shaped (frames, channels), full scale 1.0; needs two blocks."""
    block = round(BLOCK_S * rate_hz)
    starts = range(0, samples.shape[0], block)
    if len(starts) < 2:
        raise ValueError("the DR meter needs at least two blocks (more than 3 s)")
    rms = np.array([np.sqrt(2 * np.mean(samples[s : s + block] ** 2, axis=0)) for s in starts])
    peaks = np.array([np.max(np.abs(samples[s : s + block]), axis=0) for s in starts])
    loudest = max(1, int(np.floor(len(starts) * LOUDEST_FRACTION)))
    top_rms = np.sqrt(np.mean(np.sort(rms, axis=0)[::-1][:loudest] ** 2, axis=0))
    second_peak = np.sort(peaks, axis=0)[::-1][1]
    per_channel = 20 * np.log10(second_peak / top_rms)
    return float(np.mean(per_channel)), [float(v) for v in per_channel]
