"""Warming the Sonic Match indexes when the API starts (:func:`sidecar.storage.vectors.warm_index`)."""

from __future__ import annotations

import logging
import time

from sidecar.analyzers.embedding import TIMBRE_MODEL
from sidecar.errors import NotFoundError, StorageError
from sidecar.services.runtime import Runtime
from sidecar.storage import vectors
from sidecar.storage.db import transaction

log = logging.getLogger(__name__)


async def warm_search_indexes(runtime: Runtime) -> list[vectors.WarmedIndex]:
    """Read the HNSW index of the configured embedding model (and, with fallback on, of ``timbre-v1``, which
    searches use for tracks that only have fallback vectors) once, so that its pages are in memory before the first
    Sonic Match searches; log what was read and how long it took. Returns what was warmed.

    A model that is not registered yet (no worker has started) or has no vectors, or a pgvector older than 0.8, is
    skipped. A database error is logged, not raised: searches work without the warm-up, only slower until the
    pages they read are cached.
    """
    settings = runtime.settings.embedding
    models = [settings.model] + ([TIMBRE_MODEL] if settings.fallback and settings.model != TIMBRE_MODEL else [])
    warmed = []
    for model in models:
        started = time.perf_counter()
        try:
            async with transaction(runtime.pool) as conn:
                result = await vectors.warm_index(conn, model)
        except NotFoundError:
            log.debug("the %s index is not warmed: the model is not registered yet", model)
            continue
        except StorageError as exc:
            log.warning("warming the %s index failed (searches still work, slower at first): %s", model, exc)
            continue
        if result is not None:
            warmed.append(result)
            log.info(
                "warmed the %s index %s: %d of %d rows visited in %.1f s",
                model,
                result.index,
                result.rows_visited,
                result.rows,
                time.perf_counter() - started,
            )
    return warmed
