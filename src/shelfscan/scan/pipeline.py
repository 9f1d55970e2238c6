"""The chunk pipeline: units to read -> chunks on a queue -> parse -> resolve -> write.

Units to read (a book folder, or a lone file) are packed into chunks and put on
an `asyncio.Queue`; `workers` scan coroutines each take a chunk, have it parsed
off the loop (by the parse processes of `ParseExecutor`), resolve its names
through the single-flight cache and write its books in one batch transaction.
A chunk is the unit of commit, of cancellation and of the change feed: once its
transaction committed, the reporter is told which books it added or updated.

This is one stage of `Scanner.run` (scan/engine.py), which plans what to read
and does the library-level bookkeeping around it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from shelfscan.catalogue.known import record_file_errors
from shelfscan.catalogue.writer import BookRow, BookWriter
from shelfscan.covers import known_cover_hashes
from shelfscan.scan.assemble import Assembler, BookParts, Parsed
from shelfscan.scan.contract import CatalogueChanges, ScanCancelled, ScanOptions, ScanReporter
from shelfscan.scan.executor import ParseExecutor
from shelfscan.scan.grouping import Unit, form_books
from shelfscan.scan.parse import ParseTask, UnitTask

# The smallest chunk worth a hand-off to the parse pool and a write transaction.
MIN_CHUNK = 10


@dataclass(frozen=True, slots=True)
class ReadOutcome:
    """What reading some units did to the catalogue."""

    added: int = 0
    updated: int = 0
    failed: int = 0
    deferred: int = 0  # files still changing after a second read: left for the next scan
    covers_failed: int = 0  # books written without their cover (covers disk full)


@dataclass(slots=True)
class _Counts:
    added: int = 0
    updated: int = 0
    failed: int = 0
    covers_failed: int = 0
    retry: list[Unit] = field(default_factory=list)


class ChunkPipeline:
    """Reads and writes units for one scan; everything it needs is passed in."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        library_id: int,
        executor: ParseExecutor,
        writer: BookWriter,
        assembler: Assembler,
        reporter: ScanReporter,
        options: ScanOptions,
    ) -> None:
        self.pool = pool
        self.library_id = library_id
        self.executor = executor
        self.writer = writer
        self.assembler = assembler
        self.reporter = reporter
        self.options = options

    async def read(self, units: list[Unit], roots: dict[int, str]) -> ReadOutcome:
        """Read and write `units`; stops between chunks when the reporter asks (ScanCancelled)."""
        progress = self.reporter.progress
        progress.enter("parse", sum(u.size for u in units))
        counts = _Counts()
        await self._run_chunks(units, roots, counts)
        deferred = 0
        if counts.retry:
            # Files that changed while being read get one more pass once the rest is done.
            again = await asyncio.to_thread(_restat, counts.retry, roots)
            counts.retry = []
            await self._run_chunks(again, roots, counts)
            for unit in counts.retry:
                for disk, _ in unit.files:
                    self.reporter.warning(
                        "file_still_changing", path=disk.path, action="deferred to next scan"
                    )
            deferred = sum(u.size for u in counts.retry)
        return ReadOutcome(
            counts.added, counts.updated, counts.failed, deferred, counts.covers_failed
        )

    async def _run_chunks(self, units: list[Unit], roots: dict[int, str], counts: _Counts) -> None:
        workers = max(1, self.options.workers)
        progress = self.reporter.progress
        queue: asyncio.Queue[list[Unit] | None] = asyncio.Queue(maxsize=workers * 2)

        async def produce() -> None:
            size = chunk_size_for(sum(u.size for u in units), workers, self.options.chunk_size)
            for chunk in pack_units(units, size):
                await queue.put(chunk)
            for _ in range(workers):
                await queue.put(None)

        async def scan_worker() -> None:
            while (chunk := await queue.get()) is not None:
                if self.reporter.stop_requested():
                    continue  # drain: a chunk is the safe point
                await self._handle_chunk(chunk, roots, counts)
                progress.done += sum(u.size for u in chunk)
                progress.failed = counts.failed

        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(workers):
                group.create_task(scan_worker())
        if self.reporter.stop_requested():
            raise ScanCancelled(f"stopped after {progress.done} of {progress.total} files")

    async def _handle_chunk(
        self, chunk: list[Unit], roots: dict[int, str], counts: _Counts
    ) -> None:
        # A re-read book whose cover the catalogue holds writes no new pack bytes.
        known_covers = await known_cover_hashes(
            self.pool, [k.id for unit in chunk for _, k in unit.files if k is not None]
        )
        tasks = [
            UnitTask(
                ui,
                tuple(
                    ParseTask(fi, os.path.join(roots[d.root_id], d.path), d.size, d.mtime_ns)
                    for fi, (d, _) in enumerate(unit.files)
                ),
                tuple(os.path.join(roots[s.root_id], s.path) for s in unit.sidecars),
                tuple(
                    {s for _, k in unit.files if k is not None for s in known_covers.get(k.id, ())}
                ),
            )
            for ui, unit in enumerate(chunk)
        ]
        outcomes = await self.executor.parse(tasks)
        books: list[BookParts] = []
        error_rows: list[BookRow] = []
        known_errors: list[tuple[int, str, int, int, int | None]] = []
        for unit, unit_outcome in zip(chunk, outcomes, strict=True):
            parsed: list[Parsed] = []
            unit_errors: list[tuple[Parsed, str]] = []
            changed = False
            for (disk, known), outcome in zip(unit.files, unit_outcome.files, strict=True):
                if outcome.vanished:
                    self.reporter.warning("file_vanished", path=disk.path)
                elif outcome.changed:
                    changed = True
                elif outcome.error is not None:
                    unit_errors.append((Parsed(disk, known, outcome), outcome.error))
                else:
                    parsed.append(Parsed(disk, known, outcome))
                    if outcome.metadata is not None and outcome.metadata.warning:
                        # Read around damage (a truncated EPUB, a bad MOBI record): the book
                        # is kept, `files.warning` says why, and the log viewer sees it too.
                        self.reporter.warning(
                            "file_damaged", path=disk.path, reason=outcome.metadata.warning
                        )
                    if outcome.cover_error is not None:
                        counts.covers_failed += 1
                        self.reporter.warning(
                            "cover_not_stored", path=disk.path, reason=outcome.cover_error
                        )
            if changed:
                counts.retry.append(unit)  # re-read the whole unit: a book is never built half-read
                continue
            for item, reason in unit_errors:
                counts.failed += 1
                self.reporter.warning("file_unreadable", path=item.disk.path, reason=reason)
                if item.known is None:
                    error_rows.append(self.assembler.error_row(item.disk, reason, item.outcome))
                else:
                    o = item.outcome
                    known_errors.append((item.known.id, reason, o.size, o.mtime_ns, o.inode))
            sidecars = unit_outcome.sidecars
            if sidecars is not None:
                for path, reason in sidecars.problems:
                    self.reporter.warning("sidecar_unreadable", path=path, reason=reason)
            groups = form_books(
                [(p.disk.path, p.outcome.metadata) for p in parsed if p.outcome.metadata]
            )
            # Sidecars describe the folder's book: only attributable when there is exactly one.
            for group in groups:
                books.append(
                    BookParts([parsed[i] for i in group], sidecars if len(groups) == 1 else None)
                )
        rows = await self.assembler.build(books) + error_rows
        result = await self.writer.write(rows)
        failed_ids = {id(f.book) for f in result.failed}
        for failure in result.failed:
            counts.failed += len(failure.book.files)
            for f in failure.book.files:
                self.reporter.error("book_write_failed", path=f.path, reason=failure.error)
                if f.file_id is None:
                    retry = await self.writer.write(
                        [self.assembler.error_row_for(f, failure.error)]
                    )
                    if retry.failed:
                        self.reporter.error(
                            "error_record_failed", path=f.path, reason=retry.failed[0].error
                        )
                else:
                    known_errors.append((f.file_id, failure.error, f.size, f.mtime_ns, f.inode))
        await record_file_errors(self.pool, known_errors)
        added: list[int] = []
        updated: list[int] = []
        landed = [row for row in rows if id(row) not in failed_ids]
        for row, book_id in zip(landed, result.written, strict=True):
            if row.status != "ok":
                continue
            (added if row.book_id is None else updated).append(book_id)
        counts.added += len(added)
        counts.updated += len(updated)
        if added or updated:
            await self.reporter.changes(
                CatalogueChanges(self.library_id, tuple(added), tuple(updated))
            )


