"""The embedded servers' supervisor: servers restarted while used, stopped once their last user is gone (however
it went), and never left running when their data directory is removed under them. Real PostgreSQL and Redis."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg

from sidecar.embedded import EmbeddedRedis, _supervise_postgres, pid_alive, pid_in_file


def _wait(condition: Callable[[], bool], what: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _user(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    """A process that joins the embedded servers of ``data_dir`` and sleeps until killed; and the database URL."""
    code = (
        "import sys, time; from pathlib import Path; from sidecar.embedded import EmbeddedRedis, embedded_postgres_url;"
        " d = Path(sys.argv[1]); EmbeddedRedis(d).acquire(); print(embedded_postgres_url(d), flush=True);"
        " time.sleep(600)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code, str(data_dir)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    assert process.stdout is not None
    return process, process.stdout.readline().strip()


def _sigkill(process: subprocess.Popen[str]) -> None:
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert process.stdout is not None
    process.stdout.close()


def _postgres_pid(data_dir: Path) -> int | None:
    pid = pid_in_file(data_dir / "postgres" / "postmaster.pid")
    return pid if pid is not None and pid_alive(pid) else None


def test_embedded_servers_are_restarted_while_used_and_stopped_after_sigkill(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    user, _ = _user(data_dir)
    redis = EmbeddedRedis(data_dir)
    try:
        redis_pid = int((data_dir / "redis" / "redis.pid").read_text())
        os.kill(redis_pid, signal.SIGKILL)
        _wait(lambda: redis.responding() and not pid_alive(redis_pid), "Redis restarted")
        postgres_pid = _postgres_pid(data_dir)
        assert postgres_pid is not None
    finally:
        _sigkill(user)  # no atexit, no release: only the supervisor can stop the servers
    _wait(lambda: not redis.responding(), "Redis to stop after its last user died")
    _wait(lambda: _postgres_pid(data_dir) is None, "PostgreSQL to stop after its last user died")
    _wait(lambda: not (data_dir / "supervisor.pid").exists(), "the supervisor to exit")


def test_embedded_postgres_is_restarted_while_used(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    user, url = _user(data_dir)
    try:
        pid = _postgres_pid(data_dir)
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: not pid_alive(pid), "the killed PostgreSQL to be gone")
        _wait(lambda: _postgres_pid(data_dir) not in (None, pid), "PostgreSQL restarted", timeout_s=90)

        def answers() -> bool:
            try:
                with psycopg.connect(url, connect_timeout=2) as conn:
                    return conn.execute("SELECT 1").fetchone() == (1,)
            except psycopg.OperationalError:
                return False

        _wait(answers, "PostgreSQL to answer again", timeout_s=60)
    finally:
        _sigkill(user)


def test_servers_whose_data_directory_is_removed_under_them_are_stopped(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    user, _ = _user(data_dir)
    redis_pid = pid_in_file(EmbeddedRedis(data_dir).pid_file)
    postgres_pid = _postgres_pid(data_dir)
    supervisor_pid = pid_in_file(data_dir / "supervisor.pid")
    assert redis_pid is not None
    assert postgres_pid is not None
    assert supervisor_pid is not None
    try:
        shutil.rmtree(data_dir, ignore_errors=True)  # as a clean-up could, before the servers were stopped
    finally:
        _sigkill(user)
    _wait(lambda: not pid_alive(postgres_pid), "PostgreSQL to be stopped without its data directory", timeout_s=150)
    _wait(lambda: not pid_alive(redis_pid), "Redis to be stopped without its data directory", timeout_s=150)
    _wait(lambda: not pid_alive(supervisor_pid), "the supervisor to exit", timeout_s=150)


def test_a_postmaster_pid_file_being_written_is_not_taken_for_a_dead_server(tmp_path: Path) -> None:
    pgdata = tmp_path / "postgres"
    pgdata.mkdir()
    (pgdata / "PG_VERSION").write_text("16\n")
    for being_written in ("", "-4242\n/tmp\n"):  # PostgreSQL is writing it; initdb's standalone backend holds it
        (pgdata / "postmaster.pid").write_text(being_written)
        assert pid_in_file(pgdata / "postmaster.pid") is None
        assert _supervise_postgres(tmp_path, wanted=True) is None  # no restart attempted (there is no cluster here)
