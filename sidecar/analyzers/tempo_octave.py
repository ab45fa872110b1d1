"""Which metrical level is the beat: candidate tempi, their metrical cues and a fitted conditional-logit choice.

A track's pulse shows up at several related periods (sub-beat, beat, half bar, bar). The candidates are the lags
at simple ratios (1/4 .. 4, including 2/3 and 3/2) of the strongest autocorrelation peak of each onset envelope,
each moved to its nearest peak. Every candidate gets a vector of cues (:data:`FEATURE_NAMES`): how regular the
accents (below 2.5 kHz), the whole spectrum, the lows (kick, bass) and the highs (hats, cymbals) are at that period,
at half and a third of it (is there a regular faster level?) and at twice it (bar-level evidence), and its log
tempo and the square of it (a perceptual tempo prior whose centre and width are fitted). The chosen candidate
maximises a linear score ``weights . standardised cues``; the probability of each candidate is the softmax of the
scores (a conditional logit, McFadden 1973), fitted by :func:`fit_octave_model` as a penalised maximum likelihood,
so ``bpm_confidence`` is the model's probability that the chosen level is the beat.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.optimize

LADDER: tuple[float, ...] = (1 / 4, 1 / 3, 1 / 2, 2 / 3, 1.0, 3 / 2, 2.0, 3.0, 4.0)
"""Ratios of the strongest peak's lag that become candidates (lags; 2.0 is half the tempo)."""
_PEAK_TOLERANCE = 0.06
_FEATURE_TOLERANCE = 0.03
_MERGE_TOLERANCE = 0.03
_TOP_PEAKS = 8
"""Besides the ladders, this many of the highest autocorrelation peaks in the tempo range are candidates."""
_PRIOR_CENTRE_BPM = 100.0
_L2_PENALTY = 0.01
"""Ridge penalty (half the sum of squared weights of the standardised cues, times this) added to the mean negative
log-likelihood per clip; a fixed choice, not fitted."""

ENVELOPES: tuple[str, ...] = ("accent", "full", "low", "high")
"""Onset envelopes whose autocorrelations the cues read, in the order of the ``acfs`` rows."""

FEATURE_NAMES: tuple[str, ...] = (
    "accent",
    "full",
    "low",
    "high",
    "accent_half",
    "full_half",
    "high_half",
    "accent_third",
    "full_third",
    "accent_faster",
    "full_faster",
    "accent_double",
    "full_double",
    "low_double",
    "log_tempo",
    "log_tempo_squared",
)
"""The cues of one candidate: autocorrelation of an envelope at the candidate period (``half``: at half the period,
``third``: a third, ``faster``: the highest of those at 1/2 .. 1/5, ``double``: twice), then log2(bpm / 100) and
its square."""


def peak_near(acf: npt.NDArray[np.float64], lag: float, *, tolerance: float) -> tuple[float, float]:
    """The highest local maximum of ``acf`` within ``lag * (1 +- tolerance)``, as (lag, value) refined by a
    parabola through its neighbours; the value at ``lag`` itself when there is no peak there (0 beyond the end)."""
    lo = max(1, math.floor(lag * (1.0 - tolerance)))
    hi = min(acf.size - 2, math.ceil(lag * (1.0 + tolerance)))
    best: tuple[float, float] | None = None
    for i in range(lo, hi + 1):
        left, centre, right = acf[i - 1], acf[i], acf[i + 1]
        if centre >= left and centre >= right:
            curvature = left - 2.0 * centre + right
            offset = 0.0 if curvature >= 0 else float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
            value = float(centre - 0.25 * (left - right) * offset)
            if best is None or value > best[1]:
                best = (i + offset, value)
    if best is None:
        if lag > acf.size - 1:
            return lag, 0.0
        return lag, float(np.interp(lag, np.arange(acf.size), acf))
    return best


@dataclass(frozen=True, slots=True)
class Candidates:
    """Candidate beat periods of one track and their cues.

    ``lags``: periods in envelope frames (fractional), shape (n,); ``features``: shape (n, len(FEATURE_NAMES));
    ``periodicity``: the strongest accent/full autocorrelation peak in the tempo range (how pulsed the track is).
    """

    lags: npt.NDArray[np.float64]
    features: npt.NDArray[np.float64]
    periodicity: float


def candidates(acfs: npt.NDArray[np.float64], *, frame_rate_hz: float, min_bpm: float, max_bpm: float) -> Candidates:
    """Candidates and cues from the autocorrelations of :data:`ENVELOPES` (rows of ``acfs``, lag 0 = 1).

    ``acfs`` should reach twice the lag of ``min_bpm`` (shorter rows read 0 beyond their end).
    """
    shortest = max(2, math.floor(60.0 * frame_rate_hz / max_bpm))
    longest = min(acfs.shape[1] - 2, math.ceil(60.0 * frame_rate_hz / min_bpm))
    combined = acfs[0] + acfs[1]
    lags: list[float] = []
    periodicity = 0.0
    for row in (combined, acfs[0], acfs[1], acfs[2], acfs[3]):
        start = shortest + int(np.argmax(row[shortest : longest + 1]))
        for ratio in LADDER:
            lag, _ = peak_near(combined, start * ratio, tolerance=_PEAK_TOLERANCE)
            if shortest <= lag <= longest and all(abs(lag / other - 1.0) > _MERGE_TOLERANCE for other in lags):
                lags.append(lag)
    inner = combined[shortest : longest + 1]
    is_peak = np.flatnonzero((inner[1:-1] >= inner[:-2]) & (inner[1:-1] >= inner[2:])) + shortest + 1
    for index in is_peak[np.argsort(-combined[is_peak], kind="stable")][:_TOP_PEAKS]:
        lag, _ = peak_near(combined, float(index), tolerance=0.5 / index)
        if all(abs(lag / other - 1.0) > _MERGE_TOLERANCE for other in lags):
            lags.append(lag)
    for lag in lags:
        periodicity = max(periodicity, _at(acfs[0], lag), _at(acfs[1], lag))
    ordered = np.sort(np.array(lags, dtype=np.float64))
    features = np.array([_cues(acfs, lag, frame_rate_hz) for lag in ordered]).reshape(-1, len(FEATURE_NAMES))
    return Candidates(lags=ordered, features=features, periodicity=periodicity)


