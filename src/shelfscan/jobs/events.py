"""A job's warnings and errors, logged now and stored in `job_logs` in batches.

Inserting a row per log line would put a round trip in the scan's hot path, so
events are buffered and flushed with the progress update; a job keeps at most
`cap` rows so a library of broken files cannot flood the table. Paths and fields
come from file names and tags, so they pass through `pgtext` on the way in: a
Latin-1 file name costs a `\\xe9` in the log, not the scan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from shelfscan.jobs.store import update_progress
from shelfscan.pgtext import pg_json, pg_text

_Row = tuple[int, str, str, str | None, dict[str, Any]]


@dataclass(slots=True)
class JobEvents:
    job_id: int
    log: Any  # a bound structlog logger
    cap: int = 1000
    stored: int = 0
    dropped: int = 0
    _buffer: list[_Row] = field(default_factory=list)

    @classmethod
    def for_job(cls, job_id: int, **context: Any) -> JobEvents:
        return cls(job_id, structlog.get_logger("shelfscan.scan").bind(job_id=job_id, **context))

    def info(self, event: str, path: str | None = None, **fields: Any) -> None:
        self._record("info", event, path, fields)

    def warning(self, event: str, path: str | None = None, **fields: Any) -> None:
        self._record("warning", event, path, fields)

    def error(self, event: str, path: str | None = None, **fields: Any) -> None:
        self._record("error", event, path, fields)

    def _record(self, level: str, event: str, path: str | None, fields: dict[str, Any]) -> None:
        getattr(self.log, level)(event, **({"path": path} if path else {}), **fields)
        if self.stored + len(self._buffer) < self.cap:
            self._buffer.append(
                (
                    self.job_id,
                    level,
                    pg_text(event),
                    None if path is None else pg_text(path),
                    pg_json(fields),
                )
            )
        else:
            self.dropped += 1

    async def flush(self, pool: asyncpg.Pool) -> None:
        rows, self._buffer = self._buffer, []
        if not rows:
            return
        try:
            await pool.executemany(
                "INSERT INTO shelfscan.job_logs (job_id, level, event, path, fields) "
                "VALUES ($1, $2, $3, $4, $5)",
                rows,
            )
        except BaseException:
            # Kept for the next flush: a database hiccup must not lose the job's log.
            self._buffer[:0] = rows
            raise
        self.stored += len(rows)

    async def close(self, pool: asyncpg.Pool) -> None:
        await self.flush(pool)
        if self.dropped:
            await pool.execute(
                "INSERT INTO shelfscan.job_logs (job_id, level, event, fields) VALUES ($1, 'warning', $2, $3)",
                self.job_id,
                "job_logs_truncated",
                {"dropped": self.dropped, "cap": self.cap},
            )


@dataclass(slots=True)
class JobProgress:
    """The job layer's side of `scan.progress.ProgressSink`: the job row and its log rows."""

    pool: asyncpg.Pool
    events: JobEvents
    _last: dict[str, Any] | None = None

    async def publish(self, snapshot: dict[str, Any]) -> None:
        if snapshot != self._last:
            await update_progress(self.pool, self.events.job_id, snapshot)
            self._last = snapshot
        await self.events.flush(self.pool)

    async def close(self) -> None:
        await self.events.close(self.pool)

    def warning(self, event: str, **fields: Any) -> None:
        self.events.log.warning(event, **fields)
