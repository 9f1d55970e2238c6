"""Atomic book writes: a book and everything it links to commit together or not at all.

Books are written in batches, one transaction per batch, with every table fed
by one array-valued statement. When a batch fails, it is rolled back and its
books are written again one transaction each, so one bad book costs only itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from shelfscan.catalogue.pathcodec import to_db
from shelfscan.errors import one_line


@dataclass(frozen=True, slots=True)
class CoverRow:
    sha256: str
    mime: str | None
    width: int | None
    height: int | None
    size: int
    pack: str | None = None  # where the bytes are: <covers dir>/packs/<pack> at `offset`
    offset: int | None = None


@dataclass(frozen=True, slots=True)
class ChapterRow:
    title: str
    level: int = 0
    href: str | None = None
    start_s: float | None = None


@dataclass(frozen=True, slots=True)
class FileRow:
    file_id: int | None  # None: a new file
    root_id: int
    path: str
    size: int
    mtime_ns: int
    inode: int | None
    format: str
    status: str = "ok"
    scan_error: str | None = None
    language: str | None = None
    duration_s: float | None = None
    page_count: int | None = None
    sort_order: int = 0
    cover: CoverRow | None = None
    previous_book_id: int | None = None  # the book this file belonged to before this write
    device: int | None = None
    fingerprint: str | None = None  # recognises the file after a move
    identifiers: tuple[tuple[str, str], ...] = ()
    narrator_ids: tuple[int, ...] = ()
    chapters: tuple[ChapterRow, ...] = ()


@dataclass(frozen=True, slots=True)
class BookRow:
    book_id: int | None  # None: a new book
    library_id: int
    title: str
    sort_title: str
    files: tuple[FileRow, ...]
    subtitle: str | None = None
    description: str | None = None
    publisher_id: int | None = None
    release_date: str | None = None
    language: str | None = None
    status: str = "ok"
    authors: tuple[tuple[int, str], ...] = ()  # (person id, role) in credit order
    series: tuple[tuple[int, Decimal | None], ...] = ()
    genre_ids: tuple[int, ...] = ()
    tag_ids: tuple[int, ...] = ()
    cover: CoverRow | None = None
    field_sources: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WriteFailure:
    book: BookRow
    error: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    written: tuple[int, ...]  # book ids, in input order of the books that landed
    failed: tuple[WriteFailure, ...]


class BookWriter:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self.batches = 0
        self.fallbacks = 0

    async def write(self, books: Sequence[BookRow]) -> WriteResult:
        if not books:
            return WriteResult((), ())
        async with self._pool.acquire() as conn:
            try:
                async with conn.transaction():
                    ids = await _write_batch(conn, books)
                self.batches += 1
                return WriteResult(tuple(ids), ())
            except (asyncpg.PostgresError, asyncpg.DataError, ValueError, TypeError) as exc:
                if len(books) == 1:
                    return WriteResult((), (WriteFailure(books[0], _write_error(exc)),))
            # The batch is rolled back: retry book by book so only the bad one is lost.
            self.fallbacks += 1
            written: list[int] = []
            failed: list[WriteFailure] = []
            for book in books:
                try:
                    async with conn.transaction():
                        written.extend(await _write_batch(conn, [book]))
                except (asyncpg.PostgresError, asyncpg.DataError, ValueError, TypeError) as exc:
                    failed.append(WriteFailure(book, _write_error(exc)))
            return WriteResult(tuple(written), tuple(failed))


_FILE_COLUMNS = [
    "id", "library_id", "root_id", "book_id", "path", "path_raw", "size", "mtime_ns", "inode",
    "format", "status", "scan_error", "language", "duration_s", "page_count", "cover_id",
    "sort_order", "device", "fingerprint",
]  # fmt: skip

_BOOK_LINKS = (
    ("book_authors", "authors"),
    ("book_series", "series"),
    ("book_genres", "genres"),
    ("book_tags", "tags"),
)

# Inserting links into a book whose relationship is manual would mix a scan into a user's edit.
_MANUAL_GUARD = {
    table: (
        "WHERE NOT EXISTS (SELECT 1 FROM shelfscan.books b WHERE b.id = t.book_id "
        f"AND b.field_sources->>'{fieldname}' = 'manual')"
    )
    for table, fieldname in _BOOK_LINKS
} | {
    "file_narrators": (
        "WHERE NOT EXISTS (SELECT 1 FROM shelfscan.files x JOIN shelfscan.books b ON b.id = x.book_id "
        "WHERE x.id = t.file_id AND b.field_sources->>'narrators' = 'manual')"
    )
}


def _write_error(exc: BaseException) -> str:
    return one_line(f"database write failed: {one_line(exc)}")


async def _allocate(conn: asyncpg.Connection, table: str, count: int) -> list[int]:
    if count == 0:
        return []
    rows = await conn.fetch(
        f"SELECT nextval(pg_get_serial_sequence('shelfscan.{table}', 'id')) AS id "
        "FROM generate_series(1, $1)",
        count,
    )
    return [r["id"] for r in rows]


async def _write_batch(conn: asyncpg.Connection, books: Sequence[BookRow]) -> list[int]:
    """Write `books` on `conn` inside the caller's transaction; return their ids."""
    new_books = sum(1 for b in books if b.book_id is None)
    new_files = sum(1 for b in books for f in b.files if f.file_id is None)
    book_id_pool = iter(await _allocate(conn, "books", new_books))
    file_id_pool = iter(await _allocate(conn, "files", new_files))

    book_ids: list[int] = []
    old_book_ids: list[int] = []
    old_file_ids: list[int] = []
    files: list[tuple[int, int, FileRow]] = []  # (file id, book id, row)
    for book in books:
        if book.book_id is None:
            bid = next(book_id_pool)
        else:
            bid = book.book_id
            old_book_ids.append(bid)
        book_ids.append(bid)
        for f in book.files:
            if f.file_id is None:
                fid = next(file_id_pool)
            else:
                fid = f.file_id
                old_file_ids.append(fid)
            files.append((fid, bid, f))

    cover_ids = await _upsert_covers(
        conn, [f.cover for _, _, f in files if f.cover] + [b.cover for b in books if b.cover]
    )

    await conn.execute(
        """
        INSERT INTO shelfscan.books AS b (id, library_id, title, subtitle, sort_title,
            description, publisher_id, release_date, language, status, cover_id, field_sources)
        SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
            $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::jsonb[])
        ON CONFLICT (id) DO UPDATE SET
            title = CASE WHEN b.field_sources->>'title' = 'manual' THEN b.title ELSE EXCLUDED.title END,
            sort_title = CASE WHEN b.field_sources->>'title' = 'manual'
                                OR b.field_sources->>'sort_title' = 'manual'
                              THEN b.sort_title ELSE EXCLUDED.sort_title END,
            subtitle = CASE WHEN b.field_sources->>'subtitle' = 'manual'
                            THEN b.subtitle ELSE EXCLUDED.subtitle END,
            description = CASE WHEN b.field_sources->>'description' = 'manual'
                               THEN b.description ELSE EXCLUDED.description END,
            publisher_id = CASE WHEN b.field_sources->>'publisher' = 'manual'
                                THEN b.publisher_id ELSE EXCLUDED.publisher_id END,
            release_date = CASE WHEN b.field_sources->>'release_date' = 'manual'
                                THEN b.release_date ELSE EXCLUDED.release_date END,
            language = CASE WHEN b.field_sources->>'language' = 'manual'
                            THEN b.language ELSE EXCLUDED.language END,
            cover_id = CASE WHEN b.field_sources->>'cover' = 'manual'
                            THEN b.cover_id ELSE EXCLUDED.cover_id END,
            status = EXCLUDED.status,
            -- A user's edits stay marked manual; everything else is recomputed.
            field_sources = EXCLUDED.field_sources || COALESCE((
                SELECT jsonb_object_agg(k, v) FROM jsonb_each(b.field_sources) AS e(k, v)
                WHERE v = '"manual"'::jsonb), '{}'::jsonb),
            updated_at = now()
        """,
        book_ids,
        [b.library_id for b in books],
        [b.title for b in books],
        [b.subtitle for b in books],
        [b.sort_title for b in books],
        [b.description for b in books],
        [b.publisher_id for b in books],
        [b.release_date for b in books],
        [b.language for b in books],
        [b.status for b in books],
        [cover_ids[b.cover.sha256] if b.cover else None for b in books],
        [b.field_sources for b in books],
    )
    if old_book_ids:
        # Relationships a user set by hand (field source "manual") are kept.
        for table, fieldname in _BOOK_LINKS:
            await conn.execute(
                f"""
                DELETE FROM shelfscan.{table} WHERE book_id = ANY($1::bigint[])
                  AND book_id NOT IN (SELECT id FROM shelfscan.books
                                      WHERE id = ANY($1::bigint[]) AND field_sources->>'{fieldname}' = 'manual')
                """,
                old_book_ids,
            )
    if old_file_ids:
        await conn.execute(
            """
            WITH i AS (DELETE FROM shelfscan.file_identifiers WHERE file_id = ANY($1::bigint[])),
                 n AS (DELETE FROM shelfscan.file_narrators f WHERE f.file_id = ANY($1::bigint[])
                       AND NOT EXISTS (SELECT 1 FROM shelfscan.files x JOIN shelfscan.books b ON b.id = x.book_id
                                       WHERE x.id = f.file_id AND b.field_sources->>'narrators' = 'manual'))
            DELETE FROM shelfscan.chapters WHERE file_id = ANY($1::bigint[])
            """,
            old_file_ids,
        )
    only_new = not old_book_ids and not old_file_ids
    file_rows = [
        (
            fid, books[0].library_id, f.root_id, bid, *to_db(f.path), f.size, f.mtime_ns, f.inode,
            f.format, f.status, f.scan_error, f.language, f.duration_s, f.page_count,
            cover_ids[f.cover.sha256] if f.cover else None, f.sort_order, f.device, f.fingerprint,
        )
        for fid, bid, f in files
    ]  # fmt: skip
    if only_new:
        # A first scan's files: straight in with COPY (no conflicts possible, ids are fresh).
        await conn.copy_records_to_table(
            "files", records=file_rows, columns=_FILE_COLUMNS, schema_name="shelfscan"
        )
    else:
        await conn.execute(
            """
            INSERT INTO shelfscan.files AS f (id, library_id, root_id, book_id, path, path_raw, size,
                mtime_ns, inode, format, status, scan_error, language, duration_s, page_count,
                cover_id, sort_order, device, fingerprint, missing_since)
            SELECT t.*, NULL::timestamptz FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],
                $4::bigint[], $5::text[], $6::bytea[], $7::bigint[], $8::bigint[], $9::bigint[],
                $10::text[], $11::text[], $12::text[], $13::text[], $14::float8[], $15::int[],
                $16::bigint[], $17::int[], $18::bigint[], $19::text[]) AS t
            ON CONFLICT (id) DO UPDATE SET
                book_id = EXCLUDED.book_id, root_id = EXCLUDED.root_id, path = EXCLUDED.path,
                path_raw = EXCLUDED.path_raw, device = EXCLUDED.device,
                fingerprint = COALESCE(EXCLUDED.fingerprint, f.fingerprint),
                size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, inode = EXCLUDED.inode,
                format = EXCLUDED.format, status = EXCLUDED.status, scan_error = EXCLUDED.scan_error,
                language = EXCLUDED.language, duration_s = EXCLUDED.duration_s,
                page_count = EXCLUDED.page_count, cover_id = EXCLUDED.cover_id,
                sort_order = EXCLUDED.sort_order, missing_since = NULL, updated_at = now()
            """,
            *(list(col) for col in zip(*file_rows, strict=True)),
        )
    await _insert_links(conn, books, book_ids, files, only_new=only_new)
    moved_from = {
        f.previous_book_id for _, bid, f in files if f.previous_book_id not in (None, bid)
    }
    if moved_from:
        # Files regrouped into another book leave their old book empty: it was merged away.
        await conn.execute(
            """
            DELETE FROM shelfscan.books b WHERE b.id = ANY($1::bigint[])
              AND NOT EXISTS (SELECT 1 FROM shelfscan.files f WHERE f.book_id = b.id)
            """,
            list(moved_from),
        )
    return book_ids


