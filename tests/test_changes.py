"""The change feed: a book server LISTENs, then reads every change after its last seq.

Driven through real scans (the CLI's `run_scan_job`) and a real LISTEN client
(asyncpg `add_listener`), with the exact query docs/sql-contract.md gives.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shelfscan.jobs.changes import CHANNEL
from shelfscan.jobs.queue import JobQueue
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub
from tests.scanning import ScanFn

ROOT = Path(__file__).resolve().parents[1]


def _book_server_query() -> str:
    """The query docs/sql-contract.md tells a book server to run, verbatim."""
    doc = (ROOT / "docs/sql-contract.md").read_text("utf-8")
    section = doc[doc.index("## Follow catalogue changes") :]
    blocks: list[str] = re.findall(r"```sql\n(.*?)```", section, re.S)
    (query,) = [q for q in blocks if "c.seq > $2" in q]
    return query.strip().rstrip(";")


def _epub(path: Path, title: str) -> None:
    write_epub(path, EpubSpec(title=title, creators=(CreatorSpec("Ann Author"),)))


class Listener:
    """A book server's LISTEN connection, collecting notification payloads."""

    def __init__(self) -> None:
        self.payloads: list[dict[str, Any]] = []
        self.arrived = asyncio.Event()

    def __call__(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        assert channel == CHANNEL
        self.payloads.append(json.loads(payload))
        self.arrived.set()

    async def until(self, seq: int) -> None:
        """Wait until a notification for `seq` (or later) has arrived."""
        async with asyncio.timeout(10):
            while not any(p["seq"] >= seq for p in self.payloads):
                self.arrived.clear()
                await self.arrived.wait()


@pytest.fixture
async def listener(db_url: str) -> AsyncIterator[Listener]:
    conn = await asyncpg.connect(db_url)
    got = Listener()
    await conn.add_listener(CHANNEL, got)
    try:
        yield got
    finally:
        await conn.remove_listener(CHANNEL, got)
        await conn.close()


async def _feed(pool: asyncpg.Pool, library_id: int, after: int) -> list[asyncpg.Record]:
    return list(await pool.fetch(_book_server_query(), library_id, after))


async def test_a_book_server_follows_adds_updates_missing_and_restores(
    pool: asyncpg.Pool, scan: ScanFn, listener: Listener, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    for i in range(20):
        _epub(lib / f"Book {i:02}.epub", f"Book {i:02}")
    first = await scan(lib, chunk_size=7, workers=2)
    assert first.books_added == 20
    library_id = await pool.fetchval("SELECT id FROM shelfscan.libraries")
    books = {r["title"]: r["id"] for r in await pool.fetch("SELECT id, title FROM shelfscan.books")}

    rows = await _feed(pool, library_id, 0)
    assert sorted(r["book_id"] for r in rows) == sorted(books.values())
    assert {r["change"] for r in rows} == {"added"}
    job_id = await pool.fetchval("SELECT id FROM shelfscan.jobs")
    assert {r["job_id"] for r in rows} == {job_id}
    # One NOTIFY per recording transaction, carrying its highest seq: the rows of one
    # transaction share its timestamp. Chunks that commit while the previous ones are being
    # recorded go in together, so 3 chunks make 1 to 3 transactions.
    await listener.until(rows[-1]["seq"])
    chunks: dict[Any, int] = {}
    for r in rows:
        chunks[r["at"]] = max(chunks.get(r["at"], 0), r["seq"])
    assert 1 <= len(chunks) <= 3  # 20 books in chunks of at most 7
    assert sorted(p["seq"] for p in listener.payloads) == sorted(chunks.values())
    assert {p["library_id"] for p in listener.payloads} == {library_id}
    last = rows[-1]["seq"]

    # A rescan with no change adds nothing to the feed.
    await scan(lib, chunk_size=7)
    assert await _feed(pool, library_id, last) == []

    # One book edited, one deleted: the server reads exactly those two.
    _epub(lib / "Book 03.epub", "Book 03, second edition")
    gone = lib / "Book 07.epub"
    kept = tmp_path / "kept.epub"
    shutil.move(gone, kept)
    await scan(lib, chunk_size=7)
    rows = await _feed(pool, library_id, last)
    assert [(r["book_id"], r["change"]) for r in sorted(rows, key=lambda r: r["change"])] == [
        (books["Book 07"], "missing"),
        (books["Book 03"], "updated"),
    ]
    await listener.until(rows[-1]["seq"])
    last = rows[-1]["seq"]

    # It comes back: restored, the same book.
    shutil.move(kept, gone)
    await scan(lib, chunk_size=7)
    rows = await _feed(pool, library_id, last)
    assert [(r["book_id"], r["change"]) for r in rows] == [(books["Book 07"], "restored")]
    await listener.until(rows[-1]["seq"])
    seqs = [r["seq"] for r in await pool.fetch("SELECT seq FROM shelfscan.catalogue_changes")]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_a_moved_book_is_reported_updated_and_its_rows_are_pruned_with_its_job(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    _epub(lib / "a" / "Moving.epub", "Moving")
    await scan(lib)
    (book_id,) = [r["id"] for r in await pool.fetch("SELECT id FROM shelfscan.books")]
    library_id = await pool.fetchval("SELECT id FROM shelfscan.libraries")
    last = await pool.fetchval("SELECT max(seq) FROM shelfscan.catalogue_changes")
    (lib / "b").mkdir()
    shutil.move(lib / "a" / "Moving.epub", lib / "b" / "Moving.epub")
    result = await scan(lib)
    assert (result.books_added, result.books_missing) == (0, 0)
    rows = await _feed(pool, library_id, last)
    assert [(r["book_id"], r["change"]) for r in rows] == [(book_id, "updated")]

    # Job retention prunes the feed with the jobs.
    await pool.execute("UPDATE shelfscan.jobs SET finished_at = now() - interval '30 days'")
    await JobQueue(pool, "pruner", 30).prune(7 * 86400)
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.catalogue_changes") == 0
