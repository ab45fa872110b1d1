"""Level normalisation of a network's input patches: one gain so that the patches' loudness reaches a fixed target.

MusiCNN's front end compresses mel power with ``log10(10000 x + 1)``, which is not level-free: the same music 6 dB
quieter gives other features. Scaling the patches to a fixed loudness before the front end removes the track's
playback level (its mastering loudness) from the vector.

Loudness is the product's BS.1770-4 measure (:mod:`sidecar.analyzers.loudness`): K-weighting, 400-ms blocks every
100 ms, absolute gate -70 LUFS, relative gate -10 LU. The patches are mono (the mix of a track's channels); each is
counted as dual mono (two identical channels, +3.01 dB), so that a stereo track with identical channels measures
the same as with the loudness analyzer. Joint loudness: every patch's blocks pooled into one gating histogram, as
:func:`.loudness.album_gain` pools an album's tracks; no block straddles two patches.

Choices made before measuring (``docs/benchmarks/embedding.md``, "Level-normalised input"):

- :data:`TARGET_LUFS` -14 LUFS: the reference level of the main streaming services' loudness normalisation, so
  about where a typical commercial master plays; the networks were trained on commercial recordings (Million Song
  Dataset previews, MagnaTagATune's Magnatune tracks).
- :data:`MAX_GAIN_DB` +30 dB: masters below -44 LUFS are near-silence (intros, fade-outs, noise floors), not music
  to bring up to -14 LUFS; a patch with no block above the -70 LUFS gate (silence) gets the same capped gain, so
  silence stays silence and a 16-bit noise floor (about -96 dBFS) stays below -60 dBFS.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from sidecar.analyzers.loudness import HISTOGRAM_BINS, GatedEnergy, integrated_loudness_lufs

TARGET_LUFS: Final = -14.0
MAX_GAIN_DB: Final = 30.0


def _histogram(patch: npt.NDArray[np.float32], sample_rate_hz: int) -> npt.NDArray[np.float64]:
    energy = GatedEnergy(sample_rate_hz=sample_rate_hz, channels=2)
    energy.feed(np.stack([patch, patch]))
    return energy.gating


def loudness_lufs(patches: npt.NDArray[np.float32], sample_rate_hz: int) -> float | None:
    """Joint integrated loudness (LUFS) of mono ``patches`` (k, samples) as one programme, each counted as dual mono;
    None when no 400-ms block of any patch reaches -70 LUFS (silence, or patches shorter than 0.4 s)."""
    histogram = np.zeros(HISTOGRAM_BINS)
    for patch in patches:
        histogram += _histogram(patch, sample_rate_hz)
    return integrated_loudness_lufs(histogram)


def gain_db(loudness: float | None, *, target_lufs: float = TARGET_LUFS, max_gain_db: float = MAX_GAIN_DB) -> float:
    """The gain (dB) from ``loudness`` to ``target_lufs``, at most ``max_gain_db`` (also for None: silence)."""
    return max_gain_db if loudness is None else min(target_lufs - loudness, max_gain_db)


def normalise(
    patches: npt.NDArray[np.float32],
    sample_rate_hz: int,
    *,
    per_patch: bool = False,
    target_lufs: float = TARGET_LUFS,
    max_gain_db: float = MAX_GAIN_DB,
) -> npt.NDArray[np.float32]:
    """``patches`` (k, samples) scaled by one gain so that their joint loudness is ``target_lufs`` (``per_patch``:
    each patch by its own gain to its own loudness); gains capped at ``max_gain_db``. Samples may exceed full scale
    (the networks take any float)."""
    if per_patch:
        gains = [gain_db(loudness_lufs(patch[None], sample_rate_hz), target_lufs=target_lufs,
                         max_gain_db=max_gain_db) for patch in patches]  # fmt: skip
    else:
        joint = gain_db(loudness_lufs(patches, sample_rate_hz), target_lufs=target_lufs, max_gain_db=max_gain_db)
        gains = [joint] * patches.shape[0]
    linear = np.power(10.0, np.asarray(gains) / 20.0).astype(np.float32)
    return (patches * linear[:, None]).astype(np.float32)
