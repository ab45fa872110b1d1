"""A bounded chaos run of the real processes on loopback (issue 12): hostile files, killed workers and servers,
hostile HTTP clients; prints one table.

What it does, in a fresh temporary data directory (embedded PostgreSQL and Redis, nothing else touched):

1. A library of ``--tracks`` good rendered tracks plus a malformed corpus: NaN and Inf float WAVs, a denormal WAV
   and a 32-channel WAV (both valid: they must be analysed), an empty file, a WAV cut to 1.1 s of a declared 10 s,
   text named ``.mp3``, a FLAC named ``.mp3`` (valid), a FIFO, a directory named ``.flac``, and a file replaced by
   a symlink to a file outside the library after it was registered. Every file is registered as a ``navidrome``
   track under ``SONANTICA_LIBRARY_DIR`` and queued at scan priority.
2. ``sonantica serve`` and ``--workers`` ``sonantica worker`` processes start. While they work: ``--kills`` worker
   SIGKILLs (each replaced by a fresh worker), the embedded redis-server and PostgreSQL postmaster SIGKILLed once
   each, and ``/health/live`` timed every 100 ms.
3. With ``--api``: 500 concurrent ``/api/events`` streams with the token (more than the client cap), 10 000
   random-method requests, three 100 MB POSTs without a token, and a flood of 2 000 webhook posts (bad secret,
   junk bodies).
4. Once nothing is queued, running or delayed (or ``--timeout-s`` passed) the workers are stopped and the outcome is
   read from PostgreSQL and Redis.

Run: ``.venv/bin/python -m scripts.chaos`` (defaults: 50 tracks of 20 s, 2 workers, 5 kills, API part on; about
10-20 minutes on 2 cores). ``--no-api`` skips step 3. Exit code 0 when every check holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psycopg
import redis

from sidecar.demo.encode import write_audio, write_raw_wav
from sidecar.demo.music import PieceSpec, render
from sidecar.domain import KeySignature, Priority
from sidecar.embedded import pid_alive, supervisor_exited
from sidecar.services.enqueue import enqueue_track_ids
from sidecar.services.runtime import open_runtime
from sidecar.settings import get_settings
from sidecar.storage import tracks
from sidecar.storage.db import transaction

TOKEN = "chaos-token-0123456789abcdef0123"
HOOK_SECRET = "chaos-hook-secret"
ANALYZERS = ("loudness", "tempo", "key")
KEYS = ["C major", "A minor", "G major", "E minor", "D major", "B minor", "F major", "D minor"]

# file name -> what its failure reason must contain (None: a valid file that must be analysed)
HOSTILE: dict[str, str | None] = {
    "nan.wav": "non-finite samples",
    "inf.wav": "non-finite samples",
    "denormal.wav": None,
    "32ch.wav": None,
    "empty.flac": "file is empty",
    "truncated.wav": "file is truncated",
    "notes.mp3": "not a decodable audio file",
    "flac-named.mp3": None,
    "fifo.flac": "FIFO",
    "folder.flac": "is a directory",
    "swapped.flac": "outside the library",
}


@dataclass
class Probe:
    """``/health/live`` latencies and every HTTP status seen, by phase."""

    live_ms: list[float] = field(default_factory=list)
    live_errors: int = 0
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    five_xx: Counter[str] = field(default_factory=Counter)
    undocumented_5xx: list[str] = field(default_factory=list)
    connection_errors: Counter[str] = field(default_factory=Counter)  # a stream or request cut off (not a status)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _write_library(library: Path, outside: Path, count: int, seconds: float) -> dict[str, str | None]:
    """Good tracks and the hostile corpus; returns file name -> expected failure fragment (None: must succeed)."""
    expected: dict[str, str | None] = {}
    for i in range(count):
        spec = PieceSpec(
            title=f"t{i}",
            bpm=80.0 + (i * 7) % 80,
            key=KeySignature.parse(KEYS[i % len(KEYS)]),
            groove=("rock", "ballad", "hiphop")[i % 3],
            duration_s=seconds,
            seed=i,
        )
        name = f"good-{i:03d}.flac"
        write_audio(render(spec), 44100, library / name)
        expected[name] = None
    rate = 22050
    t = np.arange(int(5 * rate)) / rate
    tone = np.repeat((0.3 * np.sin(2 * np.pi * 440 * t))[:, None], 2, axis=1).astype(np.float32)
    nan = tone.copy()
    nan[rate, 0] = np.nan
    inf = tone.copy()
    inf[2 * rate, 1] = np.inf
    write_raw_wav(nan, rate, library / "nan.wav")
    write_raw_wav(inf, rate, library / "inf.wav")
    write_raw_wav(np.full((4 * rate, 2), 1e-42, np.float32), rate, library / "denormal.wav")
    wide = np.repeat(tone[:, :1], 32, axis=1)
    write_raw_wav(wide, rate, library / "32ch.wav")
    (library / "empty.flac").write_bytes(b"")
    cut = (tone[: int(1.1 * rate)] * 32767).astype(np.int16)
    write_raw_wav(cut, rate, library / "truncated.wav", declared_frames=10 * rate)
    (library / "notes.mp3").write_text("these are not the droids you are looking for\n" * 50)
    write_audio(tone, rate, library / "flac-named.mp3", format_name="flac")
    os.mkfifo(library / "fifo.flac")
    (library / "folder.flac").mkdir()
    write_audio(tone, rate, library / "swapped.flac")  # replaced by a symlink once registered
    write_audio(tone, rate, outside / "secret.flac")
    expected.update(HOSTILE)
    return expected


async def _register(names: list[str], library: Path, outside: Path) -> None:
    settings = get_settings()
    async with open_runtime(settings) as runtime:
        ids: list[int] = []
        async with transaction(runtime.pool) as conn:
            for name in names:
                saved = await tracks.upsert_track(
                    conn,
                    tracks.TrackUpsert(
                        host="navidrome", host_track_id=name, title=name, path=str(library / name), host_path=name
                    ),
                )
                ids.append(saved.track_id)
        (library / "swapped.flac").unlink()
        (library / "swapped.flac").symlink_to(outside / "secret.flac")  # after "sync": only the open can refuse it
        versions = {name: 1 for name in ANALYZERS}
        await enqueue_track_ids(runtime, ids, versions, priority=Priority.SCAN)


def spawn(env: dict[str, str], log: Path, *args: str, new_session: bool = True) -> subprocess.Popen[bytes]:
    """``python -m sidecar ARGS`` with ``env``, its output appended to ``log`` (in a session of its own unless
    ``new_session`` is false)."""
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sidecar", *args], env=env, stdout=out, stderr=out, start_new_session=new_session
        )


def start_api(env: dict[str, str], log: Path, port: int, *, new_session: bool = True) -> subprocess.Popen[bytes]:
    """``sonantica serve`` (see :func:`spawn`), returned once ``/health/live`` on ``port`` answers 200; exits the
    program when it does not within 120 s or the server stops."""
    api = spawn(env, log, "serve", new_session=new_session)
    deadline = time.monotonic() + 120
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://127.0.0.1:{port}/health/live", timeout=2).status_code == 200:
                return api
        if time.monotonic() > deadline or api.poll() is not None:
            raise SystemExit(f"sonantica serve did not start; see {log}")
        time.sleep(0.2)


def _open_work(db_url: str) -> int:
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        row = conn.execute("SELECT count(*) FROM analysis_status WHERE state IN ('pending', 'queued', 'running')")
        return int((row.fetchone() or (0,))[0])


def _poll_live(base: str, probe: Probe, stop: threading.Event) -> None:
    with httpx.Client(base_url=base, timeout=5.0) as client:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                response = client.get("/health/live")
                probe.live_ms.append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    probe.live_errors += 1
            except httpx.HTTPError:
                probe.live_errors += 1
            stop.wait(0.1)


def _record(probe: Probe, phase: str, response: httpx.Response, documented_503: bool) -> None:
    probe.statuses[(phase, response.status_code)] += 1
    if response.status_code >= 500:
        probe.five_xx[phase] += 1
        # documented 503s: /health/ready naming the dependency that is down, and overload answers with Retry-After
        readiness = response.request.url.path == "/health/ready"
        if not (response.status_code == 503 and documented_503 and (readiness or response.headers.get("retry-after"))):
            probe.undocumented_5xx.append(
                f"{phase}: {response.request.method} {response.request.url.path} -> {response.status_code}"
            )


async def _sse_clients(base: str, probe: Probe, clients: int, hold_s: float) -> None:
    limits = httpx.Limits(max_connections=clients + 10, max_keepalive_connections=0)
    auth = {"Authorization": f"Bearer {TOKEN}"}  # signed in: the streams reach the hub and its client cap
    async with httpx.AsyncClient(base_url=base, timeout=30.0, limits=limits, headers=auth) as client:

        async def one() -> None:
            try:
                async with client.stream("GET", "/api/events") as response:
                    _record(probe, "sse", response, documented_503=True)
                    if response.status_code == 200:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(hold_s):
                                async for _ in response.aiter_bytes():
                                    pass
            except httpx.HTTPError as exc:
                probe.statuses[("sse", -1)] += 1
                probe.connection_errors[f"sse: {type(exc).__name__}"] += 1

        await asyncio.gather(*(one() for _ in range(clients)))


async def _random_methods(base: str, probe: Probe, count: int) -> None:
    paths = [
        "/api/status",
        "/health/ready",
        "/api/tracks/1/analysis",
        "/api/playlists/bpm-range",
        "/metrics",
        "/api/tracks/navidrome/x/on-play",
        "/hooks/jellyfin",
        "/nope",
    ]
    rng = random.Random(12)
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            method = "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(rng.randint(3, 9)))
            if i % 4 == 0:
                method = rng.choice(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
            async with sem:
                try:
                    response = await client.request(method, rng.choice(paths))
                    _record(probe, "methods", response, documented_503=True)
                except httpx.HTTPError as exc:
                    probe.statuses[("methods", -1)] += 1
                    probe.connection_errors[f"methods: {type(exc).__name__}"] += 1

        await asyncio.gather(*(one(i) for i in range(count)))


async def _big_bodies(base: str, probe: Probe, count: int, size_bytes: int) -> None:
    chunk = b"x" * (1024 * 1024)

    async def body() -> AsyncIterator[bytes]:
        for _ in range(size_bytes // len(chunk)):
            yield chunk

    async with httpx.AsyncClient(base_url=base, timeout=120.0) as client:
        for _ in range(count):
            try:
                response = await client.post("/api/playlists/bpm-range", content=body())
                _record(probe, "100MB", response, documented_503=False)
            except httpx.HTTPError:  # the server may close the connection on an oversized body: that is fine
                probe.statuses[("100MB", -1)] += 1


async def _webhook_flood(base: str, probe: Probe, count: int) -> None:
    rng = random.Random(7)
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
        sem = asyncio.Semaphore(32)

        async def one(i: int) -> None:
            secret = HOOK_SECRET if i % 2 else "wrong"
            content = rng.choice([b"{}", b"\xff{", b'{"NotificationType":"PlaybackStart","ItemId":"ab"}', b""])
            async with sem:
                try:
                    response = await client.post(
                        "/hooks/jellyfin", content=content, headers={"X-Sonantica-Token": secret}
                    )
                    _record(probe, "webhook", response, documented_503=True)
                except httpx.HTTPError as exc:
                    probe.statuses[("webhook", -1)] += 1
                    probe.connection_errors[f"webhook: {type(exc).__name__}"] += 1

        await asyncio.gather(*(one(i) for i in range(count)))


@dataclass
class TrackOutcome:
    """A track's analysis rows, summed up."""

    states: set[str] = field(default_factory=set)
    attempts: set[int] = field(default_factory=set)
    errors: set[str] = field(default_factory=set)
    features: int = 0


