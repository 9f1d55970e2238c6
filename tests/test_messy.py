"""Whole scans of messy libraries: untagged files whose names and folders carry the metadata.

The library comes from `shelfscan.testing.messy` (its manifest says what each
book should be); it is scanned through the real command line and read back
through `shelfscan export`, or through the engine where a test needs many runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg

from shelfscan.catalogue.pathcodec import to_db
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, epub_bytes
from shelfscan.testing.messy import MessyBook, MessyManifest, generate_messy_library
from tests.scanning import ScanFn, export


def _cli(
    args: list[str], db_url: str, tmp_path: Path, **env: str
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SHELFSCAN_DATA_DIR": str(tmp_path / "data"),
        "SHELFSCAN_SETTLE_SECONDS": "0",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "shelfscan", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _shown(path: str) -> str:
    """A manifest path as the catalogue stores it (bytes that are not UTF-8 as \\xNN)."""
    return to_db(path)[0]


def _mismatches(manifest: MessyManifest, exported: list[dict[str, Any]]) -> list[str]:
    """Every field of every book that differs from the manifest, as readable lines."""
    by_files = {frozenset(f["path"] for f in b["files"]): b for b in exported}
    wrong: list[str] = []
    for want in manifest.books:
        key = frozenset(_shown(p) for p in want.files)
        book = by_files.get(key)
        if book is None:
            near = [sorted(k) for k in by_files if k & key]
            wrong.append(f"{sorted(key)}: not one book (found as {near})")
            continue
        wrong.extend(f"{sorted(key)[0]}: {line}" for line in _fields(want, book))
    return wrong


def _fields(want: MessyBook, book: dict[str, Any]) -> list[str]:
    wrong = []

    def check(name: str, expected: object, got: object) -> None:
        if expected != got:
            wrong.append(f"{name} {got!r} != {expected!r}")

    if want.title is not None:
        check("title", want.title, book["title"])
    if want.authors is not None:
        got = tuple(a["name"] for a in book["authors"] if a["role"] == "author")
        check("authors", want.authors, got)
    if want.series is not None:
        series = book["series"][0] if book["series"] else {"name": None, "number": None}
        check("series", want.series, series["name"])
        if want.number is not None:
            number = series["number"]
            check("number", want.number, None if number is None else Decimal(str(number)))
    if want.narrators is not None:
        check("narrators", want.narrators, tuple(book["files"][0]["narrators"]))
    if want.year is not None:
        check("year", want.year, (book["release_date"] or "")[:4])
    if want.asin is not None:
        check("asin", want.asin, book["files"][0]["identifiers"].get("asin"))
    if want.sidecar_cover:
        check("cover source", "sidecar", book["field_sources"].get("cover"))
    check("status", "ok", book["status"])
    return wrong


def test_messy_library_through_the_cli(db_url: str, tmp_path: Path) -> None:
    manifest = generate_messy_library(tmp_path / "lib", seed=1)
    first = _cli(["scan", str(tmp_path / "lib"), "--json"], db_url, tmp_path)
    assert first.returncode == 0, first.stderr
    summary = json.loads(first.stdout)
    assert summary["files_failed"] == 0
    assert summary["books_added"] == len(manifest.books)
    assert summary["files_seen"] == sum(len(b.files) for b in manifest.books)

    exported = _cli(["export"], db_url, tmp_path)
    assert exported.returncode == 0, exported.stderr
    books = [json.loads(line) for line in exported.stdout.splitlines()]
    assert len(books) == len(manifest.books)
    wrong = _mismatches(manifest, books)
    assert not wrong, "\n".join(wrong)
    paths = {f["path"] for b in books for f in b["files"]}
    assert not paths & {_shown(p) for p in manifest.junk}

    again = _cli(["scan", str(tmp_path / "lib"), "--json"], db_url, tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["books_unchanged"] == len(manifest.books)


def test_shelfscan_ignore_adds_names_to_skip(db_url: str, tmp_path: Path) -> None:
    manifest = generate_messy_library(tmp_path / "lib", seed=2)
    result = _cli(
        ["scan", str(tmp_path / "lib"), "--json"],
        db_url,
        tmp_path,
        SHELFSCAN_IGNORE="default,Manga,*.pdf",
    )
    assert result.returncode == 0, result.stderr
    kept = [
        b
        for b in manifest.books
        if not b.files[0].startswith("Manga/") and not all(p.endswith(".pdf") for p in b.files)
    ]
    assert json.loads(result.stdout)["files_seen"] == sum(
        1 for b in kept for p in b.files if not p.endswith(".pdf")
    )


async def test_generated_messy_books_for_the_bench(
    scan: ScanFn, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    manifest = generate_messy_library(tmp_path / "lib", seed=3, books=60)
    assert len(manifest.books) >= 60
    again = generate_messy_library(tmp_path / "again", seed=3, books=60)
    assert [b.files for b in again.books] == [b.files for b in manifest.books]  # deterministic
    summary = await scan(tmp_path / "lib")
    assert (summary.books_added, summary.files_failed) == (len(manifest.books), 0)
    wrong = _mismatches(manifest, await export(pool))
    assert not wrong, "\n".join(wrong)


def _untagged_epub() -> bytes:
    return epub_bytes(EpubSpec(title="", creators=(), chapters=(("One", "x"),)))


async def test_a_moved_book_keeps_its_id_and_edits_and_rereads_its_path(
    scan: ScanFn, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    (root / "Wrong Author").mkdir(parents=True)
    (root / "Wrong Author" / "Some Title.epub").write_bytes(_untagged_epub())
    (root / "Tagged").mkdir()
    tagged = EpubSpec(title="Tagged Book", creators=(CreatorSpec("Tag Writer"),))
    (root / "Tagged" / "file.epub").write_bytes(epub_bytes(tagged))
    await scan(root)
    (before,) = [b for b in await export(pool) if b["title"] == "Some Title"]
    assert [a["name"] for a in before["authors"]] == ["Wrong Author"]
    assert before["field_sources"]["authors"] == "path"
    await pool.execute(
        "UPDATE shelfscan.books SET description = 'mine', "
        """field_sources = field_sources || '{"description": "manual"}' WHERE id = $1""",
        before["id"],
    )

    (root / "Wrong Author").rename(root / "Right Author")
    (root / "Tagged").rename(root / "Elsewhere")
    summary = await scan(root)
    assert (summary.books_added, summary.books_missing, summary.files_failed) == (0, 0, 0)
    after = {b["id"]: b for b in await export(pool)}
    assert len(after) == 2
    moved = after[before["id"]]
    assert moved["files"][0]["path"] == "Right Author/Some Title.epub"
    assert [a["name"] for a in moved["authors"]] == ["Right Author"]
    assert moved["title"] == "Some Title"
    assert moved["description"] == "mine"  # the edit survived the re-read
    (other,) = [b for b in after.values() if b["id"] != before["id"]]
    assert other["files"][0]["path"] == "Elsewhere/file.epub"
    assert [a["name"] for a in other["authors"]] == ["Tag Writer"]
    assert summary.books_updated == 1  # only the book with fields from its path was read again


async def test_a_folder_of_audiobooks_split_and_a_calibre_folder_joined(
    scan: ScanFn, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The two grouping bugs of the issue, and the sidecars that follow the joined book."""
    manifest = generate_messy_library(tmp_path / "lib", seed=4)
    await scan(tmp_path / "lib")
    books = await export(pool)
    austen = sorted(
        b["title"] for b in books if b["files"][0]["path"].startswith("Audiobooks/Jane")
    )
    assert austen == ["Emma", "Persuasion"]
    (dune,) = [b for b in books if b["title"] == "Dune"]
    assert sorted(f["format"] for f in dune["files"]) == ["epub", "pdf"]
    assert dune["files"][0]["format"] == "epub"  # the richer format leads
    assert dune["field_sources"]["title"] == "sidecar"
    assert dune["cover"] is not None
    assert len(books) == len(manifest.books)
