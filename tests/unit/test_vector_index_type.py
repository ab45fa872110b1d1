"""Which HNSW index type a server's pgvector gets: half precision from 0.7 on."""

from __future__ import annotations

import pytest

from sidecar.storage.vectors import index_type_for


@pytest.mark.parametrize(
    ("version", "expected"),
    [("0.6.2", "vector"), ("0.5.1", "vector"), ("0.7.0", "halfvec"), ("0.8.5", "halfvec"), ("1.0", "halfvec")],
)
def test_index_type_follows_the_pgvector_version(version: str, expected: str) -> None:
    assert index_type_for(version) == expected
