"""The job queue's SQL: enqueue, claim, lease, finish, release, cancel, retry, prune.

Every state change that a daemon makes on a job it owns is fenced by `owner`:
a daemon whose lease expired and was taken over can no longer change the job.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

CHANNEL = "shelfscan_jobs"
SCAN_KINDS = ("scan_library", "scan_path")


@dataclass(frozen=True, slots=True)
class Job:
    id: int
    kind: str
    payload: dict[str, Any]
    library_id: int | None
    attempts: int
    max_attempts: int
    parent_id: int | None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Job:
        return cls(
            row["id"],
            row["kind"],
            row["payload"],
            row["library_id"],
            row["attempts"],
            row["max_attempts"],
            row["parent_id"],
        )


@dataclass(frozen=True, slots=True)
class Reaped:
    id: int
    state: str
    previous_owner: str | None


_CLAIM = """
WITH candidates AS (
    SELECT j.id FROM shelfscan.jobs j
    WHERE j.state = 'queued' AND j.run_at <= now()
      -- One scan of a library at a time: a whole-library scan or a targeted (watch) scan waits
      -- while another runs. Parts of a split scan (parent_id set) are meant to run side by side.
      AND NOT (j.parent_id IS NULL AND j.library_id IS NOT NULL AND EXISTS (
          SELECT 1 FROM shelfscan.jobs r
          WHERE r.state = 'running' AND r.parent_id IS NULL AND r.library_id = j.library_id))
    ORDER BY j.priority DESC, j.run_at, j.id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE shelfscan.jobs j
SET state = 'running', owner = $1, attempts = j.attempts + 1, started_at = now(),
    finished_at = NULL, lease_expires_at = now() + make_interval(secs => $3)
FROM candidates c WHERE j.id = c.id
RETURNING j.id, j.kind, j.payload, j.library_id, j.attempts, j.max_attempts, j.parent_id
"""


def backoff_seconds(attempts: int, base: float = 5.0, cap: float = 600.0) -> float:
    """Exponential backoff with full jitter, so retries of many jobs do not stampede."""
    return float(random.uniform(0.5, 1.0) * min(cap, base * 2.0 ** max(0, attempts - 1)))


class JobQueue:
    def __init__(self, pool: asyncpg.Pool, owner: str, lease_s: float) -> None:
        self.pool = pool
        self.owner = owner
        self.lease_s = lease_s

    # -- producers -------------------------------------------------------------------------

    async def enqueue(
        self,
        kind: str,
        payload: dict[str, Any],
        *,
        priority: int = 0,
        parent_id: int | None = None,
        max_attempts: int = 5,
        delay_s: float = 0.0,
    ) -> int | None:
        """The new job's id, or None when an equal scan was already queued (dedupe)."""
        job_id: int | None = await self.pool.fetchval(
            """
            INSERT INTO shelfscan.jobs (kind, payload, priority, parent_id, max_attempts, run_at)
            VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
            ON CONFLICT DO NOTHING RETURNING id
            """,
            kind,
            payload,
            priority,
            parent_id,
            max_attempts,
            delay_s,
        )
        return job_id

    async def enqueue_many(
        self, kind: str, payloads: list[dict[str, Any]], parent_id: int
    ) -> list[int]:
        rows = await self.pool.fetch(
            """
            INSERT INTO shelfscan.jobs (kind, payload, parent_id, priority)
            SELECT $1, p, $3, 1 FROM unnest($2::jsonb[]) AS p RETURNING id
            """,
            kind,
            payloads,
            parent_id,
        )
        return [r["id"] for r in rows]

    # -- a daemon's own jobs ----------------------------------------------------------------

    async def claim(self, limit: int) -> list[Job]:
        if limit <= 0:
            return []
        try:
            rows = await self.pool.fetch(_CLAIM, self.owner, limit, self.lease_s)
        except asyncpg.UniqueViolationError:
            # Two daemons raced for scans of one library; the loser simply tries later.
            return []
        jobs, extra, busy = [], [], set()
        for job in map(Job.from_row, rows):
            # One batch may hold two scans of one library: keep the first, hand back the rest.
            if job.parent_id is None and job.library_id is not None:
                if job.library_id in busy:
                    extra.append(job.id)
                    continue
                busy.add(job.library_id)
            jobs.append(job)
        await self.release(extra)
        return jobs

    async def heartbeat(self, job_ids: list[int]) -> dict[int, bool]:
        """Renew the leases this daemon holds; return {job id: cancel requested}.

        A job missing from the answer is no longer ours (its lease expired and it
        was taken over): the caller must stop working on it.
        """
        if not job_ids:
            return {}
        rows = await self.pool.fetch(
            """
            UPDATE shelfscan.jobs SET lease_expires_at = now() + make_interval(secs => $3)
            WHERE owner = $1 AND state = 'running' AND id = ANY($2::bigint[])
            RETURNING id, cancel_requested
            """,
            self.owner,
            job_ids,
            self.lease_s,
        )
        return {r["id"]: r["cancel_requested"] for r in rows}

    async def finish(
        self,
        job_id: int,
        state: str,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        progress: dict[str, Any] | None = None,
    ) -> bool:
        """Fenced: False when this daemon no longer owns the job (the change is not made)."""
        status: str = await self.pool.execute(
            """
            UPDATE shelfscan.jobs SET state = $3, result = $4, last_error = $5,
                progress = COALESCE($6, progress), finished_at = now(), lease_expires_at = NULL
            WHERE id = $1 AND owner = $2 AND state = 'running'
            """,
            job_id,
            self.owner,
            state,
            result,
            error,
            progress,
        )
        return status == "UPDATE 1"

    async def fail_or_retry(self, job: Job, error: str) -> str:
        """Requeue with backoff while attempts remain; `failed` is the dead letter."""
        delay = backoff_seconds(job.attempts)
        state: str | None = await self.pool.fetchval(
            """
            UPDATE shelfscan.jobs
            SET state = CASE WHEN attempts >= max_attempts THEN 'failed' ELSE 'queued' END,
                run_at = now() + make_interval(secs => $4), last_error = $3,
                owner = CASE WHEN attempts >= max_attempts THEN owner END,
                lease_expires_at = NULL,
                finished_at = CASE WHEN attempts >= max_attempts THEN now() END
            WHERE id = $1 AND owner = $2 AND state = 'running'
            RETURNING state
            """,
            job.id,
            self.owner,
            error,
            delay,
        )
        return state or "lost"

    async def release(self, job_ids: list[int]) -> int:
        """Give jobs back on shutdown without counting the attempt."""
        if not job_ids:
            return 0
        status: str = await self.pool.execute(
            """
            UPDATE shelfscan.jobs SET state = 'queued', owner = NULL, lease_expires_at = NULL,
                attempts = greatest(attempts - 1, 0), run_at = now(), started_at = NULL
            WHERE owner = $1 AND state = 'running' AND id = ANY($2::bigint[])
            """,
            self.owner,
            job_ids,
        )
        return int(status.split()[-1])

    # -- any daemon -------------------------------------------------------------------------

    async def reap(self) -> list[Reaped]:
        """Requeue (with backoff) or fail the jobs whose owner stopped renewing its lease."""
        rows = await self.pool.fetch(
            """
            WITH expired AS (
                SELECT id, owner FROM shelfscan.jobs
                WHERE state = 'running' AND lease_expires_at < now()
                FOR UPDATE SKIP LOCKED
            )
            UPDATE shelfscan.jobs j
            SET state = CASE WHEN j.attempts >= j.max_attempts THEN 'failed' ELSE 'queued' END,
                last_error = 'lease expired: owner ' || coalesce(e.owner, '?') || ' stopped renewing it',
                run_at = now() + make_interval(secs => least(600, 2 ^ least(j.attempts, 9))),
                owner = NULL, lease_expires_at = NULL,
                finished_at = CASE WHEN j.attempts >= j.max_attempts THEN now() END
            FROM expired e WHERE j.id = e.id
            RETURNING j.id, j.state, e.owner
            """
        )
        return [Reaped(r["id"], r["state"], r["owner"]) for r in rows]

    async def prune(self, older_than_s: float) -> int:
        status: str = await self.pool.execute(
            """
            DELETE FROM shelfscan.jobs
            WHERE state IN ('succeeded', 'failed', 'cancelled')
              AND finished_at < now() - make_interval(secs => $1)
              AND parent_id IS NULL
            """,
            older_than_s,
        )
        return int(status.split()[-1])

    # -- operators --------------------------------------------------------------------------

    async def cancel(self, job_id: int) -> str | None:
        """Cancel a queued job at once; ask a running one to stop at its next safe point."""
        row = await self.pool.fetchrow(
            """
            UPDATE shelfscan.jobs
            SET state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
                finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END,
                cancel_requested = (state = 'running')
            WHERE id = $1 AND state IN ('queued', 'running')
            RETURNING state
            """,
            job_id,
        )
        if row is not None:
            # Children of a split scan go with their parent.
            await self.pool.execute(
                """
                UPDATE shelfscan.jobs
                SET state = CASE WHEN state = 'queued' THEN 'cancelled' ELSE state END,
                    finished_at = CASE WHEN state = 'queued' THEN now() ELSE finished_at END,
                    cancel_requested = (state = 'running')
                WHERE parent_id = $1 AND state IN ('queued', 'running')
                """,
                job_id,
            )
        return None if row is None else str(row["state"])

    async def retry(self, job_id: int) -> bool:
        status: str = await self.pool.execute(
            """
            UPDATE shelfscan.jobs SET state = 'queued', attempts = 0, run_at = now(), owner = NULL,
                cancel_requested = false, finished_at = NULL, last_error = NULL
            WHERE id = $1 AND state IN ('failed', 'cancelled')
            """,
            job_id,
        )
        return status == "UPDATE 1"


async def job_rows(
    pool: asyncpg.Pool, *, limit: int = 100, job_id: int | None = None
) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        """
        SELECT j.id, j.kind, j.state, j.library_id, l.name AS library, j.attempts, j.max_attempts,
               j.progress, j.result, j.last_error, j.owner, j.parent_id, j.created_at,
               j.started_at, j.finished_at, j.run_at, j.cancel_requested
        FROM shelfscan.jobs j LEFT JOIN shelfscan.libraries l ON l.id = j.library_id
        WHERE $2::bigint IS NULL OR j.id = $2
        ORDER BY j.id DESC LIMIT $1
        """,
        limit,
        job_id,
    )
    return [{k: _plain(v) for k, v in dict(r).items()} for r in rows]


def _plain(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value
