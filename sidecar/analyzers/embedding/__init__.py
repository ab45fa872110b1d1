"""Embeddings: a 'how it sounds' vector per track, from OpenL3 (PyTorch port, official weights) or ``timbre-v1``.

See ``docs/embeddings.md`` for the models, the weights handling and the commands.
"""

from sidecar.analyzers.embedding import timbre
from sidecar.analyzers.embedding.analyzer import OPENL3_MODEL, TIMBRE_MODEL, EmbeddingAnalyzer
from sidecar.analyzers.embedding.openl3_params import EMBEDDING_DIM

MODEL_DIMS: dict[str, int] = {OPENL3_MODEL: EMBEDDING_DIM, TIMBRE_MODEL: timbre.DIM}
"""Every embedding model name the sidecar can produce (stored beside each vector) and its vector length."""
MODELS: tuple[str, ...] = tuple(MODEL_DIMS)
"""Every embedding model name, the default first."""

__all__ = ["MODELS", "MODEL_DIMS", "OPENL3_MODEL", "TIMBRE_MODEL", "EmbeddingAnalyzer"]
