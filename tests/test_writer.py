"""Per-book atomicity: a book is never half-written, and one bad book loses only itself."""

from __future__ import annotations

import asyncpg

from shelfscan.catalogue.writer import BookRow, BookWriter, ChapterRow, FileRow


async def _library_with_root(pool: asyncpg.Pool) -> tuple[int, int]:
    library_id = await pool.fetchval(
        "INSERT INTO shelfscan.libraries (name) VALUES ('w') RETURNING id"
    )
    root_id = await pool.fetchval(
        "INSERT INTO shelfscan.library_paths (library_id, path) VALUES ($1, '/books') RETURNING id",
        library_id,
    )
    return library_id, root_id


def _book(library_id: int, root_id: int, title: str, chapter_title: str, person_id: int) -> BookRow:
    return BookRow(
        book_id=None,
        library_id=library_id,
        title=title,
        sort_title=title,
        authors=((person_id, "author"),),
        files=(
            FileRow(
                file_id=None,
                root_id=root_id,
                path=f"{title}.epub",
                size=10,
                mtime_ns=1,
                inode=1,
                format="epub",
                identifiers=(("isbn_13", "9780000000002"),),
                chapters=(ChapterRow("Prologue"), ChapterRow(chapter_title, 1)),
            ),
        ),
    )


async def test_a_book_failing_midway_leaves_no_rows_and_the_batch_still_lands(
    pool: asyncpg.Pool,
) -> None:
    library_id, root_id = await _library_with_root(pool)
    person = await pool.fetchval(
        "INSERT INTO shelfscan.persons (library_id, name, name_key) VALUES ($1, 'A', 'a') RETURNING id",
        library_id,
    )
    # PostgreSQL text cannot hold NUL: this book fails at its chapters, after its
    # book and file rows were already sent.
    books = [
        _book(library_id, root_id, "first", "One", person),
        _book(library_id, root_id, "broken", "Bad\x00Chapter", person),
        _book(library_id, root_id, "third", "Three", person),
    ]
    writer = BookWriter(pool)
    result = await writer.write(books)

    assert writer.fallbacks == 1
    assert [f.book.title for f in result.failed] == ["broken"]
    assert "database write failed" in result.failed[0].error
    assert len(result.written) == 2
    titles = await pool.fetch("SELECT title FROM shelfscan.books ORDER BY title")
    assert [r["title"] for r in titles] == ["first", "third"]
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files") == 2
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.chapters") == 4
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.file_identifiers") == 2
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.book_authors") == 2
    assert (
        await pool.fetchval("SELECT count(*) FROM shelfscan.files WHERE path = 'broken.epub'") == 0
    )


async def test_a_good_batch_is_one_transaction(pool: asyncpg.Pool) -> None:
    library_id, root_id = await _library_with_root(pool)
    person = await pool.fetchval(
        "INSERT INTO shelfscan.persons (library_id, name, name_key) VALUES ($1, 'A', 'a') RETURNING id",
        library_id,
    )
    books = [_book(library_id, root_id, f"b{i}", "c", person) for i in range(20)]
    writer = BookWriter(pool)
    result = await writer.write(books)
    assert (writer.batches, writer.fallbacks, len(result.failed)) == (1, 0, 0)
    xmins = await pool.fetch("SELECT DISTINCT xmin::text FROM shelfscan.books")
    assert len(xmins) == 1  # every book row was written by the same transaction


async def test_rewriting_a_book_replaces_its_links_in_place(pool: asyncpg.Pool) -> None:
    library_id, root_id = await _library_with_root(pool)
    person = await pool.fetchval(
        "INSERT INTO shelfscan.persons (library_id, name, name_key) VALUES ($1, 'A', 'a') RETURNING id",
        library_id,
    )
    writer = BookWriter(pool)
    first = await writer.write([_book(library_id, root_id, "t", "old", person)])
    book_id = first.written[0]
    file_id = await pool.fetchval("SELECT id FROM shelfscan.files")
    base = _book(library_id, root_id, "t", "new", person)
    updated = BookRow(
        book_id=book_id,
        library_id=library_id,
        title="t2",
        sort_title="t2",
        files=(
            FileRow(file_id, root_id, "t.epub", 11, 2, 1, "epub", chapters=(ChapterRow("only"),)),
        ),
        authors=base.authors,
    )
    result = await writer.write([updated])
    assert result.written == (book_id,)
    assert await pool.fetchval("SELECT title FROM shelfscan.books WHERE id = $1", book_id) == "t2"
    assert [r["title"] for r in await pool.fetch("SELECT title FROM shelfscan.chapters")] == [
        "only"
    ]
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.file_identifiers") == 0
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files") == 1