def _at(acf: npt.NDArray[np.float64], lag: float) -> float:
    return peak_near(acf, lag, tolerance=_FEATURE_TOLERANCE)[1]


def _cues(acfs: npt.NDArray[np.float64], lag: float, frame_rate_hz: float) -> list[float]:
    accent, full, low, high = acfs
    log_tempo = math.log2(60.0 * frame_rate_hz / lag / _PRIOR_CENTRE_BPM)
    return [
        _at(accent, lag),
        _at(full, lag),
        _at(low, lag),
        _at(high, lag),
        _at(accent, lag / 2),
        _at(full, lag / 2),
        _at(high, lag / 2),
        _at(accent, lag / 3),
        _at(full, lag / 3),
        max(_at(accent, lag / k) for k in (2, 3, 4, 5)),
        max(_at(full, lag / k) for k in (2, 3, 4, 5)),
        _at(accent, lag * 2),
        _at(full, lag * 2),
        _at(low, lag * 2),
        log_tempo,
        log_tempo**2,
    ]


@dataclass(frozen=True, slots=True)
class OctaveModel:
    """Linear scores over standardised cues: ``score = weights . (features - means) / scales``."""

    weights: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]

    def __post_init__(self) -> None:
        n = len(FEATURE_NAMES)
        if not len(self.weights) == len(self.means) == len(self.scales) == n:
            raise ValueError(f"an octave model needs {n} weights, means and scales")
        if not all(math.isfinite(v) for v in (*self.weights, *self.means, *self.scales)):
            raise ValueError("octave model values must be finite")
        if min(self.scales) <= 0:
            raise ValueError("octave model scales must be positive")

    @classmethod
    def default(cls) -> OctaveModel:
        """The shipped model (fitted on the whole rhythm corpus; see ``docs/tempo.md``)."""
        return DEFAULT_MODEL

    def probabilities(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Softmax of the candidates' scores, shape (n,)."""
        scores = ((features - np.array(self.means)) / np.array(self.scales)) @ np.array(self.weights)
        scores -= scores.max()
        weights = np.exp(scores)
        return np.asarray(weights / weights.sum(), dtype=np.float64)


def correct_index(lags: npt.NDArray[np.float64], frame_rate_hz: float, truth_bpm: float) -> int | None:
    """The candidate within 4 % of ``truth_bpm`` (the nearest one), or None."""
    bpms = 60.0 * frame_rate_hz / lags
    errors = np.abs(bpms / truth_bpm - 1.0)
    best = int(np.argmin(errors)) if errors.size else -1
    return best if best >= 0 and errors[best] <= 0.04 else None


def fit_octave_model(examples: Sequence[tuple[Candidates, int]]) -> OctaveModel:
    """Fit an :class:`OctaveModel` by penalised maximum likelihood on (candidates, index of the true beat) pairs.

    Raises ValueError when there is nothing to fit (no example with two or more candidates).
    """
    usable = [(c.features, i) for c, i in examples if c.features.shape[0] >= 2]
    if not usable:
        raise ValueError("no clip with two or more candidate tempi to fit the octave model on")
    stacked = np.concatenate([f for f, _ in usable])
    means = stacked.mean(axis=0)
    scales = np.maximum(stacked.std(axis=0), 1e-6)
    standardised = [((f - means) / scales, i) for f, i in usable]
    n = len(standardised)

    def loss(weights: npt.NDArray[np.float64]) -> tuple[float, npt.NDArray[np.float64]]:
        total = 0.0
        gradient = np.zeros_like(weights)
        for features, index in standardised:
            scores = features @ weights
            top = scores.max()
            exp = np.exp(scores - top)
            total += top + math.log(exp.sum()) - scores[index]
            gradient += features.T @ (exp / exp.sum()) - features[index]
        penalty = 0.5 * _L2_PENALTY * float(weights @ weights)
        return total / n + penalty, gradient / n + _L2_PENALTY * weights

    start = np.zeros(len(FEATURE_NAMES))
    fitted = scipy.optimize.minimize(loss, start, jac=True, method="L-BFGS-B").x
    return OctaveModel(
        weights=tuple(float(w) for w in fitted),
        means=tuple(float(m) for m in means),
        scales=tuple(float(s) for s in scales),
    )


DEFAULT_MODEL = OctaveModel(
    weights=(
        1.163,
        0.8184,
        1.176,
        0.5447,
        -0.852,
        -0.06145,
        0.3826,
        -0.2399,
        -0.3189,
        -1.032,
        -0.3388,
        0.2311,
        0.2729,
        0.322,
        0.4894,
        -0.2565,
    ),
    means=(
        0.2378,
        0.2751,
        0.2112,
        0.2895,
        0.06863,
        0.08814,
        0.09947,
        0.01814,
        0.03293,
        0.1838,
        0.2289,
        0.3734,
        0.3987,
        0.3513,
        -0.3206,
        0.6281,
    ),
    scales=(
        0.3498,
        0.3549,
        0.339,
        0.3463,
        0.2881,
        0.3051,
        0.308,
        0.2247,
        0.2443,
        0.3198,
        0.3297,
        0.3702,
        0.3698,
        0.3606,
        0.7248,
        0.5157,
    ),
)