async def _upsert_covers(conn: asyncpg.Connection, covers: list[CoverRow]) -> dict[str, int]:
    """One round trip: new covers are inserted, known ones (first copy wins) are looked up."""
    if not covers:
        return {}
    unique = list({c.sha256: c for c in covers}.values())
    shas = [c.sha256 for c in unique]
    rows = await conn.fetch(
        """
        WITH ins AS (
            INSERT INTO shelfscan.covers (sha256, mime, width, height, size, pack, pack_offset)
            SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bigint[],
                                 $6::text[], $7::bigint[])
            ON CONFLICT (sha256) DO NOTHING
            RETURNING id, sha256
        )
        SELECT id, sha256 FROM ins
        UNION ALL
        SELECT id, sha256 FROM shelfscan.covers WHERE sha256 = ANY($1::text[])
        """,
        shas,
        [c.mime for c in unique],
        [c.width for c in unique],
        [c.height for c in unique],
        [c.size for c in unique],
        [c.pack for c in unique],
        [c.offset for c in unique],
    )
    found = {r["sha256"]: r["id"] for r in rows}
    if len(found) < len(shas):
        # Committed by another writer while this statement ran: visible to a new statement.
        rows = await conn.fetch(
            "SELECT id, sha256 FROM shelfscan.covers WHERE sha256 = ANY($1::text[])", shas
        )
        found = {r["sha256"]: r["id"] for r in rows}
    return found


