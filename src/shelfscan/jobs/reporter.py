"""The job layer's side of the scan engine's seam: a `ScanReporter` backed by job rows.

Events go to the JSON log at once and to `job_logs` in batches (`JobEvents`);
progress counters are published by the job's progress loop; catalogue changes
are recorded in the change feed as each step commits. The CLI and the daemon
both hand one of these to `Scanner.run`, so a scan reports the same way
wherever it runs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from shelfscan.jobs.changes import record_changes
from shelfscan.jobs.events import JobEvents
from shelfscan.scan.contract import CatalogueChanges
from shelfscan.scan.progress import Progress


class JobReporter:
    """A `ScanReporter` for the job `job_id`."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        job_id: int,
        events: JobEvents,
        progress: Progress,
        stop: asyncio.Event | None = None,
    ) -> None:
        self._pool = pool
        self._job_id = job_id
        self._events = events
        self._progress = progress
        self._stop = stop or asyncio.Event()

    @property
    def progress(self) -> Progress:
        return self._progress

    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def info(self, event: str, path: str | None = None, **fields: Any) -> None:
        self._events.info(event, path, **fields)

    def warning(self, event: str, path: str | None = None, **fields: Any) -> None:
        self._events.warning(event, path, **fields)

    def error(self, event: str, path: str | None = None, **fields: Any) -> None:
        self._events.error(event, path, **fields)

    async def changes(self, changes: CatalogueChanges) -> None:
        await record_changes(self._pool, self._job_id, changes)
