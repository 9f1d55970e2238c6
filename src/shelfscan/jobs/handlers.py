"""What each job kind does. A handler gets a `JobContext` and returns the job's result."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from shelfscan.catalogue.libraries import Library, Root
from shelfscan.jobs.contract import (
    JobFailed,
    JobStatus,
    Payload,
    ScanFiles,
    ScanFolders,
    ScanLibrary,
    check_library,
    decode,
)
from shelfscan.jobs.events import JobEvents
from shelfscan.jobs.queue import Job, JobQueue, PartRow
from shelfscan.scan.grouping import Unit, book_folder
from shelfscan.scan.pipeline import ScanCancelled, Scanner, ScanSummary, Tally
from shelfscan.scan.progress import Progress

__all__ = ["Handler", "JobContext", "JobFailed", "ScanHandlers", "SplitPolicy", "split_units"]


@dataclass(slots=True)
class JobContext:
    job: Job
    events: JobEvents
    progress: Progress
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: bool = False
    lost: bool = False  # the lease was taken over by another daemon
    waiting: bool = False  # parked until its parts finish: it does not hold a worker slot
    payload: Payload | None = None  # decoded by the daemon before the handler runs
    # What its parts did (they count it in their own metrics; the parent must not again).
    from_parts: dict[str, int] = field(default_factory=dict)


Handler = Callable[[JobContext], Awaitable[dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class SplitPolicy:
    """A scan with more files to read than `threshold` is cut into parts of ~`part_files`."""

    threshold: int = 5000
    part_files: int = 2000


async def library_by_id(pool: asyncpg.Pool, library_id: int | None) -> Library | None:
    if library_id is None:
        return None
    rows = await pool.fetch(
        """
        SELECT l.id, l.name, p.id AS root_id, p.path FROM shelfscan.libraries l
        LEFT JOIN shelfscan.library_paths p ON p.library_id = l.id WHERE l.id = $1 ORDER BY p.id
        """,
        library_id,
    )
    if not rows:
        return None
    from pathlib import Path

    roots = tuple(Root(r["root_id"], Path(r["path"])) for r in rows if r["root_id"] is not None)
    return Library(rows[0]["id"], rows[0]["name"], roots)


def split_units(units: list[Unit], part_files: int) -> list[list[Unit]]:
    """Runs of whole units in path order, each on one root, of about `part_files` files."""
    ordered = sorted(units, key=lambda u: (u.root_id, u.folder))
    parts: list[list[Unit]] = []
    current: list[Unit] = []
    size = 0
    for unit in ordered:
        if current and (size + unit.size > part_files or unit.root_id != current[0].root_id):
            parts.append(current)
            current, size = [], 0
        current.append(unit)
        size += unit.size
    if current:
        parts.append(current)
    return parts


class ScanHandlers:
    def __init__(
        self, pool: asyncpg.Pool, scanner: Scanner, queue: JobQueue, split: SplitPolicy
    ) -> None:
        self.pool = pool
        self.scanner = scanner
        self.queue = queue
        self.split = split

    def table(self) -> dict[str, Handler]:
        return {"scan_library": self.scan_library, "scan_path": self.scan_path}

    async def scan_library(self, ctx: JobContext) -> dict[str, Any]:
        payload = _payload(ctx)
        assert isinstance(payload, ScanLibrary)
        library = await library_by_id(self.pool, payload.library_id)
        check_library(payload, library)
        assert library is not None
        if not library.roots:
            raise JobFailed(f"library {library.name} has no folders")
        # Parts of an earlier attempt of this job (its daemon died) must end before we plan
        # again; what they wrote is this job's work too.
        earlier = await self._wait_for_parts(ctx, None)
        planned = await self.scanner.plan(library, ctx.events, ctx.progress)
        if sum(u.size for u in planned.units) > self.split.threshold:
            tally = await self._run_in_parts(ctx, library, planned.units)
        else:
            tally = await self.scanner.process(
                library.id, planned.units, planned.roots, ctx.events, ctx.progress, ctx.stop
            )
        for part in earlier:
            if part.state == JobStatus.SUCCEEDED:
                _count_part(ctx, tally, part)
        summary = await self.scanner.finish(library, planned, tally, ctx.events, ctx.progress)
        await self._follow_up(library.id, summary)
        return summary.as_dict()

    async def _follow_up(self, library_id: int, summary: ScanSummary) -> None:
        """Files still being written when we looked get a targeted scan once they settle."""
        by_root: dict[int, list[str]] = {}
        for root_id, folder in summary.deferred_folders:
            by_root.setdefault(root_id, []).append(folder)
        for root_id, folders in by_root.items():
            await self.queue.enqueue(
                ScanFolders(library_id, root_id, tuple(folders)),
                priority=2,
                delay_s=self.scanner.options.settle_s + 1.0,
            )

    async def scan_path(self, ctx: JobContext) -> dict[str, Any]:
        payload = _payload(ctx)
        assert isinstance(payload, ScanFolders | ScanFiles)
        library = await library_by_id(self.pool, payload.library_id)
        root = check_library(payload, library)
        assert library is not None and root is not None
        if isinstance(payload, ScanFolders):
            # A watcher's targeted scan: the folders around what changed.
            folders = await asyncio.to_thread(_folders_of, str(root.path), list(payload.paths))
            summary = await self.scanner.scan_folders(
                library, root.id, folders, ctx.events, ctx.progress, ctx.stop
            )
            await self._follow_up(library.id, summary)
            return summary.as_dict()
        tally = await self.scanner.scan_files(
            library.id,
            root.id,
            str(root.path),
            list(payload.files),
            list(payload.sidecars),
            ctx.events,
            ctx.progress,
            ctx.stop,
        )
        return {
            "books_added": tally.added,
            "books_updated": tally.updated,
            "files_failed": tally.failed,
            "files_deferred": tally.deferred,
            "files": len(payload.files),
        }

    async def _run_in_parts(self, ctx: JobContext, library: Library, units: list[Unit]) -> Tally:
        parts = [
            ScanFiles(
                library.id,
                part[0].root_id,
                tuple(d.path for u in part for d, _ in u.files),
                tuple(s.path for u in part for s in u.sidecars),
            )
            for part in split_units(units, self.split.part_files)
        ]
        ids = await self.queue.enqueue_parts(ctx.job.id, parts)
        total = sum(u.size for u in units)
        ctx.events.info("scan_split", parts=len(ids), files=total)
        ctx.progress.enter("parts", total)
        rows = await self._wait_for_parts(ctx, set(ids))
        failed = [r for r in rows if r.state != JobStatus.SUCCEEDED]
        if failed:
            first = failed[0]
            raise RuntimeError(
                f"{len(failed)} of {len(rows)} parts did not succeed "
                f"(first: job {first.id} {first.state}: {first.last_error})"
            )
        tally = Tally()
        for row in rows:
            _count_part(ctx, tally, row)
        return tally

    async def _wait_for_parts(self, ctx: JobContext, ids: set[int] | None) -> list[PartRow]:
        """Wait until the parts (`ids`, or all of this job's) have ended; progress counts them."""
        ctx.waiting = True
        try:
            while True:
                rows = [r for r in await self.queue.parts(ctx.job.id) if ids is None or r.id in ids]
                if rows and ctx.progress.phase == "parts":
                    ctx.progress.done = min(
                        ctx.progress.total,
                        sum(
                            int((r.result or {}).get("files", 0))
                            if r.state == JobStatus.SUCCEEDED
                            else r.done
                            for r in rows
                        ),
                    )
                if all(r.state.finished for r in rows):
                    return rows
                if ctx.stop.is_set():
                    raise ScanCancelled("stopped while waiting for its parts")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ctx.stop.wait(), 1.0)
        finally:
            ctx.waiting = False


def _payload(ctx: JobContext) -> Payload:
    """The decoded payload (the daemon decodes it before the handler; a direct caller may not)."""
    if ctx.payload is None:
        ctx.payload = decode(ctx.job.kind, ctx.job.payload)
    return ctx.payload


def _count_part(ctx: JobContext, tally: Tally, part: PartRow) -> None:
    result = part.result or {}
    tally.add(result)
    for key in ("books_added", "books_updated", "files_failed"):
        ctx.from_parts[key] = ctx.from_parts.get(key, 0) + int(result.get(key, 0))


def _folders_of(root: str, paths: list[str]) -> list[str]:
    """A changed folder is scanned whole; a changed file brings in its book folder."""
    folders = []
    for rel in paths:
        rel = rel.strip("/")
        folders.append(rel if rel and os.path.isdir(os.path.join(root, rel)) else book_folder(rel))
    return folders
