-- musicnn-msd-mtt-harmonic-pool-ln-1506 (musicnn-msd-mtt-harmonic-pool-1506 on patches brought to -14 LUFS, so the
-- vector does not depend on the playback level), the default embedding since the level-normalisation follow-up of
-- issue 10: declared here with its HNSW index (same parameters as 0014 and 0023), so the first worker start does not
-- build it under a lock. The index name is the one sidecar.storage.vectors.register_model would choose. Vectors of
-- the earlier models stay; the embedding analyzer's version 4 makes them stale, so the worker re-embeds the library.
INSERT INTO embedding_models (model, dim, index_name)
VALUES ('musicnn-msd-mtt-harmonic-pool-ln-1506', 1506, 'embeddings_hnsw_musicnn_msd_mtt_harmonic_pool_ln_1506_df083a9a')
ON CONFLICT (model) DO NOTHING;

CREATE INDEX IF NOT EXISTS embeddings_hnsw_musicnn_msd_mtt_harmonic_pool_ln_1506_df083a9a ON embeddings
    USING hnsw ((embedding::vector(1506)) vector_cosine_ops) WITH (m = 16, ef_construction = 128)
    WHERE model = 'musicnn-msd-mtt-harmonic-pool-ln-1506';
