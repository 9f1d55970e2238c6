"""Libraries and their root folders."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import asyncpg


@dataclass(frozen=True, slots=True)
class Root:
    id: int
    path: Path


@dataclass(frozen=True, slots=True)
class Library:
    id: int
    name: str
    roots: tuple[Root, ...]


async def ensure_library(pool: asyncpg.Pool, name: str, paths: list[Path]) -> Library:
    """Create the library and add any new roots; existing roots are kept.

    Idempotent without burning identity values: `INSERT ... ON CONFLICT` takes
    a sequence value even when the row exists, so `compose up` running
    `library add` every time would skip ids; `WHERE NOT EXISTS` takes one only
    for a real insert. Two callers racing on a new name are serialised by a
    transaction-level advisory lock on the name.
    """
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(1399676259, hashtext($1))", name)
        library_id = await conn.fetchval(
            "SELECT id FROM shelfscan.libraries WHERE name = $1", name
        ) or await conn.fetchval(
            "INSERT INTO shelfscan.libraries (name) VALUES ($1) RETURNING id", name
        )
        if paths:
            await conn.execute(
                """
                INSERT INTO shelfscan.library_paths (library_id, path)
                SELECT $1, p FROM unnest($2::text[]) AS t(p)
                WHERE NOT EXISTS (SELECT 1 FROM shelfscan.library_paths
                                  WHERE library_id = $1 AND path = t.p)
                """,
                library_id,
                list(dict.fromkeys(str(p) for p in paths)),
            )
    found = await get_library(pool, name)
    assert found is not None
    return found


_LIBRARY_SQL = """
SELECT l.id, l.name, p.id AS root_id, p.path
FROM shelfscan.libraries l LEFT JOIN shelfscan.library_paths p ON p.library_id = l.id
WHERE {where} ORDER BY p.id
"""


async def get_library(pool: asyncpg.Pool, name: str) -> Library | None:
    return _library(await pool.fetch(_LIBRARY_SQL.format(where="l.name = $1"), name))


async def library_by_id(pool: asyncpg.Pool, library_id: int) -> Library | None:
    return _library(await pool.fetch(_LIBRARY_SQL.format(where="l.id = $1"), library_id))


def _library(rows: list[asyncpg.Record]) -> Library | None:
    if not rows:
        return None
    roots = tuple(Root(r["root_id"], Path(r["path"])) for r in rows if r["root_id"] is not None)
    return Library(rows[0]["id"], rows[0]["name"], roots)


def default_library_name(paths: list[Path]) -> str:
    """The folder name of the first root: `shelfscan scan ~/Books` makes library "Books"."""
    return paths[0].resolve().name or "library"
