"""Throughput of the Jellyfin webhook receiver's pure part: authenticate, parse and de-duplicate PlaybackStart POSTs.

Prints events per second for "Send All Properties" bodies and for the documented minimal template, and the
median/p99 time of one call. Run from the repository root: ``python -m scripts.bench_jellyfin_webhook [--events N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import uuid

from adapters.jellyfin import AUTH_HEADER, EnqueueGuard, parse_playback_event

SECRET = "bench-secret"


def _all_properties(item_id: str, user_id: str) -> bytes:
    return json.dumps(
        {
            "ServerId": uuid.uuid4().hex,
            "ServerName": "jf",
            "ServerVersion": "10.11.11",
            "NotificationType": "PlaybackStart",
            "UtcTimestamp": "2026-03-01T20:00:00.0000000Z",
            "Name": "Song",
            "ItemId": item_id,
            "ItemType": "Audio",
            "RunTimeTicks": 1_800_000_000,
            "Album": "Album",
            "Artist": "Artist",
            "PlaybackPositionTicks": 0,
            "DeviceId": "dev",
            "DeviceName": "Firefox",
            "ClientName": "Jellyfin Web",
            "NotificationUsername": "alice",
            "UserId": user_id,
        }
    ).encode()


def _template(item_id: str, user_id: str) -> bytes:
    return json.dumps(
        {
            "NotificationType": "PlaybackStart",
            "ItemId": str(uuid.UUID(item_id)),
            "ItemType": "Audio",
            "UserId": str(uuid.UUID(user_id)),
            "NotificationUsername": "bob",
            "PlaybackPositionTicks": "0",
            "UtcTimestamp": "03/01/2026 20:00:00",
        }
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=20_000)
    args = parser.parse_args()
    headers = {AUTH_HEADER: SECRET}
    for style, render in (("all_properties", _all_properties), ("minimal_template", _template)):
        bodies = [render(uuid.uuid4().hex, uuid.uuid4().hex) for _ in range(args.events)]
        guard = EnqueueGuard()
        durations_s: list[float] = []
        start_s = time.perf_counter()
        for body in bodies:
            t0 = time.perf_counter()
            event = parse_playback_event(headers, body, secret=SECRET)
            guard.should_enqueue(event, now_s=t0)
            durations_s.append(time.perf_counter() - t0)
        total_s = time.perf_counter() - start_s
        p99_us = statistics.quantiles(durations_s, n=100)[98] * 1e6
        print(
            f"{style}: {args.events} events in {total_s:.3f} s = {args.events / total_s:,.0f} events/s; "
            f"median {statistics.median(durations_s) * 1e6:.1f} us, p99 {p99_us:.1f} us"
        )


if __name__ == "__main__":
    main()
