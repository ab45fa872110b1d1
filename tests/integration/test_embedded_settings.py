"""The embedded PostgreSQL's own settings (``shared_buffers``), written before each start of a real server, and its
release by a process that no longer uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg

from sidecar.embedded import (
    SERVER_CONF,
    embedded_postgres_url,
    pid_alive,
    pid_in_file,
    release_embedded_postgres,
    supervisor_exited,
)

_SHARED_BUFFERS_MB = "SELECT setting::int * 8 / 1024 FROM pg_settings WHERE name = 'shared_buffers'"  # 8 kB pages


def _shared_buffers_mb_when_started(data_dir: Path, shared_buffers_mb: int) -> int:
    """Start the embedded server of ``data_dir`` in a process of its own (it stops when that process exits) and
    return the ``shared_buffers`` it runs with, in MiB."""
    code = (
        "import sys; from pathlib import Path; import psycopg; from sidecar.embedded import embedded_postgres_url;"
        " url = embedded_postgres_url(Path(sys.argv[1]), shared_buffers_mb=int(sys.argv[2]));"
        " conn = psycopg.connect(url); print(conn.execute(sys.argv[3]).fetchone()[0]); conn.close()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(data_dir), str(shared_buffers_mb), _SHARED_BUFFERS_MB],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert supervisor_exited(data_dir, timeout_s=60)  # the server stopped with its last user
    return int(done.stdout.split()[-1])


def test_embedded_postgres_takes_its_shared_buffers_at_each_start(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert _shared_buffers_mb_when_started(data_dir, 48) == 48  # a new data directory: set before its first start
    assert _shared_buffers_mb_when_started(data_dir, 64) == 64
    pgdata = data_dir / "postgres"
    assert (pgdata / "postgresql.conf").read_text().splitlines().count(f"include_if_exists = '{SERVER_CONF}'") == 1
    assert (pgdata / SERVER_CONF).stat().st_uid == pgdata.stat().st_uid


def _postmaster_running(data_dir: Path) -> bool:
    pid = pid_in_file(data_dir / "postgres" / "postmaster.pid")
    return pid is not None and pid_alive(pid)


def test_a_process_that_releases_the_embedded_postgres_leaves_nothing_running(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    for _ in range(2):  # released, it can be joined (started) again by the same process
        url = embedded_postgres_url(data_dir)
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        assert _postmaster_running(data_dir)
        supervisor_pid = pid_in_file(data_dir / "supervisor.pid")
        assert supervisor_pid is not None
        release_embedded_postgres(data_dir)
        assert not _postmaster_running(data_dir)  # this process was its last user
        assert supervisor_exited(data_dir, timeout_s=60)
        assert not pid_alive(supervisor_pid)
        assert not Path(f"/proc/{supervisor_pid}").exists()  # reaped: not even a zombie is left
