"""Atomic book writes: a book and everything it links to commit together or not at all.

Books are written in batches, one transaction per batch, with every table fed
by one array-valued statement. When a batch fails, it is rolled back and its
books are written again one transaction each, so one bad book costs only itself.
Every text value passes `pg_text` here, the one door to the catalogue tables,
so a name or tag PostgreSQL cannot store costs an escape, not the book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import asyncpg

from shelfscan.catalogue.pathcodec import to_db
from shelfscan.db.retry import Backoff, connection_lost, retry_on_lost_connection
from shelfscan.errors import ShelfscanError, one_line
from shelfscan.pgtext import pg_text, pg_text_or_none


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


# audio technical
@dataclass(frozen=True, slots=True)
class AudioRow:
    """A `shelfscan.file_audio` row: one audio file's part numbers and stream facts."""

    album: str | None = None
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    disc_total: int | None = None
    composer: str | None = None
    codec: str | None = None
    bitrate: int | None = None
    sample_rate: int | None = None
    channels: int | None = None


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
    # audio technical
    audio: AudioRow | None = None
    # books (issue 10): damage the parser read around; the file is still "ok"
    warning: str | None = None


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
    # comics (issue 10)
    age_rating: str | None = None
    reading_direction: str | None = None
    web_link: str | None = None
    volume: int | None = None
    volume_count: int | None = None
    issue_count: int | None = None
    subjects: tuple[tuple[int, Decimal | None], ...] = ()  # (subject id, arc number) in order


@dataclass(frozen=True, slots=True)
class WriteFailure:
    book: BookRow
    error: str


@dataclass(frozen=True, slots=True)
class WriteResult:
    written: tuple[int, ...]  # book ids, in input order of the books that landed
    failed: tuple[WriteFailure, ...]


# What one bad book raises; a lost connection is told apart first (`connection_lost`).
_BOOK_ERRORS = (asyncpg.PostgresError, ValueError, TypeError)


class _CommitUnknown(ShelfscanError, ConnectionResetError):
    """The connection died during COMMIT and the server cannot say yet whether it landed."""


class BookWriter:
    """Writes chunks of books, each in one transaction, on a fresh connection every try.

    A chunk that fails on a lost connection is written again on a new one
    (with backoff), so a killed backend or a server restart costs a pause, not
    books; a chunk that fails on its data is rolled back and written again book
    by book, each on a fresh connection, so only the bad book is lost. When the
    connection dies during COMMIT, the transaction's id tells whether it
    landed, so a chunk is never written twice.
    """

    def __init__(self, pool: asyncpg.Pool, backoff: Backoff | None = None) -> None:
        self._pool = pool
        self._backoff = backoff or Backoff()
        self.batches = 0
        self.fallbacks = 0
        self.reconnects = 0

    async def write(self, books: Sequence[BookRow]) -> WriteResult:
        if not books:
            return WriteResult((), ())
        try:
            ids = await self._commit(books)
            self.batches += 1
            return WriteResult(tuple(ids), ())
        except _BOOK_ERRORS as exc:
            if len(books) == 1:
                return WriteResult((), (WriteFailure(books[0], _reason(exc)),))
        # The batch is rolled back: retry book by book so only the bad one is lost.
        self.fallbacks += 1
        written: list[int] = []
        failed: list[WriteFailure] = []
        for book in books:
            try:
                written.extend(await self._commit([book]))
            except _BOOK_ERRORS as exc:
                failed.append(WriteFailure(book, _reason(exc)))
        return WriteResult(tuple(written), tuple(failed))

    async def _commit(self, books: Sequence[BookRow]) -> list[int]:
        """`books` in one transaction; retried on a new connection while the connection is lost."""
        pending: list[tuple[int, list[int]]] = []  # (xid, ids) of a COMMIT whose answer was lost
        attempts = 0

        async def attempt() -> list[int]:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self.reconnects += 1
            if pending:
                if await self._landed(*pending[0]):
                    return pending[0][1]
                pending.clear()
            xid = 0
            ids: list[int] | None = None
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    xid = await conn.fetchval("SELECT txid_current()")
                    ids = await _write_batch(conn, books)
            except Exception as exc:
                # Lost during COMMIT (or while the pool reset the connection after it):
                # the next attempt first asks the server whether it landed.
                if ids is not None and connection_lost(exc):
                    pending.append((xid, ids))
                raise
            return ids

        return await retry_on_lost_connection(attempt, "writing books", self._backoff)

    async def _landed(self, xid: int, ids: list[int]) -> bool:
        """Did transaction `xid`, which wrote book `ids[0]`, commit?

        The book row must carry `xid` as its xmin: a transaction id alone is not
        proof, since after a crash PostgreSQL may hand out ids again that never
        reached the disk (and then calls ours "in the future").
        """
        async with self._pool.acquire() as conn:
            try:
                status = await conn.fetchval("SELECT txid_status($1)", xid)
            except asyncpg.InvalidParameterValueError:
                status = None  # "in the future": it died with the server, never committed
            if status == "in progress":  # the killed backend is still rolling it back
                raise _CommitUnknown(f"transaction {xid} still in progress")
            xmin = await conn.fetchval(
                "SELECT xmin::text FROM shelfscan.books WHERE id = $1", ids[0]
            )
        return bool(status == "committed" and xmin == str(xid % 2**32))


