"""Embeddings: a 'how it sounds' vector per track, from OpenL3 (PyTorch port, official weights) or ``timbre-v1``.

See ``docs/embeddings.md`` for the models, the weights handling and the commands.
"""

from sidecar.analyzers.embedding.analyzer import OPENL3_MODEL, TIMBRE_MODEL, EmbeddingAnalyzer

MODELS: tuple[str, ...] = (OPENL3_MODEL, TIMBRE_MODEL)
"""Every embedding model name the sidecar can produce (stored beside each vector)."""

__all__ = ["MODELS", "OPENL3_MODEL", "TIMBRE_MODEL", "EmbeddingAnalyzer"]
