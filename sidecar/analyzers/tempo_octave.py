"""Which metrical level is the beat: candidate tempi, their metrical cues and a fitted conditional-logit choice.

A track's pulse shows up at several related periods (sub-beat, beat, half bar, bar). The candidates are the lags
at simple ratios (1/4 .. 4, including 2/3 and 3/2) of the strongest autocorrelation peak of each onset envelope,
each moved to its nearest peak, and the highest peaks. Every candidate gets a vector of cues (:data:`FEATURE_NAMES`):
its metrical profile, i.e. how regular each onset envelope (accent, full, low, mid, high) is at 1/4, 1/3, 1/2, 2/3,
1, 3/2, 2, 3 and 4 times its period (a regular faster level says the candidate may be too slow, bar-level evidence
says it is a beat), its log tempo and the square of it (a perceptual tempo prior whose centre and width are
fitted), and the profile times the log tempo (what a faster level means depends on the tempo). Candidates at which
the accent and full envelopes barely recur (below the fitted ``min_regularity`` of the strongest) are not eligible.
The chosen candidate maximises a linear score ``weights . standardised cues``; the probability of each candidate
is the softmax of the scores (a conditional logit, McFadden 1973), fitted by :func:`fit_octave_model` as a
penalised maximum likelihood, so ``bpm_confidence`` is the model's probability that the chosen level is the beat.
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
_REGULARITY_MARGIN = 0.5
"""The fitted ``min_regularity`` is this fraction of the least regular true beat among the fitting clips."""
_TOP_PEAKS = 8
"""Besides the ladders, this many of the highest autocorrelation peaks in the tempo range are candidates."""
_PRIOR_CENTRE_BPM = 100.0
_L2_PENALTY = 0.01
"""Ridge penalty (half the sum of squared weights of the standardised cues, times this) added to the mean negative
log-likelihood per clip; a fixed choice, not fitted."""

ENVELOPES: tuple[str, ...] = ("accent", "full", "low", "mid", "high")
"""Onset envelopes whose autocorrelations the cues read, in the order of the ``acfs`` rows."""
HARMONY_ENVELOPES: tuple[str, ...] = ("chroma", "bass")
"""Envelopes of pitch-content change that can be read as two more envelopes: how much the pitch-class (chroma)
profile and the bass spectrum (< 250 Hz) changed between the last two windows of frames (chord and bass-note
changes mostly fall on beats and bar lines)."""
NETWORK_ENVELOPES: tuple[str, ...] = ("beat", "downbeat")
"""Activations of the beat network (:mod:`sidecar.analyzers.beatnet`) that can be read as two more envelopes:
the probability of a beat (downbeats included) and of a downbeat, per frame."""

PROFILE_RATIOS: tuple[tuple[str, float], ...] = (
    ("quarter", 1 / 4),
    ("third", 1 / 3),
    ("half", 1 / 2),
    ("two_thirds", 2 / 3),
    ("period", 1.0),
    ("three_halves", 3 / 2),
    ("double", 2.0),
    ("triple", 3.0),
    ("quadruple", 4.0),
)
"""Multiples of the candidate period at which each envelope's autocorrelation is a cue (its metrical profile)."""
HARMONY_RATIOS: tuple[tuple[str, float], ...] = (("period", 1.0), ("double", 2.0), ("triple", 3.0), ("quadruple", 4.0))
"""The multiples read from the harmony envelopes: do chords change on this beat, every two, three, four beats (bar
evidence). Chord changes say nothing about faster levels, so the ratios below 1 are left out."""


def feature_names(envelopes: Sequence[str]) -> tuple[str, ...]:
    """The cues of one candidate when the ``acfs`` rows are ``envelopes``: the autocorrelation of each envelope at
    each multiple of the candidate period in :data:`PROFILE_RATIOS` (below the period: is there a regular faster
    level; above it: bar-level evidence), then log2(bpm / 100) and its square (a tempo prior), then each profile
    value times log2(bpm / 100) (so what a strong faster level or bar level means can depend on the tempo); then the
    harmony envelopes' autocorrelation at the multiples in :data:`HARMONY_RATIOS` (no tempo interaction)."""
    rhythm = [e for e in envelopes if e not in HARMONY_ENVELOPES]
    profile = tuple(f"{envelope}_{ratio}" for envelope in rhythm for ratio, _ in PROFILE_RATIOS)
    harmony = tuple(
        f"{envelope}_{ratio}" for envelope in envelopes if envelope in HARMONY_ENVELOPES for ratio, _ in HARMONY_RATIOS
    )
    return (*profile, "log_tempo", "log_tempo_squared", *(f"{name}_x_log_tempo" for name in profile), *harmony)


