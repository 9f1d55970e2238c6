"""The scan of one library: discovery -> diff -> queue -> parse -> resolve -> write.

Files to read are cut into chunks and put on an `asyncio.Queue`; N coroutine
workers each take a chunk, have it parsed off the loop, resolve its names
through the single-flight cache and write its books in one batch transaction.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import asyncpg

from shelfscan.catalogue.entities import EntityResolver
from shelfscan.catalogue.known import (
    KnownFile,
    load_known_files,
    load_known_paths,
    mark_missing,
    mark_restored,
    record_file_errors,
)
from shelfscan.catalogue.libraries import Library
from shelfscan.catalogue.writer import BookRow, BookWriter
from shelfscan.jobs.events import JobEvents
from shelfscan.scan.assemble import Assembler, Parsed
from shelfscan.scan.diff import ScanPlan, diff
from shelfscan.scan.discovery import DiskFile, RootWalk, stat_files, walk_root
from shelfscan.scan.executor import ParseExecutor
from shelfscan.scan.parse import ParseTask
from shelfscan.scan.progress import Progress

WorkItem = tuple[DiskFile, KnownFile | None]


class RootUnavailable(RuntimeError):
    """A root is missing, unreadable or suspiciously empty: the scan stops and marks nothing."""


@dataclass(frozen=True, slots=True)
class ScanSummary:
    books_added: int
    books_updated: int
    books_unchanged: int
    books_missing: int
    books_restored: int
    files_seen: int
    files_failed: int
    files_deferred: int
    elapsed_s: float

    def as_dict(self) -> dict[str, int | float]:
        return asdict(self)


@dataclass(slots=True)
class Tally:
    added: int = 0
    updated: int = 0
    failed: int = 0
    deferred: int = 0
    retry: list[WorkItem] = field(default_factory=list)

    def add(self, other: dict[str, int]) -> None:
        self.added += other.get("books_added", 0)
        self.updated += other.get("books_updated", 0)
        self.failed += other.get("files_failed", 0)
        self.deferred += other.get("files_deferred", 0)


@dataclass(frozen=True, slots=True)
class PlannedScan:
    plan: ScanPlan
    roots: dict[int, str]
    work: list[WorkItem]
    files_seen: int
    restored: int
    started: float


class ScanCancelled(Exception):
    """The scan stopped at a safe point because it was asked to; what it wrote stays."""


@dataclass(frozen=True, slots=True)
class ScanOptions:
    workers: int = 4
    chunk_size: int = 50


class Scanner:
    """Everything a scan needs, passed in once; `scan` can run many times (a daemon)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        executor: ParseExecutor,
        options: ScanOptions,
        resolver: EntityResolver | None = None,
        writer: BookWriter | None = None,
    ) -> None:
        self.pool = pool
        self.executor = executor
        self.options = options
        self.resolver = resolver or EntityResolver(pool)
        self.writer = writer or BookWriter(pool)

    async def scan(
        self,
        library: Library,
        events: JobEvents,
        progress: Progress,
        stop: asyncio.Event | None = None,
    ) -> ScanSummary:
        planned = await self.plan(library, events, progress)
        tally = await self.process(library.id, planned.work, planned.roots, events, progress, stop)
        return await self.finish(library, planned, tally, events, progress)

    async def plan(self, library: Library, events: JobEvents, progress: Progress) -> PlannedScan:
        """Walk, guard the roots, diff; restore unchanged files that had gone missing."""
        started = time.perf_counter()
        progress.enter("discovery")
        walks = await asyncio.to_thread(_walk_all, library)
        known = await load_known_files(self.pool, library.id)
        _guard_roots(walks, known)
        for walk in walks:
            for path, reason in walk.problems:
                events.warning("path_unreadable", path=path, reason=reason, root=walk.root)
        plan = diff(walks, known)
        files_seen = sum(len(w.files) for w in walks)
        events.info(
            "scan_planned",
            files_seen=files_seen,
            new=len(plan.new),
            changed=len(plan.changed),
            unchanged=len(plan.unchanged),
            missing=len(plan.missing),
        )
        restored = await mark_restored(self.pool, [k.id for k in plan.restored])
        return PlannedScan(
            plan=plan,
            roots={w.root_id: w.root for w in walks},
            work=[(d, None) for d in plan.new] + list(plan.changed),
            files_seen=files_seen,
            restored=restored,
            started=started,
        )

    async def process(
        self,
        library_id: int,
        work: list[WorkItem],
        roots: dict[int, str],
        events: JobEvents,
        progress: Progress,
        stop: asyncio.Event | None = None,
    ) -> Tally:
        """Parse and write `work`; stops between chunks when `stop` is set (ScanCancelled)."""
        tally = Tally()
        progress.enter("parse", len(work))
        assembler = Assembler(self.resolver, library_id)
        await self._run_workers(work, roots, assembler, events, progress, tally, stop)
        if tally.retry:
            # Files that changed while being read get one more pass once the rest is done.
            again, tally.retry = tally.retry, []
            await self._run_workers(again, roots, assembler, events, progress, tally, stop)
            for disk, _ in tally.retry:
                events.warning(
                    "file_still_changing", path=disk.path, action="deferred to next scan"
                )
            tally.deferred = len(tally.retry)
        return tally

    async def finish(
        self,
        library: Library,
        planned: PlannedScan,
        tally: Tally,
        events: JobEvents,
        progress: Progress,
    ) -> ScanSummary:
        """Library-level bookkeeping, once per scan: missing files and the summary."""
        progress.enter("finalize")
        plan = planned.plan
        books_missing = await mark_missing(self.pool, library.id, [k.id for k in plan.missing])
        for k in plan.missing:
            events.info("file_missing", path=k.path)
        return ScanSummary(
            books_added=tally.added,
            books_updated=tally.updated,
            books_unchanged=_unchanged_books(plan),
            books_missing=books_missing,
            books_restored=planned.restored,
            files_seen=planned.files_seen,
            files_failed=tally.failed,
            files_deferred=tally.deferred,
            elapsed_s=round(time.perf_counter() - planned.started, 3),
        )

    async def scan_files(
        self,
        library_id: int,
        root_id: int,
        root: str,
        paths: list[str],
        events: JobEvents,
        progress: Progress,
        stop: asyncio.Event | None = None,
    ) -> Tally:
        """Parse and write the new or changed files among `paths` (one part of a split scan)."""
        walk = await asyncio.to_thread(stat_files, root_id, root, paths)
        known = await load_known_paths(self.pool, root_id, paths)
        plan = diff([walk], known)
        work: list[WorkItem] = [(d, None) for d in plan.new] + list(plan.changed)
        return await self.process(library_id, work, {root_id: root}, events, progress, stop)

    async def _run_workers(
        self,
        work: list[WorkItem],
        roots: dict[int, str],
        assembler: Assembler,
        events: JobEvents,
        progress: Progress,
        tally: Tally,
        stop: asyncio.Event | None = None,
    ) -> None:
        workers = max(1, self.options.workers)
        queue: asyncio.Queue[list[WorkItem] | None] = asyncio.Queue(maxsize=workers * 2)

        async def produce() -> None:
            size = self.options.chunk_size
            for start in range(0, len(work), size):
                await queue.put(work[start : start + size])
            for _ in range(workers):
                await queue.put(None)

        async def consume() -> None:
            while (chunk := await queue.get()) is not None:
                if stop is not None and stop.is_set():
                    continue  # drain: a chunk is the safe point
                await self._handle_chunk(chunk, roots, assembler, events, tally)
                progress.done += len(chunk)
                progress.failed = tally.failed

        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(workers):
                group.create_task(consume())
        if stop is not None and stop.is_set():
            raise ScanCancelled(f"stopped after {progress.done} of {progress.total} files")

    async def _handle_chunk(
        self,
        chunk: list[WorkItem],
        roots: dict[int, str],
        assembler: Assembler,
        events: JobEvents,
        tally: Tally,
    ) -> None:
        tasks = [
            ParseTask(i, os.path.join(roots[d.root_id], d.path), d.size, d.mtime_ns)
            for i, (d, _) in enumerate(chunk)
        ]
        outcomes = await self.executor.parse(tasks)
        parsed: list[Parsed] = []
        error_rows: list[BookRow] = []
        known_errors: list[tuple[int, str, int, int, int | None]] = []
        for (disk, known), outcome in zip(chunk, outcomes, strict=True):
            if outcome.vanished:
                events.warning("file_vanished", path=disk.path)
            elif outcome.changed:
                tally.retry.append((disk, known))
            elif outcome.error is not None:
                tally.failed += 1
                events.warning("file_unreadable", path=disk.path, reason=outcome.error)
                if known is None:
                    error_rows.append(assembler.error_row(disk, outcome.error, outcome))
                else:
                    known_errors.append(
                        (known.id, outcome.error, outcome.size, outcome.mtime_ns, outcome.inode)
                    )
            else:
                parsed.append(Parsed(disk, known, outcome))
        rows = await assembler.build(parsed) + error_rows
        result = await self.writer.write(rows)
        by_key = {(d.root_id, d.path): d for d, _ in chunk}
        for failure in result.failed:
            f = failure.book.files[0]
            disk = by_key[(f.root_id, f.path)]
            tally.failed += 1
            events.error("book_write_failed", path=disk.path, reason=failure.error)
            if f.file_id is None:
                await self.writer.write([assembler.error_row(disk, failure.error)])
            else:
                known_errors.append((f.file_id, failure.error, f.size, f.mtime_ns, f.inode))
        await record_file_errors(self.pool, known_errors)
        failed_keys = {(x.book.files[0].root_id, x.book.files[0].path) for x in result.failed}
        for row in rows:
            if row.status != "ok" or (row.files[0].root_id, row.files[0].path) in failed_keys:
                continue
            if row.book_id is None:
                tally.added += 1
            else:
                tally.updated += 1


def _walk_all(library: Library) -> list[RootWalk]:
    return [walk_root(root.id, str(root.path)) for root in library.roots]


def _guard_roots(walks: Sequence[RootWalk], known: dict[tuple[int, str], KnownFile]) -> None:
    for walk in walks:
        if walk.error:
            raise RootUnavailable(f"{walk.error}; nothing was marked missing")
        if not walk.files:
            held = sum(
                1 for k in known.values() if k.root_id == walk.root_id and k.status != "missing"
            )
            if held:
                raise RootUnavailable(
                    f"library root {walk.root} has no book files but the catalogue holds {held} "
                    "for it (unmounted drive?); nothing was marked missing"
                )


def _unchanged_books(plan: ScanPlan) -> int:
    return len({k.book_id for k in plan.unchanged})
