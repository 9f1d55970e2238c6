"""Per-book atomicity: a book is never half-written, and one bad book loses only itself."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest

from shelfscan.catalogue.entities import EntityKey, EntityName, EntityResolver
from shelfscan.catalogue.writer import BookRow, BookWriter, ChapterRow, FileRow
from shelfscan.db.connect import open_pool
from shelfscan.db.retry import Backoff, DatabaseLost
from shelfscan.errors import one_line
from tests.faults.proxy import pg_proxy


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
    # A person that does not exist: this book fails at its links, after its book and
    # file rows were already sent.
    books = [
        _book(library_id, root_id, "first", "One", person),
        _book(library_id, root_id, "broken", "Two", person + 1000),
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


async def _person(pool: asyncpg.Pool, library_id: int) -> int:
    person: int = await pool.fetchval(
        "INSERT INTO shelfscan.persons (library_id, name, name_key) VALUES ($1, 'A', 'a') RETURNING id",
        library_id,
    )
    return person


async def _kill_writes_of(pool: asyncpg.Pool, title: str, times: int, *, alone: bool) -> None:
    """The backend that inserts book `title` terminates itself (pg_terminate_backend), `times` times.

    A sequence counts the kills: it is not rolled back with the killed transaction.
    With `alone`, only a statement writing that one book is killed (the per-book fallback).
    """
    await pool.execute(
        f"""
        CREATE SEQUENCE shelfscan.test_kills;
        CREATE FUNCTION shelfscan.test_kill() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF EXISTS (SELECT 1 FROM new_rows WHERE title = '{title}')
               AND ({"(SELECT count(*) FROM new_rows) = 1" if alone else "true"})
               AND nextval('shelfscan.test_kills') <= {times} THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER test_kill AFTER INSERT ON shelfscan.books
            REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION shelfscan.test_kill();
        """
    )


async def _assert_each_file_once(pool: asyncpg.Pool, expected: set[str]) -> None:
    paths = [r["path"] for r in await pool.fetch("SELECT path FROM shelfscan.files")]
    assert sorted(paths) == sorted(expected)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM shelfscan.books b WHERE NOT EXISTS "
            "(SELECT 1 FROM shelfscan.files f WHERE f.book_id = b.id)"
        )
        == 0
    )


async def test_a_chunk_whose_connection_is_killed_is_written_again_on_a_new_one(
    pool: asyncpg.Pool,
) -> None:
    library_id, root_id = await _library_with_root(pool)
    person = await _person(pool, library_id)
    await _kill_writes_of(pool, "victim", 2, alone=False)
    books = [_book(library_id, root_id, t, "c", person) for t in ("one", "victim", "three")]
    writer = BookWriter(pool, Backoff(attempts=4, first_s=0.05))
    result = await writer.write(books)
    assert (len(result.written), result.failed) == (3, ())
    assert (writer.batches, writer.fallbacks, writer.reconnects) == (1, 0, 2)
    await _assert_each_file_once(pool, {"one.epub", "victim.epub", "three.epub"})
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.chapters") == 6


async def test_the_per_book_fallback_survives_a_killed_connection(pool: asyncpg.Pool) -> None:
    """A bad book sends the chunk book by book; a connection killed then costs a retry, not books."""
    library_id, root_id = await _library_with_root(pool)
    person = await _person(pool, library_id)
    await _kill_writes_of(pool, "victim", 1, alone=True)
    books = [
        _book(library_id, root_id, "victim", "c", person),
        _book(library_id, root_id, "broken", "c", person + 1000),  # no such person
        _book(library_id, root_id, "three", "c", person),
    ]
    writer = BookWriter(pool, Backoff(attempts=4, first_s=0.05))
    result = await writer.write(books)
    assert [f.book.title for f in result.failed] == ["broken"]
    assert result.failed[0].error.startswith("database write failed: ForeignKeyViolationError")
    assert "\n" not in result.failed[0].error
    assert (writer.fallbacks, writer.reconnects) == (1, 1)
    await _assert_each_file_once(pool, {"victim.epub", "three.epub"})


async def test_a_commit_whose_answer_is_lost_is_not_written_twice(db_url: str) -> None:
    """The COMMIT landed, the client never heard: the writer asks the server instead of rewriting."""
    async with pg_proxy(db_url) as proxy, open_pool(proxy.url, max_size=4) as pool:
        library_id, root_id = await _library_with_root(pool)
        person = await _person(pool, library_id)
        books = [_book(library_id, root_id, f"b{i}", "c", person) for i in range(5)]
        writer = BookWriter(pool, Backoff(attempts=4, first_s=0.05))
        proxy.lose_commit_answer = True
        result = await writer.write(books)
        assert proxy.commits_lost == 1
        assert (len(result.written), result.failed, writer.reconnects) == (5, (), 1)
        stored = await pool.fetch("SELECT id FROM shelfscan.books ORDER BY id")
        assert sorted(result.written) == [r["id"] for r in stored]
        await _assert_each_file_once(pool, {f"b{i}.epub" for i in range(5)})


async def test_a_database_that_stays_away_fails_the_write_in_one_line_and_loses_nothing(
    db_url: str,
) -> None:
    async with pg_proxy(db_url) as proxy, open_pool(proxy.url, max_size=4) as pool:
        library_id, root_id = await _library_with_root(pool)
        person = await _person(pool, library_id)
        writer = BookWriter(pool, Backoff(attempts=3, first_s=0.05))
        proxy.down = True
        proxy.cut_all()
        with pytest.raises(DatabaseLost) as lost:
            await writer.write([_book(library_id, root_id, "later", "c", person)])
        assert one_line(lost.value) == str(lost.value)
        assert str(lost.value).startswith("writing books: database unreachable after 3 attempts")
        proxy.down = False
        result = await writer.write([_book(library_id, root_id, "later", "c", person)])
        assert len(result.written) == 1
        await _assert_each_file_once(pool, {"later.epub"})


async def test_text_postgresql_cannot_hold_is_escaped_not_fatal(pool: asyncpg.Pool) -> None:
    """NULs and lone surrogates (a Latin-1 file name as a title) cost an escape, not the book."""
    library_id, root_id = await _library_with_root(pool)
    person = await _person(pool, library_id)
    book = _book(library_id, root_id, "caf\udce9", "Bad\x00Chapter", person)
    odd_file = FileRow(
        None, root_id, "caf\udce9.epub", 1, 1, 1, "epub", chapters=(ChapterRow("Bad\x00Chapter"),),
        status="error", scan_error="cannot read\nfile \udcff",
    )  # fmt: skip
    book = dataclasses.replace(book, files=(odd_file,))
    result = await BookWriter(pool).write([book])
    assert result.failed == ()
    row = await pool.fetchrow(
        "SELECT b.title, f.scan_error FROM shelfscan.books b JOIN shelfscan.files f ON f.book_id = b.id"
    )
    assert (row["title"], row["scan_error"]) == ("caf\\xe9", "cannot read file \\xff")
    assert await pool.fetchval("SELECT title FROM shelfscan.chapters") == "BadChapter"


async def test_name_look_ups_survive_a_killed_connection_and_odd_text(pool: asyncpg.Pool) -> None:
    """The resolver repeats an upsert that lost its connection: one row per name, keys as asked."""
    library_id, _ = await _library_with_root(pool)
    await pool.execute(
        """
        CREATE SEQUENCE shelfscan.test_kills;
        CREATE FUNCTION shelfscan.test_kill() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF nextval('shelfscan.test_kills') <= 1 THEN
                PERFORM pg_terminate_backend(pg_backend_pid());
            END IF;
            RETURN NULL;
        END $$;
        CREATE TRIGGER test_kill AFTER INSERT ON shelfscan.persons
            FOR EACH STATEMENT EXECUTE FUNCTION shelfscan.test_kill();
        """
    )
    resolver = EntityResolver(pool, Backoff(attempts=4, first_s=0.05))
    wanted = {
        EntityKey("persons", library_id, key): EntityName(name, sort)
        for key, name, sort in (
            ("ann", "Ann", "Ann"),
            ("caf\udce9", "Caf\udce9", None),  # from a Latin-1 folder name
            ("nul\x00l", "Nul\x00l", "Nul\x00l"),
        )
    }
    ids = await resolver.resolve(wanted)
    assert set(ids) == set(wanted)
    rows = await pool.fetch("SELECT id, name_key, name FROM shelfscan.persons ORDER BY name_key")
    assert [(r["name_key"], r["name"]) for r in rows] == [
        ("ann", "Ann"),
        ("caf\\xe9", "Caf\\xe9"),
        ("null", "Null"),
    ]
    assert sorted(ids.values()) == sorted(r["id"] for r in rows)
    assert await pool.fetchval("SELECT last_value FROM shelfscan.test_kills") == 2
