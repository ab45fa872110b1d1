"""Web client benchmark: page load to interactive (first data on screen) of the library and track pages, and a
filtered search round trip, in headless Debian Chromium against the same seeded server as the browser tests
(real PostgreSQL, Redis and supysonic) with extra synthetic tracks in the database.

Run: ``.venv/bin/python scripts/bench_web_client.py [--tracks 2000] [--runs 15]``. Prints a Markdown table.

"Load to interactive" is measured in the page: ``performance.now()`` (ms since navigation start) once the first
data-bearing element is in the DOM (library: the first track row; track page: the analysis facts, the drawn
waveform and the Sonic Match neighbours), so it includes HTML, CSS, JS modules, the session check and the API calls
the page makes.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
from pathlib import Path

import numpy as np
from playwright.sync_api import sync_playwright

from scripts.web_stack import running_web_client
from sidecar.domain import KeyResult, KeySignature, LoudnessResult, TempoResult
from sidecar.services.runtime import open_runtime
from sidecar.settings import Settings
from sidecar.storage import analyses, tracks
from sidecar.storage.db import transaction
from tests.browser.conftest import (
    GUEST,
    GUEST_PASSWORD,
    VERSIONS,
)

KEYS = ["A minor", "C major", "E minor", "G major", "D minor", "F major", "B minor", "F# minor"]


async def add_synthetic(settings: Settings, count: int) -> None:
    """``count`` tracks that exist only in the database (no file), with random tempo, key and loudness."""
    rng = np.random.default_rng(1)
    async with open_runtime(settings) as runtime, transaction(runtime.pool) as conn:
        for number in range(count):
            upsert = tracks.TrackUpsert(
                host="navidrome",
                host_track_id=f"synthetic-{number}",
                title=f"Synthetic {number}",
                artist=f"Artist {number % 97}",
                album=f"Album {number % 311}",
                duration_s=float(rng.uniform(120, 360)),
            )
            track_id = (await tracks.upsert_track(conn, upsert)).track_id
            await analyses.store_results(
                conn,
                track_id,
                results={
                    "tempo": TempoResult(bpm=float(rng.uniform(60, 180)), bpm_confidence=0.8, beat_times_s=np.zeros(0)),
                    "key": KeyResult(key=KeySignature.parse(KEYS[number % len(KEYS)]), key_confidence=0.7),
                    "loudness": LoudnessResult(
                        loudness_lufs=float(rng.uniform(-25, -6)),
                        loudness_range_lu=6.0,
                        true_peak_dbtp=-1.0,
                        sample_peak_dbfs=-1.2,
                        replaygain_track_gain_db=-4.0,
                        replaygain_track_peak=0.9,
                        gating_histogram=np.zeros(0),
                    ),
                },
                versions=VERSIONS,
            )


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(values):.0f} | {p90:.0f} | {ordered[0]:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=2000, help="synthetic tracks added to the database")
    parser.add_argument("--runs", type=int, default=15, help="page loads measured per page")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()

    def add_tracks(settings: Settings, _root: Path) -> None:
        asyncio.run(add_synthetic(settings, args.tracks))

    with running_web_client("sonantica-web-bench-", login_attempts=1000, prepare=add_tracks) as stack:
        url = stack.url
        results: dict[str, list[float]] = {"library": [], "track": [], "search": []}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"])
            context = browser.new_context()
            page = context.new_page()
            assert page.request.post(f"{url}/auth/sign-in", data={"username": GUEST, "password": GUEST_PASSWORD}).ok
            seed_id = page.request.get(f"{url}/api/tracks?q=morning").json()["tracks"][0]["track_id"]
            for _ in range(args.runs + 1):  # the first of each is a warm-up
                page.goto(f"{url}/?sort=title")
                page.wait_for_selector("#tracks tbody tr")
                results["library"].append(page.evaluate("performance.now()"))
                page.fill("input[name=bpm_min]", "118")
                page.fill("input[name=bpm_max]", "126")
                page.fill("#key", "8A")
                page.check("input[name=camelot_compatible]")
                started = page.evaluate("performance.now()")
                page.click("button[type=submit]")
                page.wait_for_function(
                    "location.search.includes('key=8A') && document.querySelector('#list-status').textContent === ''"
                )
                results["search"].append(page.evaluate("performance.now()") - started)
                page.goto(f"{url}/track.html?id={seed_id}")
                page.wait_for_selector("#facts div")
                page.wait_for_selector("#similar li")
                page.wait_for_selector("#waveform[data-points]")
                results["track"].append(page.evaluate("performance.now()"))
            browser.close()
    print(
        f"Machine: {platform.machine()}, {platform.python_version()}, Debian Chromium headless; "
        f"{args.tracks + 6} tracks in PostgreSQL; {args.runs} runs after one warm-up.\n"
    )
    print("| Measure (ms) | median | p90 | min |")
    print("|---|---|---|---|")
    names = {
        "library": "library page: navigation start to first track row",
        "track": "track page: navigation start to analysis + waveform drawn + Sonic Match neighbours",
        "search": "library search (BPM 118-126, key 8A + compatible), click to rows (incl. Playwright round trips)",
    }
    for name, label in names.items():
        print(f"| {label} | {summary(results[name][1:])} |")


if __name__ == "__main__":
    main()