def chunk_size_for(files: int, workers: int, largest: int) -> int:
    """Big chunks for big scans, enough chunks to keep every worker busy on small ones.

    Each chunk is one hand-off to the parse pool and one write transaction, so
    fewer, larger chunks cost less (on 10,000 EPUBs here: 50 files a chunk gave
    ~1,400 books/s, 200 gave ~1,800); a small scan still needs a few chunks per
    worker or one parse process does all the work.
    """
    return max(min(largest, MIN_CHUNK), min(largest, files // (workers * 2) or 1))


def pack_units(units: Sequence[Unit], size: int, *, one_root: bool = False) -> list[list[Unit]]:
    """Runs of whole units of about `size` files, in the given order (a unit is never split).

    Chunks for the scan workers, and (`one_root`: each run on one root) parts of a
    split scan.
    """
    runs: list[list[Unit]] = []
    current: list[Unit] = []
    files = 0
    for unit in units:
        if current and (
            files + unit.size > size or (one_root and unit.root_id != current[0].root_id)
        ):
            runs.append(current)
            current, files = [], 0
        current.append(unit)
        files += unit.size
    if current:
        runs.append(current)
    return runs


def _restat(units: list[Unit], roots: dict[int, str]) -> list[Unit]:
    """Take fresh stats of files that changed while being read, before reading them again."""
    fresh: list[Unit] = []
    for unit in units:
        files = []
        for disk, known in unit.files:
            try:
                st = os.stat(os.path.join(roots[disk.root_id], disk.path))
            except OSError:
                continue  # gone now: the next scan marks it missing
            files.append(
                (
                    dataclasses.replace(
                        disk, size=st.st_size, mtime_ns=st.st_mtime_ns, inode=st.st_ino
                    ),
                    known,
                )
            )
        if files:
            fresh.append(dataclasses.replace(unit, files=files))
    return fresh
