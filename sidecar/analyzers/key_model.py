"""A fitted key classifier over two chroma vectors: trained major and minor profiles chosen by penalised likelihood.

Each of the 24 keys gets a linear score: its tonic-rotated, standardised chroma (the whole G2-C7 register and the
upper G3-C7 register, see :class:`sidecar.analyzers.key.ChromaAccumulator`) dotted with one weight vector per mode
and register. The probability of each key is the softmax of the scores (a conditional logit over the 24 keys), and
:func:`fit_key_model` fits the four 12-value weight vectors by ridge-penalised maximum likelihood. The weights play
the part of key profiles, but they are learned from the chroma rendered music produces (harmonics, bass, drums
included) and may be negative: a pitch class that argues against a key lowers its score. Standardising each chroma
(zero mean, unit spread over its 12 values) makes the scores independent of loudness and of how peaked the chroma is.

Opt-in only (``KeyAnalyzer(model=DEFAULT_KEY_MODEL)``): fitted on the rendered rhythm corpus, the weights learned
that generator's chord progressions. They score 0.98 leave-one-family-out there but 0.91 leave-one-progression-out,
and agree with Essentia on fewer real recordings than the default profile (``docs/benchmarks/key.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.optimize

Vector = npt.NDArray[np.float64]

L2_GRID: tuple[float, ...] = (1e-3, 1e-2, 1e-1)
"""Ridge penalties ``scripts/bench_key_rhythm.py`` chooses from, by cross-validation inside each fold's fitting set."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyModel:
    """Four 12-value weight vectors, tonic first: whole-register and upper-register chroma, major and minor."""

    main_major: tuple[float, ...]
    main_minor: tuple[float, ...]
    upper_major: tuple[float, ...]
    upper_minor: tuple[float, ...]
    l2_penalty: float

    def __post_init__(self) -> None:
        for name in ("main_major", "main_minor", "upper_major", "upper_minor"):
            if len(getattr(self, name)) != 12:
                raise ValueError(f"{name} needs 12 weights, got {len(getattr(self, name))}")

    @classmethod
    def from_vector(cls, weights: Vector, l2_penalty: float) -> KeyModel:
        """The model of a flat 48-value vector in the field order (as :func:`fit_key_model` optimises it)."""
        parts = [tuple(round(float(v), 4) for v in weights[i : i + 12]) for i in range(0, 48, 12)]
        return cls(
            main_major=parts[0], main_minor=parts[1], upper_major=parts[2], upper_minor=parts[3], l2_penalty=l2_penalty
        )

    def scores(self, main: Vector, upper: Vector) -> Vector:
        """The 24 key scores (index as :func:`sidecar.analyzers.key.key_of_template`: major C..B, minor C..B)."""
        z_main, z_upper = standardised(main), standardised(upper)
        return np.concatenate(
            [
                _rotations(self.main_major) @ z_main + _rotations(self.upper_major) @ z_upper,
                _rotations(self.main_minor) @ z_main + _rotations(self.upper_minor) @ z_upper,
            ]
        )


def standardised(chroma: Vector) -> Vector:
    """``chroma`` minus its mean, divided by its standard deviation; all zeros for a flat (or empty) chroma."""
    centred = np.asarray(chroma, dtype=np.float64) - float(np.mean(chroma))
    spread = float(np.std(centred))
    return centred / spread if spread > 0.0 else np.zeros(12)


def probabilities(scores: Vector) -> Vector:
    """Softmax of the key scores."""
    shifted = np.exp(scores - scores.max())
    return np.asarray(shifted / shifted.sum(), dtype=np.float64)


def _rotations(weights: Sequence[float]) -> Vector:
    """Rows ``t`` = ``weights`` rotated to tonic ``t``, so ``rows @ z`` scores every tonic at once."""
    return np.stack([np.roll(np.asarray(weights, dtype=np.float64), tonic) for tonic in range(12)])


_ROTATED = (np.arange(12)[None, :] + np.arange(12)[:, None]) % 12
"""``z[_ROTATED[t]]`` is ``z`` rotated so that pitch class ``t`` comes first."""


def candidate_features(main: Vector, upper: Vector) -> Vector:
    """Shape (24, 48): for each key, its tonic-aligned standardised chromas in that mode's blocks (zeros elsewhere),
    so that ``candidate_features(main, upper) @ weights`` are the 24 scores of the flat 48-value weight vector."""
    rotated_main, rotated_upper = standardised(main)[_ROTATED], standardised(upper)[_ROTATED]
    features = np.zeros((24, 48))
    for mode in (0, 1):
        rows = slice(12 * mode, 12 * mode + 12)
        features[rows, 12 * mode : 12 * mode + 12] = rotated_main
        features[rows, 24 + 12 * mode : 24 + 12 * mode + 12] = rotated_upper
    return features


def fit_key_model(features: Vector, truth: npt.NDArray[np.int64], l2_penalty: float) -> KeyModel:
    """Fit the weights on examples: ``features`` stacks :func:`candidate_features` (shape (n, 24, 48)),
    ``truth`` holds each example's true key index (0-11 major C..B, 12-23 minor C..B).

    Minimises the mean negative log-likelihood of the true keys plus ``l2_penalty`` times the sum of squared
    weights (L-BFGS). Raises ValueError without examples.
    """
    n = len(truth)
    if n == 0:
        raise ValueError("no examples to fit the key model on")
    chosen = features[np.arange(n), truth].mean(axis=0)
    flat = features.reshape(-1, features.shape[-1])

    def loss(weights: Vector) -> tuple[float, Vector]:
        scores = (flat @ weights).reshape(n, -1)
        scores -= scores.max(axis=1, keepdims=True)
        p = np.exp(scores)
        p /= p.sum(axis=1, keepdims=True)
        nll = -float(np.mean(np.log(p[np.arange(n), truth])))
        gradient = flat.T @ p.ravel() / n - chosen + 2.0 * l2_penalty * weights
        return nll + l2_penalty * float(weights @ weights), gradient

    result = scipy.optimize.minimize(loss, np.zeros(48), jac=True, method="L-BFGS-B")
    return KeyModel.from_vector(result.x, l2_penalty)


DEFAULT_KEY_MODEL = KeyModel(
    main_major=(1.9497, -0.6047, 0.7103, -0.1156, 0.3460, -0.4613, -0.8659, 2.3538, -0.4353, 0.0441, -2.4731, -0.4482),
    main_minor=(1.4891, -1.8794, 0.9523, 0.7210, -0.9732, 0.0004, -0.6577, 2.0132, 0.1268, -1.6816, -0.4453, 0.3343),
    upper_major=(1.0148, -0.9259, -0.0719, -1.0615, 0.7283, 1.1735, -0.3932, 0.7380, -0.7786, 0.9321, -2.1872, 0.8316),
    upper_minor=(1.8080, -2.2765, 0.4414, 0.6168, -1.6189, 0.6545, -0.6538, 1.0283, 0.4052, -1.8942, 0.3166, 1.1727),
    l2_penalty=0.001,
)
"""The shipped weights: fitted on the whole rhythm corpus (180 clips) by ``python -m scripts.bench_key_rhythm``, which
prints them, with the ridge penalty chosen by cross-validation over families; scored there leave-one-family-out
and leave-one-soundfont-out with per-fold fits, never with these weights."""
