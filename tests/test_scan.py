"""Whole scans against a real PostgreSQL, on generated EPUBs."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import asyncpg
import pytest

from shelfscan.scan.contract import RootUnavailable
from shelfscan.testing.covers import cover_jpeg
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub
from tests.scanning import ScanFn, export

CATALOGUE_TABLES = (
    "books",
    "files",
    "persons",
    "series",
    "genres",
    "tags",
    "publishers",
    "covers",
    "book_authors",
    "book_series",
    "book_genres",
    "book_tags",
    "file_identifiers",
    "file_narrators",
    "chapters",
)


def _spec(i: int, **overrides: object) -> EpubSpec:
    base = EpubSpec(
        title=f"Book {i}",
        creators=(CreatorSpec(f"Author {i % 3}", "aut", f"{i % 3}, Author"),),
        style="epub2" if i % 2 else "epub3",
        subjects=("Fantasy", "Adventure"),
        series="The Saga" if i % 4 == 0 else None,
        series_index=str(i // 4 + 1) if i % 4 == 0 else None,
        isbn=None,
        language="en",
        publisher="Tor",
        date="2001-02-03",
        description="<p>A <b>good</b> book.</p>",
        cover=cover_jpeg(i, (60, 90), 2_000),
        chapters=(("One", "text"), ("Two", "more text")),
    )
    return EpubSpec(**{**{f: getattr(base, f) for f in base.__dataclass_fields__}, **overrides})  # type: ignore[arg-type]


def _make_library(root: Path, count: int) -> None:
    for i in range(count):
        write_epub(root / f"Author {i % 3}" / f"Book {i}.epub", _spec(i))


async def _xmins(pool: asyncpg.Pool) -> dict[str, list[tuple[str, str]]]:
    """Row versions of every catalogue table: unchanged xmin means the row was not written."""
    out = {}
    for table in CATALOGUE_TABLES:
        rows = await pool.fetch(
            f"SELECT ctid::text AS c, xmin::text AS x FROM shelfscan.{table} ORDER BY 1"
        )
        out[table] = [(r["c"], r["x"]) for r in rows]
    return out


async def test_first_scan_catalogues_every_book_with_its_metadata(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _make_library(root, 12)
    summary = await scan(root, executor="process")
    assert (summary.books_added, summary.files_seen, summary.files_failed) == (12, 12, 0)

    books = {b["title"]: b for b in await export(pool)}
    assert sorted(books) == sorted(f"Book {i}" for i in range(12))
    b0 = books["Book 0"]
    assert [(a["name"], a["sort_name"], a["role"]) for a in b0["authors"]] == [
        ("Author 0", "0, Author", "author")
    ]
    assert b0["series"] == [{"name": "The Saga", "number": 1}]
    assert b0["genres"] == ["Adventure", "Fantasy"]
    assert b0["publisher"] == "Tor"
    assert b0["release_date"] == "2001-02-03"
    assert b0["description"] == "A good book."
    (f,) = b0["files"]
    assert f["path"] == "Author 0/Book 0.epub"
    assert f["status"] == "ok" and f["format"] == "epub"
    assert f["cover"]["mime"] == "image/jpeg" and (f["cover"]["width"], f["cover"]["height"]) == (
        60,
        90,
    )
    assert [c["title"] for c in f["chapters"]][-2:] == ["One", "Two"]
    # One person row per author, however many books and workers touched them.
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.persons") == 3
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.genres") == 2
    job = await pool.fetchrow("SELECT state, result, progress FROM shelfscan.jobs")
    assert job["state"] == "succeeded" and job["result"]["books_added"] == 12


async def test_rescan_without_changes_writes_nothing(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _make_library(root, 8)
    await scan(root)
    before = await _xmins(pool)
    summary = await scan(root)
    assert (summary.books_added, summary.books_updated, summary.books_unchanged) == (0, 0, 8)
    assert await _xmins(pool) == before
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.jobs WHERE state = 'succeeded'") == 2


async def test_changed_file_updates_its_book_in_place(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _make_library(root, 4)
    await scan(root)
    book_id = await pool.fetchval("SELECT id FROM shelfscan.books WHERE title = 'Book 1'")
    target = root / "Author 1" / "Book 1.epub"
    write_epub(target, _spec(1, title="Book One, Revised"))
    os.utime(target, ns=(1, 1_700_000_000_000_000_000))
    summary = await scan(root)
    assert (summary.books_added, summary.books_updated, summary.books_unchanged) == (0, 1, 3)
    assert (
        await pool.fetchval("SELECT title FROM shelfscan.books WHERE id = $1", book_id)
        == "Book One, Revised"
    )
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.books") == 4


async def test_bad_files_are_recorded_and_the_scan_goes_on(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _make_library(root, 3)
    (root / "empty.epub").write_bytes(b"")
    (root / "notes.EPUB").write_text("this is not a zip")
    good = (root / "Author 0" / "Book 0.epub").read_bytes()
    # Cut before its package document: nothing to salvage (a later cut is read, with a warning).
    (root / "truncated.epub").write_bytes(good[:120])
    summary = await scan(root, executor="process")
    assert summary.books_added == 3
    assert summary.files_failed == 3
    errors = {
        b["title"]: b["files"][0] for b in await export(pool) if b["files"][0]["status"] == "error"
    }
    assert set(errors) == {"empty", "notes", "truncated"}
    assert all(e["error"] and "\n" not in e["error"] for e in errors.values())
    assert "empty" in errors["empty"]["error"]
    logs = await pool.fetch(
        "SELECT level, event, path FROM shelfscan.job_logs WHERE event = 'file_unreadable'"
    )
    assert {r["path"] for r in logs} == {"empty.epub", "notes.EPUB", "truncated.epub"}
    # A broken file is read again (its cause may have passed) and stays one error, not a new book;
    # the empty one is not read again (nothing in it can change while it stays empty).
    again = await scan(root)
    assert (again.files_failed, again.files_read, again.books_added) == (2, 2, 0)
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files WHERE status = 'error'") == 3
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.books") == 6


async def test_vanished_file_is_marked_missing_and_comes_back(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _make_library(root, 3)
    await scan(root)
    moved = tmp_path / "aside.epub"
    shutil.move(root / "Author 2" / "Book 2.epub", moved)
    summary = await scan(root)
    assert summary.books_missing == 1
    row = await pool.fetchrow(
        "SELECT b.id, b.status, f.status AS fs FROM shelfscan.books b JOIN shelfscan.files f ON f.book_id = b.id "
        "WHERE b.title = 'Book 2'"
    )
    assert (row["status"], row["fs"]) == ("missing", "missing")
    shutil.move(moved, root / "Author 2" / "Book 2.epub")
    summary = await scan(root)
    assert summary.books_restored == 1
    assert (
        await pool.fetchval("SELECT status FROM shelfscan.books WHERE id = $1", row["id"]) == "ok"
    )


async def test_empty_or_missing_root_never_wipes_the_catalogue(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    _make_library(root, 3)
    await scan(root)
    hidden = tmp_path / "unmounted"
    root.rename(hidden)
    root.mkdir()  # an empty mount point
    with pytest.raises(RootUnavailable, match="no book files"):
        await scan(root)
    root.rmdir()
    with pytest.raises(RootUnavailable, match="not reachable"):
        await scan(root)
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files WHERE status = 'ok'") == 3
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.jobs WHERE state = 'failed'") == 2


async def test_many_workers_share_one_row_per_name(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    for i in range(40):
        write_epub(
            root / f"b{i}.epub",
            _spec(i, creators=(CreatorSpec("Shared Author"), CreatorSpec(f"Solo {i}"))),
        )
    summary = await scan(root, workers=8, chunk_size=3)
    assert summary.books_added == 40
    assert (
        await pool.fetchval("SELECT count(*) FROM shelfscan.persons WHERE name = 'Shared Author'")
        == 1
    )
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.persons") == 41
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.book_authors") == 80
