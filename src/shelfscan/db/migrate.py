"""Plain-SQL migrations from `sql/`, applied in order under an advisory lock."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import asyncpg
import structlog

from shelfscan.db.connect import connect

# Any constant works; it only has to be the same for every shelfscan process.
MIGRATION_LOCK_KEY = 0x5E1F5CA9
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations_dir() -> Path:
    """`sql/` of a source checkout, or the copy packed into the wheel."""
    packed = Path(str(resources.files("shelfscan"))) / "_sql"
    if packed.is_dir():
        return packed
    return Path(__file__).resolve().parents[3] / "sql"


def load_migrations(folder: Path | None = None) -> list[Migration]:
    folder = folder or migrations_dir()
    found = []
    for path in sorted(folder.iterdir()):
        match = _NAME.match(path.name)
        if match:
            found.append(Migration(int(match.group(1)), path.name, path.read_text("utf-8")))
    if not found:
        raise RuntimeError(f"no migrations found in {folder}")
    return found


async def migrate(url: str, pool: asyncpg.Pool | None = None) -> list[str]:
    """Apply what is missing; safe when several processes start at once.

    Every command calls this, so the common case (nothing to apply) is one query: no
    advisory lock, no DDL (~20 ms of a 0.6 s CLI scan otherwise), and with the caller's
    `pool` not even a connection of its own (a backend start and a type look-up: for a
    small CLI scan ~50 ms under load)."""
    log = structlog.get_logger("shelfscan.migrate")
    migrations = load_migrations()
    if pool is not None:
        async with pool.acquire() as pooled:
            if await _up_to_date(pooled, migrations):
                return []
    conn = await connect(url, typed=False)
    try:
        if await _up_to_date(conn, migrations):
            return []
        await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        try:
            return await _apply(conn, migrations, log)
        finally:
            await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK_KEY)
    finally:
        await conn.close()


async def _up_to_date(conn: asyncpg.Connection, migrations: list[Migration]) -> bool:
    """Every migration file has its row (a newer schema than these files also counts).

    Rows, not `array_agg`: an int[] result makes asyncpg introspect the array type, a
    recursive catalogue query that costs a fresh backend ~20 ms."""
    try:
        done = await conn.fetch("SELECT version FROM shelfscan.schema_migrations")
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return False
    return {m.version for m in migrations} <= {r[0] for r in done}


async def _apply(
    conn: asyncpg.Connection, migrations: list[Migration], log: structlog.stdlib.BoundLogger
) -> list[str]:
    # A schema pre-created by a DBA is enough: CREATE SCHEMA IF NOT EXISTS would still
    # need the CREATE privilege on the database.
    if await conn.fetchval("SELECT to_regnamespace('shelfscan')") is None:
        await conn.execute("CREATE SCHEMA shelfscan")
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS shelfscan.schema_migrations (
            version    integer PRIMARY KEY,
            name       text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        );
        """
    )
    done = {
        r["version"] for r in await conn.fetch("SELECT version FROM shelfscan.schema_migrations")
    }
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        async with conn.transaction():
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO shelfscan.schema_migrations (version, name) VALUES ($1, $2)",
                migration.version,
                migration.name,
            )
        log.info("migration_applied", migration=migration.name)
        applied.append(migration.name)
    return applied