async def _insert_links(
    conn: asyncpg.Connection,
    books: Sequence[BookRow],
    book_ids: list[int],
    files: list[tuple[int, int, FileRow]],
    *,
    only_new: bool,
) -> None:
    authors = [
        (bid, pid, role, i)
        for bid, b in zip(book_ids, books, strict=True)
        for i, (pid, role) in enumerate(dict.fromkeys(b.authors))
    ]
    series = [
        (bid, sid, num, i)
        for bid, b in zip(book_ids, books, strict=True)
        for i, (sid, num) in enumerate(dict(b.series).items())
    ]
    genres = [
        (bid, g) for bid, b in zip(book_ids, books, strict=True) for g in dict.fromkeys(b.genre_ids)
    ]
    tags = [
        (bid, t) for bid, b in zip(book_ids, books, strict=True) for t in dict.fromkeys(b.tag_ids)
    ]
    narrators = [
        (fid, p, i) for fid, _, f in files for i, p in enumerate(dict.fromkeys(f.narrator_ids))
    ]
    idents = [(fid, t, v) for fid, _, f in files for t, v in dict.fromkeys(f.identifiers)]
    chapters = [
        (fid, i, c.level, c.title, c.start_s, c.href)
        for fid, _, f in files
        for i, c in enumerate(f.chapters)
    ]
    statements: list[tuple[str, Sequence[tuple[object, ...]], tuple[str, ...]]] = [
        (
            "book_authors (book_id, person_id, role, sort_order)",
            authors,
            ("bigint", "bigint", "text", "int"),
        ),
        (
            "book_series (book_id, series_id, number, sort_order)",
            series,
            ("bigint", "bigint", "numeric", "int"),
        ),
        ("book_genres (book_id, genre_id)", genres, ("bigint", "bigint")),
        ("book_tags (book_id, tag_id)", tags, ("bigint", "bigint")),
        ("file_narrators (file_id, person_id, sort_order)", narrators, ("bigint", "bigint", "int")),
        ("file_identifiers (file_id, type, value)", idents, ("bigint", "text", "text")),
        (
            "chapters (file_id, sort_order, level, title, start_s, href)",
            chapters,
            ("bigint", "int", "int", "text", "float8", "text"),
        ),
    ]
    for target, rows, types in statements:
        if not rows:
            continue
        table, _, cols = target.partition(" ")
        if only_new:
            # New books have no links yet and no manual edits to respect: COPY is the
            # cheapest way in, for the client (no array encoding) and the server alike.
            await conn.copy_records_to_table(
                table,
                records=rows,
                columns=[c.strip() for c in cols.strip("()").split(",")],
                schema_name="shelfscan",
            )
            continue
        columns = list(zip(*rows, strict=True))
        params = ", ".join(f"${i + 1}::{t}[]" for i, t in enumerate(types))
        guard = _MANUAL_GUARD.get(table, "")
        await conn.execute(
            f"INSERT INTO shelfscan.{target} SELECT * FROM unnest({params}) AS t{cols} {guard} "
            "ON CONFLICT DO NOTHING",
            *columns,
        )
