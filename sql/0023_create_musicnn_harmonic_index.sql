-- musicnn-msd-mtt-harmonic-pool-1506 (MSD max_pool beside MTT max_pool on the harmonic part), the default embedding
-- since the issue 10 follow-up: declared here with its HNSW index (same parameters as 0014), so the first worker
-- start does not build it under a lock. The index name is the one sidecar.storage.vectors.register_model would
-- choose. Vectors of musicnn-msd-pool-753 stay until `sonantica reanalyze --analyzer embedding` replaces them.
INSERT INTO embedding_models (model, dim, index_name)
VALUES ('musicnn-msd-mtt-harmonic-pool-1506', 1506, 'embeddings_hnsw_musicnn_msd_mtt_harmonic_pool_15_1506_94e6fe16')
ON CONFLICT (model) DO NOTHING;

CREATE INDEX IF NOT EXISTS embeddings_hnsw_musicnn_msd_mtt_harmonic_pool_15_1506_94e6fe16 ON embeddings
    USING hnsw ((embedding::vector(1506)) vector_cosine_ops) WITH (m = 16, ef_construction = 128)
    WHERE model = 'musicnn-msd-mtt-harmonic-pool-1506';
