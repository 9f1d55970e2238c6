"""Running a scan in this process: the job row, progress, logs and the scanner together."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import asyncpg

from shelfscan.config import Settings
from shelfscan.errors import ShelfscanError, one_line
from shelfscan.jobs.contract import JobStatus, ScanLibrary
from shelfscan.jobs.events import JobEvents, JobProgress
from shelfscan.jobs.lease import hold_lease
from shelfscan.jobs.queue import JobQueue
from shelfscan.jobs.reporter import JobReporter
from shelfscan.jobs.store import start_cli_job
from shelfscan.scan.contract import (
    ScanCancelled,
    ScanOptions,
    ScanRequest,
    ScanResult,
    SplitPolicy,
)
from shelfscan.scan.discovery import IgnoreRules
from shelfscan.scan.engine import Scanner
from shelfscan.scan.executor import ParseExecutor
from shelfscan.scan.progress import Progress, ProgressView, publish_progress


class ScanStopped(ShelfscanError):
    """The CLI's scan stopped early: cancelled by an operator, or its job was taken over."""


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# A CLI scan of at most this many files is parsed in-process: starting the parse pool would
# cost more than the parsing (a daemon keeps its pool and never does this).
SMALL_SCAN_FILES = 100


def make_executor(settings: Settings, *, inline_max_files: int = 0) -> ParseExecutor:
    return ParseExecutor(
        settings.parse_executor,
        settings.parse_processes,
        settings.covers_dir,
        inline_max_files=inline_max_files,
    )


async def run_scan_job(
    pool: asyncpg.Pool,
    scanner: Scanner,
    request: ScanRequest,
    settings: Settings,
    *,
    view: ProgressView | None = None,
) -> tuple[int, ScanResult]:
    """Record a `scan_library` job, run it here under a lease, finish it.

    The same `Scanner.run` the daemon's handlers call, without a dispatcher: a scan in
    this process never splits, and reports files still being written as deferred.
    Errors finish it `failed` (with a one-line reason) and re-raise; a cancel finishes
    it `cancelled` and raises ScanStopped.
    """
    library = request.library
    queue = JobQueue(pool, owner_id(), settings.lease_s)  # finishing is the queue's fenced update
    started = await start_cli_job(queue, ScanLibrary(library.id))
    job_id = started.id
    events = JobEvents.for_job(job_id, library_id=library.id, library=library.name)
    for reaped in started.reaped.reaped:
        events.log.warning(
            "lease_expired",
            job_id=reaped.id,
            state=str(reaped.state),
            previous_owner=reaped.previous_owner,
        )
    progress = Progress()
    try:
        async with (
            hold_lease(queue, job_id, events.log) as lease,
            publish_progress(
                JobProgress(pool, events),
                progress,
                interval_s=settings.progress_interval_s,
                view=view,
            ),
            JobReporter(pool, job_id, events, progress, lease.stop) as reporter,
        ):
            result = await scanner.run(request, reporter)
    except ScanCancelled as exc:
        if lease.lost and not lease.cancel_requested:
            raise ScanStopped(
                f"job {job_id} was taken from this scan (retried by an operator, or its lease "
                f"ran out while the database was unreachable); {one_line(str(exc))}"
            ) from None
        await _finish_quietly(
            queue, job_id, JobStatus.CANCELLED, events, error=exc, progress=progress.snapshot()
        )
        raise ScanStopped(f"job {job_id} cancelled: {one_line(str(exc))}") from None
    except BaseException as exc:
        await _finish_quietly(
            queue, job_id, JobStatus.FAILED, events, error=exc, progress=progress.snapshot()
        )
        raise
    await queue.finish(
        job_id, JobStatus.SUCCEEDED, result=result.as_dict(), progress=progress.snapshot()
    )
    return job_id, result


async def _finish_quietly(
    queue: JobQueue, job_id: int, state: JobStatus, events: JobEvents, **kwargs: Any
) -> None:
    """Record how the scan ended if the database lets us; if not, its lease runs out and
    the job is ended by whoever reaps it. The original error is what the user must see."""
    try:
        await queue.finish(job_id, state, **kwargs)
    except Exception as exc:
        events.log.warning("job_finish_failed", state=str(state), error=one_line(exc))


def scanner_for(
    pool: asyncpg.Pool, settings: Settings, executor: ParseExecutor, workers: int | None = None
) -> Scanner:
    settings.covers_dir.mkdir(parents=True, exist_ok=True)
    options = ScanOptions(
        workers=workers or settings.workers,
        chunk_size=settings.chunk_size,
        settle_s=settings.settle_s,
        ignore=IgnoreRules.from_patterns(settings.ignore),
    )
    return Scanner(pool, executor, options, SplitPolicy(settings.split_files, settings.part_files))


def resolve_roots(paths: list[str]) -> list[Path]:
    return [Path(p).expanduser().resolve() for p in paths]
