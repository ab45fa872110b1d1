"""Parse and authenticate a Jellyfin Webhook-plugin "Playback Start" POST. Pure: no I/O, no logging.

The plugin (Generic destination) sends either every property ("Send All Properties": Jellyfin's JSON, ids in
the 32-hex form, ISO dates) or a Handlebars template. The documented template, :data:`MINIMAL_TEMPLATE`, uses
the same key names, so one parser reads both; template output differs in detail (dashed ids, a culture-formatted
``UtcTimestamp``, numbers as text) and those differences are accepted.

The route wiring is the caller's: ``parse_playback_event(headers, body, secret=...)`` returns a
:class:`PlaybackEvent` to enqueue, or raises :class:`WebhookError` whose ``status`` and ``reason`` are the HTTP
answer: :class:`WebhookRejectedError` (4xx: unauthenticated, malformed, too large) or
:class:`WebhookIgnoredError` (202: a valid event that is not an audio playback start).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import html
import json
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from adapters.base import NowPlaying
from adapters.jellyfin import const
from adapters.jellyfin.parsers import normalise_id

AUTH_HEADER = "X-Sonantica-Token"
"""The request header the plugin is configured to send with the shared secret."""
MAX_BODY_BYTES = 256 * 1024
"""A "Send All Properties" body is a few KiB; anything near this limit is not from the plugin."""
PLAYBACK_START = "PlaybackStart"

MINIMAL_TEMPLATE = (
    '{"NotificationType":"{{NotificationType}}","ItemId":"{{ItemId}}","ItemType":"{{ItemType}}",'
    '"UserId":"{{UserId}}","NotificationUsername":"{{NotificationUsername}}",'
    '"PlaybackPositionTicks":"{{PlaybackPositionTicks}}","UtcTimestamp":"{{UtcTimestamp}}"}'
)
"""The template documented in docs/jellyfin.md; it works with every plugin version (v15 to v21).

It holds no free text (titles, device names): a plain ``{{x}}`` only HTML-escapes, so a backslash would break the
JSON, and the ``json_encode`` helper exists only from plugin v18. Jellyfin user names cannot contain ``"`` or
``\\``, and Handlebars' HTML escaping of them is undone by the parser.
"""
_TEMPLATE_DATE_FORMATS = ("%m/%d/%Y %H:%M:%S", "%m/%d/%Y %I:%M:%S %p", "%Y-%m-%d %H:%M:%S")
"""``{{UtcTimestamp}}`` is rendered with .NET's DateTime.ToString(): the invariant culture, en-US, ISO-like."""
_TICKS = re.compile(r"\d{1,19}")


