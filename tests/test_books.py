"""Books from files: grouping, sidecars, field sources, names, path fallback, the whole corpus."""

from __future__ import annotations

import hashlib
import os
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
from mutagen.id3 import ID3, TALB, TIT2, TPE1, TPOS, TRCK, TXXX

from shelfscan.testing.covers import cover_jpeg
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub
from tests.formats.test_audio import silent_mp3
from tests.scanning import ScanFn, export


def _mp3(
    path: Path,
    *,
    album: str,
    title: str,
    author: str,
    track: str = "",
    disc: str = "",
    narrator: str = "",
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    silent_mp3(path)
    tag = ID3()
    tag.add(TALB(encoding=3, text=[album]))
    tag.add(TIT2(encoding=3, text=[title]))
    tag.add(TPE1(encoding=3, text=[author]))
    if track:
        tag.add(TRCK(encoding=3, text=[track]))
    if disc:
        tag.add(TPOS(encoding=3, text=[disc]))
    if narrator:
        tag.add(TXXX(encoding=3, desc="NARRATOR", text=[narrator]))
    tag.save(path, v2_version=4)


def _epub(path: Path, title: str | None, authors: tuple[str, ...], **kw: Any) -> None:
    write_epub(
        path, EpubSpec(title=title or "", creators=tuple(CreatorSpec(a) for a in authors), **kw)
    )


def _by_title(books: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {b["title"]: b for b in books}


async def test_parts_of_an_audiobook_in_disc_folders_are_one_book_in_order(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    book = tmp_path / "lib" / "Ann Leckie" / "Ancillary Justice"
    # Written out of order, with disc folders and track numbers that disagree with names.
    _mp3(
        book / "CD 2" / "01.mp3",
        album="Ancillary Justice",
        title="Part 3",
        author="Ann Leckie",
        track="1",
        disc="2",
    )
    _mp3(
        book / "CD 1" / "02.mp3",
        album="Ancillary Justice",
        title="Part 2",
        author="Ann Leckie",
        track="2",
        disc="1",
        narrator="Adjoa Andoh",
    )
    _mp3(
        book / "CD 1" / "01.mp3",
        album="Ancillary Justice",
        title="Part 1",
        author="Ann Leckie",
        track="1",
        disc="1",
        narrator="Adjoa Andoh",
    )
    _mp3(tmp_path / "lib" / "music" / "a.mp3", album="Album A", title="Song", author="Band")
    _mp3(tmp_path / "lib" / "music" / "b.mp3", album="Album B", title="Song", author="Band")
    summary = await scan(tmp_path / "lib")
    assert summary.books_added == 3
    books = _by_title(await export(pool))
    parts = books["Ancillary Justice"]["files"]
    assert [f["path"] for f in parts] == [
        "Ann Leckie/Ancillary Justice/CD 1/01.mp3",
        "Ann Leckie/Ancillary Justice/CD 1/02.mp3",
        "Ann Leckie/Ancillary Justice/CD 2/01.mp3",
    ]
    assert parts[0]["narrators"] == ["Adjoa Andoh"]
    assert all(abs(f["duration_s"] - 1.045) < 0.1 for f in parts)
    # Two albums in one folder are two books (music files take their track title).
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.books WHERE title = 'Song'") == 2


async def test_an_ebook_and_its_audiobook_in_one_folder_are_one_book(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    folder = tmp_path / "lib" / "Dune"
    _epub(folder / "Dune.epub", "Dune", ("Frank Herbert",))
    _mp3(folder / "Dune.mp3", album="Dune", title="Dune", author="Frank Herbert")
    _epub(folder / "Other.epub", "Children of Dune", ("Frank Herbert",))
    summary = await scan(tmp_path / "lib")
    assert summary.books_added == 2
    books = _by_title(await export(pool))
    assert sorted(f["format"] for f in books["Dune"]["files"]) == ["epub", "mp3"]
    assert [f["format"] for f in books["Children of Dune"]["files"]] == ["epub"]


async def test_a_flat_folder_of_epubs_is_one_book_each(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    for i in range(25):
        _epub(tmp_path / "lib" / f"b{i}.epub", f"Same Title {i % 2}", ("Same Author",))
    summary = await scan(tmp_path / "lib")
    assert summary.books_added == 25
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.books") == 25


async def test_sidecars_win_over_embedded_and_edits_are_picked_up(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    folder = tmp_path / "lib" / "Author" / "Book"
    _epub(folder / "book.epub", "Embedded Title", ("Embedded Author",), language="en")
    opf = folder / "metadata.opf"

    def write_opf(title: str) -> None:
        opf.write_text(
            '<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="2.0">'
            '<metadata xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:opf="http://www.idpf.org/2007/opf">'
            f"<dc:title>{title}</dc:title>"
            '<dc:creator opf:role="aut" opf:file-as="Writer, Real">Real Writer</dc:creator>'
            '<meta name="calibre:series" content="Sidecar Saga"/><meta name="calibre:series_index" content="2"/>'
            "</metadata></package>",
            "utf-8",
        )

    write_opf("Sidecar Title")
    cover = cover_jpeg(7, (30, 40), 1_000)
    (folder / "cover.jpg").write_bytes(cover)
    (folder / "desc.txt").write_text("Told by the sidecar.", "utf-8")
    await scan(tmp_path / "lib")
    (book,) = await export(pool)
    assert book["title"] == "Sidecar Title"
    assert [(a["name"], a["sort_name"]) for a in book["authors"]] == [
        ("Real Writer", "Writer, Real")
    ]
    assert book["series"] == [{"name": "Sidecar Saga", "number": 2}]
    assert book["description"] == "Told by the sidecar."
    assert book["language"] == "en"  # not in the sidecar: the embedded value stays
    assert book["cover"]["sha256"] == hashlib.sha256(cover).hexdigest()
    assert book["field_sources"]["title"] == "sidecar"
    assert book["field_sources"]["language"] == "embedded"
    book_id = book["id"]

    # Only the sidecar changes: the next scan still sees it.
    write_opf("Edited In Calibre")
    os.utime(opf, ns=(1, 1_800_000_000_000_000_000))
    summary = await scan(tmp_path / "lib")
    assert summary.books_updated == 1
    (book,) = await export(pool)
    assert (book["id"], book["title"]) == (book_id, "Edited In Calibre")

    # The sidecar goes away: the embedded title comes back.
    opf.unlink()
    await scan(tmp_path / "lib")
    (book,) = await export(pool)
    assert (book["id"], book["title"], book["field_sources"]["title"]) == (
        book_id,
        "Embedded Title",
        "embedded",
    )

    # Nothing changed: nothing is read again.
    summary = await scan(tmp_path / "lib")
    assert (summary.books_updated, summary.books_unchanged) == (0, 1)


async def test_manual_edits_survive_every_rescan(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    path = tmp_path / "lib" / "book.epub"
    _epub(path, "Original", ("First Author",), subjects=("Old Genre",))
    await scan(tmp_path / "lib")
    book_id = await pool.fetchval("SELECT id FROM shelfscan.books")
    person = await pool.fetchval(
        "INSERT INTO shelfscan.persons (library_id, name, name_key) SELECT library_id, 'Chosen Author', 'chosen author' "
        "FROM shelfscan.books WHERE id = $1 RETURNING id",
        book_id,
    )
    # A user edits the title and the authors through SQL, as a book server would.
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE shelfscan.books SET title = 'My Title', field_sources = field_sources || "
            """'{"title": "manual", "authors": "manual"}' WHERE id = $1""",
            book_id,
        )
        await conn.execute("DELETE FROM shelfscan.book_authors WHERE book_id = $1", book_id)
        await conn.execute(
            "INSERT INTO shelfscan.book_authors (book_id, person_id, role, sort_order) VALUES ($1, $2, 'author', 0)",
            book_id,
            person,
        )
    # The file is retagged: every other field follows the file, the edits stay.
    _epub(path, "Retagged", ("Second Author",), subjects=("New Genre",))
    os.utime(path, ns=(1, 1_800_000_000_000_000_000))
    for _ in range(2):
        await scan(tmp_path / "lib")
        (book,) = await export(pool)
        assert book["id"] == book_id
        assert book["title"] == "My Title"
        assert [a["name"] for a in book["authors"]] == ["Chosen Author"]
        assert book["genres"] == ["New Genre"]
        assert book["field_sources"]["title"] == "manual"


async def test_one_person_however_the_name_is_written(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    _epub(tmp_path / "lib" / "a.epub", "The Hobbit", ("J.R.R. Tolkien",))
    _epub(tmp_path / "lib" / "b.epub", "The Silmarillion", ("Tolkien, J.R.R.",))
    _epub(tmp_path / "lib" / "c.epub", "Unfinished Tales", ("J. R. R. Tolkien",))
    await scan(tmp_path / "lib")
    rows = await pool.fetch("SELECT name, sort_name FROM shelfscan.persons")
    assert [(r["name"], r["sort_name"]) for r in rows] == [("J.R.R. Tolkien", "Tolkien, J.R.R.")]
    books = _by_title(await export(pool))
    assert books["The Hobbit"]["sort_title"] == "Hobbit, The"


async def test_path_fills_in_when_tags_are_empty(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    _epub(
        tmp_path / "lib" / "Iain M. Banks" / "Culture" / "Book 2 - The Player of Games.epub",
        None,
        (),
    )
    await scan(tmp_path / "lib")
    (book,) = await export(pool)
    assert book["title"] == "The Player of Games"
    assert [a["name"] for a in book["authors"]] == ["Iain M. Banks"]
    assert book["series"] == [{"name": "Culture", "number": 2}]
    assert book["field_sources"]["title"] == "path"


async def test_whole_corpus_matches_its_ground_truth(
    pool: asyncpg.Pool, scan: ScanFn, corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]
) -> None:
    summary = await scan(corpus_dir, executor="process")
    media = dict(corpus_truth)
    books = await export(pool)
    by_path = {f["path"]: (b, f) for b in books for f in b["files"]}
    corrupt = {k for k, v in media.items() if v.get("corrupt")}
    assert summary.files_failed == len(corrupt)
    calibre = "calibre-library/Lewis Carroll/Alice's Adventures in Wonderland (17)/Alice's Adventures in Wonderland - Lewis Carroll.epub"
    for path, truth in media.items():
        book, f = by_path[path]
        if path in corrupt:
            assert f["status"] == "error" and f["error"], path
            continue
        assert f["status"] == "ok", path
        if path == calibre:
            continue  # checked against its metadata.opf below
        if "title" in truth:
            assert book["title"] == truth["title"], path
        if "authors" in truth:
            # ComicInfo writers are a comic's authors in the ground truth.
            credited = [a["name"] for a in book["authors"] if a["role"] in ("author", "writer")]
            assert credited == truth["authors"], path
        if "narrators" in truth:
            assert f["narrators"] == truth["narrators"], path
        if "series" in truth:
            assert [s["name"] for s in book["series"]][:1] == [truth["series"]], path
            if truth.get("series_index") is not None:
                assert Decimal(str(book["series"][0]["number"])) == Decimal(
                    str(truth["series_index"])
                ), path
        if "language" in truth:
            assert f["language"] == truth["language"], path
        if "isbn" in truth:
            assert f["identifiers"].get("isbn_13") == truth["isbn"], path
        if "asin" in truth:
            assert f["identifiers"].get("asin") == truth["asin"], path
        if "duration_s" in truth:
            assert abs(f["duration_s"] - truth["duration_s"]) <= 1.0, path
        if "pages" in truth:
            assert f["page_count"] == truth["pages"], path
        if "chapters" in truth:
            assert len(f["chapters"]) == truth["chapters"], path
        if "has_cover" in truth:
            assert (f["cover"] is not None) == truth["has_cover"], path
    book, _ = by_path[calibre]
    folder = corpus_dir / Path(calibre).parent
    assert (
        sum(1 for b in books if any(x["path"].startswith("calibre-library/") for x in b["files"]))
        == 1
    )
    assert book["title"] == "Alice's Adventures in Wonderland"
    assert [(a["name"], a["sort_name"]) for a in book["authors"] if a["role"] == "author"] == [
        ("Lewis Carroll", "Carroll, Lewis")
    ]
    assert book["language"] == "eng"  # metadata.opf says "eng"; the EPUB inside says "en"
    assert book["publisher"] == "Feedbooks"
    assert book["genres"] == ["Fantasy", "Fiction", "Juvenile"]
    assert (
        book["cover"]["sha256"] == hashlib.sha256((folder / "cover.jpg").read_bytes()).hexdigest()
    )
    assert (
        book["field_sources"]["title"] == "sidecar" and book["field_sources"]["cover"] == "sidecar"
    )


async def test_audiobookshelf_sidecars_name_the_book_and_its_narrator(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    import json

    folder = tmp_path / "lib" / "Some Author" / "Some Book"
    _mp3(
        folder / "01.mp3",
        album="Tagged Album",
        title="Part 1",
        author="Tag Author",
        track="1",
        narrator="Tag Reader",
    )
    _mp3(
        folder / "02.mp3",
        album="Tagged Album",
        title="Part 2",
        author="Tag Author",
        track="2",
        narrator="Tag Reader",
    )
    (folder / "metadata.json").write_text(
        json.dumps(
            {
                "title": "Sidecar Book",
                "authors": ["Jane Writer"],
                "series": ["Sidecar Cycle #4"],
                "genres": ["Mystery"],
                "publishedYear": "2019",
                "asin": "B00TESTASN",
            }
        ),
        "utf-8",
    )
    (folder / "reader.txt").write_text("Nora Narrator\n", "utf-8")
    await scan(tmp_path / "lib")
    (book,) = await export(pool)
    assert book["title"] == "Sidecar Book"
    assert [a["name"] for a in book["authors"]] == ["Jane Writer"]
    assert book["series"] == [{"name": "Sidecar Cycle", "number": 4}]
    assert book["genres"] == ["Mystery"]
    assert book["release_date"] == "2019"
    assert [f["narrators"] for f in book["files"]] == [["Nora Narrator"], ["Nora Narrator"]]
    assert book["files"][0]["identifiers"].get("asin") == "B00TESTASN"
    assert book["field_sources"]["narrators"] == "sidecar"
