"""The naive baseline: the scan shelfscan's pipeline replaced, kept as its own code path.

Every speed-up in the benchmark is quoted against this, so it must stay naive on
purpose and must not reuse the pipeline. The definition:

* **One file at a time**, one process, one thread: a sorted `os.walk`, then for each
  `.epub` an `os.stat` and `shelfscan.formats.epub.parse_epub` - the same parser the
  pipeline runs, so the comparison isolates the pipeline and its write strategy.
* **Covers stored** as the pipeline stores them (appended to a `shelfscan.covers.CoverPack`).
* **A find-or-create round trip per name**: every person, series, genre, tag,
  publisher and cover is `SELECT id ... WHERE library_id = $1 AND name_key = $2`
  (covers: `WHERE sha256 = $1`), then `INSERT ... RETURNING id` when missing. No cache.
* **An INSERT per row**: the book, its file, each author/series/genre/tag link, each
  identifier and each table-of-contents chapter.
* **Autocommit** on one asyncpg connection: each INSERT is its own transaction.

It writes the same `shelfscan` tables and columns the pipeline fills for an EPUB, so
the row counts of both can be compared (the harness reports them side by side).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from shelfscan import names
from shelfscan.covers import CoverPack
from shelfscan.formats.epub import parse_epub
from shelfscan.formats.records import Metadata, ParseError

_NAME_TABLES = ("persons", "series", "genres", "tags", "publishers")


@dataclass(slots=True)
class NaiveResult:
    """What the naive scan did: books written, files that failed, statements sent."""

    books: int = 0
    files: int = 0
    failed: int = 0
    statements: int = 0


class _Naive:
    """One connection, one file at a time; `statements` counts every round trip."""

    def __init__(
        self, conn: asyncpg.Connection, library_id: int, root_id: int, covers: Path
    ) -> None:
        self.conn = conn
        self.library_id = library_id
        self.root_id = root_id
        self.covers = CoverPack(covers)
        self.result = NaiveResult()

    async def fetchval(self, sql: str, *args: object) -> Any:
        self.result.statements += 1
        return await self.conn.fetchval(sql, *args)

    async def execute(self, sql: str, *args: object) -> None:
        self.result.statements += 1
        await self.conn.execute(sql, *args)

    async def find_or_create(self, table: str, name: str, sort_name: str | None = None) -> int:
        """SELECT by key, INSERT when missing: two round trips for a new name, one for a known one."""
        assert table in _NAME_TABLES
        key = names.name_key(name)
        found = await self.fetchval(
            f"SELECT id FROM shelfscan.{table} WHERE library_id = $1 AND name_key = $2",
            self.library_id,
            key,
        )
        if found is not None:
            return int(found)
        if table == "persons":
            new = await self.fetchval(
                "INSERT INTO shelfscan.persons (library_id, name, name_key, sort_name) "
                "VALUES ($1, $2, $3, $4) RETURNING id",
                self.library_id,
                names.collapse(name),
                key,
                sort_name or names.person_sort_name(name),
            )
        else:
            new = await self.fetchval(
                f"INSERT INTO shelfscan.{table} (library_id, name, name_key) VALUES ($1, $2, $3) RETURNING id",
                self.library_id,
                names.collapse(name),
                key,
            )
        return int(new)

    async def cover_id(self, meta: Metadata) -> int | None:
        if meta.cover is None:
            return None
        stored = self.covers.store(meta.cover.data, meta.cover.mime)
        found = await self.fetchval(
            "SELECT id FROM shelfscan.covers WHERE sha256 = $1", stored.sha256
        )
        if found is not None:
            return int(found)
        new = await self.fetchval(
            "INSERT INTO shelfscan.covers (sha256, mime, width, height, size, pack, pack_offset) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
            stored.sha256,
            stored.mime,
            stored.width,
            stored.height,
            stored.size,
            stored.pack,
            stored.offset,
        )
        return int(new)

    async def add_file(self, path: str, rel: str) -> None:
        st = os.stat(path)
        self.result.files += 1
        try:
            meta = parse_epub(path)
        except (ParseError, OSError) as exc:
            self.result.failed += 1
            await self.add_error(rel, st, str(exc))
            return
        cover_id = await self.cover_id(meta)
        publisher_id = (
            await self.find_or_create("publishers", meta.publisher) if meta.publisher else None
        )
        title = meta.title or Path(rel).stem
        book_id = await self.fetchval(
            """
            INSERT INTO shelfscan.books (library_id, title, subtitle, sort_title, description,
                publisher_id, release_date, language, cover_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id
            """,
            self.library_id,
            title,
            meta.subtitle,
            names.sort_title(title, meta.language),
            meta.description,
            publisher_id,
            meta.release_date,
            meta.language,
            cover_id,
        )
        file_id = await self.fetchval(
            """
            INSERT INTO shelfscan.files (library_id, root_id, book_id, path, size, mtime_ns, inode,
                format, language, cover_id)
            VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id
            """,
            self.library_id,
            self.root_id,
            book_id,
            rel,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            meta.format,
            meta.language,
            cover_id,
        )
        for order, person in enumerate(meta.contributors):
            person_id = await self.find_or_create("persons", person.name, person.sort_name)
            await self.execute(
                "INSERT INTO shelfscan.book_authors (book_id, person_id, role, sort_order) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                book_id,
                person_id,
                person.role,
                order,
            )
        for order, entry in enumerate(meta.series):
            series_id = await self.find_or_create("series", entry.name)
            await self.execute(
                "INSERT INTO shelfscan.book_series (book_id, series_id, number, sort_order) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                book_id,
                series_id,
                entry.number,
                order,
            )
        for table, link, column, values in (
            ("genres", "book_genres", "genre_id", meta.genres),
            ("tags", "book_tags", "tag_id", meta.tags),
        ):
            for value in values:
                entity_id = await self.find_or_create(table, value)
                await self.execute(
                    f"INSERT INTO shelfscan.{link} (book_id, {column}) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                    book_id,
                    entity_id,
                )
        for ident in meta.identifiers:
            await self.execute(
                "INSERT INTO shelfscan.file_identifiers (file_id, type, value) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING",
                file_id,
                ident.type,
                ident.value,
            )
        for order, chapter in enumerate(meta.chapters):
            await self.execute(
                "INSERT INTO shelfscan.chapters (file_id, sort_order, level, title, start_s, href) "
                "VALUES ($1, $2, $3, $4, $5, $6)",
                file_id,
                order,
                chapter.level,
                chapter.title,
                chapter.start_s,
                chapter.href,
            )
        self.result.books += 1

    async def add_error(self, rel: str, st: os.stat_result, reason: str) -> None:
        """An unreadable file still gets a book named after it, as the pipeline does."""
        title = Path(rel).stem
        book_id = await self.fetchval(
            "INSERT INTO shelfscan.books (library_id, title, sort_title, status) "
            "VALUES ($1, $2, $3, 'error') RETURNING id",
            self.library_id,
            title,
            names.sort_title(title),
        )
        await self.execute(
            "INSERT INTO shelfscan.files (library_id, root_id, book_id, path, size, mtime_ns, inode, "
            "format, status, scan_error) VALUES ($1, $2, $3, $4, $5, $6, $7, 'epub', 'error', $8)",
            self.library_id,
            self.root_id,
            book_id,
            rel,
            st.st_size,
            st.st_mtime_ns,
            st.st_ino,
            reason[:500],
        )


async def naive_scan(url: str, root: Path, covers_dir: Path, library: str) -> NaiveResult:
    """Scan the EPUBs under `root` into library `library` the naive way (see the module doc)."""
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        library_id = await conn.fetchval(
            "SELECT id FROM shelfscan.libraries WHERE name = $1", library
        )
        if library_id is None:
            library_id = await conn.fetchval(
                "INSERT INTO shelfscan.libraries (name) VALUES ($1) RETURNING id", library
            )
        root_id = await conn.fetchval(
            "SELECT id FROM shelfscan.library_paths WHERE library_id = $1 AND path = $2",
            library_id,
            str(root),
        )
        if root_id is None:
            root_id = await conn.fetchval(
                "INSERT INTO shelfscan.library_paths (library_id, path) VALUES ($1, $2) RETURNING id",
                library_id,
                str(root),
            )
        scan = _Naive(conn, library_id, root_id, covers_dir)
        try:
            for path, rel in _epubs(root):
                await scan.add_file(path, rel)
        finally:
            scan.covers.close()
        return scan.result
    finally:
        await conn.close()


def _epubs(root: Path) -> Iterator[tuple[str, str]]:
    """(absolute path, path relative to the root) of every EPUB, in a stable order."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith(".") and name.lower().endswith(".epub"):
                path = os.path.join(folder, name)
                yield path, os.path.relpath(path, root).replace(os.sep, "/")
