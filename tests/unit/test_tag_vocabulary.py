"""The mood/genre tag vocabulary, the choice of tags written to a host, and their merge into Jellyfin item Tags."""

from __future__ import annotations

import numpy as np
import pytest

from adapters.base import TrackTags
from adapters.jellyfin import format_tags, plan_tag_update
from sidecar.analyzers.embedding import musicnn_model
from sidecar.analyzers.embedding.musicnn import MSD_TAGS
from sidecar.analyzers.tags import (
    CATEGORIES,
    HOST_LABELS,
    TAG_CATEGORIES,
    TAGS_MODEL,
    canonical_tag,
    host_labels,
    parse_tags,
    tags_of,
    top_tags,
)
from sidecar.cli.embed import ranked_tags as embedded_tags
from sidecar.domain import EmbeddingResult


def test_every_tag_of_the_musicnn_model_has_exactly_one_category() -> None:
    canonical = [canonical_tag(tag) for tag in MSD_TAGS]
    assert (len(set(canonical)), set(canonical) == set(TAG_CATEGORIES)) == (50, True)
    assert sum(len(tags_of(category)) for category in CATEGORIES) == 50


def test_tags_are_stored_under_the_name_of_the_musicnn_taggram_model() -> None:
    assert TAGS_MODEL == musicnn_model.TAGS_MODEL


def test_canonical_tag_lowers_and_reads_underscores_as_spaces() -> None:
    assert [canonical_tag(t) for t in ("Hip-Hop", "easy_listening", "  Progressive   rock ")] == [
        "hip-hop",
        "easy listening",
        "progressive rock",
    ]


def test_parse_tags_checks_the_category_and_names_the_choices() -> None:
    assert parse_tags(["Chill", "sad", "chill"], "mood") == ("chill", "sad")
    with pytest.raises(ValueError, match=r"'rock' is not a mood tag; mood tags: beautiful, chillout"):
        parse_tags(["rock"], "mood")


def test_top_tags_keeps_the_most_probable_above_the_threshold() -> None:
    probabilities = {"rock": 0.9, "chill": 0.4, "sad": 0.4, "jazz": 0.29, "not a tag": 0.99}
    assert top_tags(probabilities, min_probability=0.3, max_tags=2) == [("rock", 0.9), ("chill", 0.4)]
    assert top_tags(probabilities, min_probability=0.3, max_tags=0) == []


def test_host_labels_are_prefixed_with_their_category_and_known() -> None:
    labels = host_labels({"rock": 0.8, "mellow": 0.5, "guitar": 0.6, "80s": 0.4}, min_probability=0.3, max_tags=4)
    assert labels == ("genre:rock", "instrumentation:guitar", "mood:mellow", "era:80s")
    assert set(labels) <= HOST_LABELS


def _labels(*labels: str) -> TrackTags:
    return TrackTags(bpm=120.0, labels=labels, label_vocabulary=HOST_LABELS)


def test_format_tags_appends_labels_after_the_analysis_values() -> None:
    assert format_tags(_labels("genre:rock", "mood:chill")) == ["bpm:120", "genre:rock", "mood:chill"]


def test_format_tags_refuses_a_label_outside_the_vocabulary() -> None:
    with pytest.raises(ValueError, match="genre:shoegaze"):
        format_tags(_labels("genre:shoegaze"))


def test_plan_tag_update_replaces_only_our_labels_and_keeps_user_prefixed_tags() -> None:
    item = {"Id": "x", "Tags": ["favourite", "genre:shoegaze", "Mood:Sad", "bpm:90"], "LockedFields": ["Genres"]}
    updated = plan_tag_update(item, _labels("genre:rock", "mood:chill"))
    assert updated is not None
    assert (updated["Tags"], updated["LockedFields"]) == (
        ["favourite", "genre:shoegaze", "bpm:120", "genre:rock", "mood:chill"],
        ["Genres", "Tags"],
    )


def test_plan_tag_update_is_none_when_our_labels_are_already_there() -> None:
    item = {"Id": "x", "Tags": ["mine", "mood:chill", "bpm:120"], "LockedFields": ["Tags"]}
    assert plan_tag_update(item, _labels("mood:chill")) is None


def test_embed_lists_a_results_tags_canonical_and_most_probable_first() -> None:
    result = EmbeddingResult(
        model=TAGS_MODEL, vector=np.ones(50, np.float32), tags=(("rock", 0.2), ("Mellow", 0.61237), ("jazz", 0.2))
    )
    assert list(embedded_tags(result).items()) == [("mellow", 0.6124), ("jazz", 0.2), ("rock", 0.2)]
    assert embedded_tags(EmbeddingResult(model="timbre-v1", vector=np.ones(3, np.float32))) == {}
