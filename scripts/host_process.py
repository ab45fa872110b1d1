"""The generated Subsonic host in a process of its own, behind a loopback HTTP server (``bench_scale --host-process``).

A real Navidrome makes its pages in its own process while the sidecar handles the previous one; the in-process
``httpx.MockTransport`` host of the benchmark cannot overlap with the sync that way. :class:`HostProcess` starts
:class:`~tests.contract.generated_hosts.GeneratedSubsonic` in a spawned process serving HTTP/1.1 on 127.0.0.1 (a
free port) and mirrors the attributes the benchmark uses: ``count``, ``changed`` (sent to the process when set),
``requests`` and ``cpu_s`` (the whole host process's CPU time: page making, JSON and the HTTP server).
"""

from __future__ import annotations

import http.server
import multiprocessing
import threading
from multiprocessing.connection import Connection

import httpx
import psutil

from tests.contract.generated_hosts import GeneratedSubsonic


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: GeneratedSubsonic) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.host = host


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        request = httpx.Request(
            "POST", f"http://{self.headers['Host']}{self.path}", content=body, headers=dict(self.headers.items())
        )
        try:
            response = self.server.host.handle(request)
            status, content, kind = response.status_code, response.content, response.headers["Content-Type"]
        except AssertionError as error:  # UnansweredRequestError: a request the generated host does not serve
            status, content, kind = 500, str(error).encode(), "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: one line per page would drown the benchmark's output."""


def _serve(count: int, control: Connection) -> None:
    server = _Server(GeneratedSubsonic(count))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    control.send(server.server_address[1])
    while True:
        command, value = control.recv()
        if command == "changed":
            server.host.changed = set(value)
        elif command == "requests":
            control.send(server.host.requests)
        else:
            server.shutdown()
            return


class HostProcess:
    """A :class:`GeneratedSubsonic` of ``count`` songs in its own process; :meth:`stop` ends it."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._changed: frozenset[int] = frozenset()
        self._control, theirs = multiprocessing.Pipe()
        self._process = multiprocessing.get_context("spawn").Process(target=_serve, args=(count, theirs), daemon=True)
        self._process.start()
        self.url = f"http://127.0.0.1:{self._control.recv()}"
        self._ps = psutil.Process(self._process.pid)

    @property
    def changed(self) -> frozenset[int]:
        """The songs that report a new size."""
        return self._changed

    @changed.setter
    def changed(self, songs: frozenset[int] | set[int]) -> None:
        self._changed = frozenset(songs)
        self._control.send(("changed", sorted(self._changed)))

    @property
    def requests(self) -> int:
        """Requests answered so far."""
        self._control.send(("requests", None))
        answered: int = self._control.recv()
        return answered

    @property
    def cpu_s(self) -> float:
        """CPU time of the host process so far (user + system), seconds."""
        times = self._ps.cpu_times()
        return float(times.user + times.system)

    def stop(self) -> None:
        """End the process (waits up to 10 s)."""
        self._control.send(("stop", None))
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
