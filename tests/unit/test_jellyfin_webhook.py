"""The Jellyfin Webhook-plugin receiver as a pure function: both payload styles, secrets, replays and floods."""

from __future__ import annotations

import html
import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters.jellyfin import (
    AUTH_HEADER,
    MINIMAL_TEMPLATE,
    EnqueueGuard,
    PayloadStyle,
    WebhookIgnoredError,
    WebhookRejectedError,
    parse_playback_event,
)
from adapters.jellyfin.webhook import MAX_BODY_BYTES

SECRET = "s3cret-token"
HEADERS = {AUTH_HEADER: SECRET}
RECEIVED = datetime(2026, 3, 1, 20, 0, 30, tzinfo=UTC)


def _all_properties(item_id: str, user_id: str, *, user: str = "alice", **extra: Any) -> bytes:
    """A "Send All Properties" PlaybackStart body as the plugin serializes it (N-form Guids, ISO dates)."""
    payload: dict[str, Any] = {
        "ServerId": uuid.uuid4().hex,
        "ServerName": "jf",
        "ServerVersion": "10.11.11",
        "ServerUrl": "http://jf:8096",
        "NotificationType": "PlaybackStart",
        "Timestamp": "2026-03-01T21:00:00.0000000+01:00",
        "UtcTimestamp": "2026-03-01T20:00:00.0000000Z",
        "Name": 'Song "One"',
        "ItemId": item_id,
        "ItemType": "Audio",
        "RunTimeTicks": 1_800_000_000,
        "Album": "Album",
        "Artist": "Artist",
        "PlaybackPositionTicks": 20_000_000,
        "IsPaused": False,
        "DeviceId": "dev-1",
        "DeviceName": "Firefox",
        "ClientName": "Jellyfin Web",
        "NotificationUsername": user,
        "UserId": user_id,
    }
    payload.update(extra)
    return json.dumps(payload).encode()


def _render_minimal(values: dict[str, str]) -> bytes:
    """Render MINIMAL_TEMPLATE as the plugin does: a plain {{x}} inserts the value HTML-escaped."""
    return re.sub(r"\{\{(\w+)\}\}", lambda m: html.escape(values[m.group(1)]), MINIMAL_TEMPLATE).encode()


def _template_values(item_id: str, user_id: str) -> dict[str, str]:
    return {
        "NotificationType": "PlaybackStart",
        "ItemId": str(uuid.UUID(item_id)),  # templates render the dashed "D" form
        "ItemType": "Audio",
        "UserId": str(uuid.UUID(user_id)),
        "NotificationUsername": "bob",
        "Name": "Track",
        "DeviceId": "dev-2",
        "DeviceName": "Phone",
        "ClientName": "Finamp",
        "PlaybackPositionTicks": "0",
        "UtcTimestamp": "03/01/2026 20:00:00",
    }


def test_webhook_all_properties_gives_normalised_event() -> None:
    item_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    event = parse_playback_event(HEADERS, _all_properties(item_id.upper(), user_id), secret=SECRET)
    assert (event.style, event.now_playing.host_track_id, event.user_id, event.now_playing.user) == (
        PayloadStyle.ALL_PROPERTIES,
        item_id,
        user_id,
        "alice",
    )


def test_webhook_all_properties_start_is_event_time_minus_position() -> None:
    event = parse_playback_event(HEADERS, _all_properties(uuid.uuid4().hex, uuid.uuid4().hex), secret=SECRET)
    assert event.now_playing.started_at == datetime(2026, 3, 1, 19, 59, 58, tzinfo=UTC)


def test_webhook_minimal_template_gives_normalised_event() -> None:
    item_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    body = _render_minimal(_template_values(item_id, user_id))
    event = parse_playback_event(HEADERS, body, secret=SECRET, received_at=RECEIVED)
    assert (event.style, event.now_playing.host_track_id, event.user_id, event.now_playing.user) == (
        PayloadStyle.TEMPLATE,
        item_id,
        user_id,
        "bob",
    )


def test_webhook_minimal_template_reads_culture_formatted_timestamp() -> None:
    body = _render_minimal(_template_values(uuid.uuid4().hex, uuid.uuid4().hex))
    event = parse_playback_event(HEADERS, body, secret=SECRET, received_at=RECEIVED)
    assert event.now_playing.started_at == datetime(2026, 3, 1, 20, 0, tzinfo=UTC)


