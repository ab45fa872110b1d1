"""Quality of the default model (MusiCNN) and of timbre-v1 on a subset of the instrument corpus (the full corpora:
scripts/bench_embedding.py).

Same-instrument neighbours (precision@5 >= 0.8) and robustness: each piece re-encoded to MP3 128 kbit/s at
22.05 kHz and shifted -6 / +6 dB finds its original as nearest neighbour.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from sidecar.analyzers.embedding import EmbeddingAnalyzer
from sidecar.demo.embedding_eval import degrade, embed_files, nearest_original_rate, precision_at_k
from sidecar.demo.library import cached_corpus
from sidecar.demo.music import LEAD_PROGRAMS, PieceSpec, instrument_corpus
from sidecar.settings import EmbeddingSettings, Settings

PROGRAMS = LEAD_PROGRAMS[::3]  # piano, nylon guitar, trumpet, flute
MELODIES = 6
DURATION_S = 8.0


@pytest.fixture(scope="module")
def corpus(corpus_dir: Path) -> tuple[list[PieceSpec], list[Path]]:
    specs = instrument_corpus(PROGRAMS, MELODIES, duration_s=DURATION_S, seed=1)
    return specs, cached_corpus(specs, corpus_dir)


@pytest.fixture(scope="module", params=["musicnn-msd-mtt-harmonic-pool-ln-1506", "timbre-v1"])
def analyzer(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> EmbeddingAnalyzer:
    embedding = EmbeddingSettings.model_validate({"model": request.param, "fallback": False})
    analyzer = EmbeddingAnalyzer(Settings(data_dir=tmp_path_factory.mktemp("data"), embedding=embedding))
    assert analyzer.model == request.param
    return analyzer


@pytest.fixture(scope="module")
def originals(corpus: tuple[list[PieceSpec], list[Path]], analyzer: EmbeddingAnalyzer) -> npt.NDArray[np.float32]:
    return embed_files(corpus[1], analyzer)


def test_precision_at_5_of_same_instrument_neighbours_is_at_least_0_8(
    corpus: tuple[list[PieceSpec], list[Path]], originals: npt.NDArray[np.float32]
) -> None:
    labels = [spec.lead_program for spec in corpus[0]]
    assert precision_at_k(originals, labels, k=5) >= 0.8


@pytest.fixture(scope="module")
def degraded(
    corpus: tuple[list[PieceSpec], list[Path]], tmp_path_factory: pytest.TempPathFactory
) -> Callable[[float], list[Path]]:
    """``degraded(gain_db)``: the corpus re-encoded with that gain, made once per module for both models."""
    made: dict[float, list[Path]] = {}

    def variants(gain_db: float) -> list[Path]:
        if gain_db not in made:
            folder = tmp_path_factory.mktemp("degraded")
            made[gain_db] = [degrade(path, folder / f"{i}.mp3", gain_db=gain_db) for i, path in enumerate(corpus[1])]
        return made[gain_db]

    return variants


@pytest.mark.parametrize("gain_db", [-6.0, 6.0])
def test_degraded_copy_finds_its_original(
    degraded: Callable[[float], list[Path]],
    analyzer: EmbeddingAnalyzer,
    originals: npt.NDArray[np.float32],
    gain_db: float,
) -> None:
    assert nearest_original_rate(originals, embed_files(degraded(gain_db), analyzer)) >= 0.99


def test_precision_at_k_counts_same_label_neighbours() -> None:
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], np.float32)
    assert precision_at_k(vectors, ["a", "b", "b", "a"], k=1) == 0.0


def test_nearest_original_rate_counts_matches() -> None:
    originals = np.eye(3, dtype=np.float32)
    variants = np.array([[1, 0, 0], [1, 0.1, 0], [0, 0, 1]], np.float32)
    assert nearest_original_rate(originals, variants) == pytest.approx(2 / 3)
