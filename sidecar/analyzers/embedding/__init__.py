"""Embeddings: a 'how it sounds' vector per track, from MusiCNN or OpenL3 (PyTorch ports) or ``timbre-v1``.

See ``docs/embeddings.md`` for the models, the weights handling and the commands.
"""

from sidecar.analyzers.embedding import musicnn_weights, timbre
from sidecar.analyzers.embedding.analyzer import OPENL3_MODEL, TIMBRE_MODEL, EmbeddingAnalyzer
from sidecar.analyzers.embedding.musicnn_model import LEVELLED_MODEL as MUSICNN_MODEL
from sidecar.analyzers.embedding.musicnn_model import MODEL_DIMS as MUSICNN_DIMS
from sidecar.analyzers.embedding.openl3_params import EMBEDDING_DIM

MODEL_DIMS: dict[str, int] = {**MUSICNN_DIMS, OPENL3_MODEL: EMBEDDING_DIM, TIMBRE_MODEL: timbre.DIM}
"""Every embedding model name the sidecar can produce (stored beside each vector) and its vector length."""
MODELS: tuple[str, ...] = tuple(MODEL_DIMS)
"""Every embedding model name, the default first."""

__all__ = [
    "MODELS",
    "MODEL_DIMS",
    "MUSICNN_DIMS",
    "MUSICNN_MODEL",
    "OPENL3_MODEL",
    "TIMBRE_MODEL",
    "EmbeddingAnalyzer",
    "musicnn_weights",
]
