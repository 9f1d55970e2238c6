"""Incremental scans that never lose a book: moves, missing files, changes, live watching."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shelfscan.catalogue.libraries import ensure_library
from shelfscan.jobs.events import JobEvents
from shelfscan.jobs.handlers import ScanHandlers
from shelfscan.jobs.queue import JobQueue
from shelfscan.jobs.worker import Daemon, DaemonOptions
from shelfscan.scan.contract import ScanOptions, ScanRequest
from shelfscan.scan.engine import Scanner
from shelfscan.scan.executor import ParseExecutor
from shelfscan.scan.progress import Progress
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub
from shelfscan.watch import LibraryWatcher, WatchOptions
from tests.libraries import small_library
from tests.scanning import ListReporter, ScanFn, export
from tests.test_scan import _xmins


def _epub(path: Path, title: str, author: str = "Some Author") -> None:
    write_epub(path, EpubSpec(title=title, creators=(CreatorSpec(author),), chapters=(("c", "x"),)))


async def _edit_title(pool: asyncpg.Pool, title: str, new: str) -> int:
    book_id: int = await pool.fetchval(
        'UPDATE shelfscan.books SET title = $2, field_sources = field_sources || \'{"title": "manual"}\' '
        "WHERE title = $1 RETURNING id",
        title,
        new,
    )
    return book_id


async def _ids(pool: asyncpg.Pool) -> dict[str, int]:
    rows = await pool.fetch("SELECT b.title, b.id FROM shelfscan.books b")
    return {r["title"]: r["id"] for r in rows}


async def test_renaming_a_file_a_book_folder_and_an_author_folder_keeps_books_and_edits(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    _epub(lib / "Ann" / "First" / "first.epub", "First", "Ann")
    _epub(lib / "Ann" / "Second" / "second.epub", "Second", "Ann")
    _epub(lib / "Bob" / "Third" / "third.epub", "Third", "Bob")
    await scan(lib)
    edited = await _edit_title(pool, "First", "First (my edit)")
    before = await _ids(pool)

    (lib / "Ann" / "First" / "first.epub").rename(lib / "Ann" / "First" / "renamed.epub")  # a file
    (lib / "Ann" / "Second").rename(lib / "Ann" / "Second Book")  # a book folder
    (lib / "Bob").rename(lib / "Robert")  # an author folder
    summary = await scan(lib)
    assert (summary.books_added, summary.books_missing, summary.books_updated) == (0, 0, 0)
    assert await _ids(pool) == before
    assert (await _ids(pool))["First (my edit)"] == edited
    paths = sorted(r["path"] for r in await pool.fetch("SELECT path FROM shelfscan.files"))
    assert paths == [
        "Ann/First/renamed.epub",
        "Ann/Second Book/second.epub",
        "Robert/Third/third.epub",
    ]
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files WHERE status <> 'ok'") == 0


async def test_a_copied_then_deleted_file_is_recognised_by_its_fingerprint(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    _epub(lib / "a" / "book.epub", "Kept")
    await scan(lib)
    book_id = (await _ids(pool))["Kept"]
    # A copy has a new inode and mtime: only the content says it is the same file.
    (lib / "b").mkdir()
    shutil.copyfile(lib / "a" / "book.epub", lib / "b" / "book.epub")
    (lib / "a" / "book.epub").unlink()
    summary = await scan(lib)
    assert (summary.books_added, summary.books_missing) == (0, 0)
    assert await _ids(pool) == {"Kept": book_id}
    assert await pool.fetchval("SELECT path FROM shelfscan.files") == "b/book.epub"


async def test_a_moved_audiobook_folder_moves_all_its_parts(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    from tests.test_books import _mp3

    lib = tmp_path / "lib"
    for i in (1, 2, 3):
        _mp3(
            lib / "Author" / "Long Book" / f"{i:02d}.mp3",
            album="Long Book",
            title=f"Part {i}",
            author="Author",
            track=str(i),
        )
    await scan(lib)
    before = await _ids(pool)
    (lib / "Author" / "Long Book").rename(lib / "Author" / "Long Book (Unabridged)")
    summary = await scan(lib)
    assert (summary.books_added, summary.books_missing) == (0, 0)
    assert await _ids(pool) == before
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM shelfscan.files WHERE path LIKE 'Author/Long Book (Unabridged)/%'"
        )
        == 3
    )


async def test_one_changed_file_of_a_thousand_writes_one_book(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    paths = small_library(lib, 1000)
    await scan(lib, chunk_size=50)
    before = await _xmins(pool)
    target = paths[500]
    write_epub(
        target,
        EpubSpec(title="Retagged", creators=(CreatorSpec("Writer 3"),), chapters=(("Only", "x"),)),
    )
    os.utime(target, ns=(1, 1_800_000_000_000_000_000))
    summary = await scan(lib, chunk_size=50)
    assert (summary.books_updated, summary.books_added, summary.books_unchanged) == (1, 0, 999)
    after = await _xmins(pool)
    changed_books = set(after["books"]) - set(before["books"])
    assert len(changed_books) == 1  # one book row rewritten
    assert len(set(after["files"]) - set(before["files"])) == 1
    untouched = set(before["books"]) & set(after["books"])
    assert len(untouched) == 999


async def test_a_file_rewritten_between_stat_and_read_is_stored_as_it_ends_up(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    path = lib / "book.epub"
    _epub(path, "Before")
    library = await ensure_library(pool, "lib", [lib])
    executor = ParseExecutor("thread", 1, tmp_path / "covers")
    try:
        scanner = Scanner(pool, executor, ScanOptions(workers=1, chunk_size=5))

        def rewrite(event: str) -> None:
            if event == "scan_started":  # planned: the walk has stat'ed the file
                _epub(path, "After, and longer than before")  # rewritten before it is read
                os.utime(path, ns=(1, 1_900_000_000_000_000_000))

        await scanner.run(ScanRequest.whole(library), ListReporter(rewrite))
    finally:
        executor.close()
    (book,) = await export(pool)
    assert book["title"] == "After, and longer than before"
    assert book["files"][0]["size"] == path.stat().st_size
    assert await pool.fetchval("SELECT mtime_ns FROM shelfscan.files") == path.stat().st_mtime_ns


async def test_an_unreadable_subfolder_leaves_its_files_alone(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every folder whatever its mode")
    lib = tmp_path / "lib"
    _epub(lib / "open" / "a.epub", "Open")
    _epub(lib / "locked" / "b.epub", "Locked")
    await scan(lib)
    (lib / "locked").chmod(0)
    try:
        summary = await scan(lib)
    finally:
        (lib / "locked").chmod(0o755)
    assert summary.books_missing == 0
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files WHERE status = 'missing'") == 0


async def test_a_name_that_is_not_utf8_round_trips(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    lib.mkdir()
    raw = os.fsencode(lib) + b"/caf\xe9 \xff.epub"  # Latin-1 bytes, invalid as UTF-8
    _epub(Path(os.fsdecode(raw)), "Latin One")
    summary = await scan(lib)
    assert summary.books_added == 1
    row = await pool.fetchrow("SELECT path, path_raw FROM shelfscan.files")
    assert row["path"] == "caf\\xe9 \\xff.epub"
    assert bytes(row["path_raw"]) == b"caf\xe9 \xff.epub"
    again = await scan(lib)  # found again under the same name: nothing new, nothing missing
    assert (again.books_added, again.books_missing, again.books_unchanged) == (0, 0, 1)


async def test_purge_removes_only_files_missing_past_the_grace_period(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    from shelfscan.catalogue.known import purge_missing

    lib = tmp_path / "lib"
    _epub(lib / "a.epub", "Gone Long Ago")
    _epub(lib / "b.epub", "Gone Just Now")
    _epub(lib / "c.epub", "Still Here")
    await scan(lib)
    (lib / "a.epub").unlink()
    (lib / "b.epub").unlink()
    await scan(lib)
    await pool.execute(
        "UPDATE shelfscan.files SET missing_since = now() - interval '40 days' WHERE path = 'a.epub'"
    )
    assert await purge_missing(pool, 30 * 86400) == (1, 1)
    assert sorted(await _ids(pool)) == ["Gone Just Now", "Still Here"]


# -- live changes ------------------------------------------------------------------------------


@pytest.fixture
async def watching(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> AsyncIterator[Callable[..., Any]]:
    started: list[tuple[asyncio.Event, list[asyncio.Task[None]], ParseExecutor]] = []

    async def start(mode: str) -> LibraryWatcher:
        executor = ParseExecutor("thread", 1, tmp_path / "covers")
        scanner = Scanner(pool, executor, ScanOptions(workers=2, chunk_size=10))
        queue = JobQueue(pool, "watcher", 10)
        handlers = ScanHandlers(pool, scanner, queue).table()
        daemon = Daemon(
            pool,
            db_url,
            queue,
            handlers,
            DaemonOptions(poll_interval_s=0.2, listen=True, progress_interval_s=0.1),
        )
        watcher = LibraryWatcher(
            pool,
            queue,
            WatchOptions(mode=mode, debounce_ms=300, poll_interval_s=0.3, full_scan_interval_s=0),  # type: ignore[arg-type]
        )
        stopping = asyncio.Event()
        tasks = [
            asyncio.create_task(daemon.run(stopping)),
            asyncio.create_task(watcher.run(stopping)),
        ]
        started.append((stopping, tasks, executor))
        deadline = time.monotonic() + 10
        while not watcher.watching and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the watcher is set up
        return watcher

    yield start
    for stopping, tasks, executor in started:
        stopping.set()
        await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 30)
        executor.close()


async def _until(check: Callable[[], Any], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the change did not reach the catalogue in time"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("mode", ["events", "polling"])
async def test_watch_mode_brings_every_kind_of_change_to_the_catalogue(
    pool: asyncpg.Pool, scan: ScanFn, watching: Callable[..., Any], tmp_path: Path, mode: str
) -> None:
    lib = tmp_path / "lib"
    _epub(lib / "Author" / "Old" / "old.epub", "Old Book")
    await scan(lib)
    watcher = await watching(mode)
    assert watcher.polling is (mode == "polling")

    async def titles() -> dict[str, str]:
        rows = await pool.fetch(
            "SELECT b.title, b.status FROM shelfscan.books b JOIN shelfscan.files f ON f.book_id = b.id"
        )
        return {r["title"]: r["status"] for r in rows}

    # create
    _epub(lib / "Author" / "New" / "new.epub", "New Book")
    await _until(lambda: _has(titles, "New Book", "ok"))
    # modify (a polling watcher compares mtimes at one-second resolution)
    await asyncio.sleep(1.1)
    path = lib / "Author" / "New" / "new.epub"
    _epub(path, "New Book, Revised")
    await _until(lambda: _has(titles, "New Book, Revised", "ok"))
    new_id = (await _ids(pool))["New Book, Revised"]
    # move
    (lib / "Author" / "New").rename(lib / "Author" / "Moved")
    await _until(lambda: _path_is(pool, new_id, "Author/Moved/new.epub"))
    # delete
    (lib / "Author" / "Old" / "old.epub").unlink()
    await _until(lambda: _has(titles, "Old Book", "missing"))
    assert (await _ids(pool))["New Book, Revised"] == new_id
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.books") == 2


async def _has(titles: Callable[[], Any], title: str, status: str) -> bool:
    return bool((await titles()).get(title) == status)


async def _path_is(pool: asyncpg.Pool, book_id: int, path: str) -> bool:
    return bool(
        await pool.fetchval(
            "SELECT path = $2 FROM shelfscan.files WHERE book_id = $1", book_id, path
        )
    )


def test_files_under_a_folder_that_cannot_be_listed_are_not_marked_missing() -> None:
    """The diff's rule behind the test above, which root (CI) cannot exercise with chmod."""
    from shelfscan.catalogue.known import KnownFile
    from shelfscan.scan.diff import diff
    from shelfscan.scan.discovery import DiskFile, RootWalk

    walk = RootWalk(1, "/lib")
    walk.files.append(DiskFile(1, "open/a.epub", 10, 5, 7, 1, "epub"))
    walk.unreadable.append("locked")
    known = {
        (1, "open/a.epub"): KnownFile(1, 1, 1, "open/a.epub", 10, 5, 7, "ok"),
        (1, "locked/b.epub"): KnownFile(2, 2, 1, "locked/b.epub", 10, 5, 8, "ok"),
        (1, "gone/c.epub"): KnownFile(3, 3, 1, "gone/c.epub", 10, 5, 9, "ok"),
    }
    plan = diff([walk], known)
    assert [k.path for k in plan.missing] == ["gone/c.epub"]
    assert (plan.unchanged_files, list(plan.unchanged_books)) == (1, [1])


