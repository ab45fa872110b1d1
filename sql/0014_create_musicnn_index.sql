-- MusiCNN max-pooled mid-end features (musicnn-msd-pool-753), the default embedding since issue 10: declared here
-- with its HNSW index (same parameters as the OpenL3 index in 0008), so the first worker start does not build it
-- under a lock. The index name is the one sidecar.storage.vectors.register_model would choose.
INSERT INTO embedding_models (model, dim, index_name)
VALUES ('musicnn-msd-pool-753', 753, 'embeddings_hnsw_musicnn_msd_pool_753_753_e62e8b82')
ON CONFLICT (model) DO NOTHING;

CREATE INDEX IF NOT EXISTS embeddings_hnsw_musicnn_msd_pool_753_753_e62e8b82 ON embeddings
    USING hnsw ((embedding::vector(753)) vector_cosine_ops) WITH (m = 16, ef_construction = 128)
    WHERE model = 'musicnn-msd-pool-753';
