"""Apply the ordered plain-SQL migrations in ``sql/NNNN_<verb>_<object>.sql``, each in its own transaction.

Applied files are recorded in ``schema_migrations`` with a SHA-256 of their text; running again is a no-op, and a
file edited after it was applied is refused rather than silently skipped. An advisory lock makes concurrent
``sonantica migrate`` runs (e.g. two Helm hooks) apply each file once. Afterwards the ``vector`` extension is
updated to the version the server has installed (a newer embedded server brings a newer pgvector library).
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.rows import TupleRow

from sidecar.errors import StorageError
from sidecar.storage.db import connect

log = logging.getLogger(__name__)

_FILE_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 7_362_101  # pg_advisory_lock key for migrations ("sonantica")

_VECTOR_VERSIONS = """
SELECT a.installed_version, a.default_version, pg_has_role(e.extowner, 'USAGE')
FROM pg_available_extensions a JOIN pg_extension e ON e.extname = a.name
WHERE a.name = 'vector'
"""

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file: ``version`` is its ``NNNN`` prefix, ``checksum`` the SHA-256 of its text."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        """Hex SHA-256 of the SQL text."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


def migrations_dir() -> Path:
    """The ``sql/`` folder: inside the installed package (wheel) or at the repository root (checkout)."""
    package = Path(__file__).resolve().parent.parent
    for candidate in (package / "sql", package.parent / "sql"):
        if candidate.is_dir():
            return candidate
    raise StorageError(f"no sql/ migrations folder next to {package}")


def load_migrations(directory: Path | None = None) -> list[Migration]:
    """Every ``NNNN_<verb>_<object>.sql`` in ``directory`` (default :func:`migrations_dir`), in version order.

    Raises ``StorageError`` for a ``.sql`` file with another name or two files with one version number.
    """
    folder = directory or migrations_dir()
    found: dict[int, Migration] = {}
    for path in sorted(folder.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise StorageError(f"migration file {path.name!r} is not named NNNN_<verb>_<object>.sql")
        version = int(match.group(1))
        if version in found:
            raise StorageError(f"migrations {found[version].name!r} and {path.name!r} share version {version}")
        found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


async def _applied(conn: psycopg.AsyncConnection[TupleRow]) -> dict[int, str]:
    exists = await conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await exists.fetchone()
    if row is None or not row[0]:
        return {}
    cur = await conn.execute("SELECT version, checksum FROM schema_migrations")
    return {int(version): str(checksum) for version, checksum in await cur.fetchall()}


async def pending_migrations(
    conn: psycopg.AsyncConnection[TupleRow], *, directory: Path | None = None
) -> list[Migration]:
    """Migrations not yet applied to the database ``conn`` is connected to (reads only)."""
    applied = await _applied(conn)
    await conn.rollback()
    return [m for m in load_migrations(directory) if m.version not in applied]


async def migrate(url: str, *, directory: Path | None = None) -> list[str]:
    """Apply every pending migration to the database at ``url``, each in one transaction, in version order.

    Returns the names of the files applied now (empty when the schema was current). Raises ``StorageError`` when
    an applied file's text changed since (checksum mismatch) or a file fails (that file is rolled back; the
    earlier ones stay applied), and ``StorageUnavailableError`` when the server cannot be reached.
    """
    migrations = load_migrations(directory)
    applied_now: list[str] = []
    async with await connect(url, autocommit=True) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            await conn.execute(_CREATE_TABLE)
            applied = await _applied(conn)
            for migration in migrations:
                checksum = applied.get(migration.version)
                if checksum is not None:
                    if checksum != migration.checksum:
                        raise StorageError(
                            f"migration {migration.name} changed after it was applied; add a new migration instead"
                        )
                    continue
                try:
                    async with conn.transaction():
                        await conn.execute(migration.sql.encode())
                        await conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                            (migration.version, migration.name, migration.checksum),
                        )
                except psycopg.Error as exc:
                    raise StorageError(f"migration {migration.name} failed: {exc}") from exc
                log.info("applied migration %s", migration.name)
                applied_now.append(migration.name)
            await _update_vector_extension(conn)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now


async def _update_vector_extension(conn: psycopg.AsyncConnection[TupleRow]) -> None:
    """``ALTER EXTENSION vector UPDATE`` when the server's pgvector library is newer than the database's extension
    and this role owns it; otherwise a warning names the command an owner can run (the sidecar keeps working on
    the older version's features)."""
    row = await (await conn.execute(_VECTOR_VERSIONS)).fetchone()
    if row is None or row[0] == row[1]:
        return
    installed, available, owner = row
    if not owner:
        log.warning(
            "pgvector %s is installed in this database and %s is available; an owner of the extension can run "
            "ALTER EXTENSION vector UPDATE",
            installed,
            available,
        )
        return
    try:
        await conn.execute("ALTER EXTENSION vector UPDATE")
    except psycopg.Error as exc:
        raise StorageError(f"updating pgvector from {installed} to {available} failed: {exc}") from exc
    log.info("updated pgvector from %s to %s", installed, available)
