"""Job rows a scan in this process records itself: create, report progress.

Finishing is `JobQueue.finish` (fenced by owner), shared with the daemon.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from shelfscan.errors import ShelfscanError


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


class ScanAlreadyRunning(ShelfscanError, RuntimeError):
    """One library is never scanned twice at once."""


async def update_progress(pool: asyncpg.Pool, job_id: int, progress: dict[str, Any]) -> None:
    await pool.execute("UPDATE shelfscan.jobs SET progress = $2 WHERE id = $1", job_id, progress)