FEATURE_NAMES: tuple[str, ...] = feature_names(ENVELOPES)
"""The cues of the onset envelopes alone (the cue set of tempo versions 2 and 3)."""


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

    ``lags``: periods in envelope frames (fractional), shape (n,); ``features``: shape (n, len(feature_names(
    envelopes))); ``periodicity``: the strongest accent/full autocorrelation peak among them (how pulsed the track
    is); ``regularity``: each candidate's own accent/full peak as a fraction of ``periodicity``, shape (n,);
    ``envelopes``: the envelopes the cues read.
    """

    lags: npt.NDArray[np.float64]
    features: npt.NDArray[np.float64]
    periodicity: float
    regularity: npt.NDArray[np.float64]
    envelopes: tuple[str, ...] = ENVELOPES


def candidates(
    acfs: npt.NDArray[np.float64],
    *,
    frame_rate_hz: float,
    min_bpm: float,
    max_bpm: float,
    envelopes: Sequence[str] = ENVELOPES,
) -> Candidates:
    """Candidates and cues from the autocorrelations of ``envelopes`` (rows of ``acfs``, lag 0 = 1; the first two
    are the accent and full envelopes). Every row's strongest peak starts a ladder of candidates, except the harmony
    envelopes' (they only add cues, so the candidates are those of the same track without them).

    ``acfs`` should reach twice the lag of ``min_bpm`` (shorter rows read 0 beyond their end).
    """
    if acfs.shape[0] != len(envelopes) or tuple(envelopes[:2]) != ENVELOPES[:2]:
        raise ValueError(f"acfs rows {acfs.shape[0]} do not match the envelopes {tuple(envelopes)}")
    shortest = max(2, math.floor(60.0 * frame_rate_hz / max_bpm))
    longest = min(acfs.shape[1] - 2, math.ceil(60.0 * frame_rate_hz / min_bpm))
    combined = acfs[0] + acfs[1]
    lags: list[float] = []
    ladder_rows = [row for row, name in zip(acfs, envelopes, strict=True) if name not in HARMONY_ENVELOPES]
    for row in (combined, *ladder_rows):
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
    ordered = np.sort(np.array(lags, dtype=np.float64))
    own = np.array([max(_at(acfs[0], lag), _at(acfs[1], lag)) for lag in ordered])
    periodicity = float(own.max()) if own.size else 0.0
    regularity = own / periodicity if periodicity > 0 else np.zeros_like(own)
    n_features = len(feature_names(envelopes))
    features = np.array([_cues(acfs, envelopes, lag, frame_rate_hz) for lag in ordered]).reshape(-1, n_features)
    return Candidates(
        lags=ordered, features=features, periodicity=periodicity, regularity=regularity, envelopes=tuple(envelopes)
    )


def _at(acf: npt.NDArray[np.float64], lag: float) -> float:
    return peak_near(acf, lag, tolerance=_FEATURE_TOLERANCE)[1]


def _cues(acfs: npt.NDArray[np.float64], envelopes: Sequence[str], lag: float, frame_rate_hz: float) -> list[float]:
    log_tempo = math.log2(60.0 * frame_rate_hz / lag / _PRIOR_CENTRE_BPM)
    rows = list(zip(acfs, envelopes, strict=True))
    profile = [
        _at(acf, lag * ratio) for acf, name in rows if name not in HARMONY_ENVELOPES for _, ratio in PROFILE_RATIOS
    ]
    harmony = [_at(acf, lag * ratio) for acf, name in rows if name in HARMONY_ENVELOPES for _, ratio in HARMONY_RATIOS]
    return [*profile, log_tempo, log_tempo**2, *(value * log_tempo for value in profile), *harmony]


ENVELOPE_SETS: tuple[tuple[str, ...], ...] = (
    ENVELOPES,
    ENVELOPES + HARMONY_ENVELOPES,
    ENVELOPES + NETWORK_ENVELOPES,
)
"""The envelope sets an octave model may read: the onset envelopes, optionally followed by the harmony envelopes or
the beat network's activations."""


