"""Issue 10's book fields, end to end: generated files, a real scan, `shelfscan export`."""

from __future__ import annotations

import json
import os
import struct
import zipfile
from pathlib import Path
from typing import Any

import asyncpg

from shelfscan.testing.comics import write_cbr
from tests.formats.test_comics import (
    CBI_COMMENT,
    COMET,
    EXTENDED_COMICINFO,
    METRON,
    PAGES,
    write_cbz,
)
from tests.formats.test_epub import make_epub2_calibre, opf_document, write_epub
from tests.formats.test_mobi import MobiSpec, write_mobi
from tests.scanning import ScanFn, export

# The keys every book had before issue 10; they keep their meaning.
OLD_BOOK_KEYS = {
    "id", "library", "title", "subtitle", "sort_title", "status", "authors", "series", "genres",
    "tags", "description", "publisher", "release_date", "language", "field_sources", "cover",
    "files",
}  # fmt: skip
NEW_BOOK_KEYS = {
    "age_rating", "reading_direction", "web_link", "volume", "volume_count", "issue_count",
    "story_arcs", "characters", "teams", "locations",
}  # fmt: skip


def _by_file(books: list[dict[str, Any]]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    return {Path(f["path"]).name: (b, f) for b in books for f in b["files"]}


async def test_comic_fields_through_export(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    write_cbz(lib / "comet.cbz", {**PAGES, "CoMet.xml": COMET})
    write_cbz(lib / "metron.cbz", {**PAGES, "MetronInfo.xml": METRON})
    write_cbz(lib / "extended.cbz", {**PAGES, "ComicInfo.xml": EXTENDED_COMICINFO})
    write_cbz(lib / "cbi.cbz", dict(PAGES))
    with zipfile.ZipFile(lib / "cbi.cbz", "a") as zf:
        zf.comment = CBI_COMMENT.encode()
    write_cbr(lib / "cbi.cbr", dict(PAGES), CBI_COMMENT)
    write_cbz(
        lib / "empty.cbz", {"ComicInfo.xml": "<ComicInfo><Title>No Pages</Title></ComicInfo>"}
    )
    summary = await scan(lib)
    assert summary.files_failed == 1
    books = await export(pool)
    assert all(set(b) == OLD_BOOK_KEYS | NEW_BOOK_KEYS for b in books)
    by_file = _by_file(books)

    book, f = by_file["comet.cbz"]
    assert (book["title"], book["publisher"], book["language"]) == (
        "Comet Title",
        "Comet Press",
        "fr",
    )
    assert [(a["name"], a["role"]) for a in book["authors"]][:2] == [
        ("Rene Scribe", "writer"),
        ("Albert Pen", "penciller"),
    ]
    assert (book["age_rating"], book["reading_direction"], book["volume"]) == ("All Ages", "rtl", 2)
    assert book["characters"] == ["Asterix", "Obelix"]
    assert f["identifiers"] == {"comicvine": "42"}
    assert book["field_sources"]["characters"] == "embedded"

    book, f = by_file["metron.cbz"]
    assert book["series"] == [{"name": "Metron Saga", "number": 5}]
    assert (book["volume"], book["issue_count"], book["volume_count"]) == (3, 12, 4)
    assert (book["age_rating"], book["web_link"]) == ("Teen Plus", "https://example.org/m/5")
    assert book["story_arcs"] == [{"name": "Big Event", "number": 2}]
    assert (book["characters"], book["teams"], book["locations"]) == (
        ["Hero, The"],
        ["Avengers"],
        ["Metropolis"],
    )
    assert f["identifiers"] == {"isbn_13": "9780306406157", "metron": "290431", "comicvine": "1234"}

    book, f = by_file["extended.cbz"]
    assert (book["reading_direction"], book["age_rating"]) == ("rtl", "Mature 17+")
    assert book["story_arcs"] == [
        {"name": "Arc A", "number": 1},
        {"name": "Arc B", "number": 2.5},
        {"name": "Arc C", "number": None},
    ]
    assert book["locations"] == ["Tokyo", "Osaka"]
    assert f["identifiers"] == {"gtin": "012345678905"}

    for name in ("cbi.cbz", "cbi.cbr"):
        book, f = by_file[name]
        assert (book["title"], book["publisher"], book["release_date"]) == (
            "CBI Title",
            "CBI Press",
            "2001-08",
        ), name
        assert (book["volume"], book["issue_count"], book["volume_count"]) == (2001, 20, 2), name
        assert book["genres"] == ["Crime", "Noir"], name

    book, f = by_file["empty.cbz"]
    assert (f["status"], book["status"]) == ("error", "error")
    assert f["error"] == "not a readable CBZ: the archive holds no page images"


async def test_manual_locks_hold_for_the_new_fields(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    path = write_cbz(lib / "x.cbz", {**PAGES, "ComicInfo.xml": EXTENDED_COMICINFO})
    await scan(lib)
    book_id = await pool.fetchval("SELECT id FROM shelfscan.books")
    library_id = await pool.fetchval("SELECT library_id FROM shelfscan.books")
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(
            "UPDATE shelfscan.books SET age_rating = 'Everyone', field_sources = field_sources || "
            """'{"age_rating": "manual"}' WHERE id = $1""",
            book_id,
        )
        await conn.execute(
            "DELETE FROM shelfscan.book_subjects bs USING shelfscan.subjects s "
            "WHERE s.id = bs.subject_id AND bs.book_id = $1 AND s.kind = 'character'",
            book_id,
        )
        # The statement docs/sql-contract.md gives for adding a subject by hand.
        await conn.execute(
            """
            WITH s AS (
              INSERT INTO shelfscan.subjects AS e (library_id, name, name_key)
              VALUES ($1, 'Chosen One', 'character:chosen one')
              ON CONFLICT (library_id, name_key) DO UPDATE SET name = e.name
              RETURNING id),
            l AS (
              INSERT INTO shelfscan.book_subjects (book_id, subject_id, sort_order) SELECT $2, id, 0 FROM s)
            UPDATE shelfscan.books SET field_sources = field_sources || '{"characters": "manual"}'
            WHERE id = $2
            """,
            library_id,
            book_id,
        )
    # The file is retagged: the locked fields stay, the others follow the file.
    retagged = EXTENDED_COMICINFO.replace("Mature 17+", "Teen").replace("Kei, Ryo", "Zed")
    retagged = retagged.replace("Tokyo, Osaka", "Kyoto")
    write_cbz(path, {**PAGES, "ComicInfo.xml": retagged})
    os.utime(path, ns=(1, 1_800_000_000_000_000_000))
    for _ in range(2):
        await scan(lib)
        (book,) = await export(pool)
        assert book["id"] == book_id
        assert book["age_rating"] == "Everyone"
        assert book["characters"] == ["Chosen One"]
        assert book["locations"] == ["Kyoto"]
        assert book["field_sources"]["age_rating"] == "manual"
        assert book["field_sources"]["locations"] == "embedded"
    kinds = await pool.fetch("SELECT DISTINCT kind FROM shelfscan.subjects ORDER BY kind")
    assert [r["kind"] for r in kinds] == ["character", "location", "story_arc", "team"]


def _relators_opf() -> str:
    meta = """
    <dc:title id="t">The Sorted Book</dc:title>
    <meta refines="#t" property="file-as">Sorted Book, The (Special)</meta>
    <dc:creator id="a">Ann Author</dc:creator>
    <meta refines="#a" property="role" scheme="marc:relators">aut</meta>
    <dc:contributor id="n">Ned Narrator</dc:contributor>
    <meta refines="#n" property="role" scheme="marc:relators">nrt</meta>
    <dc:contributor id="m">Mark Up</dc:contributor>
    <meta refines="#m" property="role" scheme="marc:relators">mrk</meta>
    <dc:contributor id="u">Una Known</dc:contributor>
    <meta refines="#u" property="role" scheme="marc:relators">zzz</meta>
    <dc:subject>Fantasy, Adventure</dc:subject>
    <dc:identifier>urn:amazon:B00ABCDEFG</dc:identifier>
    """
    return opf_document(meta)


async def test_ebook_fields_through_export(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    write_epub(lib / "sorted.epub", _relators_opf())
    whole = make_epub2_calibre(tmp_path / "whole.epub").read_bytes()
    (lib / "truncated.epub").write_bytes(whole[:-40])
    cut = bytearray(whole[: whole.index(b"PK\x03\x04", 100)])  # only the mimetype member
    (lib / "hopeless.epub").write_bytes(bytes(cut))
    good = struct.pack(">II", 100, 8 + 9) + b"Mo Author"
    bad = struct.pack(">II", 101, 2)
    raw = b"EXTH" + struct.pack(">II", 12 + len(good + bad), 2) + good + bad
    write_mobi(lib / "bad-exth.mobi", MobiSpec(raw_exth=raw))
    asins = [(100, b"Asin Author"), (113, b"B00FIRST11"), (504, b"B00FIRST11")]
    write_mobi(lib / "asin.mobi", MobiSpec(exth=asins, full_name=b"Asin Book"))
    summary = await scan(lib)
    assert summary.files_failed == 1
    by_file = _by_file(await export(pool))

    book, f = by_file["sorted.epub"]
    assert book["sort_title"] == "Sorted Book, The (Special)"
    assert book["field_sources"]["sort_title"] == "embedded"
    assert [(a["name"], a["role"]) for a in book["authors"]] == [
        ("Ann Author", "author"),
        ("Ned Narrator", "narrator"),
        ("Una Known", "contributor"),  # "zzz" is no relator code; "mrk" is a producer, dropped
    ]
    assert book["genres"] == ["Adventure", "Fantasy"]
    assert f["identifiers"] == {"asin": "B00ABCDEFG"}
    assert f["warning"] is None

    book, f = by_file["truncated.epub"]
    assert (f["status"], book["status"], book["title"]) == ("ok", "ok", "The Calibre Book")
    assert "damaged zip" in f["warning"] and f["error"] is None

    book, f = by_file["hopeless.epub"]
    assert f["status"] == "error" and "end-of-central-directory" in f["error"]

    book, f = by_file["bad-exth.mobi"]
    assert (f["status"], book["title"]) == ("ok", "The Hand-Built Book")
    assert [a["name"] for a in book["authors"]] == ["Mo Author"]
    assert f["warning"] == "EXTH record 2 of 2 is malformed (length 2)"

    book, f = by_file["asin.mobi"]
    assert f["identifiers"] == {"asin": "B00FIRST11"}

    # The damage also reaches the job's log, one warning per salvaged file.
    damaged = await pool.fetch(
        "SELECT path, fields->>'reason' AS reason FROM shelfscan.job_logs"
        " WHERE event = 'file_damaged' AND level = 'warning' ORDER BY path"
    )
    assert [r["path"] for r in damaged] == ["bad-exth.mobi", "truncated.epub"]
    assert damaged[0]["reason"] == "EXTH record 2 of 2 is malformed (length 2)"


async def test_corpus_new_fields(
    pool: asyncpg.Pool, scan: ScanFn, corpus_dir: Path, corpus_truth: dict[str, dict[str, Any]]
) -> None:
    """Where the corpus MANIFEST shows one of the new fields, the export carries it."""
    await scan(corpus_dir, executor="process")  # the default: records cross the process pool
    books = await export(pool)
    by_path = {f["path"]: (b, f) for b in books for f in b["files"]}
    assert set(corpus_truth) <= set(by_path)

    book, _ = by_path["comics/Captain Science #001-cbz/Captain Science #001.cbz"]
    assert (book["age_rating"], book["volume"], book["issue_count"]) == ("Teen", 1950, 7)
    assert book["web_link"] == "https://comicvine.gamespot.com/c/4000-145269/"
    assert book["story_arcs"] == [
        {"name": "Captain Arc", "number": 4},
        {"name": "Other Arc", "number": 2},
    ]
    assert book["characters"] == ["Captain Science", "Gordon Dane"]

    book, _ = by_path["comics/Captain Science #001-comet-cbz/Captain Science #001-comet.cbz"]
    assert (book["title"], book["publisher"], book["reading_direction"]) == (
        "The Beginning",
        "Bell Features",
        "ltr",
    )
    assert [a["name"] for a in book["authors"] if a["role"] == "writer"] == ["Joe Orlando"]
    assert book["series"] == [{"name": "Captain Science", "number": 1}]

    book, _ = by_path["comics/Captain Science #001-cbi-cbr/Captain Science #001-cbi.cbr"]
    assert (book["title"], book["publisher"], book["release_date"]) == (
        "The Beginning",
        "Youthful Adventure Stories",
        "1950-11",
    )
    assert (book["volume_count"], book["issue_count"]) == (1, 7)

    book, _ = by_path["epub/TitleWithVolume.epub"]
    assert book["genres"] == ["Genre1", "Genre2"]
    book, _ = by_path["epub/calibre-quick-start-deu.epub"]
    assert book["sort_title"] == "Kurzanleitung"
    book, _ = by_path["epub/edgar-rice-burroughs_a-princess-of-mars.epub"]
    assert book["sort_title"] == "Princess of Mars, A"

    # No relator code is left raw anywhere in the catalogue: every role is a word.
    roles = {a["role"] for b in books for a in b["authors"]}
    assert roles <= {
        "author", "writer", "penciller", "inker", "illustrator", "translator", "artist",
        "narrator", "editor", "contributor", "publisher",
    }, roles  # fmt: skip
    assert all(f["warning"] is None for _, f in by_path.values())
    json.dumps(books)  # the export stays plain JSON
