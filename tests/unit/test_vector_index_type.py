"""Which HNSW index type a server's pgvector gets (half precision from 0.7 on), and the names of its generations."""

from __future__ import annotations

import pytest

from sidecar.storage.vectors import CAMELOTS, _index_name, _key_index_name, index_type_for


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.6.2", "vector"), ("0.5.1", "vector"), ("0.7.0", "halfvec"), ("0.8.5", "halfvec"), ("1.0", "halfvec")],
)
def test_index_type_follows_the_pgvector_version(version: str, expected: str) -> None:
    assert index_type_for(version) == expected


@pytest.mark.parametrize("model", ["musicnn-msd-mtt-harmonic-pool-ln-1506", "x" * 200])
def test_two_generations_of_index_names_differ_and_fit_postgresql(model: str) -> None:
    names = [
        [_index_name(model, 1506, generation), *(_key_index_name(model, 1506, c, generation) for c in CAMELOTS)]
        for generation in (0, 1, 2, 999_999)
    ]
    flat = [name for generation in names for name in generation]
    assert len(set(flat)) == len(flat) == 4 * 25
    assert max(len(name.encode()) for name in flat) <= 63  # PostgreSQL's identifier limit (NAMEDATALEN - 1)


def test_generation_zero_keeps_the_names_the_migrations_use() -> None:
    assert _index_name("musicnn-msd-mtt-harmonic-pool-ln-1506", 1506) == (
        "embeddings_hnsw_musicnn_msd_mtt_harmonic_pool_ln_1506_df083a9a"  # sql/0026
    )
    assert _index_name("musicnn-msd-mtt-harmonic-pool-ln-1506", 1506, 3) == "embeddings_hnsw_df083a9a_1506_g3"
