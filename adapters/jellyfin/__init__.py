"""Jellyfin adapter: library, now playing (sessions and the Webhook plugin), tag write-back and playlists."""

from adapters.jellyfin.client import JellyfinAdapter
from adapters.jellyfin.config import JellyfinConfig
from adapters.jellyfin.tags import format_tags, normalization_disagreement_db, plan_tag_update
from adapters.jellyfin.webhook import (
    AUTH_HEADER,
    MINIMAL_TEMPLATE,
    EnqueueGuard,
    PayloadStyle,
    PlaybackEvent,
    WebhookError,
    WebhookIgnoredError,
    WebhookRejectedError,
    parse_playback_event,
)

__all__ = [
    "AUTH_HEADER",
    "MINIMAL_TEMPLATE",
    "EnqueueGuard",
    "JellyfinAdapter",
    "JellyfinConfig",
    "PayloadStyle",
    "PlaybackEvent",
    "WebhookError",
    "WebhookIgnoredError",
    "WebhookRejectedError",
    "format_tags",
    "normalization_disagreement_db",
    "parse_playback_event",
    "plan_tag_update",
]
