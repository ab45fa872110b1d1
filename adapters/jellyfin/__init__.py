"""Jellyfin adapter: library, now playing (sessions and the Webhook plugin), tag write-back and playlists."""

from adapters.jellyfin.client import JellyfinAdapter
from adapters.jellyfin.config import JellyfinConfig
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
    "parse_playback_event",
]
