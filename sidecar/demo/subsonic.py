"""A real Subsonic server (supysonic 0.7.9) over a music folder, for the demo and the integration tests.

:class:`SubsonicServer` writes a supysonic config into a work directory, creates the SQLite database, an admin
user and a music folder with ``supysonic-cli``, scans the folder, and serves the API from a subprocess on a free
localhost port (``python -m sidecar.demo.subsonic CONFIG``). A subprocess keeps supysonic's process-global
database out of the caller and lets tests stop the server mid-sync.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Self

FOLDER_NAME = "music"
_START_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0
_PROJECT_ROOT = Path(__file__).resolve().parents[2]  # so the subprocess runs this checkout's module


def _config_text(work_dir: Path) -> str:
    data = work_dir / "data"
    return (
        "[base]\n"
        f"database_uri = sqlite:///{data}/supysonic.db\n"
        "[webapp]\n"
        f"cache_dir = {data}/cache\n"
        "log_level = WARNING\n"
        "[daemon]\n"
        f"socket = {data}/supysonic.sock\n"
        "run_watcher = no\n"
    )


class SubsonicServer:
    """supysonic serving ``music_dir`` at ``http://127.0.0.1:<port>``; use as a context manager.

    Parameters
    ----------
    music_dir
        The folder to serve (read only; supysonic reads tags and never writes there).
    work_dir
        Where the config, database and cache go (created).
    username, password
        The admin account created for clients.
    """

    def __init__(
        self, music_dir: str | os.PathLike[str], work_dir: str | os.PathLike[str], *, username: str, password: str
    ) -> None:
        self.music_dir = Path(music_dir).resolve()
        self.work_dir = Path(work_dir).resolve()
        self.username = username
        self._password = password
        self._process: subprocess.Popen[str] | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        """Base URL of the running server."""
        if self.port is None:
            raise RuntimeError("the Subsonic server is not running")
        return f"http://127.0.0.1:{self.port}"

    @property
    def password(self) -> str:
        """The password of :attr:`username` (a local demo/test server only)."""
        return self._password

    def play(self, song_id: str, *, client: str = "demo-player") -> None:
        """Act as a user's player: start streaming ``song_id`` (this is what fills ``getNowPlaying``)."""
        query = urllib.parse.urlencode(
            # supysonic does not take salted tokens (it answers error 10): the hex-encoded password it accepts
            {"u": self.username, "p": "enc:" + self._password.encode().hex(), "v": "1.12.0", "c": client, "id": song_id}
        )
        with urllib.request.urlopen(f"{self.url}/rest/stream?{query}", timeout=30) as reply:  # noqa: S310  local
            if not reply.headers.get_content_type().startswith("audio/"):
                raise RuntimeError(f"the Subsonic server refused to stream {song_id}: {reply.read(2000)!r}")
            reply.read(65536)

    @property
    def config_path(self) -> Path:
        """The supysonic.conf this server uses."""
        return self.work_dir / "supysonic.conf"

    def setup(self) -> None:
        """Write the config, create the database, the user and the folder, and scan the folder (idempotent)."""
        (self.work_dir / "data" / "cache").mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(_config_text(self.work_dir), encoding="utf-8")
        if not (self.work_dir / "data" / "supysonic.db").exists():
            self._cli("user", "add", self.username, "-p", self._password)
            self._cli("user", "setroles", "-A", self.username)
            self._cli("folder", "add", FOLDER_NAME, str(self.music_dir))
        self.scan()

    def add_user(self, username: str, password: str) -> None:
        """Create another (non-admin) account, e.g. a listener who signs in to the web client."""
        self._cli("user", "add", username, "-p", password)

    def scan(self) -> None:
        """Scan the music folder again (picks up added or changed files)."""
        self._cli("folder", "scan", FOLDER_NAME)

    def start(self) -> None:
        """Set up (when needed) and start serving; returns once the port is known."""
        if self._process is not None:
            return
        self.setup()
        process = subprocess.Popen(  # noqa: S603  (fixed argv)
            [sys.executable, "-m", "sidecar.demo.subsonic", str(self.config_path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            cwd=self.work_dir,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(_PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
            },
        )
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.isdigit():
            process.kill()
            process.wait(_STOP_TIMEOUT_S)
            raise RuntimeError(f"supysonic did not start (exit code {process.poll()})")
        self._process = process
        self.port = int(line)

    def stop(self) -> None:
        """Stop serving (the database stays, so :meth:`start` serves the same library again)."""
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(_STOP_TIMEOUT_S)
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _cli(self, *args: str) -> None:
        cli = Path(sys.executable).with_name("supysonic-cli")
        result = subprocess.run(  # noqa: S603  (fixed argv)
            [str(cli), *args], cwd=self.work_dir, capture_output=True, text=True, timeout=300, check=False
        )
        if result.returncode != 0:
            command = " ".join(args[:2])
            raise RuntimeError(f"supysonic-cli {command} failed: {result.stderr.strip()[-300:]}")


def _serve(config_path: str) -> None:
    """Serve supysonic with ``config_path`` on a free port; print the port, then serve until terminated."""
    import signal

    from supysonic.config import IniConfig
    from supysonic.web import create_application
    from werkzeug.serving import make_server

    app = create_application(IniConfig([config_path]))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stdout.write(f"{server.server_port}\n")
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    _serve(sys.argv[1])
