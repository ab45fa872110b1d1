-- pgvector: the vector type and its HNSW index (pgvector >= 0.6; halfvec and iterative scans are not used).
CREATE EXTENSION IF NOT EXISTS vector;
