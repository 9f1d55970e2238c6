"""The rest of the SQL on `shelfscan.jobs` and `shelfscan.job_logs`: reads for operators
and /metrics, progress rows, the CLI's own job, a library's jobs when it is removed.

With `queue.py` (the lifecycle) and `events.py` (log rows) this is the only place that
touches the job tables, so the contract in docs/sql-contract.md has one implementation.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from shelfscan.errors import ShelfscanError
from shelfscan.jobs.contract import ScanLibrary
from shelfscan.jobs.queue import JobQueue, ReapReport
from shelfscan.pgtext import pg_json


class ScanAlreadyRunning(ShelfscanError):
    """One library is never scanned twice at once."""


@dataclass(frozen=True, slots=True)
class CliJob:
    id: int
    reaped: ReapReport  # expired scans of this library the CLI ended before it started


async def start_cli_job(queue: JobQueue, payload: ScanLibrary) -> CliJob:
    """Record a scan the CLI runs itself, as running under the CLI's lease.

    A scan of the library that is still running elsewhere refuses us with a one-line
    reason; one whose lease has expired (a killed CLI, a dead daemon) is ended at once
    the way the reaper ends it, so a rerun never needs an operator or hand-written SQL.
    """
    try:
        return CliJob(await queue.start_running(payload), ReapReport())
    except asyncpg.UniqueViolationError:
        pass
    report = await queue.reap(library_id=payload.library_id)
    try:
        return CliJob(await queue.start_running(payload), report)
    except asyncpg.UniqueViolationError:
        row = await queue.pool.fetchrow(
            """
            SELECT id, owner, greatest(0, extract(epoch FROM lease_expires_at - now()))::int AS left_s
            FROM shelfscan.jobs
            WHERE state = 'running' AND parent_id IS NULL AND library_id = $1
            """,
            payload.library_id,
        )
        if row is None:
            raise ScanAlreadyRunning("a scan of this library has just started elsewhere") from None
        raise ScanAlreadyRunning(
            f"a scan of this library is already running (job {row['id']} by {row['owner']}; "
            f"if that process is gone, its lease runs out in {row['left_s']} s and a rerun "
            "then takes over)"
        ) from None


async def update_progress(pool: asyncpg.Pool, job_id: int, progress: dict[str, Any]) -> None:
    await pool.execute(
        "UPDATE shelfscan.jobs SET progress = $2 WHERE id = $1", job_id, pg_json(progress)
    )


async def queued_scan_id(pool: asyncpg.Pool, library_id: int) -> int | None:
    """The queued scan a duplicate request was merged into."""
    job_id: int | None = await pool.fetchval(
        "SELECT id FROM shelfscan.jobs WHERE kind = 'scan_library' AND state = 'queued' "
        "AND library_id = $1",
        library_id,
    )
    return job_id


async def job_state(pool: asyncpg.Pool, job_id: int) -> str | None:
    state: str | None = await pool.fetchval(
        "SELECT state FROM shelfscan.jobs WHERE id = $1", job_id
    )
    return state


async def job_rows(
    pool: asyncpg.Pool, *, limit: int = 100, job_id: int | None = None
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """
        SELECT j.id, j.kind, j.state, j.library_id, l.name AS library, j.attempts, j.max_attempts,
               j.progress, j.result, j.last_error, j.owner, j.parent_id, j.merged_into,
               j.created_at, j.started_at, j.finished_at, j.run_at, j.lease_expires_at,
               j.cancel_requested
        FROM shelfscan.jobs j LEFT JOIN shelfscan.libraries l ON l.id = j.library_id
        WHERE $2::bigint IS NULL OR j.id = $2
        ORDER BY j.id DESC LIMIT $1
        """,
        limit,
        job_id,
    )
    return [{k: _plain(v) for k, v in dict(r).items()} for r in rows]


async def job_logs_after(pool: asyncpg.Pool, job_id: int, after: int) -> list[dict[str, Any]]:
    """A job's log rows with id > `after`, oldest first (what `jobs logs --follow` pages by)."""
    rows = await pool.fetch(
        "SELECT id, at, level, event, path, fields FROM shelfscan.job_logs "
        "WHERE job_id = $1 AND id > $2 ORDER BY id",
        job_id,
        after,
    )
    return [dict(r) for r in rows]


async def cancel_library_jobs(conn: asyncpg.Connection, library_id: int) -> int:
    """Before a library is removed: end its queued jobs and stop its running ones, parts included.

    Running jobs are asked to stop (their owner finishes them `cancelled`, or the reaper
    does); nothing new of the library can be claimed once its row is gone.
    """
    status: str = await conn.execute(
        """
        UPDATE shelfscan.jobs
        SET state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
            finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END,
            last_error = CASE WHEN state = 'queued' THEN coalesce(last_error, 'its library was removed')
                              ELSE last_error END,
            cancel_requested = true
        WHERE library_id = $1 AND state IN ('queued', 'running')
        """,
        library_id,
    )
    return int(status.split()[-1])


async def enqueue_due_full_scans(pool: asyncpg.Pool, interval_s: float) -> int:
    """Queue a full scan of every library not fully scanned within `interval_s`.

    The dedupe trigger keeps it to one queued scan per library.
    """
    status: str = await pool.execute(
        """
        INSERT INTO shelfscan.jobs (kind, payload)
        SELECT 'scan_library', jsonb_build_object('library_id', l.id) FROM shelfscan.libraries l
        WHERE NOT EXISTS (
            SELECT 1 FROM shelfscan.jobs j
            WHERE j.kind = 'scan_library' AND j.library_id = l.id
              AND (j.state IN ('queued', 'running')
                   OR (j.state = 'succeeded' AND j.finished_at > now() - make_interval(secs => $1))))
        """,
        interval_s,
    )
    return int(status.split()[-1])


@dataclass(frozen=True, slots=True)
class QueueGauges:
    by_state_kind: tuple[tuple[str, str, int], ...]
    oldest_queued_s: float


async def queue_gauges(pool: asyncpg.Pool) -> QueueGauges:
    rows = await pool.fetch(
        "SELECT state, kind, count(*) AS n FROM shelfscan.jobs GROUP BY kind, state"
    )
    oldest = await pool.fetchval(
        """SELECT coalesce(extract(epoch FROM now() - min(run_at)), 0) FROM shelfscan.jobs
           WHERE state = 'queued' AND run_at <= now()"""
    )
    return QueueGauges(tuple((r["state"], r["kind"], r["n"]) for r in rows), float(oldest))


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
