"""Mistakes a user makes in the environment end a command with one ``error:`` line and exit code 2, no traceback."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sidecar.__main__ import main
from sidecar.errors import ConfigError
from sidecar.settings import get_settings, parse_scan_hours
from sidecar.worker.runner import scan_allowed

UNREACHABLE_DATABASE = "postgresql://sonantica:hunter2@127.0.0.1:1/sonantica"  # nothing listens on port 1


def _run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """Run ``sonantica ARGS`` as the console script does; the exit code and stderr."""
    monkeypatch.setattr("sys.argv", ["sonantica", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    code = exited.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SONANTICA_DB__POOL_MAX_SIZE", "abc", "SONANTICA_DB__POOL_MAX_SIZE: Input should be a valid integer"),
        ("SONANTICA_HOST", "plex", "SONANTICA_HOST: Input should be 'none', 'navidrome' or 'jellyfin'"),
        ("SONANTICA_PATH_MAP", "nocolon", "SONANTICA_PATH_MAP: path map entry 'nocolon' is not HOST_PREFIX"),
        ("SONANTICA_WORKER__SCAN_HOURS", "abc", "SONANTICA_WORKER__SCAN_HOURS: scan hours 'abc' are not HH:MM-HH:MM"),
        ("SONANTICA_WORKER__LOCK_S", "1", "worker.lock_s must be longer than worker.lease_s"),
    ],
)
def test_a_refused_setting_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(variable, value)
    code, err = _run(monkeypatch, capsys, "status")
    assert code == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"error: invalid setting: {expected}")


def test_a_refused_secret_is_not_repeated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SONANTICA_REDIS_URL", "redis//:hunter2@redis:6379/0")
    with pytest.raises(ConfigError, match="SONANTICA_REDIS_URL: a Redis URL starts with redis://") as refused:
        get_settings()
    assert "hunter2" not in str(refused.value)


@pytest.mark.parametrize("command", [["status"], ["migrate"], ["failed"]])
def test_an_unreachable_database_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    monkeypatch.setenv("SONANTICA_DATABASE_URL", UNREACHABLE_DATABASE)
    monkeypatch.setenv("SONANTICA_REDIS_URL", "redis://127.0.0.1:1/0")
    code, err = _run(monkeypatch, capsys, *command)
    assert code == 2
    assert len(err.splitlines()) == 1
    assert err.startswith("error: PostgreSQL is unavailable: connection failed:")
    assert "hunter2" not in err


def test_a_database_url_that_is_no_connection_string_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SONANTICA_DATABASE_URL", "not-a-url")
    code, err = _run(monkeypatch, capsys, "migrate")
    assert code == 2
    assert err.splitlines() == [
        "error: the database URL is not a PostgreSQL connection string"
        ' (missing "=" after "not-a-url" in connection info string)'
    ]


def test_a_data_directory_that_cannot_be_created_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    in_the_way = tmp_path / "a file"
    in_the_way.write_text("not a folder")
    monkeypatch.setenv("SONANTICA_DATA_DIR", str(in_the_way))
    code, err = _run(monkeypatch, capsys, "status")
    assert code == 2
    assert err.splitlines() == [
        f"error: the data directory {in_the_way} (SONANTICA_DATA_DIR) cannot be created: File exists"
    ]


def test_scan_hours_may_wrap_midnight() -> None:
    assert parse_scan_hours("22:00-06:30") == (dt.time(22), dt.time(6, 30))
    assert scan_allowed("22:00-06:30", dt.datetime(2026, 1, 1, 3)) is True
    assert scan_allowed("22:00-06:30", dt.datetime(2026, 1, 1, 12)) is False
    with pytest.raises(ValueError, match="not HH:MM-HH:MM"):
        parse_scan_hours("01:00")
