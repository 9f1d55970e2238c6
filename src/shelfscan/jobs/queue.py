"""The job lifecycle's SQL: enqueue, claim, lease, finish, retry, release, reap, cancel.

Every state change that a daemon (or the CLI) makes on a job it owns is fenced by
`owner`: a process whose lease expired and was taken over can no longer change the job.
Every change that puts a scan back in the queue goes through the `jobs_one_scan` trigger
(sql/0008), which merges a queued follow-up into it in the same statement, so no
requeue can collide with "one queued scan per library".
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import asyncpg

from shelfscan.errors import one_line
from shelfscan.jobs.contract import JobStatus, Payload, ScanFiles
from shelfscan.pgtext import pg_json, pg_text

CHANNEL = "shelfscan_jobs"
SCAN_KINDS = ("scan_library", "scan_path")


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed job row; `payload` is still the raw jsonb (decoded by `contract.decode`)."""

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
    state: JobStatus
    previous_owner: str | None


@dataclass(frozen=True, slots=True)
class ReapReport:
    """What one reaper pass did; a row that could not be reaped does not stop the others."""

    reaped: tuple[Reaped, ...] = ()
    errors: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class PartRow:
    id: int
    state: JobStatus
    result: dict[str, Any] | None
    done: int
    last_error: str | None


_CLAIM = """
WITH locked AS (
    SELECT j.id, j.library_id, j.parent_id, j.priority, j.run_at FROM shelfscan.jobs j
    WHERE j.state = 'queued' AND j.run_at <= now()
      -- One scan of a library at a time: a whole-library scan or a targeted (watch) scan waits
      -- while another runs. Parts of a split scan (parent_id set) are meant to run side by side.
      AND NOT (j.parent_id IS NULL AND j.library_id IS NOT NULL AND EXISTS (
          SELECT 1 FROM shelfscan.jobs r
          WHERE r.state = 'running' AND r.parent_id IS NULL AND r.library_id = j.library_id))
    ORDER BY j.priority DESC, j.run_at, j.id
    LIMIT $2
    FOR UPDATE SKIP LOCKED
), chosen AS (
    -- ... and in one batch at most one scan per library: two would break
    -- jobs_one_running_scan and fail the whole claim (a library with a queued full scan
    -- and a queued watch scan wedged every claim of a daemon with two free slots).
    SELECT id FROM (
        SELECT id, parent_id, library_id, row_number() OVER (
            PARTITION BY CASE WHEN parent_id IS NULL THEN library_id END
            ORDER BY priority DESC, run_at, id) AS n
        FROM locked) c
    WHERE parent_id IS NOT NULL OR library_id IS NULL OR n = 1
)
UPDATE shelfscan.jobs j
SET state = 'running', owner = $1, attempts = j.attempts + 1, started_at = now(),
    finished_at = NULL, lease_expires_at = now() + make_interval(secs => $3)
FROM chosen c WHERE j.id = c.id
RETURNING j.id, j.kind, j.payload, j.library_id, j.attempts, j.max_attempts, j.parent_id
"""


def backoff_seconds(attempts: int, base: float = 5.0, cap: float = 600.0) -> float:
    """Exponential backoff with full jitter, so retries of many jobs do not stampede.

    The one backoff policy: job retries, reaped leases and failing loops all use it.
    """
    return float(random.uniform(0.5, 1.0) * min(cap, base * 2.0 ** max(0, min(attempts, 60) - 1)))


def _count(status: str) -> int:
    return int(status.split()[-1])


