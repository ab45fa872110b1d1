-- Half-precision HNSW indexes (issue 16, docs/benchmarks/scale.md "Half-precision indexes"): on pgvector >= 0.7 a
-- model's HNSW indexes are built over `embedding::halfvec(dim)` (2 bytes per dimension in the graph instead of 4),
-- which halves the index and the pages a search reads; the stored vectors stay single precision. `index_type` says
-- which cast a model's indexes (and so its queries) use; the worker rebuilds a model's indexes once when the server
-- supports a better type than the one they have (sidecar.storage.vectors.ensure_indexes).
ALTER TABLE embedding_models ADD COLUMN index_type text NOT NULL DEFAULT 'vector'
    CHECK (index_type IN ('vector', 'halfvec'));
