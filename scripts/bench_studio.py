"""Studio benchmark in headless Chromium (Debian's ``/usr/bin/chromium`` driven by Playwright): page load to
interactive, the meters' frame rate and the main thread's CPU while playing, and the worklet's speed measuring a
whole track's DR offline.

A rendered General MIDI piece (``--seconds`` long, stereo 44.1 kHz FLAC) is analysed by the real analyzers
(loudness, tempo, key, waveform) and given four stem files (the piece at a quarter of its level each: the same
decoding and mixing work as real stems), all served by a real ``sonantica serve`` app on embedded PostgreSQL and
Redis in a temporary data directory. Each repeat opens a fresh page:

- *interactive*: navigation start to ``window.studio.ready`` (analysis, stems status, worklet loaded, the original
  fetched and decoded, four stems fetched and decoded, waveform drawn), ms;
- *frame rate*: the Studio's drawing loop (goniometer, meters, overview) per second while the four stems play;
- *main-thread CPU*: Chrome's ``TaskDuration`` over the same wall time (DevTools ``Performance.getMetrics``), %;
  the worklet runs on the audio thread and is not in it, so
- *offline DR*: seconds of audio the worklet measures per second ("Measure", the whole track), x real time.

Run: ``.venv/bin/python -m scripts.bench_studio`` (``--seconds 180 --play-s 10 --repeats 3``). Prints one Markdown
table. Headless Chromium draws without a display (no vsync); timings depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import uvicorn
from playwright.sync_api import CDPSession, Page, sync_playwright

from sidecar.analyzers.audio import AudioReader
from sidecar.analyzers.pipeline import analyze_file
from sidecar.analyzers.registry import build_analyzers
from sidecar.analyzers.versions import VERSIONS
from sidecar.api.app import create_app
from sidecar.demo.encode import write_audio
from sidecar.demo.music import SAMPLE_RATE_HZ, PieceSpec, render
from sidecar.domain import KeySignature
from sidecar.services.runtime import Runtime
from sidecar.settings import Settings
from sidecar.stems import STEM_NAMES
from sidecar.storage import analyses, status, stems, tracks
from sidecar.storage.db import transaction

CHROMIUM = "/usr/bin/chromium"
TOKEN = "bench-studio-" + "b" * 24
ANALYZERS = ("loudness", "tempo", "key", "waveform")
CACHE = Path(".bench-cache")


def piece(seconds: float) -> Path:
    """A rendered stereo 44.1 kHz FLAC of ``seconds`` (cached)."""
    path = CACHE / f"studio-{seconds:g}s.flac"
    if not path.exists():
        CACHE.mkdir(exist_ok=True)
        spec = PieceSpec(
            title="studio", bpm=124.0, key=KeySignature("D", "minor"), groove="rock", duration_s=seconds, seed=5
        )
        write_audio(render(spec), SAMPLE_RATE_HZ, path)
    return path


def write_stems(original: Path, folder: Path) -> dict[str, int]:
    """Four stems (and the instrumental) of ``original``: the piece at a quarter of its level each; their sizes."""
    with AudioReader(original) as reader:
        samples = np.concatenate([block.native.T for block in reader.blocks()])
    folder.mkdir(parents=True, exist_ok=True)
    quarter = (0.25 * samples).astype(np.float32)
    return {name: write_audio(quarter, SAMPLE_RATE_HZ, folder / f"{name}.flac").stat().st_size for name in STEM_NAMES}


async def prepare(runtime: Runtime, settings: Settings, original: Path) -> int:
    """``original`` as a track of the library, analysed, with four stems recorded."""
    async with transaction(runtime.pool) as conn:
        upsert = tracks.TrackUpsert(host="navidrome", host_track_id="studio", title="studio", path=str(original))
        track_id = (await tracks.upsert_track(conn, upsert)).track_id
    analysis = await asyncio.to_thread(analyze_file, original, build_analyzers(settings, ANALYZERS))
    versions = {name: VERSIONS[name] for name in ANALYZERS}
    folder = settings.stems_root / str(track_id)
    sizes = await asyncio.to_thread(write_stems, original, folder)
    async with transaction(runtime.pool) as conn:
        await status.ensure_status(conn, versions, track_ids=[track_id])
        await analyses.store_results(conn, track_id, results=analysis.results, versions=versions)
        await stems.record_stems(
            conn, track_id, location=str(folder), size_bytes=sum(sizes.values()), format="flac", files=sizes
        )
    return track_id


def metrics(session: CDPSession) -> dict[str, float]:
    """Chrome's page metrics (``TaskDuration``, ``ScriptDuration`` in s, ``Timestamp``)."""
    answer = session.send("Performance.getMetrics")
    return {m["name"]: float(m["value"]) for m in answer["metrics"]}


