"""Synthetic embeddings clustered like real ones, for the vector-search tests and benchmark.

Real audio embeddings are not uniform on the sphere: tracks gather around styles (clusters) and vary along a few
directions (low intrinsic dimension). Here each point is a cluster centre plus a low-rank Gaussian offset (shared
``latent_dim`` directions) plus a little isotropic noise, L2-normalised.
"""

from __future__ import annotations

from collections.abc import Iterator

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


def clustered_unit_vector_chunks(
    count: int,
    dim: int,
    *,
    chunk: int = 50_000,
    clusters: int = 200,
    latent_dim: int = 32,
    spread: float = 0.5,
    noise: float = 0.05,
    seed: int = 0,
) -> Iterator[npt.NDArray[np.float32]]:
    """The vectors of :func:`clustered_unit_vectors`' model (not the same draws), ``chunk`` rows at a time, so a
    million 753-dim vectors never need more than one chunk of float64 intermediates. Deterministic for a seed."""
    if count < 0 or dim < 1 or clusters < 1 or latent_dim < 1 or chunk < 1:
        raise ValueError("count must be >= 0 and dim, clusters, latent_dim, chunk >= 1")
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)) / np.sqrt(dim)
    basis = rng.normal(size=(latent_dim, dim)) / np.sqrt(dim)
    for start in range(0, count, chunk):
        size = min(chunk, count - start)
        part = np.random.default_rng([seed, start])
        labels = part.integers(0, clusters, size)
        offsets = spread * part.normal(size=(size, latent_dim)) @ basis / np.sqrt(latent_dim)
        points = centres[labels] + offsets + noise * part.normal(size=(size, dim)) / np.sqrt(dim)
        norms = np.linalg.norm(points, axis=1, keepdims=True)
        yield (points / np.maximum(norms, 1e-12)).astype(np.float32)
