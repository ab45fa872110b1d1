"""Migrations from an empty database, idempotence, and the schema the storage code relies on."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from sidecar.cli import app
from sidecar.errors import StorageError
from sidecar.settings import get_settings
from sidecar.storage.db import open_pool
from sidecar.storage.migrate import load_migrations, migrate, pending_migrations


async def test_migrate_from_empty_applies_every_file_in_order(empty_database_url: str) -> None:
    applied = await migrate(empty_database_url)
    expected = [m.name for m in load_migrations()]
    assert applied == expected
    async with await psycopg.AsyncConnection.connect(empty_database_url) as conn:
        cur = await conn.execute("SELECT name FROM schema_migrations ORDER BY version")
        assert [row[0] for row in await cur.fetchall()] == expected


async def test_migrate_twice_is_a_no_op(empty_database_url: str) -> None:
    await migrate(empty_database_url)
    assert await migrate(empty_database_url) == []
    async with await psycopg.AsyncConnection.connect(empty_database_url) as conn:
        assert await pending_migrations(conn) == []


async def test_migrate_updates_an_older_vector_extension(
    empty_database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    await migrate(empty_database_url)
    async with await psycopg.AsyncConnection.connect(empty_database_url, autocommit=True) as conn:
        query = "SELECT default_version FROM pg_available_extensions WHERE name = 'vector'"
        row = await (await conn.execute(query)).fetchone()
        assert row is not None
        available = str(row[0])
        # a database whose extension was created by an older pgvector (as before the embedded server's upgrade);
        # the catalog is set back one release, so the real update script of the last step runs
        major, minor, patch = (int(p) for p in available.split("."))
        older = f"{major}.{minor}.{patch - 1}"
        await conn.execute("UPDATE pg_extension SET extversion = %s WHERE extname = 'vector'", (older,))
    caplog.set_level("INFO", logger="sidecar.storage.migrate")
    assert await migrate(empty_database_url) == []
    async with await psycopg.AsyncConnection.connect(empty_database_url) as conn:
        row = await (await conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")).fetchone()
        assert row == (available,)
    assert f"updated pgvector from {older} to {available}" in caplog.text


async def test_migrate_refuses_a_file_changed_after_it_was_applied(empty_database_url: str, tmp_path: Path) -> None:
    for migration in load_migrations():
        (tmp_path / migration.name).write_text(migration.sql)
    await migrate(empty_database_url, directory=tmp_path)
    first = load_migrations()[0]
    (tmp_path / first.name).write_text(first.sql + "\n-- edited\n")
    with pytest.raises(StorageError, match="changed after it was applied"):
        await migrate(empty_database_url, directory=tmp_path)


async def test_migrate_rolls_back_a_failing_file_and_keeps_earlier_ones(
    empty_database_url: str, tmp_path: Path
) -> None:
    (tmp_path / "0001_create_things.sql").write_text("CREATE TABLE things (id int);")
    (tmp_path / "0002_create_broken.sql").write_text("CREATE TABLE broken (id int); SELECT no_such_function();")
    with pytest.raises(StorageError, match=r"0002_create_broken\.sql failed"):
        await migrate(empty_database_url, directory=tmp_path)
    async with await psycopg.AsyncConnection.connect(empty_database_url) as conn:
        cur = await conn.execute("SELECT to_regclass('things') IS NOT NULL, to_regclass('broken') IS NOT NULL")
        assert await cur.fetchone() == (True, False)
        cur = await conn.execute("SELECT name FROM schema_migrations")
        assert [row[0] for row in await cur.fetchall()] == ["0001_create_things.sql"]


async def test_open_pool_refuses_an_unmigrated_database(empty_database_url: str) -> None:
    with pytest.raises(StorageError, match="sonantica migrate"):
        await open_pool(empty_database_url)


def test_load_migrations_refuses_a_badly_named_file(tmp_path: Path) -> None:
    (tmp_path / "0001_create_things.sql").write_text("SELECT 1;")
    (tmp_path / "create_more.sql").write_text("SELECT 1;")
    with pytest.raises(StorageError, match="NNNN_<verb>_<object>"):
        load_migrations(tmp_path)


def test_migrate_command_applies_then_reports_up_to_date(
    empty_database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SONANTICA_DATABASE_URL", empty_database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    first = runner.invoke(app, ["migrate"])
    second = runner.invoke(app, ["migrate"])
    assert first.exit_code == 0, first.output
    assert f"applied {len(load_migrations())} migration(s)" in first.output
    assert second.exit_code == 0, second.output
    assert "schema is up to date" in second.output