def test_webhook_template_and_all_properties_agree_on_ids() -> None:
    item_id, user_id = uuid.uuid4().hex, uuid.uuid4().hex
    template = parse_playback_event(
        HEADERS, _render_minimal(_template_values(item_id, user_id)), secret=SECRET, received_at=RECEIVED
    )
    everything = parse_playback_event(HEADERS, _all_properties(item_id, user_id), secret=SECRET)
    assert (template.now_playing.host_track_id, template.user_id) == (
        everything.now_playing.host_track_id,
        everything.user_id,
    )


def test_webhook_minimal_template_undoes_html_escaping_of_user_names() -> None:
    values = _template_values(uuid.uuid4().hex, uuid.uuid4().hex) | {"NotificationUsername": "o'brien+dj@home"}
    event = parse_playback_event(HEADERS, _render_minimal(values), secret=SECRET, received_at=RECEIVED)
    assert event.now_playing.user == "o'brien+dj@home"


def test_webhook_header_name_is_case_insensitive() -> None:
    event = parse_playback_event(
        {AUTH_HEADER.lower(): SECRET}, _all_properties(uuid.uuid4().hex, uuid.uuid4().hex), secret=SECRET
    )
    assert event.style is PayloadStyle.ALL_PROPERTIES


@pytest.mark.parametrize("headers", [{}, {AUTH_HEADER: "wrong"}, {AUTH_HEADER: SECRET + "x"}, {"X-Other": SECRET}])
def test_webhook_wrong_or_missing_secret_is_401(headers: dict[str, str]) -> None:
    with pytest.raises(WebhookRejectedError) as caught:
        parse_playback_event(headers, _all_properties(uuid.uuid4().hex, uuid.uuid4().hex), secret=SECRET)
    assert caught.value.status == 401


def test_webhook_secret_is_checked_before_the_body() -> None:
    with pytest.raises(WebhookRejectedError) as caught:
        parse_playback_event({AUTH_HEADER: "wrong"}, b"not json", secret=SECRET)
    assert caught.value.status == 401


def test_webhook_without_configured_secret_refuses_everything() -> None:
    with pytest.raises(WebhookRejectedError) as caught:
        parse_playback_event({AUTH_HEADER: ""}, _all_properties(uuid.uuid4().hex, uuid.uuid4().hex), secret="")
    assert caught.value.status == 403


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 400),
        (b"x" * (MAX_BODY_BYTES + 1), 413),
        (json.dumps({"NotificationType": "PlaybackStart", "ItemType": "Audio"}).encode(), 422),
        (json.dumps({"ItemType": "Audio"}).encode(), 422),
    ],
)
def test_webhook_bad_payload_is_4xx(body: bytes, status: int) -> None:
    with pytest.raises(WebhookRejectedError) as caught:
        parse_playback_event(HEADERS, body, secret=SECRET)
    assert caught.value.status == status


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"NotificationType": ' + b"9" * 5000 + b"}",
        b'{"NotificationType": "PlaybackStart", "ItemType": {"a": 1}}',
        b"",
        b"null",
        _all_properties(uuid.uuid4().hex, uuid.uuid4().hex, PlaybackPositionTicks="9" * 19),
        _all_properties(uuid.uuid4().hex, uuid.uuid4().hex, UtcTimestamp="0001-01-01T00:00:00Z"),
        _all_properties(uuid.uuid4().hex, uuid.uuid4().hex, ItemId=["x"], UserId=None),
    ],
)
def test_webhook_hostile_payload_gives_only_webhook_errors(body: bytes) -> None:
    with pytest.raises(WebhookRejectedError) as caught:
        parse_playback_event(HEADERS, body, secret=SECRET)
    assert 400 <= caught.value.status < 500


def test_webhook_bad_item_id_is_422_naming_the_field() -> None:
    with pytest.raises(WebhookRejectedError, match="ItemId") as caught:
        parse_playback_event(HEADERS, _all_properties("../../etc/passwd", uuid.uuid4().hex), secret=SECRET)
    assert caught.value.status == 422


def test_webhook_bad_position_is_422() -> None:
    body = _all_properties(uuid.uuid4().hex, uuid.uuid4().hex, PlaybackPositionTicks="-5")
    with pytest.raises(WebhookRejectedError) as caught:
        parse_playback_event(HEADERS, body, secret=SECRET)
    assert caught.value.status == 422


