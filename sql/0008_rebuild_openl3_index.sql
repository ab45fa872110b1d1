-- ef_construction 128 instead of 64: recall@10 0.99-1.00 at ef_search 40-64 on 100 000 vectors instead of
-- 0.94-0.99 (docs/benchmarks/vectors.md). Rebuilding takes about a minute per 100 000 stored vectors.
DROP INDEX IF EXISTS embeddings_hnsw_openl3_music_mel128_512;

CREATE INDEX embeddings_hnsw_openl3_music_mel128_512 ON embeddings
    USING hnsw ((embedding::vector(512)) vector_cosine_ops) WITH (m = 16, ef_construction = 128)
    WHERE model = 'openl3-music-mel128-512';
