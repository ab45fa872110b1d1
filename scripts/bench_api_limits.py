"""Hostile clients against a real ``sonantica serve`` (issue 12, API part); loopback only, bounded in count and time.

Starts ``python -m sidecar serve`` in its own process on embedded PostgreSQL + Redis under a fresh data
directory, then measures, and prints one table:

* SSE: ``--streams`` (500) ``GET /api/events`` streams opened at once: how many were admitted, refused (503) or
  failed, and while they are open ``/health/ready`` and ``/api/status`` answers and the ``/health/live`` p99;
* a ``--body-mb`` (100) MB POST without a token: the answer, the bytes the server took before answering, the
  server's RSS before and after;
* ``/metrics`` size and scrape time before and after ``--random-requests`` (3,000) requests with random methods
  on random paths.

Run it against other code (e.g. an older checkout) with ``PYTHONPATH=<checkout>``: the server is started with
the same interpreter and environment. Usage::

    python scripts/bench_api_limits.py [--streams 500] [--body-mb 100] [--random-requests 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import select
import signal
import socket
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

TOKEN = "bench-token-" + "x" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (from /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def start_server(data_dir: Path, port: int, streams: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SONANTICA_DATA_DIR": str(data_dir),
        "SONANTICA_API__TOKEN": TOKEN,
        "SONANTICA_API__SSE_MAX_CLIENTS": str(streams + 50),  # admit them all (older code ignores it)
        "SONANTICA_API__ACCESS_LOG": "false",
        "SONANTICA_LOG_LEVEL": "WARNING",
        "SONANTICA_HOST": "none",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "sidecar", "serve", "--port", str(port), "--host", "127.0.0.1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(data_dir / "serve.log", "wb"),  # noqa: SIM115  (lives as long as the server)
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health/ready", timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        if server.poll() is not None:
            raise RuntimeError(f"the server exited: {(data_dir / 'serve.log').read_text()[-2000:]}")
        time.sleep(0.5)
    raise RuntimeError("the server did not become ready")


async def live_p99_ms(client: httpx.AsyncClient, count: int = 200) -> float:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await client.get("/health/live")
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.quantiles(latencies, n=100)[98]


async def sse(base_url: str, streams: int, pid: int) -> dict[str, str]:
    limits = httpx.Limits(max_connections=streams + 20, max_keepalive_connections=0)
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=30, headers=AUTH, limits=limits) as client,
        httpx.AsyncClient(base_url=base_url, timeout=30, headers=AUTH) as probe,
    ):
        rss_before = rss_mib(pid)

        async def open_one() -> httpx.Response | Exception:
            try:
                response = await client.send(client.build_request("GET", "/api/events"), stream=True)
                if response.status_code == 200:
                    await anext(response.aiter_lines())  # ": subscribed"
                return response
            except Exception as exc:  # a refused or broken stream is a result here
                return exc

        opened = await asyncio.gather(*(open_one() for _ in range(streams)))
        ok = [r for r in opened if isinstance(r, httpx.Response) and r.status_code == 200]
        refused = [r for r in opened if isinstance(r, httpx.Response) and r.status_code == 503]
        failed = len(opened) - len(ok) - len(refused)
        started = time.perf_counter()
        ready = await probe.get("/health/ready")
        ready_ms = (time.perf_counter() - started) * 1000
        status = await probe.get("/api/status")
        p99 = await live_p99_ms(probe)
        rss_open = rss_mib(pid)
        for response in opened:
            if isinstance(response, httpx.Response):
                await response.aclose()
    return {
        "streams admitted / 503 / failed": f"{len(ok)} / {len(refused)} / {failed}",
        "/health/ready while open": f"{ready.status_code} in {ready_ms:.0f} ms",
        "/api/status while open": str(status.status_code),
        "/health/live p99 while open": f"{p99:.1f} ms",
        "server RSS before / with the streams": f"{rss_before:.0f} / {rss_open:.0f} MiB",
    }


def big_post(port: int, body_mb: int, pid: int) -> dict[str, str]:
    rss_before = rss_mib(pid)
    size = body_mb * 1024 * 1024
    chunk = b"x" * (1024 * 1024)
    sent = 0
    answer = b""
    started = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        head = (
            f"POST /api/playlists/bpm-range HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {size}\r\n\r\n"
        )
        sock.sendall(head.encode())
        readable, _, _ = select.select([sock], [], [], 1.0)  # a server that answers before reading the body
        if not readable:
            try:
                while sent < size:
                    sock.sendall(chunk)
                    sent += len(chunk)
            except OSError:
                pass
        try:
            answer = sock.recv(65536)
        except OSError:
            answer = b""
    elapsed_ms = (time.perf_counter() - started) * 1000
    time.sleep(1.0)
    status = answer.split(b" ", 2)[1].decode() if answer.startswith(b"HTTP/") else "no answer"
    return {
        f"{body_mb} MB POST without token: answer": f"{status} after {elapsed_ms:.0f} ms",
        f"{body_mb} MB POST: body bytes sent before the answer": f"{sent / 1024 / 1024:.0f} MiB",
        f"{body_mb} MB POST: server RSS before / after": f"{rss_before:.0f} / {rss_mib(pid):.0f} MiB",
    }


async def metrics(base_url: str, requests: int) -> dict[str, str]:
    rng = random.Random(12)
    async with httpx.AsyncClient(base_url=base_url, timeout=30, headers=AUTH) as client:
        before = await client.get("/metrics")
        for i in range(requests):
            method = "".join(rng.choices(string.ascii_uppercase, k=8))
            path = "/health/live" if i % 2 else f"/x/{rng.randrange(10**9)}"
            await client.request(method, path)
        started = time.perf_counter()
        after = await client.get("/metrics")
        scrape_ms = (time.perf_counter() - started) * 1000
    return {
        f"/metrics size before / after {requests} random-method requests": (
            f"{len(before.content) / 1024:.1f} / {len(after.content) / 1024:.1f} kB"
        ),
        "/metrics scrape after them": f"{scrape_ms:.0f} ms",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--streams", type=int, default=500)
    parser.add_argument("--body-mb", type=int, default=100)
    parser.add_argument("--random-requests", type=int, default=3000)
    args = parser.parse_args()
    rows: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="sonantica-limits-") as tmp:
        port = _free_port()
        server = start_server(Path(tmp), port, args.streams)
        base_url = f"http://127.0.0.1:{port}"
        try:
            rows |= asyncio.run(sse(base_url, args.streams, server.pid))
            rows |= big_post(port, args.body_mb, server.pid)
            rows |= asyncio.run(metrics(base_url, args.random_requests))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    load = Path("/proc/loadavg").read_text().split()[:3]
    print(f"| measure | value |  (load average {' '.join(load)})")
    print("|---|---|")
    for name, value in rows.items():
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