@dataclass(frozen=True, slots=True)
class OctaveModel:
    """Linear scores over standardised cues: ``score = weights . (features - means) / scales``, among the candidates
    whose regularity reaches ``min_regularity`` (all of them when none does). ``envelopes``: the envelopes whose
    cues it reads (one of :data:`ENVELOPE_SETS`)."""

    weights: tuple[float, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    min_regularity: float
    envelopes: tuple[str, ...] = ENVELOPES

    def __post_init__(self) -> None:
        if self.envelopes not in ENVELOPE_SETS:
            raise ValueError(f"unknown envelope set {self.envelopes}")
        n = len(feature_names(self.envelopes))
        if not len(self.weights) == len(self.means) == len(self.scales) == n:
            raise ValueError(f"an octave model needs {n} weights, means and scales")
        if not all(math.isfinite(v) for v in (*self.weights, *self.means, *self.scales)):
            raise ValueError("octave model values must be finite")
        if min(self.scales) <= 0:
            raise ValueError("octave model scales must be positive")
        if not 0 <= self.min_regularity <= 1:
            raise ValueError(f"min_regularity must be in [0, 1], got {self.min_regularity}")

    @property
    def uses_network(self) -> bool:
        """Whether its cues read the beat network's activations."""
        return set(NETWORK_ENVELOPES) <= set(self.envelopes)

    @property
    def uses_harmony(self) -> bool:
        """Whether its cues read the harmony envelopes."""
        return set(HARMONY_ENVELOPES) <= set(self.envelopes)

    @classmethod
    def default(cls) -> OctaveModel:
        """The shipped model, fitted on the rhythm corpus and 96 demo pieces by ``scripts/fit_tempo_octave.py``."""
        return DEFAULT_MODEL

    def eligible(self, found: Candidates) -> npt.NDArray[np.bool_]:
        """Which candidates recur regularly enough to be the beat, shape (n,)."""
        mask = found.regularity >= self.min_regularity
        return mask if mask.any() else np.ones_like(mask)

    def scores(self, features: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Linear scores of candidate cues, shape (n,)."""
        standardised = (features - np.array(self.means)) / np.array(self.scales)
        return np.asarray(standardised @ np.array(self.weights), dtype=np.float64)

    def probabilities(self, found: Candidates) -> npt.NDArray[np.float64]:
        """Softmax of the eligible candidates' scores (0 for the others), shape (n,). Raises ValueError when
        ``found`` reads other envelopes than the model."""
        if found.envelopes != self.envelopes:
            raise ValueError(f"candidates read {found.envelopes}, the octave model {self.envelopes}")
        scores = np.where(self.eligible(found), self.scores(found.features), -np.inf)
        weights = np.exp(scores - scores.max())
        return np.asarray(weights / weights.sum(), dtype=np.float64)


def correct_index(lags: npt.NDArray[np.float64], frame_rate_hz: float, truth_bpm: float) -> int | None:
    """The candidate within 4 % of ``truth_bpm`` (the nearest one), or None."""
    bpms = 60.0 * frame_rate_hz / lags
    errors = np.abs(bpms / truth_bpm - 1.0)
    best = int(np.argmin(errors)) if errors.size else -1
    return best if best >= 0 and errors[best] <= 0.04 else None


def fit_octave_model(examples: Sequence[tuple[Candidates, int]]) -> OctaveModel:
    """Fit an :class:`OctaveModel` by penalised maximum likelihood on (candidates, index of the true beat) pairs.

    Raises ValueError when there is nothing to fit (no example with two or more candidates) or when the examples
    read different envelopes.
    """
    envelopes = {found.envelopes for found, _ in examples}
    if len(envelopes) > 1:
        raise ValueError(f"examples read different envelope sets: {sorted(envelopes)}")
    min_regularity = _REGULARITY_MARGIN * min((c.regularity[i] for c, i in examples), default=0.0)
    usable = []
    for found, index in examples:
        mask = found.regularity >= min_regularity
        if np.count_nonzero(mask) >= 2:
            usable.append((found.features[mask], int(np.count_nonzero(mask[:index]))))
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

    start = np.zeros(stacked.shape[1])
    fitted = scipy.optimize.minimize(loss, start, jac=True, method="L-BFGS-B").x
    return OctaveModel(
        weights=tuple(float(w) for w in fitted),
        means=tuple(float(m) for m in means),
        scales=tuple(float(s) for s in scales),
        min_regularity=float(min_regularity),
        envelopes=envelopes.pop(),
    )


DEFAULT_MODEL = OctaveModel(
    weights=(
        -0.07464,
        0.2537,
        0.1635,
        -0.1358,
        0.418,
        -0.02405,
        0.07216,
        0.01876,
        0.8035,
        0.2502,
        0.1557,
        0.4652,
        -0.04904,
        0.3211,
        0.2587,
        -0.147,
        0.1823,
        0.3656,
        -0.113,
        0.1183,
        -0.09812,
        -0.54,
        0.5967,
        -0.07004,
        0.3619,
        0.07288,
        1.477,
        0.08687,
        0.3021,
        0.0465,
        -0.09902,
        0.2952,
        -0.2511,
        0.09074,
        -0.03608,
        0.6798,
        0.1535,
        0.1473,
        0.4023,
        -0.01539,
        0.1977,
        0.1789,
        -0.05502,
        0.002526,
        -0.01968,
        0.4436,
        0.06419,
        0.319,
        0.07488,
        0.02974,
        -0.09807,
        -0.1051,
        0.1473,
        0.01907,
        -0.009724,
        0.1498,
        0.7396,
        0.4417,
        -0.06382,
        0.4087,
        -0.2233,
        0.0003605,
        -0.1094,
        0.03201,
        0.05889,
        0.4016,
        0.1529,
        0.08185,
        -0.2327,
        0.345,
        0.4003,
        0.1182,
        0.6848,
        0.2965,
        0.2419,
        0.02438,
        -0.03831,
        -0.06331,
        -0.1421,
        0.0325,
        0.005647,
        0.02382,
        0.08854,
        1.112,
        0.482,
        0.2447,
        0.521,
        0.09457,
        0.2492,
        0.08452,
        0.4932,
        0.3054,
    ),
    means=(
        -8.144e-05,
        0.041,
        0.1303,
        0.1032,
        0.3885,
        0.1958,
        0.4433,
        0.4059,
        0.4534,
        0.01322,
        0.06045,
        0.1678,
        0.1226,
        0.4582,
        0.2292,
        0.5007,
        0.4628,
        0.4964,
        -0.00974,
        0.02383,
        0.09047,
        0.08051,
        0.2863,
        0.1555,
        0.3496,
        0.3212,
        0.3854,
        0.0005566,
        0.04195,
        0.1293,
        0.1026,
        0.3829,
        0.1931,
        0.4365,
        0.3998,
        0.4464,
        0.02074,
        0.06869,
        0.1792,
        0.1289,
        0.4603,
        0.234,
        0.4974,
        0.4597,
        0.4888,
        -0.4023,
        0.6244,
        -0.03993,
        -0.05817,
        -0.09045,
        -0.08487,
        -0.1637,
        -0.1102,
        -0.1845,
        -0.1737,
        -0.1856,
        -0.04778,
        -0.0664,
        -0.1034,
        -0.09494,
        -0.1915,
        -0.1275,
        -0.2049,
        -0.1958,
        -0.1985,
        -0.02512,
        -0.04495,
        -0.07239,
        -0.07131,
        -0.1275,
        -0.08853,
        -0.1485,
        -0.1419,
        -0.1625,
        -0.04029,
        -0.05868,
        -0.08942,
        -0.0836,
        -0.1607,
        -0.1089,
        -0.1815,
        -0.1704,
        -0.1825,
        -0.04886,
        -0.06782,
        -0.1049,
        -0.09535,
        -0.1923,
        -0.1293,
        -0.2018,
        -0.1942,
        -0.1932,
    ),
    scales=(
        0.193,
        0.2426,
        0.2968,
        0.2938,
        0.2728,
        0.3097,
        0.2724,
        0.2573,
        0.2332,
        0.2247,
        0.2752,
        0.325,
        0.3218,
        0.2507,
        0.3272,
        0.2517,
        0.2331,
        0.2135,
        0.1486,
        0.193,
        0.2472,
        0.247,
        0.2761,
        0.2723,
        0.2848,
        0.2611,
        0.251,
        0.1913,
        0.2396,
        0.2923,
        0.2892,
        0.2683,
        0.3041,
        0.267,
        0.2525,
        0.2284,
        0.2293,
        0.2771,
        0.322,
        0.3163,
        0.236,
        0.3173,
        0.2311,
        0.2145,
        0.1976,
        0.6801,
        0.5209,
        0.1814,
        0.2137,
        0.2515,
        0.2476,
        0.334,
        0.2719,
        0.3571,
        0.3273,
        0.3425,
        0.2027,
        0.237,
        0.2817,
        0.2706,
        0.3597,
        0.2939,
        0.3812,
        0.3464,
        0.3612,
        0.1399,
        0.1743,
        0.2079,
        0.2129,
        0.2866,
        0.2385,
        0.3149,
        0.2868,
        0.311,
        0.1805,
        0.2109,
        0.2479,
        0.2435,
        0.3292,
        0.267,
        0.3507,
        0.3224,
        0.3368,
        0.2015,
        0.2364,
        0.2828,
        0.2663,
        0.3549,
        0.2899,
        0.3718,
        0.3379,
        0.353,
    ),
    min_regularity=0.05552,
)
