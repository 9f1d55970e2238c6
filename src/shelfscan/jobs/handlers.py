"""What each job kind does: turn the job's payload into a `ScanRequest` and run it.

A handler gets a `JobContext` and returns the job's result. Every scan job —
a whole library, a watcher's folders, a part of a split scan — goes through
the one entry point, `Scanner.run`, with a `JobReporter` (job rows, change
feed) and a `JobDispatch` (parts and follow-ups as jobs).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import asyncpg

from shelfscan.catalogue.libraries import Library, library_by_id
from shelfscan.catalogue.pathcodec import from_json, to_json
from shelfscan.errors import ShelfscanError, one_line
from shelfscan.jobs.events import JobEvents
from shelfscan.jobs.queue import Job, JobQueue
from shelfscan.jobs.reporter import JobReporter
from shelfscan.scan.contract import ScanCancelled, ScanRequest, ScanResult, ScanScope
from shelfscan.scan.engine import Scanner
from shelfscan.scan.grouping import book_folder
from shelfscan.scan.progress import Progress


class JobFailed(ShelfscanError):
    """A failure that retrying cannot fix (e.g. the library was deleted)."""


@dataclass(slots=True)
class JobContext:
    job: Job
    events: JobEvents
    progress: Progress
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: bool = False
    lost: bool = False  # the lease was taken over by another daemon
    waiting: bool = False  # parked until its parts finish: it does not hold a daemon slot


Handler = Callable[[JobContext], Awaitable[dict[str, Any]]]


class ScanHandlers:
    def __init__(self, pool: asyncpg.Pool, scanner: Scanner, queue: JobQueue) -> None:
        self.pool = pool
        self.scanner = scanner
        self.queue = queue

    def table(self) -> dict[str, Handler]:
        return {"scan_library": self.scan_library, "scan_path": self.scan_path}

    async def scan_library(self, ctx: JobContext) -> dict[str, Any]:
        library = await self._library(ctx)
        if not library.roots:
            raise JobFailed(f"library {library.name} has no folders")
        # Parts of an earlier attempt of this job (its daemon died) must end before we plan again.
        await self.wait_for_parts(ctx)
        return await self._run(ctx, ScanRequest.whole(library))

    async def scan_path(self, ctx: JobContext) -> dict[str, Any]:
        return await self._run(ctx, await self.request_for_path(ctx.job.payload, ctx))

    async def request_for_path(self, payload: dict[str, Any], ctx: JobContext) -> ScanRequest:
        """A `scan_path` payload as a request: a watcher's `paths`, or a part's `files`."""
        library = await self._library(ctx)
        roots = {r.id: str(r.path) for r in library.roots}
        root_id = payload.get("root_id")
        if root_id in roots and isinstance(payload.get("paths"), list):
            # A watcher's targeted scan: the folders around what changed.
            folders = await asyncio.to_thread(
                _folders_of, roots[root_id], [from_json(p) for p in payload["paths"]]
            )
            return ScanRequest.folders(library, root_id, folders)
        files = payload.get("files")
        if root_id not in roots or not isinstance(files, list):
            raise JobFailed("scan_path needs a root_id of the library and a list of files")
        return ScanRequest.files(
            library,
            root_id,
            [from_json(f) for f in files],
            [from_json(f) for f in payload.get("sidecars") or []],
        )

    async def _run(self, ctx: JobContext, request: ScanRequest) -> dict[str, Any]:
        reporter = JobReporter(self.pool, ctx.job.id, ctx.events, ctx.progress, ctx.stop)
        result = await self.scanner.run(request, reporter, JobDispatch(self, ctx))
        return result.as_dict()

    async def _library(self, ctx: JobContext) -> Library:
        library = (
            await library_by_id(self.pool, ctx.job.library_id)
            if ctx.job.library_id is not None
            else None
        )
        if library is None:
            raise JobFailed(f"library {ctx.job.library_id} does not exist")
        return library

    async def wait_for_parts(self, ctx: JobContext) -> list[asyncpg.Record]:
        ctx.waiting = True
        try:
            while True:
                rows = await self.pool.fetch(
                    """
                    SELECT id, state, result, progress, last_error FROM shelfscan.jobs
                    WHERE parent_id = $1 ORDER BY id
                    """,
                    ctx.job.id,
                )
                open_parts = [r for r in rows if r["state"] in ("queued", "running")]
                if rows and ctx.progress.phase == "parts":
                    ctx.progress.done = sum(
                        ScanResult.from_dict(r["result"] or {}).files_read
                        if r["state"] == "succeeded"
                        else (r["progress"] or {}).get("done", 0)
                        for r in rows
                    )
                if not open_parts:
                    return list(rows)
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
        payloads = [_payload(part) for part in parts]
        await self._handlers.queue.enqueue_many("scan_path", payloads, self._ctx.job.id)
        rows = await self._handlers.wait_for_parts(self._ctx)
        failed = [r for r in rows if r["state"] != "succeeded"]
        if failed:
            raise RuntimeError(
                f"{len(failed)} of {len(rows)} parts did not succeed "
                f"(first: job {failed[0]['id']} {failed[0]['state']}: "
                f"{one_line(failed[0]['last_error'] or '')})"
            )
        return [ScanResult.from_dict(r["result"] or {}) for r in rows]

    async def follow_up(self, request: ScanRequest, delay_s: float) -> None:
        await self._handlers.queue.enqueue(
            "scan_path", _payload(request), priority=2, delay_s=delay_s
        )


def _payload(request: ScanRequest) -> dict[str, Any]:
    """A FOLDERS or FILES request as a `scan_path` payload (the inverse of request_for_path)."""
    base: dict[str, Any] = {"library_id": request.library.id, "root_id": request.root_id}
    if request.scope is ScanScope.FOLDERS:
        return base | {"paths": [to_json(p) for p in request.paths]}
    return base | {
        "files": [to_json(p) for p in request.paths],
        "sidecars": [to_json(p) for p in request.sidecars],
    }


def _folders_of(root: str, paths: list[str]) -> list[str]:
    """A changed folder is scanned whole; a changed file brings in its book folder."""
    folders = []
    for rel in paths:
        rel = rel.strip("/")
        folders.append(rel if rel and os.path.isdir(os.path.join(root, rel)) else book_folder(rel))
    return folders
