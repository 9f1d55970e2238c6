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
    """Create the library and add any new roots; existing roots are kept."""
    async with pool.acquire() as conn, conn.transaction():
        library_id = await conn.fetchval(
            """
            INSERT INTO shelfscan.libraries (name) VALUES ($1)
            ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id
            """,
            name,
        )
        if paths:
            await conn.execute(
                """
                INSERT INTO shelfscan.library_paths (library_id, path)
                SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING
                """,
                library_id,
                [str(p) for p in paths],
            )
    found = await get_library(pool, name)
    assert found is not None
    return found


async def get_library(pool: asyncpg.Pool, name: str) -> Library | None:
    rows = await pool.fetch(
        """
        SELECT l.id, l.name, p.id AS root_id, p.path
        FROM shelfscan.libraries l LEFT JOIN shelfscan.library_paths p ON p.library_id = l.id
        WHERE l.name = $1 ORDER BY p.id
        """,
        name,
    )
    if not rows:
        return None
    roots = tuple(Root(r["root_id"], Path(r["path"])) for r in rows if r["root_id"] is not None)
    return Library(rows[0]["id"], rows[0]["name"], roots)


def default_library_name(paths: list[Path]) -> str:
    """The folder name of the first root: `shelfscan scan ~/Books` makes library "Books"."""
    return paths[0].resolve().name or "library"
