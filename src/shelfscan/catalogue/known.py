"""What the catalogue already knows about a library's files, and bulk status changes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from shelfscan.catalogue.pathcodec import from_db, to_db
from shelfscan.errors import one_line
from shelfscan.pgtext import pg_text


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
    device: int | None = None
    fingerprint: str | None = None


_KNOWN_COLUMNS = (
    "id, book_id, root_id, path, path_raw, size, mtime_ns, inode, status, device, fingerprint"
)


_FETCH_BATCH = 5000


class _KnownRows:
    """Rows of `shelfscan.files` turned into `KnownFile`s, sharing what repeats.

    A library-wide scan holds one `KnownFile` per file (a million in a big library), so
    the values that repeat across rows are stored once: the status text and the
    device number (asyncpg hands out a fresh object for each row's value). One per
    load: nothing outlives the scan that asked.
    """

    def __init__(self) -> None:
        self._shared: dict[object, object] = {}
        self.files: dict[tuple[int, str], KnownFile] = {}

    def add(self, rows: Sequence[asyncpg.Record]) -> None:
        shared = self._shared.setdefault
        files = self.files
        for r in rows:
            root_id: int = r["root_id"]
            path = from_db(r["path"], r["path_raw"])
            files[(root_id, path)] = KnownFile(
                r["id"],
                r["book_id"],
                root_id,
                path,
                r["size"],
                r["mtime_ns"],
                r["inode"],
                shared(r["status"], r["status"]),  # type: ignore[arg-type]
                shared(r["device"], r["device"]),  # type: ignore[arg-type]
                r["fingerprint"],
            )

    @classmethod
    async def fetch(
        cls, pool: asyncpg.Pool, query: str, *args: object
    ) -> dict[tuple[int, str], KnownFile]:
        """Run `query` through a cursor, `_FETCH_BATCH` rows at a time.

        `pool.fetch` would hold every row as a Record until the last one arrived,
        beside the `KnownFile`s built from them: at 200,000 files that doubled the
        memory of this step. A batch's Records are dropped as soon as they are converted.
        """
        known = cls()
        async with pool.acquire() as conn, conn.transaction():
            cursor = await conn.cursor(query, *args)
            while rows := await cursor.fetch(_FETCH_BATCH):
                known.add(rows)
        return known.files


async def load_known_files(pool: asyncpg.Pool, library_id: int) -> dict[tuple[int, str], KnownFile]:
    """One bulk read: the diff must not cost a round trip per file."""
    return await _KnownRows.fetch(
        pool, f"SELECT {_KNOWN_COLUMNS} FROM shelfscan.files WHERE library_id = $1", library_id
    )


async def mark_missing(pool: asyncpg.Pool, library_id: int, file_ids: Sequence[int]) -> list[int]:
    """Files that vanished are marked, never deleted: a remount must not wipe a library.

    Returns the ids of the books that went missing with them (all their files gone).
    """
    if not file_ids:
        return []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE shelfscan.files SET status = 'missing', missing_since = now(), updated_at = now()
            WHERE id = ANY($1::bigint[]) AND status <> 'missing'
            """,
            list(file_ids),
        )
        rows = await conn.fetch(
            """
            UPDATE shelfscan.books b SET status = 'missing', updated_at = now()
            WHERE b.library_id = $1 AND b.status <> 'missing'
              AND b.id IN (SELECT book_id FROM shelfscan.files WHERE id = ANY($2::bigint[]))
              AND NOT EXISTS (SELECT 1 FROM shelfscan.files f
                              WHERE f.book_id = b.id AND f.status <> 'missing')
            RETURNING b.id
            """,
            library_id,
            list(file_ids),
        )
    return [r["id"] for r in rows]


async def mark_restored(pool: asyncpg.Pool, file_ids: Sequence[int]) -> list[int]:
    """Unchanged files that had been missing come back with their book (whose id is returned)."""
    if not file_ids:
        return []
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE shelfscan.files SET status = CASE WHEN scan_error IS NULL THEN 'ok' ELSE 'error' END,
                missing_since = NULL, updated_at = now()
            WHERE id = ANY($1::bigint[])
            """,
            list(file_ids),
        )
        rows = await conn.fetch(
            """
            UPDATE shelfscan.books SET status = 'ok', updated_at = now()
            WHERE status = 'missing'
              AND id IN (SELECT book_id FROM shelfscan.files WHERE id = ANY($1::bigint[]))
            RETURNING id
            """,
            list(file_ids),
        )
    return [r["id"] for r in rows]


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
        [(fid, pg_text(one_line(reason)), *stat) for fid, reason, *stat in errors],
    )


async def load_known_paths(
    pool: asyncpg.Pool, root_id: int, paths: Sequence[str]
) -> dict[tuple[int, str], KnownFile]:
    """The catalogue's rows for a few thousand named files (a part of a split scan)."""
    return await _KnownRows.fetch(
        pool,
        f"SELECT {_KNOWN_COLUMNS} FROM shelfscan.files WHERE root_id = $1 AND path = ANY($2::text[])",
        root_id,
        [to_db(p)[0] for p in paths],
    )