def _outcome(db_url: str, redis_url: str, prefix: str) -> tuple[dict[str, TrackOutcome], list[str]]:
    with psycopg.connect(db_url) as conn:
        rows = conn.execute(
            "SELECT t.host_track_id, s.state, s.attempts, s.last_error,"
            " (SELECT count(*) FROM track_features f WHERE f.track_id = t.id)"
            " FROM tracks t JOIN analysis_status s ON s.track_id = t.id ORDER BY 1"
        ).fetchall()
    per_track: dict[str, TrackOutcome] = {}
    for name, state, attempts, error, features in rows:
        entry = per_track.setdefault(str(name), TrackOutcome())
        entry.states.add(str(state))
        entry.attempts.add(int(attempts))
        if error:
            entry.errors.add(str(error))
        entry.features = int(features)
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    leftovers = [str(k) for k in client.scan_iter(f"{prefix}lock:analyze:*")]
    leftovers += [str(k) for k in client.scan_iter(f"{prefix}processing:*") if client.llen(k)]
    leftovers += [
        f"{k} ({client.llen(k)})" for k in (f"{prefix}queue:on_play", f"{prefix}queue:scan") if client.llen(k)
    ]
    if client.zcard(f"{prefix}queue:delayed"):
        leftovers.append(f"{prefix}queue:delayed ({client.zcard(f'{prefix}queue:delayed')})")
    client.close()
    return per_track, leftovers


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each good track")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--api", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--timeout-s", type=float, default=1800.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs)")
    args = parser.parse_args()
    started = time.monotonic()
    load_start = os.getloadavg()[0]
    root = Path(tempfile.mkdtemp(prefix="sonantica-chaos-"))
    library, outside, data = root / "library", root / "outside", root / "data"
    for folder in (library, outside, data):
        folder.mkdir()
    port = _free_port()
    prefix = "chaos:"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SONANTICA_")},
        "SONANTICA_DATA_DIR": str(data),
        "SONANTICA_LIBRARY_DIR": str(library),
        "SONANTICA_ANALYSIS__ENABLED": ",".join(ANALYZERS),
        "SONANTICA_REDIS__KEY_PREFIX": prefix,
        "SONANTICA_WORKER__LEASE_S": "3",
        "SONANTICA_WORKER__LOCK_S": "120",
        "SONANTICA_WORKER__POLL_S": "0.5",
        "SONANTICA_WORKER__RETRY_BASE_S": "0.5",
        "SONANTICA_WORKER__RETRY_MAX_S": "3",
        "SONANTICA_WORKER__MAX_ATTEMPTS": "3",
        "SONANTICA_WORKER__ANALYSIS_TIMEOUT_S": "300",
        "SONANTICA_API__TOKEN": TOKEN,
        "SONANTICA_API__PORT": str(port),
        "SONANTICA_JELLYFIN__WEBHOOK_SECRET": HOOK_SECRET,
        "SONANTICA_LOG_LEVEL": "INFO",
    }
    os.environ.update(env)
    get_settings.cache_clear()
    print(f"chaos run in {root} (load {load_start:.2f})", file=sys.stderr)
    expected = _write_library(library, outside, args.tracks, args.seconds)
    # In a child process: this one must not become a user of the embedded servers (it checks they stop).
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from scripts.chaos import register_main; register_main(sys.argv[1:])",
            str(library),
            str(outside),
            *sorted(expected),
        ],
        env=env,
        check=True,
    )
    print(f"{len(expected)} files registered and queued", file=sys.stderr)
    logs = root / "logs"
    logs.mkdir()
    api = start_api(env, logs / "serve.log", port)
    base = f"http://127.0.0.1:{port}"
    time.sleep(2.0)
    rss_start = _rss_mib(api.pid)
    probe = Probe()
    stop = threading.Event()
    poller = threading.Thread(target=_poll_live, args=(base, probe, stop), daemon=True)
    poller.start()
    workers = [spawn(env, logs / f"worker-{i}.log", "worker") for i in range(args.workers)]
    db_url = f"postgresql://postgres:@/sonantica?host={data / 'postgres'}"
    redis_url = f"unix://{data / 'redis' / 'redis.sock'}"
    total = _open_work(db_url)
    kills = 0
    killed_redis = killed_postgres = False
    if args.api:
        api_thread = threading.Thread(
            target=lambda: asyncio.run(_api_attacks(base, probe)), daemon=True, name="api-attacks"
        )
        api_thread.start()
    else:
        api_thread = None
    open_work = total
    while time.monotonic() - started < args.timeout_s:
        time.sleep(0.5)
        try:
            open_work = _open_work(db_url)
        except psycopg.OperationalError:
            continue  # PostgreSQL is being restarted
        done_fraction = 1 - open_work / max(total, 1)
        if kills < args.kills and done_fraction >= (kills + 1) / (args.kills + 2):
            victim = workers.pop(0)
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait()
            kills += 1
            workers.append(spawn(env, logs / f"worker-r{kills}.log", "worker"))
            print(f"SIGKILLed worker {victim.pid} ({kills}/{args.kills}) at {done_fraction:.0%}", file=sys.stderr)
        if not killed_redis and done_fraction >= 0.3:
            pid = int((data / "redis" / "redis.pid").read_text())
            os.kill(pid, signal.SIGKILL)
            killed_redis = True
            print(f"SIGKILLed embedded redis-server {pid} at {done_fraction:.0%}", file=sys.stderr)
        if not killed_postgres and done_fraction >= 0.55:
            pid = int((data / "postgres" / "postmaster.pid").read_text().split("\n", 1)[0])
            os.kill(pid, signal.SIGKILL)
            killed_postgres = True
            print(f"SIGKILLed embedded PostgreSQL postmaster {pid} at {done_fraction:.0%}", file=sys.stderr)
        if open_work == 0 and kills >= args.kills and killed_redis and killed_postgres:
            break
    if api_thread is not None:
        api_thread.join(timeout=600)
    time.sleep(3.0)  # let the last acknowledgements land
    for worker in workers:
        worker.send_signal(signal.SIGTERM)
    for worker in workers:
        try:
            worker.wait(timeout=120)
        except subprocess.TimeoutExpired:
            worker.kill()
    stop.set()
    poller.join()
    rss_end = _rss_mib(api.pid)
    per_track, leftovers = _outcome(db_url, redis_url, prefix)
    api.send_signal(signal.SIGTERM)
    api.wait(timeout=60)
    elapsed_s = time.monotonic() - started
    supervisor_gone = supervisor_exited(data, timeout_s=30)
    servers_left = []
    if (data / "redis" / "redis.sock").exists() and redis_url:
        with contextlib.suppress(redis.RedisError):
            if redis.Redis.from_url(redis_url).ping():
                servers_left.append("redis")
    with contextlib.suppress(OSError, ValueError):
        if pid_alive(int((data / "postgres" / "postmaster.pid").read_text().split("\n", 1)[0])):
            servers_left.append("postgres")
    # --- the table --------------------------------------------------------------------------------------------
    good = [n for n, why in expected.items() if why is None]
    bad = {n: why for n, why in expected.items() if why is not None}
    none = TrackOutcome()
    good_once = [n for n in good if per_track.get(n, none).states == {"done"} and per_track.get(n, none).features == 1]
    attempts = Counter(max(per_track[n].attempts) for n in good if n in per_track)
    bad_ok = [
        n
        for n, why in bad.items()
        if per_track.get(n, none).states == {"failed"}
        and per_track[n].errors
        and all(why in e for e in per_track[n].errors)
    ]
    stuck = [n for n, e in per_track.items() if e.states & {"pending", "queued", "running"}]
    p99 = statistics.quantiles(probe.live_ms, n=100)[98] if len(probe.live_ms) >= 100 else float("nan")
    rss_change = (rss_end - rss_start) / rss_start * 100
    checks = {
        "good tracks analysed exactly once (done, 1 feature row)": (
            f"{len(good_once)}/{len(good)}",
            len(good_once) == len(good),
        ),
        "bad files failed with their reason": (f"{len(bad_ok)}/{len(bad)}", len(bad_ok) == len(bad)),
        "left queued/running in PostgreSQL": (str(len(stuck)), not stuck),
        "left in Redis (locks, processing, queues)": (str(len(leftovers)), not leftovers),
        "5xx other than documented 503": (str(len(probe.undocumented_5xx)), not probe.undocumented_5xx),
        "requests cut off without a status (SSE, methods, webhook)": (
            ", ".join(f"{k} {v}" for k, v in probe.connection_errors.items()) or "0",
            not probe.connection_errors,
        ),
        "/health/live p99 ms": (
            f"{p99:.1f} ({len(probe.live_ms)} probes, {probe.live_errors} failed)",
            p99 < 50 and probe.live_errors == 0,
        ),
        "API RSS MiB start -> end": (f"{rss_start:.0f} -> {rss_end:.0f} ({rss_change:+.1f} %)", abs(rss_change) <= 10),
        "embedded servers left after the last process": (", ".join(servers_left) or "none", not servers_left),
    }
    print("\n| check | result | ok |\n|---|---|---|")
    for name, (value, ok) in checks.items():
        print(f"| {name} | {value} | {'yes' if ok else 'NO'} |")
    print(
        f"\nfaults: {kills} worker SIGKILLs, redis-server SIGKILL: {killed_redis}, postmaster SIGKILL:"
        f" {killed_postgres}; attempts of good tracks (max per track): {dict(sorted(attempts.items()))}"
    )
    print("HTTP statuses: " + ", ".join(f"{phase} {code}: {n}" for (phase, code), n in sorted(probe.statuses.items())))
    print(
        f"{elapsed_s:.0f} s, load {load_start:.2f} -> {os.getloadavg()[0]:.2f}; supervisor still running:"
        f" {not supervisor_gone}"
    )
    for name in sorted(set(bad) - set(bad_ok)):
        print(f"  bad file not failed as expected: {name}: {per_track.get(name)}", file=sys.stderr)
    for name in sorted(set(good) - set(good_once)):
        print(f"  good file not analysed once: {name}: {per_track.get(name)}", file=sys.stderr)
    for line in probe.undocumented_5xx[:20]:
        print(f"  {line}", file=sys.stderr)
    for line in leftovers[:20]:
        print(f"  leftover: {line}", file=sys.stderr)
    if not args.keep:
        import shutil

        shutil.rmtree(root, ignore_errors=True)
    else:
        print(f"kept {root}", file=sys.stderr)
    return 0 if all(ok for _, ok in checks.values()) else 1


def register_main(argv: list[str]) -> None:
    """Child-process entry: register and queue the files named in ``argv[2:]`` (see :func:`_register`)."""
    asyncio.run(_register(argv[2:], Path(argv[0]), Path(argv[1])))


async def _api_attacks(base: str, probe: Probe) -> None:
    await _sse_clients(base, probe, clients=500, hold_s=5.0)
    await _random_methods(base, probe, count=10_000)
    await _big_bodies(base, probe, count=3, size_bytes=100 * 1024 * 1024)
    await _webhook_flood(base, probe, count=2_000)
    print("API attacks done", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
