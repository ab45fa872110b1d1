"""The web client in Firefox: Debian's ``firefox-esr`` driven over WebDriver BiDi by ``puppeteer-core``
(``scripts/firefox/check.mjs``; Playwright cannot drive a stock Firefox) against the browser tests' seeded server
(real PostgreSQL, Redis and supysonic) plus one generated mono tone for the Studio.

Run: ``make firefox-check`` (or ``npm ci --prefix scripts/firefox`` once, then
``.venv/bin/python scripts/firefox_check.py``). Needs ``firefox-esr``, ``node`` and ``pulseaudio`` (Debian
packages): headless Firefox keeps an ``AudioContext`` suspended when it has no audio output, so the script starts
a private PulseAudio server with a null sink for the run. Prints one line per check and exits 1 when one fails
or a page logged a console error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from scripts.web_stack import running_web_client
from sidecar.demo.encode import write_raw_wav
from sidecar.services.runtime import open_runtime
from sidecar.settings import Settings
from sidecar.storage import tracks
from sidecar.storage.db import transaction
from tests.browser.conftest import (
    GUEST,
    GUEST_PASSWORD,
    LIBRARY,
)
from tests.studio.dr_meter import dr_meter

DRIVER = Path(__file__).with_name("firefox") / "check.mjs"
RATE_HZ = 48000
TONE_LEVELS = (0.1, 0.3, 0.05)  # 1 kHz, 3 s at each level: -20 dBFS where the meters are read, then louder, quieter
BURSTS = ((4.0, 0.9), (7.5, 0.8))  # (start s, amplitude) of 50-ms bursts: the peaks the DR meter counts


def write_mono_tone(path: Path) -> npt.NDArray[np.float64]:
    """A 9-s in-phase stereo 1 kHz tone (16-bit WAV) at the levels of TONE_LEVELS with two louder bursts;
    returns the stored samples."""
    t = np.arange(9 * RATE_HZ) / RATE_HZ
    tone = np.array(TONE_LEVELS)[(t // 3).astype(int)] * np.sin(2 * np.pi * 1000 * t)
    for start_s, amplitude in BURSTS:
        burst = slice(round(start_s * RATE_HZ), round((start_s + 0.05) * RATE_HZ))
        tone[burst] = amplitude * np.sin(2 * np.pi * 1000 * t[burst])
    pcm = np.round(np.stack([tone, tone], axis=1) * 32768).astype("<i2")
    write_raw_wav(pcm, RATE_HZ, path)
    return pcm.astype(np.float64) / 32768


async def register(settings: Settings, path: Path) -> int:
    async with open_runtime(settings) as runtime, transaction(runtime.pool) as conn:
        saved = await tracks.upsert_track(
            conn, tracks.TrackUpsert(host="navidrome", host_track_id=path.stem, title=path.stem, path=str(path))
        )
    return saved.track_id


@contextmanager
def null_sink(root: Path) -> Iterator[str]:
    """A private PulseAudio server with only a null sink; yields its ``PULSE_SERVER`` address."""
    socket = root / "pulse" / "native"
    socket.parent.mkdir()
    pulseaudio = shutil.which("pulseaudio")
    if pulseaudio is None:
        sys.exit("no pulseaudio: install Debian's 'pulseaudio' package (headless Firefox needs an audio output)")
    process = subprocess.Popen(
        [
            pulseaudio,
            "-n",
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--disable-shm=yes",
            "--use-pid-file=no",
            "-L",
            "module-null-sink sink_name=null",
            "-L",
            f"module-native-protocol-unix socket={socket} auth-anonymous=1",
        ],
        env={**os.environ, "HOME": str(root), "XDG_RUNTIME_DIR": str(socket.parent)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while not socket.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit("pulseaudio did not start")
            time.sleep(0.05)
        yield f"unix:{socket}"
    finally:
        process.terminate()
        process.wait(10)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--firefox", default="/usr/bin/firefox-esr")
    parser.add_argument("--node", default="node")
    args = parser.parse_args()
    if not (DRIVER.parent / "node_modules" / "puppeteer-core").is_dir():
        sys.exit(f"puppeteer-core is not installed: npm ci --prefix {DRIVER.parent}")
    mono: dict[str, float] = {}

    def add_mono_tone(settings: Settings, root: Path) -> None:
        tone_path = root / "music" / "mono-tone.wav"
        mono["expected_dr"], _ = dr_meter(write_mono_tone(tone_path), RATE_HZ)
        mono["track_id"] = asyncio.run(register(settings, tone_path))

    with (
        running_web_client("sonantica-firefox-", login_attempts=100, prepare=add_mono_tone) as stack,
        null_sink(stack.root) as pulse_server,
    ):
        config = {
            "url": stack.url,
            "firefox": args.firefox,
            "username": GUEST,
            "password": GUEST_PASSWORD,
            "trackTitle": "Morning Run",
            "libraryTracks": len(LIBRARY) + 1,
            "monoTrackId": int(mono["track_id"]),
            "expectedDr": mono["expected_dr"],
            "pulseServer": pulse_server,
        }
        ran = subprocess.run([args.node, str(DRIVER), json.dumps(config)], capture_output=True, text=True, timeout=300)
    if ran.returncode != 0:
        print(ran.stdout, ran.stderr, sep="\n")
        return 1
    report = json.loads(ran.stdout.strip().splitlines()[-1])
    print(f"Browser: {report['browser']} (headless, WebDriver BiDi, puppeteer-core)")
    for item in report["checks"]:
        print(f"{'ok  ' if item['ok'] else 'FAIL'} {item['name']}: {item['detail']}")
    print(f"console errors: {len(report['consoleErrors'])}")
    for error in report["consoleErrors"]:
        print(f"  {error}")
    return 0 if all(item["ok"] for item in report["checks"]) and not report["consoleErrors"] else 1


if __name__ == "__main__":
    sys.exit(main())