async def load_known_under(
    pool: asyncpg.Pool, root_id: int, folders: Sequence[str]
) -> dict[tuple[int, str], KnownFile]:
    """The catalogue's files below some folders of a root (a targeted scan)."""
    if "" in folders:
        return await _KnownRows.fetch(
            pool, f"SELECT {_KNOWN_COLUMNS} FROM shelfscan.files WHERE root_id = $1", root_id
        )
    prefixes = [to_db(f)[0].rstrip("/") + "/" for f in folders]
    return await _KnownRows.fetch(
        pool,
        f"""SELECT {_KNOWN_COLUMNS} FROM shelfscan.files
            WHERE root_id = $1 AND (path = ANY($2::text[]) OR path LIKE ANY($3::text[]))""",
        root_id,
        [p.rstrip("/") for p in prefixes],
        [p.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%" for p in prefixes],
    )


@dataclass(frozen=True, slots=True)
class Move:
    file_id: int
    book_id: int
    root_id: int
    path: str
    size: int
    mtime_ns: int
    inode: int
    device: int


async def apply_moves(pool: asyncpg.Pool, moves: Sequence[Move]) -> list[int]:
    """A moved or renamed file keeps its row, its book and every edit; only where it is changes.

    Returns the ids of books that had gone missing and are back with the move.
    """
    if not moves:
        return []
    db_paths = [to_db(m.path) for m in moves]
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            """
            UPDATE shelfscan.files f SET root_id = t.root_id, path = t.path, path_raw = t.path_raw,
                inode = t.inode, device = t.device, size = t.size, mtime_ns = t.mtime_ns,
                status = CASE WHEN f.scan_error IS NULL THEN 'ok' ELSE 'error' END,
                missing_since = NULL, updated_at = now()
            FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::bytea[], $5::bigint[], $6::bigint[],
                        $7::bigint[], $8::bigint[])
                 AS t(id, root_id, path, path_raw, inode, device, size, mtime_ns)
            WHERE f.id = t.id
            """,
            [m.file_id for m in moves],
            [m.root_id for m in moves],
            [p for p, _ in db_paths],
            [r for _, r in db_paths],
            [m.inode for m in moves],
            [m.device for m in moves],
            [m.size for m in moves],
            [m.mtime_ns for m in moves],
        )
        rows = await conn.fetch(
            "UPDATE shelfscan.books SET status = 'ok', updated_at = now() "
            "WHERE status = 'missing' AND id = ANY($1::bigint[]) RETURNING id",
            list({m.book_id for m in moves}),
        )
    return [r["id"] for r in rows]


async def purge_missing(
    pool: asyncpg.Pool, older_than_s: float, library_id: int | None = None
) -> tuple[int, int]:
    """The explicit clean-up step: files missing for longer than the grace period, then empty books."""
    async with pool.acquire() as conn, conn.transaction():
        gone = await conn.fetch(
            """
            DELETE FROM shelfscan.files
            WHERE status = 'missing' AND missing_since < now() - make_interval(secs => $1)
              AND ($2::bigint IS NULL OR library_id = $2)
            RETURNING book_id
            """,
            older_than_s,
            library_id,
        )
        books: str = await conn.execute(
            """
            DELETE FROM shelfscan.books b WHERE b.id = ANY($1::bigint[])
              AND NOT EXISTS (SELECT 1 FROM shelfscan.files f WHERE f.book_id = b.id)
            """,
            list({r["book_id"] for r in gone}),
        )
    return len(gone), int(books.split()[-1])


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
        db_paths = [to_db(s[1]) for s in seen]
        await pool.execute(
            """
            INSERT INTO shelfscan.sidecars (library_id, root_id, path, path_raw, size, mtime_ns)
            SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bytea[], $5::bigint[], $6::bigint[])
            ON CONFLICT (root_id, path) DO UPDATE SET size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns
            """,
            library_id,
            [s[0] for s in seen],
            [p for p, _ in db_paths],
            [r for _, r in db_paths],
            [s[2] for s in seen],
            [s[3] for s in seen],
        )
    if gone:
        await pool.execute(
            "DELETE FROM shelfscan.sidecars WHERE id = ANY($1::bigint[])", list(gone)
        )


async def books_with_path_fields(pool: asyncpg.Pool, book_ids: Sequence[int]) -> frozenset[int]:
    """Of `book_ids`, the books holding a field read off the path (`field_sources` value `path`).

    When such a book's file moves, what the old path said is stale, so the scan
    re-reads it from its new place; a book whose fields all came from tags or
    sidecars costs nothing more than the row update. Reads only: planning stays pure.
    """
    if not book_ids:
        return frozenset()
    rows = await pool.fetch(
        """
        SELECT b.id FROM shelfscan.books b
        WHERE b.id = ANY($1::bigint[])
          AND EXISTS (SELECT 1 FROM jsonb_each_text(b.field_sources) s WHERE s.value = 'path')
        """,
        list(book_ids),
    )
    return frozenset(r["id"] for r in rows)
