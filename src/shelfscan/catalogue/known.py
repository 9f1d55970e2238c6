"""What the catalogue already knows about a library's files, and bulk status changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg


@dataclass(frozen=True, slots=True)
class KnownFile:
    id: int
    book_id: int
    root_id: int
    path: str
    size: int
    mtime_ns: int
    inode: int | None
    status: str


async def load_known_files(pool: asyncpg.Pool, library_id: int) -> dict[tuple[int, str], KnownFile]:
    """One bulk read: the diff must not cost a round trip per file."""
    rows = await pool.fetch(
        """
        SELECT id, book_id, root_id, path, size, mtime_ns, inode, status
        FROM shelfscan.files WHERE library_id = $1
        """,
        library_id,
    )
    return {(r["root_id"], r["path"]): KnownFile(*r) for r in rows}


async def mark_missing(pool: asyncpg.Pool, library_id: int, file_ids: Sequence[int]) -> int:
    """Files that vanished are marked, never deleted: a remount must not wipe a library."""
    if not file_ids:
        return 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE shelfscan.files SET status = 'missing', missing_since = now(), updated_at = now()
            WHERE id = ANY($1::bigint[]) AND status <> 'missing'
            """,
            list(file_ids),
        )
        result: str = await conn.execute(
            """
            UPDATE shelfscan.books b SET status = 'missing', updated_at = now()
            WHERE b.library_id = $1 AND b.status <> 'missing'
              AND b.id IN (SELECT book_id FROM shelfscan.files WHERE id = ANY($2::bigint[]))
              AND NOT EXISTS (SELECT 1 FROM shelfscan.files f
                              WHERE f.book_id = b.id AND f.status <> 'missing')
            """,
            library_id,
            list(file_ids),
        )
    return int(result.split()[-1])


async def mark_restored(pool: asyncpg.Pool, file_ids: Sequence[int]) -> int:
    """Unchanged files that had been missing come back with their book."""
    if not file_ids:
        return 0
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE shelfscan.files SET status = CASE WHEN scan_error IS NULL THEN 'ok' ELSE 'error' END,
                missing_since = NULL, updated_at = now()
            WHERE id = ANY($1::bigint[])
            """,
            list(file_ids),
        )
        result: str = await conn.execute(
            """
            UPDATE shelfscan.books SET status = 'ok', updated_at = now()
            WHERE status = 'missing'
              AND id IN (SELECT book_id FROM shelfscan.files WHERE id = ANY($1::bigint[]))
            """,
            list(file_ids),
        )
    return int(result.split()[-1])


async def record_file_errors(
    pool: asyncpg.Pool, errors: Sequence[tuple[int, str, int, int, int | None]]
) -> None:
    """A known file that no longer parses keeps its book and metadata; the file carries the reason.

    `errors` holds (file id, reason, size, mtime_ns, inode).
    """
    if not errors:
        return
    await pool.executemany(
        """
        UPDATE shelfscan.files SET status = 'error', scan_error = $2, size = $3, mtime_ns = $4,
            inode = $5, missing_since = NULL, updated_at = now()
        WHERE id = $1
        """,
        errors,
    )


async def load_known_paths(
    pool: asyncpg.Pool, root_id: int, paths: Sequence[str]
) -> dict[tuple[int, str], KnownFile]:
    """The catalogue's rows for a few thousand named files (a part of a split scan)."""
    rows = await pool.fetch(
        """
        SELECT id, book_id, root_id, path, size, mtime_ns, inode, status
        FROM shelfscan.files WHERE root_id = $1 AND path = ANY($2::text[])
        """,
        root_id,
        list(paths),
    )
    return {(r["root_id"], r["path"]): KnownFile(*r) for r in rows}


@dataclass(frozen=True, slots=True)
class KnownSidecar:
    id: int
    root_id: int
    path: str
    size: int
    mtime_ns: int


async def load_known_sidecars(
    pool: asyncpg.Pool, library_id: int
) -> dict[tuple[int, str], KnownSidecar]:
    rows = await pool.fetch(
        "SELECT id, root_id, path, size, mtime_ns FROM shelfscan.sidecars WHERE library_id = $1",
        library_id,
    )
    return {(r["root_id"], r["path"]): KnownSidecar(*r) for r in rows}


async def save_sidecars(
    pool: asyncpg.Pool,
    library_id: int,
    seen: Sequence[tuple[int, str, int, int]],
    gone: Sequence[int],
) -> None:
    """Remember sidecar sizes and mtimes, so that only an edit triggers a refresh."""
    if seen:
        await pool.execute(
            """
            INSERT INTO shelfscan.sidecars (library_id, root_id, path, size, mtime_ns)
            SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[])
            ON CONFLICT (root_id, path) DO UPDATE SET size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns
            """,
            library_id,
            [s[0] for s in seen],
            [s[1] for s in seen],
            [s[2] for s in seen],
            [s[3] for s in seen],
        )
    if gone:
        await pool.execute(
            "DELETE FROM shelfscan.sidecars WHERE id = ANY($1::bigint[])", list(gone)
        )
