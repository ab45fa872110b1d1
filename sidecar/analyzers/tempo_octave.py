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
        -0.01999,
        0.07748,
        0.1098,
        -0.1641,
        0.6227,
        0.09472,
        0.08365,
        0.07591,
        0.6457,
        0.2917,
        0.04983,
        0.448,
        0.005154,
        0.4679,
        0.2453,
        0.1035,
        0.2121,
        0.2726,
        -0.01287,
        0.02526,
        -0.09451,
        -0.3926,
        0.5061,
        -0.07327,
        0.3229,
        -0.1095,
        1.271,
        0.1531,
        0.09316,
        0.005733,
        -0.1563,
        0.4139,
        -0.1713,
        0.1613,
        -0.05737,
        0.5239,
        0.1436,
        0.09944,
        0.3092,
        0.1203,
        0.09807,
        -0.003296,
        0.1682,
        -0.03161,
        0.0489,
        0.6032,
        -0.6143,
        0.4112,
        0.08459,
        0.07956,
        -0.06547,
        -0.1134,
        0.1251,
        -0.007768,
        -0.0003965,
        0.3537,
        0.7161,
        0.4299,
        -0.07857,
        0.3604,
        -0.3339,
        -0.1439,
        -0.1572,
        -0.0656,
        0.1693,
        0.453,
        0.1809,
        0.1679,
        -0.09919,
        0.08959,
        0.1122,
        0.123,
        0.4615,
        0.4474,
        0.3077,
        0.0317,
        -0.01659,
        -0.04578,
        -0.1054,
        0.02785,
        0.05066,
        0.1036,
        0.355,
        1.008,
        0.4795,
        0.1307,
        0.4588,
        -0.03739,
        0.02337,
        0.108,
        0.3546,
        0.4344,
    ),
    means=(
        0.005224,
        0.05101,
        0.138,
        0.1107,
        0.3794,
        0.2008,
        0.4379,
        0.3954,
        0.4555,
        0.01649,
        0.06765,
        0.1717,
        0.1291,
        0.4454,
        0.2337,
        0.4985,
        0.4545,
        0.5053,
        -0.004696,
        0.03022,
        0.08969,
        0.08019,
        0.2608,
        0.1479,
        0.3213,
        0.2887,
        0.3603,
        0.006048,
        0.05139,
        0.1366,
        0.1096,
        0.373,
        0.1973,
        0.43,
        0.388,
        0.4468,
        0.02157,
        0.07148,
        0.1765,
        0.1317,
        0.439,
        0.2321,
        0.4872,
        0.4433,
        0.4908,
        -0.412,
        0.6304,
        -0.03827,
        -0.06009,
        -0.08851,
        -0.08033,
        -0.1642,
        -0.1132,
        -0.1872,
        -0.1761,
        -0.1921,
        -0.04525,
        -0.06758,
        -0.1012,
        -0.09017,
        -0.1917,
        -0.1309,
        -0.2108,
        -0.1999,
        -0.2097,
        -0.02442,
        -0.04527,
        -0.06666,
        -0.06393,
        -0.1172,
        -0.08339,
        -0.14,
        -0.1327,
        -0.1552,
        -0.03852,
        -0.05994,
        -0.08726,
        -0.07899,
        -0.1607,
        -0.1113,
        -0.1833,
        -0.172,
        -0.188,
        -0.04531,
        -0.06717,
        -0.1004,
        -0.08997,
        -0.1881,
        -0.1289,
        -0.2041,
        -0.1936,
        -0.2017,
    ),
    scales=(
        0.1964,
        0.2451,
        0.2902,
        0.2902,
        0.2592,
        0.3003,
        0.258,
        0.2452,
        0.2268,
        0.2277,
        0.2782,
        0.3202,
        0.3217,
        0.2491,
        0.3228,
        0.2459,
        0.2315,
        0.2153,
        0.1414,
        0.1828,
        0.228,
        0.2286,
        0.2542,
        0.2509,
        0.2645,
        0.2448,
        0.2418,
        0.194,
        0.2415,
        0.2852,
        0.2851,
        0.2546,
        0.2942,
        0.2529,
        0.2404,
        0.2226,
        0.2279,
        0.2755,
        0.3138,
        0.3137,
        0.2404,
        0.312,
        0.2334,
        0.2209,
        0.207,
        0.6787,
        0.532,
        0.1762,
        0.2167,
        0.248,
        0.2486,
        0.3223,
        0.2731,
        0.3481,
        0.3198,
        0.3437,
        0.1992,
        0.2422,
        0.2784,
        0.2753,
        0.3525,
        0.2987,
        0.378,
        0.3455,
        0.3695,
        0.128,
        0.1658,
        0.1927,
        0.1989,
        0.2633,
        0.2261,
        0.2915,
        0.2661,
        0.2963,
        0.1746,
        0.2133,
        0.2438,
        0.2442,
        0.3169,
        0.2675,
        0.3413,
        0.314,
        0.3371,
        0.1965,
        0.2379,
        0.2749,
        0.2686,
        0.3453,
        0.2907,
        0.3667,
        0.335,
        0.3589,
    ),
    min_regularity=0.05552,
)