class JobQueue:
    def __init__(self, pool: asyncpg.Pool, owner: str, lease_s: float) -> None:
        self.pool = pool
        self.owner = owner
        self.lease_s = lease_s

    # -- producers -------------------------------------------------------------------------

    async def enqueue(
        self,
        payload: Payload,
        *,
        priority: int = 0,
        parent_id: int | None = None,
        max_attempts: int = 5,
        delay_s: float = 0.0,
    ) -> int | None:
        """The new job's id, or None when it was merged into an equal queued scan (dedupe)."""
        job_id: int | None = await self.pool.fetchval(
            """
            INSERT INTO shelfscan.jobs (kind, payload, priority, parent_id, max_attempts, run_at)
            VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
            ON CONFLICT DO NOTHING RETURNING id
            """,
            str(payload.kind),
            payload.to_json(),
            priority,
            parent_id,
            max_attempts,
            delay_s,
        )
        return job_id

    async def enqueue_parts(self, parent_id: int, parts: list[ScanFiles]) -> list[int]:
        """The parts of a split scan, in one statement (one NOTIFY wakes every daemon)."""
        rows = await self.pool.fetch(
            """
            INSERT INTO shelfscan.jobs (kind, payload, parent_id, priority)
            SELECT 'scan_path', p, $2, 1 FROM unnest($1::jsonb[]) AS p RETURNING id
            """,
            [p.to_json() for p in parts],
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
        return sorted(map(Job.from_row, rows), key=lambda job: job.id)

    async def start_running(self, payload: Payload, *, max_attempts: int = 1) -> int:
        """A job this process runs itself (the one-shot CLI): inserted running, under a lease.

        Raises asyncpg.UniqueViolationError when the library already has a running scan.
        """
        job_id: int = await self.pool.fetchval(
            """
            INSERT INTO shelfscan.jobs (kind, payload, state, attempts, max_attempts, owner,
                                        started_at, lease_expires_at)
            VALUES ($1, $2, 'running', 1, $4, $3, now(), now() + make_interval(secs => $5))
            RETURNING id
            """,
            str(payload.kind),
            payload.to_json(),
            self.owner,
            max_attempts,
            self.lease_s,
        )
        return job_id

    async def heartbeat(self, job_ids: list[int]) -> dict[int, bool]:
        """Renew the leases this process holds; return {job id: cancel requested}.

        A job missing from the answer is no longer ours (its lease expired and it
        was taken over, or an operator retried it): the caller must stop working on it.
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
        state: JobStatus | str,
        *,
        result: dict[str, Any] | None = None,
        error: BaseException | str | None = None,
        progress: dict[str, Any] | None = None,
    ) -> bool:
        """Fenced: False when this process no longer owns the job (the change is not made)."""
        status: str = await self.pool.execute(
            """
            UPDATE shelfscan.jobs SET state = $3, result = $4, last_error = $5,
                progress = COALESCE($6, progress), finished_at = now(), lease_expires_at = NULL
            WHERE id = $1 AND owner = $2 AND state = 'running'
            """,
            job_id,
            self.owner,
            str(JobStatus(state)),
            None if result is None else pg_json(result),
            None if error is None else pg_text(one_line(error)),
            None if progress is None else pg_json(progress),
        )
        return status == "UPDATE 1"

    async def fail_or_retry(self, job: Job, error: BaseException | str) -> JobStatus | None:
        """Requeue with backoff while attempts remain; `failed` is the dead letter.

        None when the job is no longer ours (fenced).
        """
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
            pg_text(one_line(error)),
            backoff_seconds(job.attempts),
        )
        return None if state is None else JobStatus(state)

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
        return _count(status)

    async def parts(self, parent_id: int) -> list[PartRow]:
        rows = await self.pool.fetch(
            """
            SELECT id, state, result, coalesce((progress ->> 'done')::bigint, 0) AS done, last_error
            FROM shelfscan.jobs WHERE parent_id = $1 ORDER BY id
            """,
            parent_id,
        )
        return [
            PartRow(r["id"], JobStatus(r["state"]), r["result"], r["done"], r["last_error"])
            for r in rows
        ]

    # -- any daemon (and a CLI taking over) -------------------------------------------------

    async def reap(self, *, library_id: int | None = None, limit: int = 200) -> ReapReport:
        """Requeue (with backoff), fail or cancel the jobs whose owner stopped renewing its lease.

        A running row without a lease (written by hand, or by a CLI before leases) counts
        as expired: every running job must have an owner that renews it.

        One small UPDATE per expired job, so that a row that cannot be reaped is
        reported and skipped instead of blocking every other library's.
        """
        rows = await self.pool.fetch(
            """
            SELECT id, owner, attempts FROM shelfscan.jobs
            WHERE state = 'running' AND coalesce(lease_expires_at < now(), true)
              AND ($1::bigint IS NULL OR library_id = $1)
            ORDER BY lease_expires_at LIMIT $2
            """,
            library_id,
            limit,
        )
        reaped: list[Reaped] = []
        errors: list[tuple[int, str]] = []
        for row in rows:
            try:
                state = await self.pool.fetchval(
                    """
                    UPDATE shelfscan.jobs
                    SET state = CASE WHEN cancel_requested THEN 'cancelled'
                                     WHEN attempts >= max_attempts THEN 'failed'
                                     ELSE 'queued' END,
                        last_error = CASE WHEN cancel_requested THEN 'cancelled; ' ELSE '' END
                            || 'lease expired: owner ' || coalesce(owner, '?')
                            || ' stopped renewing it',
                        run_at = now() + make_interval(secs => $2),
                        owner = NULL, lease_expires_at = NULL,
                        finished_at = CASE WHEN cancel_requested OR attempts >= max_attempts
                                           THEN now() END
                    WHERE id = $1 AND state = 'running' AND coalesce(lease_expires_at < now(), true)
                    RETURNING state
                    """,
                    row["id"],
                    backoff_seconds(row["attempts"]),
                )
            except (asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # A broken connection would fail the rest too: report it and stop this pass.
                errors.append((row["id"], one_line(exc)))
                if not isinstance(
                    exc, asyncpg.DataError | asyncpg.IntegrityConstraintViolationError
                ):
                    break
                continue
            if state is not None:
                reaped.append(Reaped(row["id"], JobStatus(state), row["owner"]))
        return ReapReport(tuple(reaped), tuple(errors))

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
        return _count(status)

    # -- operators --------------------------------------------------------------------------

    async def cancel(self, job_id: int) -> JobStatus | None:
        """Cancel a job that has not finished, and a split scan's parts with it.

        Queued, or running under an expired lease (its owner is gone): cancelled at once.
        Running under a live lease: asked to stop at its next safe point (the owner finishes
        it `cancelled`; should the owner die first, the reaper does). None when the job is
        unknown or already finished.
        """
        rows = await self.pool.fetch(
            """
            UPDATE shelfscan.jobs
            SET state = CASE WHEN state = 'queued' OR lease_expires_at IS NULL
                                  OR lease_expires_at < now() THEN 'cancelled' ELSE state END,
                finished_at = CASE WHEN state = 'queued' OR lease_expires_at IS NULL
                                        OR lease_expires_at < now() THEN now() ELSE finished_at END,
                lease_expires_at = CASE WHEN state = 'queued' OR lease_expires_at < now() THEN NULL
                                        ELSE lease_expires_at END,
                last_error = CASE WHEN state = 'queued' OR lease_expires_at IS NULL
                                       OR lease_expires_at < now()
                                  THEN coalesce(last_error, 'cancelled by an operator')
                                  ELSE last_error END,
                cancel_requested = (state = 'running')
            WHERE (id = $1 OR parent_id = $1) AND state IN ('queued', 'running')
            RETURNING id, state
            """,
            job_id,
        )
        mine = [r for r in rows if r["id"] == job_id]
        return JobStatus(mine[0]["state"]) if mine else None

    async def retry(self, job_id: int) -> JobStatus | None:
        """Queue a job again now, with fresh attempts, whatever it is doing unless it succeeded.

        A running job is taken from its owner (fenced: the owner learns it at its next
        heartbeat and stops). Returns the state the job was in, or None when it is unknown or
        succeeded (queue a new scan instead).
        """
        state: str | None = await self.pool.fetchval(
            """
            WITH old AS (SELECT id, state FROM shelfscan.jobs WHERE id = $1 FOR UPDATE)
            UPDATE shelfscan.jobs j
            SET state = 'queued', attempts = 0, run_at = now(), owner = NULL,
                lease_expires_at = NULL, cancel_requested = false, finished_at = NULL,
                last_error = NULL, merged_into = NULL, started_at = NULL
            FROM old WHERE j.id = old.id AND old.state <> 'succeeded'
            RETURNING old.state
            """,
            job_id,
        )
        return None if state is None else JobStatus(state)