async def test_files_still_being_written_wait_for_a_later_pass(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    _epub(lib / "old" / "settled.epub", "Settled")
    os.utime(lib / "old" / "settled.epub", ns=(1, 1_600_000_000_000_000_000))
    _epub(lib / "new" / "copying.epub", "Copying")  # mtime: just now
    summary = await scan(lib, settle_s=30)
    assert (summary.books_added, summary.files_deferred) == (1, 1)
    assert summary.deferred_folders == (
        ((await pool.fetchval("SELECT id FROM shelfscan.library_paths")), "new"),
    )
    assert sorted(await _ids(pool)) == ["Settled"]
    os.utime(
        lib / "new" / "copying.epub", ns=(1, 1_600_000_000_000_000_000)
    )  # the copy finished long ago
    summary = await scan(lib, settle_s=30)
    assert (summary.books_added, summary.files_deferred) == (1, 0)


async def test_the_daemon_comes_back_for_files_that_were_still_being_written(
    pool: asyncpg.Pool, tmp_path: Path
) -> None:
    from shelfscan.jobs.contract import ScanLibrary
    from shelfscan.jobs.handlers import JobContext
    from shelfscan.jobs.queue import Job

    lib = tmp_path / "lib"
    _epub(lib / "new" / "copying.epub", "Copying")  # mtime: just now
    library = await ensure_library(pool, "lib", [lib])
    executor = ParseExecutor("thread", 1, tmp_path / "covers")
    try:
        scanner = Scanner(pool, executor, ScanOptions(workers=1, chunk_size=5, settle_s=30))
        queue = JobQueue(pool, "d", 30)
        handlers = ScanHandlers(pool, scanner, queue)
        job = Job(1, "scan_library", {"library_id": library.id}, library.id, 1, 5, None)
        ctx = JobContext(job, JobEvents.for_job(1), Progress(), payload=ScanLibrary(library.id))
        result = await handlers.scan_library(ctx)
    finally:
        executor.close()
    assert (result["books_added"], result["files_deferred"]) == (0, 1)
    follow_up = await pool.fetchrow(
        "SELECT kind, payload, run_at > now() + interval '20 seconds' AS later FROM shelfscan.jobs"
    )
    assert follow_up["kind"] == "scan_path" and follow_up["later"]
    assert follow_up["payload"]["paths"] == ["new"]


async def test_a_file_whose_read_failed_is_read_again_though_unchanged(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    """The cause of an error can pass without touching size, mtime or inode: the next scan retries."""
    lib = tmp_path / "lib"
    good = tmp_path / "good.epub"
    _epub(good, "Readable At Last")
    _epub(lib / "fine.epub", "Always Fine")
    path = lib / "late.epub"
    path.write_bytes(b"\0" * good.stat().st_size)  # unreadable, same size as the good copy
    st = path.stat()
    first = await scan(lib)
    assert first.files_failed == 1
    row = await pool.fetchrow(
        "SELECT status, scan_error FROM shelfscan.files WHERE path = 'late.epub'"
    )
    assert row["status"] == "error" and row["scan_error"]

    with path.open("r+b") as fh:  # repaired in place: same inode, same size, same mtime
        fh.write(good.read_bytes())
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns, path.stat().st_ino) == (
        st.st_size, st.st_mtime_ns, st.st_ino,
    )  # fmt: skip
    fine_before = await pool.fetchval(
        "SELECT xmin::text FROM shelfscan.files WHERE path = 'fine.epub'"
    )
    second = await scan(lib)
    assert (second.files_failed, second.books_updated) == (0, 1)
    rows = await pool.fetch("SELECT path, status, scan_error FROM shelfscan.files ORDER BY path")
    assert [tuple(r) for r in rows] == [("fine.epub", "ok", None), ("late.epub", "ok", None)]
    titles = sorted(b["title"] for b in await export(pool))
    assert titles == ["Always Fine", "Readable At Last"]
    # The ok file was not read or written again.
    assert (
        await pool.fetchval("SELECT xmin::text FROM shelfscan.files WHERE path = 'fine.epub'")
        == fine_before
    )


async def test_permission_denied_clears_on_the_scan_after_the_fix(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads every file whatever its mode")
    lib = tmp_path / "lib"
    _epub(lib / "shut.epub", "Was Shut")
    (lib / "shut.epub").chmod(0)
    try:
        first = await scan(lib)
    finally:
        (lib / "shut.epub").chmod(0o644)  # the fix changes no size, mtime or inode
    assert first.files_failed == 1
    assert "Permission denied" in await pool.fetchval("SELECT scan_error FROM shelfscan.files")
    second = await scan(lib)
    assert second.files_failed == 0
    row = await pool.fetchrow("SELECT status, scan_error FROM shelfscan.files")
    assert (row["status"], row["scan_error"]) == ("ok", None)
    assert [b["title"] for b in await export(pool)] == ["Was Shut"]


def test_an_unchanged_empty_file_in_error_is_not_read_again() -> None:
    """An empty file cannot become readable while its size stays 0, so only the others are retried."""
    from shelfscan.catalogue.known import KnownFile
    from shelfscan.scan.diff import diff
    from shelfscan.scan.discovery import DiskFile, RootWalk

    walk = RootWalk(1, "/lib")
    walk.files += [
        DiskFile(1, "empty.epub", 0, 5, 7, 1, "epub"),
        DiskFile(1, "broken.epub", 10, 5, 8, 1, "epub"),
        DiskFile(1, "grown.epub", 10, 6, 9, 1, "epub"),
    ]
    known = {
        (1, "empty.epub"): KnownFile(1, 1, 1, "empty.epub", 0, 5, 7, "error"),
        (1, "broken.epub"): KnownFile(2, 2, 1, "broken.epub", 10, 5, 8, "error"),
        (1, "grown.epub"): KnownFile(3, 3, 1, "grown.epub", 0, 5, 9, "error"),  # was empty
    }
    plan = diff([walk], known)
    assert sorted(d.path for d, _ in plan.changed) == ["broken.epub", "grown.epub"]
    assert (plan.unchanged_files, list(plan.unchanged_books), plan.missing) == (1, [1], [])


def test_the_catalogues_compact_view_gives_back_every_file_as_it_was_stored() -> None:
    """KnownFiles keeps columns, not objects: what comes out must be what went in, Nones too."""
    from shelfscan.catalogue.known import KnownFile, KnownFiles, Verdict
    from shelfscan.catalogue.pathcodec import to_db as _db_path

    files = [
        KnownFile(1, 10, 1, "a/x.epub", 0, 5, None, "error"),
        KnownFile(2, 10, 1, "a/y.epub", 7, -3, 2**40, "ok", 2**33, "f" * 64),
        KnownFile(3, 11, 2, "a/x.epub", 9, 6, 8, "missing", None),
        KnownFile(4, 12, 1, "caf\udce9.epub", 1, 2, 3, "ok", 4),  # a non-UTF-8 name
    ]
    known = KnownFiles.of(files)
    assert len(known) == 4 and list(known) == [(k.root_id, k.path) for k in files]
    assert [known[(k.root_id, k.path)] for k in files] == files
    assert known.get((2, "a/y.epub")) is None and known.row(9, "a/x.epub") is None
    assert (known.held(1), known.held(2)) == (3, 0)  # missing files are not held
    row = known.row(1, "a/y.epub")
    assert row is not None and known.verdict(row, 7, -3, 2**40) is Verdict.UNCHANGED
    assert known.verdict(row, 7, -3, 1) is Verdict.CHANGED  # another inode: another file
    assert known.verdict(row, 8, -3, 2**40) is Verdict.CHANGED
    no_inode = known.row(1, "a/x.epub")  # in error, empty, no inode recorded
    assert no_inode is not None and known.verdict(no_inode, 0, 5, 12345) is Verdict.UNCHANGED
    assert known.verdict(no_inode, 0, 6, 12345) is Verdict.CHANGED
    gone = known.row(2, "a/x.epub")
    assert gone is not None and known.verdict(gone, 9, 6, 8) is Verdict.RESTORED
    # The loader's batch form (rows in _KNOWN_COLUMNS order, raw bytes for a non-UTF-8
    # name, two roots in one batch) builds the same view as one file at a time.
    batch = KnownFiles()
    batch.add_rows(
        [
            (k.id, k.book_id, k.root_id, *_db_path(k.path), k.size, k.mtime_ns, k.inode,
             k.status, k.device, k.fingerprint)
            for k in files
        ]
    )  # fmt: skip
    assert list(batch) == list(known) and [batch.at(r) for r in range(4)] == files
    assert dict(batch.paths_of(1)) == {"a/x.epub": 0, "a/y.epub": 1, "caf\udce9.epub": 3}
    assert dict(batch.paths_of(7)) == {}
    single = KnownFiles()
    single.add_rows([(5, 1, 3, "b.epub", None, 1, 1, None, "error", None, None)])
    single.add_rows([])
    assert single.paths_of(3) == {"b.epub": 0} and single.at(0).inode is None
