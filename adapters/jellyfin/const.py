"""Jellyfin endpoints, item types, requested fields, tag formats and limits (hosts.md §1)."""

from __future__ import annotations

from typing import Final

# --- Endpoints (identical paths and operationIds from 10.9 to 12.0) -------------------------------------------
SYSTEM_INFO: Final = "/System/Info"
AUTHENTICATE_BY_NAME: Final = "/Users/AuthenticateByName"
USERS: Final = "/Users"
VIRTUAL_FOLDERS: Final = "/Library/VirtualFolders"
ITEMS: Final = "/Items"
ITEM: Final = "/Items/{item_id}"  # GET needs ?userId= with an API key; POST replaces the whole item
SESSIONS: Final = "/Sessions"
SCHEDULED_TASKS: Final = "/ScheduledTasks"
RUN_SCHEDULED_TASK: Final = "/ScheduledTasks/Running/{task_id}"
PLAYLISTS: Final = "/Playlists"
PLAYLIST: Final = "/Playlists/{playlist_id}"  # UpdatePlaylist: a user token only (the caller must own it)
PLAYLIST_ITEMS: Final = "/Playlists/{playlist_id}/Items"

# --- Auth: only `Authorization: MediaBrowser ...` works on every version (12.0 ignores X-Emby-Token) ------------
AUTH_SCHEME: Final = "MediaBrowser"
CLIENT_NAME: Final = "Sonantica"
DEVICE_NAME: Final = "sidecar"
CLIENT_VERSION: Final = "0.1.0"

# --- Items ----------------------------------------------------------------------------------------------------
AUDIO_ITEM_TYPE: Final = "Audio"
PLAYLIST_ITEM_TYPE: Final = "Playlist"
MUSIC_COLLECTION_TYPE: Final = "music"
TRACK_FIELDS: Final = ("Path", "Genres", "DateCreated", "MediaSources", "ProviderIds")
"""ItemFields requested for tracks; sent as repeated ``fields=`` parameters (the specs declare form/explode)."""
TRACK_SORT_BY: Final = ("DateCreated", "SortName")
"""Creation order first: items added during a scan land on later pages instead of shifting earlier ones."""
TICKS_PER_SECOND: Final = 10_000_000
SESSIONS_ACTIVE_WITHIN_S: Final = 960
MUSICBRAINZ_TRACK_PROVIDER: Final = "musicbrainztrack"
UPDATE_ITEM_OMITTED_FIELDS: Final = ("MediaSources", "MediaStreams")
"""Server-computed stream data left out of ``POST /Items/{id}``: UpdateItem ignores it, and the specs mark several
MediaStream properties (DisplayTitle, IsTextSubtitleStream, ...) read-only, so sending them breaks the contract."""
TAGS_LOCK_FIELD: Final = "Tags"
"""MetadataField that keeps our tags through a "Replace all metadata" refresh."""

# --- Write-back tag format (see docs/jellyfin.md) -------------------------------------------------------------
TAG_PREFIX_BPM: Final = "bpm:"
TAG_PREFIX_KEY: Final = "key:"
TAG_PREFIX_CAMELOT: Final = "camelot:"
TAG_PREFIX_REPLAYGAIN: Final = "replaygain:"
OUR_TAG_PREFIXES: Final = (TAG_PREFIX_BPM, TAG_PREFIX_KEY, TAG_PREFIX_CAMELOT, TAG_PREFIX_REPLAYGAIN)
"""Tags starting with one of these (case-insensitive) belong to the sidecar and are replaced on write-back."""

# --- Jellyfin's own loudness scan -----------------------------------------------------------------------------
AUDIO_NORMALIZATION_TASK_KEY: Final = "AudioNormalization"
NORMALIZATION_REFERENCE_LUFS: Final = -18.0
"""Jellyfin reports NormalizationGain = -18 - LUFS (ReplayGain 2.0 reference)."""

# --- Limits ---------------------------------------------------------------------------------------------------
DEFAULT_PAGE_SIZE: Final = 500
PLAYLIST_BATCH_SIZE: Final = 100
"""Ids per add/remove request: 100 repeated 32-hex parameters keep the URL near 4 KiB."""
MAX_RESPONSE_BYTES: Final = 64 * 1024 * 1024
MAX_ERROR_TEXT_CHARS: Final = 200
