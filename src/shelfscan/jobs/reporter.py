"""The job layer's side of the scan engine's seam: a `ScanReporter` backed by job rows.

Events go to the JSON log at once and to `job_logs` in batches (`JobEvents`);
progress counters are published by the job's progress loop; catalogue changes
are recorded in the change feed, one transaction and one NOTIFY per batch of
committed steps. The CLI and the daemon both hand one of these to `Scanner.run`, so a scan
reports the same way wherever it runs.

Recording a step's changes is one more round trip (~1-10 ms here, more under
load); a scan worker that waited for it would hold its next chunk back, so the
rows go through a queue to one writer task, in the order the steps committed,
and leaving the `async with` waits until every one is written.
"""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType
from typing import Any

import asyncpg

from shelfscan.errors import one_line
from shelfscan.jobs.changes import record_changes
from shelfscan.jobs.events import JobEvents
from shelfscan.scan.contract import CatalogueChanges
from shelfscan.scan.progress import Progress


class JobReporter:
    """A `ScanReporter` for the job `job_id`; use it as `async with`."""

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
        self._pending: asyncio.Queue[CatalogueChanges | None] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> JobReporter:
        self._writer = asyncio.create_task(self._write_changes(), name=f"changes-{self._job_id}")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Wait for the change rows of every committed step (also when the scan failed)."""
        if self._writer is None:
            return
        self._pending.put_nowait(None)
        try:
            await asyncio.shield(self._writer)
        except asyncio.CancelledError:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            raise

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
        if self._writer is None:  # not entered: record now
            await record_changes(self._pool, self._job_id, [changes])
        else:
            self._pending.put_nowait(changes)

    async def _write_changes(self) -> None:
        done = False
        while not done:
            first = await self._pending.get()
            if first is None:
                return
            # Steps that committed while the last batch was being recorded go in together:
            # one transaction and one NOTIFY for all of them, still in commit order.
            steps = [first]
            while not self._pending.empty():
                more = self._pending.get_nowait()
                if more is None:
                    done = True
                    break
                if more.library_id != first.library_id:
                    await self._record(steps)
                    steps = []
                    first = more
                steps.append(more)
            await self._record(steps)

    async def _record(self, steps: list[CatalogueChanges]) -> None:
        try:
            await record_changes(self._pool, self._job_id, steps)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # The books are in the catalogue with a fresh updated_at; a book server
            # that misses these rows resyncs from that (docs/sql-contract.md).
            self._events.warning(
                "catalogue_changes_lost",
                books=sum(len(s.rows()) for s in steps),
                error=one_line(exc),
            )
