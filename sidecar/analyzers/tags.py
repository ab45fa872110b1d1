"""Mood, genre, instrumentation and era tags: the 50 Million Song Dataset tags of MusiCNN's taggram, grouped.

The embedding analyzer produces the tag probabilities whenever it runs a MusiCNN model
(:attr:`~sidecar.domain.EmbeddingResult.tags`); this module only names and groups them. Tag names are kept in one
canonical spelling: lower case, single spaces (``"Hip-Hop"`` -> ``"hip-hop"``, ``"Mellow"`` -> ``"mellow"``).

Each tag belongs to one category, which is also its prefix on the host (``mood:chill``, ``genre:rock``,
``instrumentation:guitar``, ``era:80s``). The grouping is ours; the model only gives 50 independent probabilities
(0..1, not summing to 1).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, Literal

TAGS_MODEL: Final = "musicnn-msd-taggram-50"
"""The model whose output the tags are: MusiCNN trained on the MSD tags (its 50-tag output layer)."""

TagCategory = Literal["genre", "mood", "instrumentation", "era"]
CATEGORIES: Final[tuple[TagCategory, ...]] = ("genre", "mood", "instrumentation", "era")

_BY_CATEGORY: Final[dict[TagCategory, tuple[str, ...]]] = {
    "genre": (
        "rock",
        "pop",
        "alternative",
        "indie",
        "electronic",
        "dance",
        "alternative rock",
        "jazz",
        "metal",
        "classic rock",
        "soul",
        "indie rock",
        "electronica",
        "folk",
        "punk",
        "blues",
        "hard rock",
        "ambient",
        "experimental",
        "hip-hop",
        "country",
        "funk",
        "electro",
        "heavy metal",
        "progressive rock",
        "rnb",
        "indie pop",
        "house",
    ),
    "mood": (
        "beautiful",
        "chillout",
        "mellow",
        "chill",
        "party",
        "easy listening",
        "sexy",
        "catchy",
        "sad",
        "happy",
    ),
    "instrumentation": ("female vocalists", "male vocalists", "instrumental", "acoustic", "female vocalist", "guitar"),
    "era": ("00s", "80s", "90s", "70s", "60s", "oldies"),
}

TAG_CATEGORIES: Final[dict[str, TagCategory]] = {
    tag: category for category, tags in _BY_CATEGORY.items() for tag in tags
}
"""Every known tag (canonical spelling) and its category: the 50 MSD tags."""

HOST_LABELS: Final[frozenset[str]] = frozenset(f"{category}:{tag}" for tag, category in TAG_CATEGORIES.items())
"""Every label the sidecar may write to a host (``mood:chill``): a host tag equal to one of them (any case) is ours."""


def canonical_tag(name: str) -> str:
    """The canonical spelling of a tag name: lower case, ``_`` read as a space, runs of spaces collapsed."""
    return " ".join(name.replace("_", " ").lower().split())


def tags_of(category: TagCategory) -> tuple[str, ...]:
    """The tags of one category, canonical spelling."""
    return _BY_CATEGORY[category]


def parse_tags(names: Iterable[str], category: TagCategory) -> tuple[str, ...]:
    """Canonical names of ``names``, each checked to be a tag of ``category``.

    Raises ``ValueError`` naming the unknown tag and listing the category's tags (an API answers 422 with it).
    """
    parsed: list[str] = []
    for name in names:
        tag = canonical_tag(name)
        if TAG_CATEGORIES.get(tag) != category:
            raise ValueError(f"{name!r} is not a {category} tag; {category} tags: {', '.join(tags_of(category))}")
        parsed.append(tag)
    return tuple(dict.fromkeys(parsed))


def top_tags(probabilities: Mapping[str, float], *, min_probability: float, max_tags: int) -> list[tuple[str, float]]:
    """The at most ``max_tags`` known tags with probability >= ``min_probability``, most probable first (ties by
    name). Unknown names are ignored."""
    kept = [(tag, p) for tag, p in probabilities.items() if tag in TAG_CATEGORIES and p >= min_probability]
    kept.sort(key=lambda item: (-item[1], item[0]))
    return kept[: max(max_tags, 0)]


def host_labels(probabilities: Mapping[str, float], *, min_probability: float, max_tags: int) -> tuple[str, ...]:
    """The labels to write to the host for these probabilities, e.g. ``("genre:rock", "mood:chill")``: the
    :func:`top_tags`, each prefixed with its category."""
    top = top_tags(probabilities, min_probability=min_probability, max_tags=max_tags)
    return tuple(f"{TAG_CATEGORIES[tag]}:{tag}" for tag, _ in top)
