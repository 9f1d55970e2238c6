"""A full covers disk stops nothing (issue 14, finding 6).

On a 1 MiB tmpfs (mounted here when we may; else the same scan with a pack writer that
fails like a full filesystem), 60 books with 40 KB covers: every book is written,
each cover that did not fit is a warning in the log and in `job_logs`, counted in
the summary, and the next scan after space is freed picks those covers up.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from shelfscan.covers import CoverDiskFull, CoverPack, PackWriter, open_pack_file, read_cover
from shelfscan.scan.parse import COVER_PENDING_MTIME_NS, ParseTask, UnitTask, parse_units
from tests.scanning import ScanFn
from tests.test_covers import covered_library, fake_cover

BOOKS = 60
COVER = 40_000


def _mount(target: Path, size: str) -> bool:
    target.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


@pytest.fixture
def small_covers_disk(tmp_path: Path) -> Iterator[Path]:
    covers = tmp_path / "data" / "covers"  # where tests.scanning's settings put the covers
    if not _mount(covers, "1m"):
        pytest.skip("cannot mount a tmpfs here (the seam test below covers this case)")
    try:
        yield covers
    finally:
        subprocess.run(["umount", "-l", str(covers)], check=False)


def _library(root: Path) -> list[Path]:
    return covered_library(root, BOOKS, COVER)  # 60 x 40 KB do not fit in 1 MiB


async def test_full_covers_disk_keeps_every_book_and_a_later_scan_adds_the_covers(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path, small_covers_disk: Path
) -> None:
    root = tmp_path / "lib"
    _library(root)
    first = await scan(root, executor="process", chunk_size=10)

    assert first.books_added == BOOKS and first.files_failed == 0
    with_cover = await pool.fetchval(
        "SELECT count(*) FROM shelfscan.books WHERE cover_id IS NOT NULL"
    )
    assert 0 < first.covers_failed == BOOKS - with_cover
    logged = await pool.fetchval(
        "SELECT count(*) FROM shelfscan.job_logs WHERE event = 'cover_not_stored' AND level = 'warning'"
    )
    assert logged == first.covers_failed
    for row in await pool.fetch(
        "SELECT c.pack, c.pack_offset, c.size, c.sha256 FROM shelfscan.books b "
        "JOIN shelfscan.covers c ON c.id = b.cover_id"
    ):
        read_cover(small_covers_disk, row["pack"], row["pack_offset"], row["size"])  # whole

    # Space is freed: the next scan re-reads exactly the books without a cover.
    subprocess.run(
        ["mount", "-o", "remount,size=64m", str(small_covers_disk)], check=True, capture_output=True
    )
    second = await scan(root, executor="process", chunk_size=10)
    assert second.covers_failed == 0 and second.books_updated == first.covers_failed
    rows = await pool.fetch(
        "SELECT b.title, c.pack, c.pack_offset, c.size FROM shelfscan.books b "
        "JOIN shelfscan.covers c ON c.id = b.cover_id"
    )
    assert len(rows) == BOOKS
    for row in rows:
        data = read_cover(small_covers_disk, row["pack"], row["pack_offset"], row["size"])
        assert data == fake_cover(int(row["title"].split()[-1]), COVER)
    third = await scan(root, executor="process", chunk_size=10)
    assert third.books_updated == 0  # nothing left pending


class FullDisk:
    """A pack file on a filesystem with `room` bytes left: writes past it fail with ENOSPC."""

    def __init__(self, path: Path, room: int, fail_sync: bool = False) -> None:
        self.inner = open_pack_file(path)
        self.room = room
        self.fail_sync = fail_sync

    def write(self, data: memoryview, /) -> int | None:
        if self.room <= 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        part = data[: self.room]
        written = self.inner.write(part) or 0
        self.room -= written
        return written

    def truncate(self, size: int, /) -> int:
        return self.inner.truncate(size)

    def fileno(self) -> int:
        return self.inner.fileno()

    def close(self) -> None:
        self.inner.close()


def _tasks(paths: list[Path]) -> list[UnitTask]:
    return [
        UnitTask(i, (ParseTask(0, str(p), p.stat().st_size, p.stat().st_mtime_ns),))
        for i, p in enumerate(paths)
    ]


def test_pack_writer_seam_disk_full_mid_cover_keeps_the_book_and_the_pack_whole(
    tmp_path: Path,
) -> None:
    paths = _library(tmp_path / "lib")[:5]
    room = 2 * COVER + COVER // 2  # two covers fit, the third is cut off halfway

    def make_pack(covers_dir: Path, known: frozenset[str]) -> CoverPack:
        return CoverPack(covers_dir, known, opener=lambda p: FullDisk(p, room))

    outcomes = parse_units(_tasks(paths), str(tmp_path / "covers"), make_pack)
    files = [o.files[0] for o in outcomes]
    assert all(f.metadata is not None and f.error is None for f in files)  # every book kept
    assert [f.cover is not None for f in files] == [True, True, False, False, False]
    for f in files[2:]:
        assert f.cover_error is not None and "No space left" in f.cover_error
        assert f.mtime_ns == COVER_PENDING_MTIME_NS  # read again by the next scan
    assert files[0].mtime_ns == paths[0].stat().st_mtime_ns
    (pack,) = (tmp_path / "covers" / "packs").iterdir()
    assert pack.stat().st_size == 2 * COVER  # the partial third cover was cut off
    for i, f in enumerate(files[:2]):
        assert f.cover is not None and f.cover.offset is not None and f.cover.pack == pack.name
        assert read_cover(tmp_path / "covers", pack.name, f.cover.offset, f.cover.size) == (
            fake_cover(i, COVER)
        )


def test_pack_writer_seam_failed_final_flush_drops_every_cover_of_the_pack(
    tmp_path: Path,
) -> None:
    """A filesystem that reports ENOSPC only on the flush (delayed allocation, NFS)."""
    paths = _library(tmp_path / "lib")[:4]

    def failing_sync(handle: PackWriter) -> None:
        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))

    def make_pack(covers_dir: Path, known: frozenset[str]) -> CoverPack:
        return CoverPack(covers_dir, known, sync=failing_sync)

    outcomes = parse_units(_tasks(paths), str(tmp_path / "covers"), make_pack)
    files = [o.files[0] for o in outcomes]
    assert all(f.metadata is not None for f in files)
    assert all(f.cover is None and f.cover_error for f in files)
    assert all(f.mtime_ns == COVER_PENDING_MTIME_NS for f in files)
    assert list((tmp_path / "covers" / "packs").iterdir()) == []  # no pack left pointing nowhere


def test_disk_full_is_its_own_error_and_an_oserror(tmp_path: Path) -> None:
    pack = CoverPack(tmp_path, opener=lambda p: FullDisk(p, 0))
    with pytest.raises(CoverDiskFull) as caught:
        pack.store(fake_cover(1))
    assert isinstance(caught.value, OSError) and caught.value.errno == errno.ENOSPC
    pack.close()
    assert list((tmp_path / "packs").iterdir()) == []
