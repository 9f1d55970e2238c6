"""Running a scan in this process: the job row, progress, logs and the scanner together."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import asyncpg

from shelfscan.config import Settings
from shelfscan.errors import one_line
from shelfscan.jobs.events import JobEvents
from shelfscan.jobs.queue import JobQueue
from shelfscan.jobs.reporter import JobReporter
from shelfscan.jobs.store import create_running_job
from shelfscan.scan.contract import ScanOptions, ScanRequest, ScanResult, SplitPolicy
from shelfscan.scan.engine import Scanner
from shelfscan.scan.executor import ParseExecutor
from shelfscan.scan.progress import Progress, ProgressView, publish_progress


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def make_executor(settings: Settings) -> ParseExecutor:
    return ParseExecutor(settings.parse_executor, settings.parse_processes, settings.covers_dir)


async def run_scan_job(
    pool: asyncpg.Pool,
    scanner: Scanner,
    request: ScanRequest,
    settings: Settings,
    *,
    view: ProgressView | None = None,
) -> tuple[int, ScanResult]:
    """Record a `scan_library` job, run it here, finish it; errors finish it `failed` and re-raise.

    The same `Scanner.run` the daemon's handlers call, without a dispatcher: a scan
    in this process never splits, and reports files still being written as deferred.
    """
    library = request.library
    owner = owner_id()
    payload: dict[str, Any] = {"library_id": library.id}
    job_id = await create_running_job(pool, "scan_library", payload, owner)
    queue = JobQueue(pool, owner, settings.lease_s)  # finishing is the queue's fenced update
    events = JobEvents.for_job(job_id, library_id=library.id, library=library.name)
    progress = Progress()
    try:
        async with publish_progress(
            pool, job_id, progress, events, interval_s=settings.progress_interval_s, view=view
        ):
            result = await scanner.run(request, JobReporter(pool, job_id, events, progress))
    except BaseException as exc:
        await queue.finish(job_id, "failed", error=one_line(exc), progress=progress.snapshot())
        raise
    await queue.finish(job_id, "succeeded", result=result.as_dict(), progress=progress.snapshot())
    return job_id, result


def scanner_for(
    pool: asyncpg.Pool, settings: Settings, executor: ParseExecutor, workers: int | None = None
) -> Scanner:
    settings.covers_dir.mkdir(parents=True, exist_ok=True)
    options = ScanOptions(
        workers=workers or settings.workers,
        chunk_size=settings.chunk_size,
        settle_s=settings.settle_s,
    )
    return Scanner(pool, executor, options, SplitPolicy(settings.split_files, settings.part_files))


def resolve_roots(paths: list[str]) -> list[Path]:
    return [Path(p).expanduser().resolve() for p in paths]