def one_run(page: Page, track_id: int, play_s: float) -> dict[str, float]:
    session = page.context.new_cdp_session(page)
    session.send("Performance.enable")
    page.goto(f"/studio/?track={track_id}")
    page.wait_for_function("window.studio && window.studio.ready", timeout=120_000)
    interactive_ms = float(page.evaluate("window.studio.readyAtMs"))
    page.get_by_role("radio", name="Stems").check()
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("window.studio.position() > 1")
    before, frames_before = metrics(session), float(page.evaluate("window.studio.frames"))
    time.sleep(play_s)
    after, frames_after = metrics(session), float(page.evaluate("window.studio.frames"))
    wall_s = after["Timestamp"] - before["Timestamp"]
    page.get_by_role("button", name="Pause").click()
    page.get_by_role("button", name="Measure").click()
    page.wait_for_function("window.studio.trackDr !== null", timeout=300_000)
    measure_ms = float(page.evaluate("window.studio.measureMs"))
    duration_s = float(page.evaluate("window.studio.durationS"))
    return {
        "interactive_ms": interactive_ms,
        "fps": (frames_after - frames_before) / wall_s,
        "cpu_pct": 100 * (after["TaskDuration"] - before["TaskDuration"]) / wall_s,
        "script_pct": 100 * (after["ScriptDuration"] - before["ScriptDuration"]) / wall_s,
        "offline_x": duration_s / (measure_ms / 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0, help="length of the track")
    parser.add_argument("--play-s", type=float, default=10.0, help="seconds of playback measured per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    source = piece(args.seconds)
    with tempfile.TemporaryDirectory(prefix="bench-studio-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        library = root / "library"
        library.mkdir()
        settings = Settings(
            data_dir=root / "data",
            library_dir=library,
            api={"token": TOKEN, "access_log": False},
            analysis={"enabled": list(ANALYZERS)},
        )
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on"))
        loops: list[asyncio.AbstractEventLoop] = []

        async def serve() -> None:
            loops.append(asyncio.get_running_loop())
            await server.serve()

        thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.1)
        port = server.servers[0].sockets[0].getsockname()[1]
        runtime: Runtime = app.state.runtime
        original = library / "studio.flac"
        original.write_bytes(source.read_bytes())
        track_id = asyncio.run_coroutine_threadsafe(prepare(runtime, settings, original), loops[0]).result()
        runs = []
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(
                executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required", "--no-sandbox"]
            )
            for _ in range(args.repeats):
                context = browser.new_context(base_url=f"http://127.0.0.1:{port}")
                context.add_init_script(f"sessionStorage.setItem('sonantica.token', {TOKEN!r})")
                runs.append(one_run(context.new_page(), track_id, args.play_s))
                context.close()
            version = browser.version
            browser.close()
        server.should_exit = True
        thread.join(timeout=30)
    print(
        f"Chromium {version} headless, {platform.machine()}, track {args.seconds:g} s stereo 44.1 kHz FLAC + 4 stems,"
    )
    print(f"{args.play_s:g} s of stem playback per repeat, median of {args.repeats} (min - max)\n")
    print("| measure | median | range |")
    print("|---|---|---|")
    rows = (
        ("page load to interactive (ms)", "interactive_ms", "{:.0f}"),
        ("Studio drawing loop while playing 4 stems (frames/s)", "fps", "{:.1f}"),
        ("main-thread CPU while playing (% of one core)", "cpu_pct", "{:.1f}"),
        ("of which script (% of one core)", "script_pct", "{:.1f}"),
        ("offline DR measurement through the worklet (x real time)", "offline_x", "{:.0f}"),
    )
    for label, key, fmt in rows:
        values = [run[key] for run in runs]
        low, high = fmt.format(min(values)), fmt.format(max(values))
        print(f"| {label} | {fmt.format(statistics.median(values))} | {low} - {high} |")


if __name__ == "__main__":
    main()