@pytest.mark.parametrize(("key", "value"), [("NotificationType", "PlaybackStop"), ("ItemType", "Movie")])
def test_webhook_other_events_are_ignored_with_202(key: str, value: str) -> None:
    body = _all_properties(uuid.uuid4().hex, uuid.uuid4().hex, **{key: value})
    with pytest.raises(WebhookIgnoredError) as caught:
        parse_playback_event(HEADERS, body, secret=SECRET)
    assert caught.value.status == 202


def test_webhook_replayed_post_has_the_same_dedupe_key() -> None:
    body = _all_properties(uuid.uuid4().hex, uuid.uuid4().hex)
    first = parse_playback_event(HEADERS, body, secret=SECRET, received_at=RECEIVED)
    replay = parse_playback_event(HEADERS, body, secret=SECRET, received_at=RECEIVED + timedelta(seconds=5))
    assert first.dedupe_key == replay.dedupe_key


def test_webhook_per_user_posts_have_distinct_dedupe_keys() -> None:
    item_id = uuid.uuid4().hex
    alice = parse_playback_event(HEADERS, _all_properties(item_id, uuid.uuid4().hex), secret=SECRET)
    bob = parse_playback_event(HEADERS, _all_properties(item_id, uuid.uuid4().hex, user="bob"), secret=SECRET)
    assert alice.dedupe_key != bob.dedupe_key


def test_enqueue_guard_replayed_event_enqueued_once() -> None:
    guard = EnqueueGuard(window_s=60.0)
    body = _all_properties(uuid.uuid4().hex, uuid.uuid4().hex)
    decisions = [guard.should_enqueue(parse_playback_event(HEADERS, body, secret=SECRET), now_s=t) for t in (0, 1)]
    assert decisions == [True, False]


def test_enqueue_guard_one_post_per_user_enqueues_once() -> None:
    guard = EnqueueGuard(window_s=60.0)
    item_id = uuid.uuid4().hex
    events = [
        parse_playback_event(HEADERS, _all_properties(item_id, uuid.uuid4().hex, user=name), secret=SECRET)
        for name in ("alice", "bob", "carol")
    ]
    assert [guard.should_enqueue(event, now_s=10.0) for event in events] == [True, False, False]


def test_enqueue_guard_track_enqueued_again_after_window() -> None:
    guard = EnqueueGuard(window_s=60.0)
    event = parse_playback_event(HEADERS, _all_properties(uuid.uuid4().hex, uuid.uuid4().hex), secret=SECRET)
    assert [guard.should_enqueue(event, now_s=t) for t in (0.0, 59.0, 61.0)] == [True, False, True]


def test_enqueue_guard_forgets_oldest_beyond_capacity() -> None:
    guard = EnqueueGuard(window_s=60.0, max_tracks=2)
    events = [
        parse_playback_event(HEADERS, _all_properties(uuid.uuid4().hex, uuid.uuid4().hex), secret=SECRET)
        for _ in range(3)
    ]
    for event in events:
        guard.should_enqueue(event, now_s=0.0)
    assert guard.should_enqueue(events[0], now_s=1.0) is True


def test_webhook_flood_of_1000_events_enqueues_each_track_once() -> None:
    """1000 POSTs within one second: 40 tracks, 5 users, both styles, replays and some forged requests."""
    tracks = [uuid.uuid4().hex for _ in range(40)]
    users = [uuid.uuid4().hex for _ in range(5)]
    guard = EnqueueGuard(window_s=300.0)
    enqueued: list[str] = []
    rejected = 0
    for index in range(1000):
        item_id, user_id = tracks[index % len(tracks)], users[index % len(users)]
        body = _render_minimal(_template_values(item_id, user_id)) if index % 2 else _all_properties(item_id, user_id)
        headers = {AUTH_HEADER: "forged"} if index % 97 == 0 else HEADERS
        try:
            event = parse_playback_event(headers, body, secret=SECRET, received_at=RECEIVED)
        except WebhookRejectedError:
            rejected += 1
            continue
        if guard.should_enqueue(event, now_s=index / 1000):
            enqueued.append(event.now_playing.host_track_id)
    assert (sorted(enqueued), rejected) == (sorted(tracks), len(range(0, 1000, 97)))


def test_webhook_docs_show_the_exact_template_and_header() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "jellyfin.md").read_text(encoding="utf-8")
    assert (MINIMAL_TEMPLATE in docs, f"`{AUTH_HEADER}`" in docs) == (True, True)
