"""Synthetic embeddings clustered like real ones, for the vector-search tests and benchmark.

Real audio embeddings are not uniform on the sphere: tracks gather around styles (clusters) and vary along a few
directions (low intrinsic dimension). Here each point is a cluster centre plus a low-rank Gaussian offset (shared
``latent_dim`` directions) plus a little isotropic noise, L2-normalised.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def clustered_unit_vectors(
    count: int,
    dim: int,
    *,
    clusters: int = 100,
    latent_dim: int = 32,
    spread: float = 0.5,
    noise: float = 0.05,
    seed: int = 0,
) -> npt.NDArray[np.float32]:
    """``count`` L2-normalised vectors of length ``dim``, shape ``(count, dim)``, float32.

    Centres, within-cluster offsets and noise have expected norms 1, ``spread`` and ``noise`` before the
    normalisation. Deterministic for a given ``seed``.
    """
    if count < 0 or dim < 1 or clusters < 1 or latent_dim < 1:
        raise ValueError("count must be >= 0 and dim, clusters, latent_dim >= 1")
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) / np.sqrt(dim)
    basis = rng.normal(size=(latent_dim, dim)) / np.sqrt(dim)
    labels = rng.integers(0, clusters, count)
    offsets = spread * rng.normal(size=(count, latent_dim)) @ basis / np.sqrt(latent_dim)
    points = centres[labels] + offsets + noise * rng.normal(size=(count, dim)) / np.sqrt(dim)
    norms = np.linalg.norm(points, axis=1, keepdims=True)
    unit: npt.NDArray[np.float32] = (points / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit
