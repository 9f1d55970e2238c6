"""Covers are stored once, on disk too: no new pack bytes for known covers, and compaction.

Real scans into a real PostgreSQL; the pack folder is measured on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

import asyncpg
import pytest

from shelfscan import cli
from shelfscan.catalogue.known import purge_missing
from shelfscan.covers import PACKS, compact, read_cover
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, epub_bytes
from tests.scanning import ScanFn

COVER_BYTES = 8_000


def fake_cover(seed: int, size: int = COVER_BYTES) -> bytes:
    """A JPEG signature and distinct bytes: each seed gives a different cover."""
    body = hashlib.shake_256(f"cover {seed}".encode()).digest(size - 4)
    return b"\xff\xd8\xff\xe0" + body


def write_book(path: Path, i: int, cover_seed: int | None, cover_size: int = COVER_BYTES) -> None:
    spec = EpubSpec(
        title=f"Covered {i:04d}",
        creators=(CreatorSpec(f"Painter {i % 3}"),),
        style="epub2" if i % 2 else "epub3",
        language="en",
        chapters=(("One", "text"),),
        cover=None if cover_seed is None else fake_cover(cover_seed, cover_size),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(epub_bytes(spec))


def covered_library(root: Path, count: int, cover_size: int = COVER_BYTES) -> list[Path]:
    paths = [root / f"shelf{i % 4}" / f"covered{i:04d}.epub" for i in range(count)]
    for i, path in enumerate(paths):
        write_book(path, i, cover_seed=i, cover_size=cover_size)
    return paths


def pack_bytes(covers_dir: Path) -> dict[str, int]:
    folder = covers_dir / PACKS
    return {p.name: p.stat().st_size for p in folder.iterdir()} if folder.is_dir() else {}


def covers_dir_of(tmp_path: Path) -> Path:
    return tmp_path / "data" / "covers"  # where tests.scanning's settings put them


async def referenced(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await pool.fetch(
        """
        SELECT c.sha256, c.pack, c.pack_offset, c.size FROM shelfscan.covers c
        WHERE EXISTS (SELECT 1 FROM shelfscan.books b WHERE b.cover_id = c.id)
           OR EXISTS (SELECT 1 FROM shelfscan.files f WHERE f.cover_id = c.id)
        """
    )
    return rows


async def test_touched_files_rescan_writes_no_new_pack_bytes(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    paths = covered_library(root, 24)
    first = await scan(root, executor="process")
    assert first.books_added == 24
    before = pack_bytes(covers_dir_of(tmp_path))
    assert sum(before.values()) == 24 * COVER_BYTES
    rows_before = await pool.fetchval("SELECT count(*) FROM shelfscan.covers")

    for path in paths[:10]:
        st = path.stat()
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    second = await scan(root, executor="process")

    assert second.books_updated == 10
    assert pack_bytes(covers_dir_of(tmp_path)) == before  # not one byte more, no new pack
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.covers") == rows_before
    # Every book still has its own, readable cover.
    rows = await pool.fetch(
        "SELECT b.title, c.sha256, c.pack, c.pack_offset, c.size FROM shelfscan.books b "
        "JOIN shelfscan.covers c ON c.id = b.cover_id"
    )
    assert len(rows) == 24
    for row in rows:
        i = int(row["title"].split()[-1])
        data = read_cover(covers_dir_of(tmp_path), row["pack"], row["pack_offset"], row["size"])
        assert data == fake_cover(i)


async def test_changed_cover_is_written_and_the_unchanged_ones_are_not(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    paths = covered_library(root, 12)
    await scan(root)
    before = sum(pack_bytes(covers_dir_of(tmp_path)).values())
    write_book(paths[0], 0, cover_seed=1000)  # a new cover
    st = paths[1].stat()
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))  # same cover
    await scan(root)
    assert sum(pack_bytes(covers_dir_of(tmp_path)).values()) == before + COVER_BYTES


async def _run_cli(args: list[str], db_url: str, covers: Path, mp: pytest.MonkeyPatch) -> None:
    """The real `shelfscan` entry point (it runs its own event loop: off this one)."""
    mp.setenv("DATABASE_URL", db_url)
    mp.setenv("SHELFSCAN_COVERS_DIR", str(covers))
    assert await asyncio.to_thread(cli.main, args) == 0


async def test_compaction_after_deletions_keeps_disk_near_referenced_bytes(
    pool: asyncpg.Pool,
    db_url: str,
    scan: ScanFn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = tmp_path / "lib"
    paths = covered_library(root, 40)
    await scan(root, chunk_size=5)  # several packs
    # Unreference 25 covers: 15 books deleted (missing, then purged), 10 given a new cover.
    for path in paths[:15]:
        path.unlink()
    for i, path in enumerate(paths[15:25], start=15):
        write_book(path, i, cover_seed=5000 + i)
    await scan(root, chunk_size=5)
    assert await purge_missing(pool, 0.0) == (15, 15)
    covers = covers_dir_of(tmp_path)
    wasted = sum(pack_bytes(covers).values())
    live = sum(r["size"] for r in await referenced(pool))
    assert live == 25 * COVER_BYTES and wasted > 1.5 * live

    await _run_cli(["covers", "compact", "--grace", "0", "--json"], db_url, covers, monkeypatch)
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["referenced_bytes"] == live
    on_disk = sum(pack_bytes(covers).values())
    assert on_disk == result["bytes_after"] <= 1.1 * live
    # Every referenced cover is still readable through `shelfscan cover`, byte for byte.
    for row in await referenced(pool):
        target = tmp_path / "out.bin"
        await _run_cli(["cover", row["sha256"], "-o", str(target)], db_url, covers, monkeypatch)
        assert hashlib.sha256(target.read_bytes()).hexdigest() == row["sha256"]
    # A second compaction finds nothing to do.
    again = await compact(pool, covers, grace_s=0)
    assert again.packs_rewritten == 0 and again.bytes_after == on_disk


async def test_compaction_spares_young_packs_and_deletes_retired_ones_after_the_grace(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    root = tmp_path / "lib"
    paths = covered_library(root, 10)
    await scan(root, chunk_size=5)
    for i, path in enumerate(paths[:6]):
        write_book(path, i, cover_seed=9000 + i)
    await scan(root, chunk_size=5)
    covers = covers_dir_of(tmp_path)
    young = await compact(pool, covers, grace_s=3600)
    assert young.packs_rewritten == 0  # a scan may still be about to commit rows into them

    old_packs = set(pack_bytes(covers))
    past = time.time() - 7200
    for name in old_packs:
        os.utime(covers / PACKS / name, (past, past))
    first = await compact(pool, covers, grace_s=3600)
    assert first.packs_rewritten >= 1 and first.packs_deleted == 0
    retired = {
        r["pack"] for r in await pool.fetch("SELECT pack FROM shelfscan.cover_packs_retired")
    }
    assert retired and retired <= old_packs and retired <= set(pack_bytes(covers))  # still on disk
    for row in await referenced(pool):
        assert row["pack"] not in retired
        data = read_cover(covers, row["pack"], row["pack_offset"], row["size"])
        assert hashlib.sha256(data).hexdigest() == row["sha256"]

    await pool.execute(
        "UPDATE shelfscan.cover_packs_retired SET retired_at = now() - interval '2 hours'"
    )
    second = await compact(pool, covers, grace_s=3600)
    assert second.packs_deleted == len(retired)
    assert not retired & set(pack_bytes(covers))
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.cover_packs_retired") == 0


async def test_a_cover_that_lost_its_pack_is_stored_again_by_a_later_scan(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    """Compaction drops unreferenced bytes; the same cover met again gets its bytes back."""
    root = tmp_path / "lib"
    covered_library(root, 3)
    await scan(root)
    await pool.execute("UPDATE shelfscan.books SET cover_id = NULL")
    await pool.execute("UPDATE shelfscan.files SET cover_id = NULL")
    await compact(pool, covers_dir_of(tmp_path), grace_s=0)
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.covers WHERE pack IS NULL") == 3
    other = tmp_path / "other"
    write_book(other / "again.epub", 1, cover_seed=1)
    await scan(other, library="other")
    row = await pool.fetchrow(
        "SELECT pack, pack_offset, size FROM shelfscan.covers WHERE sha256 = $1",
        hashlib.sha256(fake_cover(1)).hexdigest(),
    )
    assert row["pack"] is not None
    assert read_cover(covers_dir_of(tmp_path), row["pack"], row["pack_offset"], row["size"]) == (
        fake_cover(1)
    )