class WebhookError(Exception):
    """The webhook request is not to be enqueued; ``status`` and ``reason`` are the HTTP answer to give."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(f"{status}: {reason}")
        self.status = status
        self.reason = reason


class WebhookRejectedError(WebhookError):
    """A 4xx answer: missing or wrong secret (401), bad request (400), too large (413), missing fields (422)."""


class WebhookIgnoredError(WebhookError):
    """A valid event that needs no work (another notification type, or an item that is not a song): 202."""

    def __init__(self, reason: str) -> None:
        super().__init__(202, reason)


class PayloadStyle(enum.StrEnum):
    """How the plugin rendered the body."""

    ALL_PROPERTIES = "all_properties"  # "Send All Properties (ignores template)"
    TEMPLATE = "template"  # a Handlebars template such as MINIMAL_TEMPLATE


@dataclass(frozen=True, slots=True, kw_only=True)
class PlaybackEvent:
    """One user starting one audio item, from one webhook POST.

    ``dedupe_key`` identifies one play of one user: identical for a replayed POST (a proxy retry, a duplicate
    delivery) and different for another user, item, device or event time. The plugin sends one POST per user of a
    session; :class:`EnqueueGuard` collapses those (and floods) to one enqueue per track. The payload has no
    file path: look the track up with ``JellyfinAdapter.get_track(now_playing.host_track_id)``.
    """

    now_playing: NowPlaying  # user = user name (user id if the payload has none), started_at in UTC
    user_id: str  # normalised
    dedupe_key: str
    style: PayloadStyle
    title: str | None = None
    device_id: str | None = None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def check_secret(headers: Mapping[str, str], secret: str, *, header_name: str = AUTH_HEADER) -> None:
    """Raise :class:`WebhookRejectedError` unless ``header_name`` carries ``secret`` (constant-time compare)."""
    if not secret:
        raise WebhookRejectedError(403, "the webhook is disabled: set SONANTICA_JELLYFIN__WEBHOOK_SECRET")
    presented = _header(headers, header_name)
    if presented is None:
        raise WebhookRejectedError(401, f"missing {header_name} header")
    if not hmac.compare_digest(presented.strip().encode(), secret.encode()):
        raise WebhookRejectedError(401, f"wrong secret in {header_name} header")


def _text(payload: Mapping[str, object], key: str) -> str | None:
    """A string value by key, case-insensitively (the plugin's dictionary ignores case), unescaped."""
    value = payload.get(key)
    if value is None:
        lowered = key.lower()
        value = next((v for k, v in payload.items() if k.lower() == lowered), None)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    # The plugin escapes quotes itself (\") and Handlebars' {{x}} HTML-escapes: undo both for display text.
    text = html.unescape(text).replace('\\"', '"')
    return text or None


def _required_id(payload: Mapping[str, object], key: str) -> str:
    raw = _text(payload, key)
    if raw is None:
        raise WebhookRejectedError(422, f"{key} is missing: tick 'Send All Properties' or use the documented template")
    try:
        return normalise_id(raw)
    except ValueError:
        raise WebhookRejectedError(422, f"{key} {raw[:64]!r} is not a Jellyfin id") from None


def _event_time(raw: str | None, received_at: datetime) -> datetime:
    """``UtcTimestamp`` as UTC: ISO 8601 ("Send All Properties") or a .NET culture format (templates)."""
    if raw:
        parsed: datetime | None = None
        try:
            parsed = datetime.fromisoformat(raw)
        except ValueError:
            for pattern in _TEMPLATE_DATE_FORMATS:
                try:
                    parsed = datetime.strptime(raw, pattern)
                    break
                except ValueError:
                    continue
        if parsed is not None:
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return received_at


def _position_s(payload: Mapping[str, object]) -> float:
    raw = _text(payload, "PlaybackPositionTicks")
    if raw is None:
        return 0.0
    if not _TICKS.fullmatch(raw):
        raise WebhookRejectedError(422, f"PlaybackPositionTicks {raw[:32]!r} is not a whole number")
    return int(raw) / const.TICKS_PER_SECOND


def _style(payload: Mapping[str, object], raw_item_id: str | None) -> PayloadStyle:
    if "ServerId" in payload and "ServerVersion" in payload and raw_item_id and "-" not in raw_item_id:
        return PayloadStyle.ALL_PROPERTIES
    return PayloadStyle.TEMPLATE


def parse_playback_event(
    headers: Mapping[str, str],
    body: bytes,
    *,
    secret: str,
    header_name: str = AUTH_HEADER,
    received_at: datetime | None = None,
) -> PlaybackEvent:
    """Authenticate and parse one webhook POST into a :class:`PlaybackEvent`.

    Parameters
    ----------
    headers
        The request headers (any mapping; names are matched case-insensitively).
    body
        The raw body. The plugin sends ``text/plain`` unless told otherwise, so the content type is not checked.
    secret
        The shared secret (``SONANTICA_JELLYFIN__WEBHOOK_SECRET``); an empty secret refuses every request (403).
    header_name
        The header carrying the secret.
    received_at
        When the request arrived (default: now); the start time when the payload has no usable ``UtcTimestamp``.

    Raises
    ------
    WebhookRejectedError
        401 missing or wrong secret (checked first, before the body is read), 413 body over
        :data:`MAX_BODY_BYTES`, 400 not a UTF-8 JSON object, 422 a required field missing or malformed.
    WebhookIgnoredError
        202 for another notification type or an item that is not audio (``ItemType`` other than ``Audio``).
    """
    check_secret(headers, secret, header_name=header_name)
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejectedError(413, f"body of {len(body)} bytes is over the {MAX_BODY_BYTES}-byte limit")
    try:
        payload = json.loads(body.decode("utf-8-sig"))
    except (ValueError, RecursionError) as error:  # bad UTF-8 or JSON, a huge integer, absurd nesting
        raise WebhookRejectedError(400, f"body is not UTF-8 JSON: {str(error)[:120]}") from None
    if not isinstance(payload, dict):
        raise WebhookRejectedError(400, f"body is a JSON {type(payload).__name__}, not an object")
    notification = _text(payload, "NotificationType")
    if notification is None:
        raise WebhookRejectedError(422, "NotificationType is missing")
    if notification != PLAYBACK_START:
        raise WebhookIgnoredError(f"{notification[:64]} notifications are not used; send only Playback Start")
    item_type = _text(payload, "ItemType")
    if item_type is None:
        raise WebhookRejectedError(422, "ItemType is missing")
    if item_type.lower() != const.AUDIO_ITEM_TYPE.lower():
        raise WebhookIgnoredError(f"item type {item_type[:64]} is not audio; tick only 'Songs' in Item Type")
    raw_item_id = _text(payload, "ItemId")
    item_id = _required_id(payload, "ItemId")
    user_id = _required_id(payload, "UserId")
    raw_time = _text(payload, "UtcTimestamp")
    moment = received_at or datetime.now(UTC)
    try:
        started_at = _event_time(raw_time, moment) - timedelta(seconds=_position_s(payload))
    except OverflowError:
        raise WebhookRejectedError(422, "PlaybackPositionTicks is out of range") from None
    device_id = _text(payload, "DeviceId")
    identity = "\x1f".join((user_id, item_id, device_id or "", raw_time or moment.isoformat()))
    client = _text(payload, "ClientName")
    device = _text(payload, "DeviceName")
    player = " on ".join(part for part in (client, device) if part) or None
    user = _text(payload, "NotificationUsername") or _text(payload, "Username") or user_id
    return PlaybackEvent(
        now_playing=NowPlaying(
            user=user, host_track_id=item_id, started_at=started_at.replace(microsecond=0), player=player
        ),
        user_id=user_id,
        dedupe_key=hashlib.sha256(identity.encode()).hexdigest()[:32],
        style=_style(payload, raw_item_id),
        title=_text(payload, "Name"),
        device_id=device_id,
    )


class EnqueueGuard:
    """Decide which accepted events to enqueue: each track at most once per ``window_s`` seconds. Pure, in memory.

    One POST per user of a session, a replayed POST and a burst of events for the same track all yield one
    enqueue. ``max_tracks`` bounds memory: the oldest entries are forgotten first. Not shared between processes
    (the job queue's own de-duplication covers several API replicas). Not thread-safe: call it from one event loop.
    """

    def __init__(self, *, window_s: float = 300.0, max_tracks: int = 100_000) -> None:
        if window_s < 0:
            raise ValueError("window_s must not be negative")
        if max_tracks < 1:
            raise ValueError("max_tracks must be at least 1")
        self._window_s = window_s
        self._max_tracks = max_tracks
        self._last_s: OrderedDict[str, float] = OrderedDict()

    def should_enqueue(self, event: PlaybackEvent, *, now_s: float) -> bool:
        """True (and remember the track) unless the track was enqueued within the window before ``now_s``.

        ``now_s`` is a monotonic clock reading in seconds (``time.monotonic()``).
        """
        track_id = event.now_playing.host_track_id
        last_s = self._last_s.get(track_id)
        if last_s is not None and now_s - last_s < self._window_s:
            return False
        self._last_s[track_id] = now_s
        self._last_s.move_to_end(track_id)
        while len(self._last_s) > self._max_tracks:
            self._last_s.popitem(last=False)
        return True