def _reason(exc: BaseException) -> str:
    return pg_text(one_line(f"database write failed: {one_line(exc)}"))


def _error(reason: str | None) -> str | None:
    """A file's `scan_error`: one line, storable."""
    return None if reason is None else pg_text(one_line(reason))


_FILE_COLUMNS = [
    "id", "library_id", "root_id", "book_id", "path", "path_raw", "size", "mtime_ns", "inode",
    "format", "status", "scan_error", "language", "duration_s", "page_count", "cover_id",
    "sort_order", "device", "fingerprint",
    "warning",  # books (issue 10)
]  # fmt: skip

_BOOK_COLUMNS = [
    "id", "library_id", "title", "subtitle", "sort_title", "description", "publisher_id",
    "release_date", "language", "status", "cover_id", "field_sources",
    "age_rating", "reading_direction", "web_link", "volume", "volume_count", "issue_count",
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
    ),
    # comics (issue 10): each subject kind is its own relationship field ("characters", ...).
    "book_subjects": (
        "WHERE NOT EXISTS (SELECT 1 FROM shelfscan.books b JOIN shelfscan.subjects s "
        "ON s.id = t.subject_id WHERE b.id = t.book_id AND b.field_sources->>(s.kind || 's') = 'manual')"
    ),
}


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

    only_new = not old_book_ids and not old_file_ids
    book_rows = [
        (
            bid, b.library_id, pg_text(b.title), pg_text_or_none(b.subtitle), pg_text(b.sort_title),
            pg_text_or_none(b.description), b.publisher_id, pg_text_or_none(b.release_date),
            pg_text_or_none(b.language), b.status, cover_ids[b.cover.sha256] if b.cover else None,
            # Field names and source names: shelfscan's own words, never a file's text.
            b.field_sources,
            # comics (issue 10)
            pg_text_or_none(b.age_rating), b.reading_direction, pg_text_or_none(b.web_link),
            b.volume, b.volume_count, b.issue_count,
        )
        for bid, b in zip(book_ids, books, strict=True)
    ]  # fmt: skip
    if only_new:
        # A first scan's books: fresh ids, nothing to merge with, so COPY (no conflict
        # check, no manual-field CASEs, no array encoding).
        await conn.copy_records_to_table(
            "books", records=book_rows, columns=_BOOK_COLUMNS, schema_name="shelfscan"
        )
    else:
        await conn.execute(
            """
            INSERT INTO shelfscan.books AS b (id, library_id, title, subtitle, sort_title,
                description, publisher_id, release_date, language, status, cover_id, field_sources,
                age_rating, reading_direction, web_link, volume, volume_count, issue_count)
            SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[],
                $6::text[], $7::bigint[], $8::text[], $9::text[], $10::text[], $11::bigint[], $12::jsonb[],
                $13::text[], $14::text[], $15::text[], $16::int[], $17::int[], $18::int[])
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
                -- comics (issue 10)
                age_rating = CASE WHEN b.field_sources->>'age_rating' = 'manual'
                                  THEN b.age_rating ELSE EXCLUDED.age_rating END,
                reading_direction = CASE WHEN b.field_sources->>'reading_direction' = 'manual'
                                         THEN b.reading_direction ELSE EXCLUDED.reading_direction END,
                web_link = CASE WHEN b.field_sources->>'web_link' = 'manual'
                                THEN b.web_link ELSE EXCLUDED.web_link END,
                volume = CASE WHEN b.field_sources->>'volume' = 'manual'
                              THEN b.volume ELSE EXCLUDED.volume END,
                volume_count = CASE WHEN b.field_sources->>'volume_count' = 'manual'
                                    THEN b.volume_count ELSE EXCLUDED.volume_count END,
                issue_count = CASE WHEN b.field_sources->>'issue_count' = 'manual'
                                   THEN b.issue_count ELSE EXCLUDED.issue_count END,
                status = EXCLUDED.status,
                -- A user's edits stay marked manual; everything else is recomputed.
                field_sources = EXCLUDED.field_sources || COALESCE((
                    SELECT jsonb_object_agg(k, v) FROM jsonb_each(b.field_sources) AS e(k, v)
                    WHERE v = '"manual"'::jsonb), '{}'::jsonb),
                updated_at = now()
            """,
            *(list(col) for col in zip(*book_rows, strict=True)),
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
        # comics (issue 10): a subject kind marked manual keeps its links, the others go.
        await conn.execute(
            """
            DELETE FROM shelfscan.book_subjects bs USING shelfscan.subjects s, shelfscan.books b
            WHERE bs.book_id = ANY($1::bigint[]) AND s.id = bs.subject_id AND b.id = bs.book_id
              AND b.field_sources->>(s.kind || 's') IS DISTINCT FROM 'manual'
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
    file_rows = [
        (
            fid, books[0].library_id, f.root_id, bid, *to_db(f.path), f.size, f.mtime_ns, f.inode,
            f.format, f.status, _error(f.scan_error), pg_text_or_none(f.language), f.duration_s, f.page_count,
            cover_ids[f.cover.sha256] if f.cover else None, f.sort_order, f.device, f.fingerprint,
            pg_text_or_none(f.warning),
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
                cover_id, sort_order, device, fingerprint, warning, missing_since)
            SELECT t.*, NULL::timestamptz FROM unnest($1::bigint[], $2::bigint[], $3::bigint[],
                $4::bigint[], $5::text[], $6::bytea[], $7::bigint[], $8::bigint[], $9::bigint[],
                $10::text[], $11::text[], $12::text[], $13::text[], $14::float8[], $15::int[],
                $16::bigint[], $17::int[], $18::bigint[], $19::text[],
                $20::text[]) AS t
            ON CONFLICT (id) DO UPDATE SET
                book_id = EXCLUDED.book_id, root_id = EXCLUDED.root_id, path = EXCLUDED.path,
                path_raw = EXCLUDED.path_raw, device = EXCLUDED.device,
                fingerprint = COALESCE(EXCLUDED.fingerprint, f.fingerprint),
                size = EXCLUDED.size, mtime_ns = EXCLUDED.mtime_ns, inode = EXCLUDED.inode,
                format = EXCLUDED.format, status = EXCLUDED.status, scan_error = EXCLUDED.scan_error,
                language = EXCLUDED.language, duration_s = EXCLUDED.duration_s,
                page_count = EXCLUDED.page_count, cover_id = EXCLUDED.cover_id,
                sort_order = EXCLUDED.sort_order, missing_since = NULL, updated_at = now(),
                warning = EXCLUDED.warning
            """,
            *(list(col) for col in zip(*file_rows, strict=True)),
        )
    await _insert_links(conn, books, book_ids, files, only_new=only_new)
    await _write_audio(conn, files, only_new=only_new)
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


# audio technical
_AUDIO_COLUMNS = [
    "file_id", "album", "track_number", "track_total", "disc_number", "disc_total",
    "composer", "codec", "bitrate", "sample_rate", "channels",
]  # fmt: skip


async def _write_audio(
    conn: asyncpg.Connection,
    files: list[tuple[int, int, FileRow]],
    *,
    only_new: bool,
) -> None:
    """Write the files' `file_audio` rows in one statement; books without audio cost none.

    An upsert is enough on a rescan: a file keeps its extension, and every audio
    file that parses has facts, so no stale row is left behind.
    """
    rows = [
        (
            fid, a.album, a.track_number, a.track_total, a.disc_number, a.disc_total,
            a.composer, a.codec, a.bitrate, a.sample_rate, a.channels,
        )
        for fid, _, f in files
        if (a := f.audio) is not None
    ]  # fmt: skip
    if only_new:
        if rows:
            await conn.copy_records_to_table(
                "file_audio", records=rows, columns=_AUDIO_COLUMNS, schema_name="shelfscan"
            )
        return
    if rows:
        await conn.execute(
            f"""
            INSERT INTO shelfscan.file_audio ({", ".join(_AUDIO_COLUMNS)})
            SELECT * FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::int[],
                $6::int[], $7::text[], $8::text[], $9::int[], $10::int[], $11::int[])
            ON CONFLICT (file_id) DO UPDATE SET
                {", ".join(f"{c} = EXCLUDED.{c}" for c in _AUDIO_COLUMNS[1:])}
            """,
            *(list(col) for col in zip(*rows, strict=True)),
        )


async def _upsert_covers(conn: asyncpg.Connection, covers: list[CoverRow]) -> dict[str, int]:
    """One round trip: new covers are inserted, known ones (first copy wins) are looked up.

    DO UPDATE, not DO NOTHING: it locks a known row until commit, so a covers compaction
    cannot judge it unreferenced meanwhile, and it restores the bytes of a row that lost
    its pack (sorted by hash: concurrent writers lock in one order)."""
    if not covers:
        return {}
    unique = sorted({c.sha256: c for c in covers}.values(), key=lambda c: c.sha256)
    shas = [c.sha256 for c in unique]
    rows = await conn.fetch(
        """
        WITH ins AS (
            INSERT INTO shelfscan.covers (sha256, mime, width, height, size, pack, pack_offset)
            SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::bigint[],
                                 $6::text[], $7::bigint[])
            ON CONFLICT (sha256) DO UPDATE
                SET pack = EXCLUDED.pack, pack_offset = EXCLUDED.pack_offset
                WHERE shelfscan.covers.pack IS NULL AND EXCLUDED.pack IS NOT NULL
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
    idents = [
        (fid, pg_text(t), pg_text(v))
        for fid, _, f in files
        for t, v in dict.fromkeys(f.identifiers)
    ]
    chapters = [
        (fid, i, c.level, pg_text(c.title), c.start_s, pg_text_or_none(c.href))
        for fid, _, f in files
        for i, c in enumerate(f.chapters)
    ]
    subjects = [  # comics (issue 10)
        (bid, sid, num, i)
        for bid, b in zip(book_ids, books, strict=True)
        for i, (sid, num) in enumerate(dict(b.subjects).items())
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
        (
            "book_subjects (book_id, subject_id, number, sort_order)",
            subjects,
            ("bigint", "bigint", "numeric", "int"),
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
