"""Job rows: create, report progress, finish. The SQL contract lives in sql/0002_jobs.sql."""

from __future__ import annotations

from typing import Any

import asyncpg


async def create_running_job(
    pool: asyncpg.Pool, kind: str, payload: dict[str, Any], owner: str
) -> int:
    """A job this process runs itself (the one-shot CLI), recorded like any other."""
    try:
        job_id: int = await pool.fetchval(
            """
            INSERT INTO shelfscan.jobs (kind, payload, state, attempts, owner, started_at)
            VALUES ($1, $2, 'running', 1, $3, now()) RETURNING id
            """,
            kind,
            payload,
            owner,
        )
    except asyncpg.UniqueViolationError:
        running = await pool.fetchval(
            "SELECT id FROM shelfscan.jobs WHERE state = 'running' AND kind = $1 AND library_id = $2",
            kind,
            payload.get("library_id"),
        )
        raise ScanAlreadyRunning(
            f"a scan of this library is already running (job {running})"
        ) from None
    return job_id


class ScanAlreadyRunning(RuntimeError):
    """One library is never scanned twice at once."""


async def update_progress(pool: asyncpg.Pool, job_id: int, progress: dict[str, Any]) -> None:
    await pool.execute("UPDATE shelfscan.jobs SET progress = $2 WHERE id = $1", job_id, progress)


async def finish_job(
    pool: asyncpg.Pool,
    job_id: int,
    owner: str,
    state: str,
    *,
    result: dict[str, Any] | None = None,
    error: str | None = None,
    progress: dict[str, Any] | None = None,
) -> bool:
    """Fenced: only the owner of a running job can finish it."""
    status: str = await pool.execute(
        """
        UPDATE shelfscan.jobs SET state = $3, result = $4, last_error = $5,
            progress = COALESCE($6, progress), finished_at = now(), lease_expires_at = NULL
        WHERE id = $1 AND owner = $2 AND state = 'running'
        """,
        job_id,
        owner,
        state,
        result,
        error,
        progress,
    )
    return status.endswith(" 1")
