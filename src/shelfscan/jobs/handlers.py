"""What each job kind does: turn the job's typed payload into a `ScanRequest` and run it.

A handler gets a `JobContext` (the daemon decoded its payload) and returns the job's
result. Every scan job — a whole library, a watcher's folders, a part of a split
scan — goes through the one entry point, `Scanner.run`, with a `JobReporter` (job
rows, change feed) and a `JobDispatch` (parts and follow-ups as jobs).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import asyncpg

from shelfscan.catalogue.libraries import library_by_id
from shelfscan.errors import one_line
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
from shelfscan.jobs.reporter import JobReporter
from shelfscan.scan.contract import (
    ScanCancelled,
    ScanRequest,
    ScanResult,
    ScanScope,
)
from shelfscan.scan.engine import Scanner
from shelfscan.scan.grouping import book_folder
from shelfscan.scan.progress import Progress

__all__ = ["Handler", "JobContext", "JobDispatch", "JobFailed", "ScanHandlers"]

# What a part counts in its own metrics; its parent must not count it again.
_COUNTED = ("books_added", "books_updated", "files_failed")


@dataclass(slots=True)
class JobContext:
    job: Job
    events: JobEvents
    progress: Progress
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: bool = False
    lost: bool = False  # the lease was taken over by another daemon
    waiting: bool = False  # parked until its parts finish: it does not hold a daemon slot
    payload: Payload | None = None  # decoded by the daemon before the handler runs
    # What its parts did (they count it in their own metrics; the parent must not again).
    from_parts: dict[str, int] = field(default_factory=dict)


Handler = Callable[[JobContext], Awaitable[dict[str, Any]]]


class ScanHandlers:
    def __init__(self, pool: asyncpg.Pool, scanner: Scanner, queue: JobQueue) -> None:
        self.pool = pool
        self.scanner = scanner
        self.queue = queue

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
        earlier = [
            _part_result(ctx, part)
            for part in await self.wait_for_parts(ctx, None)
            if part.state == JobStatus.SUCCEEDED
        ]
        result = await self._run(ctx, ScanRequest.whole(library))
        return result.absorb(earlier).as_dict()

    async def scan_path(self, ctx: JobContext) -> dict[str, Any]:
        payload = _payload(ctx)
        assert isinstance(payload, ScanFolders | ScanFiles)
        library = await library_by_id(self.pool, payload.library_id)
        root = check_library(payload, library)
        assert library is not None and root is not None
        if isinstance(payload, ScanFolders):
            # A watcher's targeted scan (or a follow-up): the folders around what changed.
            folders = await asyncio.to_thread(_folders_of, str(root.path), list(payload.paths))
            request = ScanRequest.folders(library, root.id, folders)
        else:
            request = ScanRequest.files(library, root.id, payload.files, payload.sidecars)
        return (await self._run(ctx, request)).as_dict()

    async def _run(self, ctx: JobContext, request: ScanRequest) -> ScanResult:
        async with JobReporter(
            self.pool, ctx.job.id, ctx.events, ctx.progress, ctx.stop
        ) as reporter:
            return await self.scanner.run(request, reporter, JobDispatch(self, ctx))

    async def wait_for_parts(self, ctx: JobContext, ids: set[int] | None) -> list[PartRow]:
        """Wait until the parts (`ids`, or all of this job's) have ended; progress counts them."""
        ctx.waiting = True
        try:
            while True:
                rows = [r for r in await self.queue.parts(ctx.job.id) if ids is None or r.id in ids]
                if rows and ctx.progress.phase == "parts":
                    ctx.progress.done = min(
                        ctx.progress.total,
                        sum(
                            ScanResult.from_dict(r.result or {}).files_read
                            if r.state == JobStatus.SUCCEEDED
                            else r.done
                            for r in rows
                        ),
                    )
                if all(r.state.finished for r in rows):
                    return rows
                if ctx.stop.is_set():
                    raise ScanCancelled("stopped while waiting for its parts")
                # Look again in a second, or at once when asked to stop.
                with anyio.move_on_after(1.0):
                    await ctx.stop.wait()
        finally:
            ctx.waiting = False


class JobDispatch:
    """`ScanDispatch` through the jobs table: parts are `scan_path` jobs other daemons share."""

    def __init__(self, handlers: ScanHandlers, ctx: JobContext) -> None:
        self._handlers = handlers
        self._ctx = ctx

    async def run_parts(self, parts: Sequence[ScanRequest]) -> list[ScanResult]:
        queue, ctx = self._handlers.queue, self._ctx
        payloads = [p for p in map(_request_payload, parts) if isinstance(p, ScanFiles)]
        ids = await queue.enqueue_parts(ctx.job.id, payloads)
        rows = await self._handlers.wait_for_parts(ctx, set(ids))
        failed = [r for r in rows if r.state != JobStatus.SUCCEEDED]
        if failed:
            first = failed[0]
            raise RuntimeError(
                f"{len(failed)} of {len(rows)} parts did not succeed "
                f"(first: job {first.id} {first.state}: {one_line(first.last_error or '')})"
            )
        return [_part_result(ctx, row) for row in rows]

    async def follow_up(self, request: ScanRequest, delay_s: float) -> None:
        await self._handlers.queue.enqueue(_request_payload(request), priority=2, delay_s=delay_s)


def _part_result(ctx: JobContext, part: PartRow) -> ScanResult:
    """A finished part's result; its counts are noted so the parent's metrics skip them."""
    result = ScanResult.from_dict(part.result or {})
    for key in _COUNTED:
        ctx.from_parts[key] = ctx.from_parts.get(key, 0) + int(getattr(result, key))
    return result


def _request_payload(request: ScanRequest) -> ScanFolders | ScanFiles:
    """A targeted request as the typed `scan_path` payload (the inverse of `scan_path`)."""
    assert request.root_id is not None
    if request.scope is ScanScope.FOLDERS:
        return ScanFolders(request.library.id, request.root_id, request.paths)
    return ScanFiles(request.library.id, request.root_id, request.paths, request.sidecars)


def _payload(ctx: JobContext) -> Payload:
    """The decoded payload (the daemon decodes it before the handler; a direct caller may not)."""
    if ctx.payload is None:
        ctx.payload = decode(ctx.job.kind, ctx.job.payload)
    return ctx.payload


def _folders_of(root: str, paths: list[str]) -> list[str]:
    """A changed folder is scanned whole; a changed file brings in its book folder."""
    folders = []
    for rel in paths:
        rel = rel.strip("/")
        folders.append(rel if rel and os.path.isdir(os.path.join(root, rel)) else book_folder(rel))
    return folders
