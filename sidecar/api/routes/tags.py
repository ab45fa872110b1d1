"""The tag vocabulary: which mood, genre, instrumentation and era tags the filters accept."""

from __future__ import annotations

from fastapi import APIRouter

from sidecar.analyzers.tags import CATEGORIES, tags_of
from sidecar.api.deps import SettingsDep
from sidecar.api.schemas import TagVocabularyPublic

router = APIRouter(prefix="/api", tags=["tags"])


@router.get("/tags")
async def tag_vocabulary(settings: SettingsDep) -> TagVocabularyPublic:
    """Every tag by category (``mood`` for ``mood=`` / ``moods``, ``genre`` for ``style=`` / ``styles``), in the
    model's order, and the probability at which a track counts as tagged."""
    return TagVocabularyPublic(
        categories={category: list(tags_of(category)) for category in CATEGORIES},
        min_probability=settings.tags.min_probability,
    )
