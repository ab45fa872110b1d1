-- Embeddings of every model live in one untyped `vector` column; a model's dimension is fixed in
-- embedding_models, and each model has its own partial HNSW index over `embedding::vector(dim)`, so models of
-- different dimensions sit side by side and a query (which names one model) never mixes them.
CREATE TABLE embedding_models (
    model text PRIMARY KEY,
    dim integer NOT NULL CHECK (dim BETWEEN 1 AND 2000),
    index_name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE embeddings (
    track_id bigint NOT NULL REFERENCES tracks (id) ON DELETE CASCADE,
    model text NOT NULL REFERENCES embedding_models (model),
    embedding vector NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (track_id, model)
);

CREATE INDEX embeddings_model_idx ON embeddings (model);

INSERT INTO embedding_models (model, dim, index_name)
VALUES ('openl3-music-mel128-512', 512, 'embeddings_hnsw_openl3_music_mel128_512');

CREATE INDEX embeddings_hnsw_openl3_music_mel128_512 ON embeddings
    USING hnsw ((embedding::vector(512)) vector_cosine_ops) WITH (m = 16, ef_construction = 64)
    WHERE model = 'openl3-music-mel128-512';
