"""The scan of one library: discovery -> diff -> queue -> parse -> resolve -> write.

Units to read (a book folder, or a lone file) are packed into chunks and put on
an `asyncio.Queue`; N coroutine workers each take a chunk, have it parsed off
the loop, resolve its names through the single-flight cache and write its
books in one batch transaction.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import asyncpg

from shelfscan.catalogue.entities import EntityResolver
from shelfscan.catalogue.known import (
    KnownFile,
    KnownSidecar,
    Move,
    apply_moves,
    load_known_files,
    load_known_paths,
    load_known_sidecars,
    load_known_under,
    mark_missing,
    mark_restored,
    record_file_errors,
    save_sidecars,
)
from shelfscan.catalogue.libraries import Library
from shelfscan.catalogue.writer import BookRow, BookWriter
from shelfscan.covers import known_cover_hashes
from shelfscan.jobs.events import JobEvents
from shelfscan.scan.assemble import Assembler, BookParts, Parsed
from shelfscan.scan.diff import ScanPlan, diff, fingerprinter
from shelfscan.scan.discovery import DEFAULT_RULES, IgnoreRules, RootWalk, stat_files, walk_root
from shelfscan.scan.executor import ParseExecutor
from shelfscan.scan.grouping import Unit, form_books, plan_units
from shelfscan.scan.parse import ParseTask, UnitTask
from shelfscan.scan.progress import Progress


class RootUnavailable(RuntimeError):
    """A root is missing, unreadable or suspiciously empty: the scan stops and marks nothing."""


class ScanCancelled(Exception):
    """The scan stopped at a safe point because it was asked to; what it wrote stays."""


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
    covers_failed: int = 0  # books written without their cover (covers disk full); retried
    # (root id, folder) of books left for later because a file was still being written.
    deferred_folders: tuple[tuple[int, str], ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, int | float]:
        out = asdict(self)
        out.pop("deferred_folders")
        return out


@dataclass(slots=True)
class Tally:
    added: int = 0
    updated: int = 0
    failed: int = 0
    deferred: int = 0
    covers_failed: int = 0
    retry: list[Unit] = field(default_factory=list)

    def add(self, other: dict[str, int]) -> None:
        self.added += other.get("books_added", 0)
        self.updated += other.get("books_updated", 0)
        self.failed += other.get("files_failed", 0)
        self.deferred += other.get("files_deferred", 0)
        self.covers_failed += other.get("covers_failed", 0)


@dataclass(frozen=True, slots=True)
class PlannedScan:
    plan: ScanPlan
    roots: dict[int, str]
    units: list[Unit]
    settling: list[Unit]
    files_seen: int
    restored: int
    started: float


@dataclass(frozen=True, slots=True)
class ScanOptions:
    workers: int = 4
    chunk_size: int = 50
    settle_s: float = 0.0  # files modified more recently than this are left for a later pass
    ignore: IgnoreRules = DEFAULT_RULES  # junk folder and file names the walk skips


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
        tally = await self.process(library.id, planned.units, planned.roots, events, progress, stop)
        return await self.finish(library, planned, tally, events, progress)

    async def plan(self, library: Library, events: JobEvents, progress: Progress) -> PlannedScan:
        """Walk, guard the roots, diff; restore unchanged files that had gone missing."""
        started = time.perf_counter()
        progress.enter("discovery", 0)
        walks = await asyncio.to_thread(_walk_all, library, self.options.ignore)
        known = await load_known_files(self.pool, library.id)
        _guard_roots(walks, known)
        known_sidecars = await load_known_sidecars(self.pool, library.id)
        return await self._plan_from(walks, known, known_sidecars, events, started)

    async def _plan_from(
        self,
        walks: list[RootWalk],
        known: dict[tuple[int, str], KnownFile],
        known_sidecars: dict[tuple[int, str], KnownSidecar],
        events: JobEvents,
        started: float,
    ) -> PlannedScan:
        for walk in walks:
            for path, reason in walk.problems:
                events.warning("path_unreadable", path=path, reason=reason, root=walk.root)
        roots = {w.root_id: w.root for w in walks}
        plan = await asyncio.to_thread(diff, walks, known, known_sidecars, fingerprinter(roots))
        touched = plan.touched
        if plan.moved:
            stale = await apply_moves(
                self.pool,
                [
                    Move(k.id, k.book_id, d.root_id, d.path, d.size, d.mtime_ns, d.inode, d.device)
                    for d, k in plan.moved
                ],
            )
            # Fields read off the old path are stale: those books are re-read from the new one.
            touched |= {(d.root_id, d.path) for d, k in plan.moved if k.book_id in stale}
            for d, k in plan.moved:
                events.info("file_moved", path=d.path, previous_path=k.path)
                known.pop((k.root_id, k.path), None)
                known[(d.root_id, d.path)] = dataclasses.replace(
                    k,
                    root_id=d.root_id,
                    path=d.path,
                    size=d.size,
                    mtime_ns=d.mtime_ns,
                    inode=d.inode,
                )
        units = plan_units(walks, known, touched, plan.refresh_folders)
        units, settling = _split_settling(units, self.options.settle_s)
        for unit in settling:
            for disk, _ in unit.files:
                events.info("file_settling", path=disk.path, settle_s=self.options.settle_s)
        files_seen = sum(len(w.files) for w in walks)
        events.info(
            "scan_planned",
            files_seen=files_seen,
            new=len(plan.new),
            changed=len(plan.changed),
            unchanged=len(plan.unchanged),
            missing=len(plan.missing),
            moved=len(plan.moved),
            sidecars_changed=len(plan.sidecars_changed) + len(plan.sidecars_gone),
            units=len(units),
        )
        restored = await mark_restored(self.pool, [k.id for k in plan.restored])
        return PlannedScan(
            plan=plan,
            roots=roots,
            units=units,
            settling=settling,
            files_seen=files_seen,
            restored=restored,
            started=started,
        )

    async def process(
        self,
        library_id: int,
        units: list[Unit],
        roots: dict[int, str],
        events: JobEvents,
        progress: Progress,
        stop: asyncio.Event | None = None,
    ) -> Tally:
        """Read and write `units`; stops between chunks when `stop` is set (ScanCancelled)."""
        tally = Tally()
        progress.enter("parse", sum(u.size for u in units))
        assembler = Assembler(self.resolver, library_id)
        await self._run_workers(units, roots, assembler, events, progress, tally, stop)
        if tally.retry:
            # Files that changed while being read get one more pass once the rest is done.
            again = await asyncio.to_thread(_restat, tally.retry, roots)
            tally.retry = []
            await self._run_workers(again, roots, assembler, events, progress, tally, stop)
            for unit in tally.retry:
                for disk, _ in unit.files:
                    events.warning(
                        "file_still_changing", path=disk.path, action="deferred to next scan"
                    )
            tally.deferred = sum(u.size for u in tally.retry)
        return tally

    async def finish(
        self,
        library: Library,
        planned: PlannedScan,
        tally: Tally,
        events: JobEvents,
        progress: Progress,
    ) -> ScanSummary:
        """Library-level bookkeeping, once per scan: missing files, sidecar state, the summary."""
        progress.enter("finalize")
        plan = planned.plan
        books_missing = await mark_missing(self.pool, library.id, [k.id for k in plan.missing])
        for k in plan.missing:
            events.info("file_missing", path=k.path)
        await save_sidecars(
            self.pool,
            library.id,
            [(s.root_id, s.path, s.size, s.mtime_ns) for s in plan.sidecars_changed],
            [s.id for s in plan.sidecars_gone],
        )
        return ScanSummary(
            books_added=tally.added,
            books_updated=tally.updated,
            books_unchanged=_unchanged_books(plan),
            books_missing=books_missing,
            books_restored=planned.restored,
            files_seen=planned.files_seen,
            files_failed=tally.failed,
            files_deferred=tally.deferred + sum(u.size for u in planned.settling),
            elapsed_s=round(time.perf_counter() - planned.started, 3),
            covers_failed=tally.covers_failed,
            deferred_folders=tuple(sorted({(u.root_id, u.folder) for u in planned.settling})),
        )

    async def scan_files(
        self,
        library_id: int,
        root_id: int,
        root: str,
        paths: list[str],
        sidecar_paths: list[str],
        events: JobEvents,
        progress: Progress,
        stop: asyncio.Event | None = None,
    ) -> Tally:
        """Read the named files and sidecars (one part of a split scan) as whole units."""
        walk = await asyncio.to_thread(stat_files, root_id, root, paths, sidecar_paths)
        known = await load_known_paths(self.pool, root_id, paths)
        refresh = {(root_id, os.path.dirname(p)) for p in sidecar_paths}
        # The parent chose every named file to be read (new, changed, in a folder whose sidecars
        # changed, or moved with fields from its old path): the part reads them all.
        touched = {(root_id, d.path) for d in walk.files}
        units = plan_units([walk], known, touched, refresh)
        return await self.process(library_id, units, {root_id: root}, events, progress, stop)

    async def scan_folders(
        self,
        library: Library,
        root_id: int,
        folders: list[str],
        events: JobEvents,
        progress: Progress,
        stop: asyncio.Event | None = None,
    ) -> ScanSummary:
        """A targeted scan of some folders of one root (what a file watcher saw change).

        Same rules as a full scan, restricted to those folders: moves between
        them are recognised, vanished files are marked missing, the root guard holds.
        """
        started = time.perf_counter()
        root = next((str(r.path) for r in library.roots if r.id == root_id), None)
        if root is None:
            raise RootUnavailable(f"root {root_id} is not a folder of library {library.name}")
        folders = _outermost(folders)
        progress.enter("discovery", 0)
        walks = await asyncio.to_thread(_walk_folders, root_id, root, folders, self.options.ignore)
        known = await load_known_under(self.pool, root_id, folders)
        sidecars = {
            k: v
            for k, v in (await load_known_sidecars(self.pool, library.id)).items()
            if k[0] == root_id and any(_under(v.path, f) for f in folders)
        }
        merged = RootWalk(root_id, root)
        for w in walks:
            merged.files.extend(w.files)
            merged.sidecars.extend(w.sidecars)
            merged.unreadable.extend(w.unreadable)
            merged.problems.extend(w.problems)
        planned = await self._plan_from([merged], known, sidecars, events, started)
        tally = await self.process(library.id, planned.units, planned.roots, events, progress, stop)
        return await self.finish(library, planned, tally, events, progress)

    async def _run_workers(
        self,
        units: list[Unit],
        roots: dict[int, str],
        assembler: Assembler,
        events: JobEvents,
        progress: Progress,
        tally: Tally,
        stop: asyncio.Event | None = None,
    ) -> None:
        workers = max(1, self.options.workers)
        queue: asyncio.Queue[list[Unit] | None] = asyncio.Queue(maxsize=workers * 2)

        async def produce() -> None:
            size = chunk_size_for(sum(u.size for u in units), workers, self.options.chunk_size)
            for chunk in _pack(units, size):
                await queue.put(chunk)
            for _ in range(workers):
                await queue.put(None)

        async def consume() -> None:
            while (chunk := await queue.get()) is not None:
                if stop is not None and stop.is_set():
                    continue  # drain: a chunk is the safe point
                await self._handle_chunk(chunk, roots, assembler, events, tally)
                progress.done += sum(u.size for u in chunk)
                progress.failed = tally.failed

        async with asyncio.TaskGroup() as group:
            group.create_task(produce())
            for _ in range(workers):
                group.create_task(consume())
        if stop is not None and stop.is_set():
            raise ScanCancelled(f"stopped after {progress.done} of {progress.total} files")

    async def _handle_chunk(
        self,
        chunk: list[Unit],
        roots: dict[int, str],
        assembler: Assembler,
        events: JobEvents,
        tally: Tally,
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
                    events.warning("file_vanished", path=disk.path)
                elif outcome.changed:
                    changed = True
                elif outcome.error is not None:
                    unit_errors.append((Parsed(disk, known, outcome), outcome.error))
                else:
                    parsed.append(Parsed(disk, known, outcome))
                    if outcome.cover_error is not None:
                        tally.covers_failed += 1
                        events.warning(
                            "cover_not_stored", path=disk.path, reason=outcome.cover_error
                        )
            if changed:
                tally.retry.append(unit)  # re-read the whole unit: a book is never built half-read
                continue
            for item, reason in unit_errors:
                tally.failed += 1
                events.warning("file_unreadable", path=item.disk.path, reason=reason)
                if item.known is None:
                    error_rows.append(assembler.error_row(item.disk, reason, item.outcome))
                else:
                    o = item.outcome
                    known_errors.append((item.known.id, reason, o.size, o.mtime_ns, o.inode))
            sidecars = unit_outcome.sidecars
            if sidecars is not None:
                for path, reason in sidecars.problems:
                    events.warning("sidecar_unreadable", path=path, reason=reason)
            groups = form_books(
                [(p.disk.path, p.outcome.metadata) for p in parsed if p.outcome.metadata]
            )
            # Sidecars describe the folder's book: only attributable when there is exactly one.
            for group in groups:
                books.append(
                    BookParts([parsed[i] for i in group], sidecars if len(groups) == 1 else None)
                )
        rows = await assembler.build(books) + error_rows
        result = await self.writer.write(rows)
        failed_ids = {id(f.book) for f in result.failed}
        for failure in result.failed:
            tally.failed += len(failure.book.files)
            for f in failure.book.files:
                events.error("book_write_failed", path=f.path, reason=failure.error)
                if f.file_id is None:
                    retry = await self.writer.write([assembler.error_row_for(f, failure.error)])
                    if retry.failed:
                        events.error(
                            "error_record_failed", path=f.path, reason=retry.failed[0].error
                        )
                else:
                    known_errors.append((f.file_id, failure.error, f.size, f.mtime_ns, f.inode))
        await record_file_errors(self.pool, known_errors)
        for row in rows:
            if row.status != "ok" or id(row) in failed_ids:
                continue
            if row.book_id is None:
                tally.added += 1
            else:
                tally.updated += 1


MIN_CHUNK = 10


def chunk_size_for(files: int, workers: int, largest: int) -> int:
    """Big chunks for big scans, enough chunks to keep every worker busy on small ones.

    Each chunk is one hand-off to the parse pool and one write transaction, so
    fewer, larger chunks cost less (on 10,000 EPUBs here: 50 files a chunk gave
    ~1,400 books/s, 200 gave ~1,800); a small scan still needs a few chunks per
    worker or one parse process does all the work.
    """
    return max(min(largest, MIN_CHUNK), min(largest, files // (workers * 2) or 1))


def _pack(units: list[Unit], chunk_size: int) -> list[list[Unit]]:
    """Chunks of about `chunk_size` files; a unit is never split."""
    chunks: list[list[Unit]] = []
    current: list[Unit] = []
    size = 0
    for unit in units:
        if current and size + unit.size > chunk_size:
            chunks.append(current)
            current, size = [], 0
        current.append(unit)
        size += unit.size
    if current:
        chunks.append(current)
    return chunks


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


def _split_settling(units: list[Unit], settle_s: float) -> tuple[list[Unit], list[Unit]]:
    """Units with a file modified within `settle_s` (likely still being copied) wait for later."""
    if settle_s <= 0:
        return units, []
    cutoff = time.time_ns() - int(settle_s * 1e9)
    ready: list[Unit] = []
    settling: list[Unit] = []
    for unit in units:
        (settling if any(d.mtime_ns > cutoff for d, _ in unit.files) else ready).append(unit)
    return ready, settling


def _walk_folders(
    root_id: int, root: str, folders: list[str], ignore: IgnoreRules
) -> list[RootWalk]:
    if not os.path.isdir(root) or not os.listdir(root):
        raise RootUnavailable(
            f"library root {root} is missing or empty; nothing was marked missing"
        )
    return [walk_root(root_id, root, f, ignore) for f in folders]


def _under(path: str, folder: str) -> bool:
    return not folder or path == folder or path.startswith(folder + "/")


def _outermost(folders: list[str]) -> list[str]:
    """Drop folders inside other listed folders: each file is walked once."""
    chosen: list[str] = []
    for folder in sorted({f.strip("/") for f in folders}, key=len):
        if not any(_under(folder, c) for c in chosen):
            chosen.append(folder)
    return chosen


def _walk_all(library: Library, ignore: IgnoreRules) -> list[RootWalk]:
    return [walk_root(root.id, str(root.path), ignore=ignore) for root in library.roots]


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
    return len({k.book_id for k in plan.unchanged} | {k.book_id for _, k in plan.moved})
