"""Quality measures for embeddings (tests and ``scripts/bench_embedding.py``): neighbour precision, robustness.

Vectors are compared by cosine similarity (they are L2-normalised), as the similar-tracks search does.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from sidecar.analyzers.audio import ANALYSIS_RATE_HZ, read_mono
from sidecar.analyzers.base import Analyzer
from sidecar.analyzers.pipeline import analyze_file
from sidecar.demo.encode import write_audio
from sidecar.domain import AnalyzerOutput, EmbeddingResult


def embed_files(paths: Sequence[Path], analyzer: Analyzer[AnalyzerOutput]) -> npt.NDArray[np.float32]:
    """Embedding vectors of ``paths`` (one row each) from ``analyzer``; raises ``RuntimeError`` if one fails."""
    rows: list[npt.NDArray[np.float32]] = []
    for path in paths:
        analysis = analyze_file(path, [analyzer])
        result = analysis.results.get(analyzer.name)
        if not isinstance(result, EmbeddingResult):
            raise RuntimeError(f"no embedding for {path}: {analysis.error or analysis.failures}")
        rows.append(result.vector)
    return np.stack(rows)


def precision_at_k(vectors: npt.NDArray[np.float32], labels: Sequence[object], *, k: int) -> float:
    """Mean share of each vector's ``k`` nearest others (cosine) that carry its label."""
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)
    neighbours = np.argsort(-similarity, axis=1)[:, :k]
    label_array = np.asarray(labels)
    return float((label_array[neighbours] == label_array[:, None]).mean())


def nearest_original_rate(originals: npt.NDArray[np.float32], variants: npt.NDArray[np.float32]) -> float:
    """Share of variants (row i derived from original i) whose nearest original (cosine) is their own."""
    nearest = np.argmax(variants @ originals.T, axis=1)
    return float((nearest == np.arange(originals.shape[0])).mean())


def degrade(
    source: str | os.PathLike[str], target: str | os.PathLike[str], *, gain_db: float, bit_rate: int = 128_000
) -> Path:
    """Re-encode ``source`` as the robustness tests need: mono, resampled to 22 050 Hz, ``gain_db`` louder (samples
    beyond full scale are clipped), MP3 at ``bit_rate`` bits per second."""
    mono = read_mono(source) * np.float32(10.0 ** (gain_db / 20.0))
    return write_audio(
        np.clip(mono, -1.0, 1.0)[:, None], ANALYSIS_RATE_HZ, target, format_name="mp3", bit_rate=bit_rate
    )
