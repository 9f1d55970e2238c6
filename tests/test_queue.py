"""The job queue's SQL against a real PostgreSQL: claims, leases, fencing, dedupe, plans."""

from __future__ import annotations

import asyncio
import json

import asyncpg

from shelfscan.jobs.contract import ScanFolders, ScanLibrary
from shelfscan.jobs.queue import JobQueue


async def _library(pool: asyncpg.Pool, name: str = "lib") -> int:
    library_id: int = await pool.fetchval(
        "INSERT INTO shelfscan.libraries (name) VALUES ($1) RETURNING id", name
    )
    return library_id


async def test_thousand_jobs_four_claimers_each_handled_exactly_once(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO shelfscan.jobs (kind, payload) SELECT 'scan_path', jsonb_build_object('n', g) "
        "FROM generate_series(1, 1000) g"
    )
    handled: list[tuple[str, int]] = []

    async def claimer(name: str) -> None:
        queue = JobQueue(pool, name, lease_s=60)
        while jobs := await queue.claim(7):
            for job in jobs:
                handled.append((name, job.id))
                assert await queue.finish(job.id, "succeeded")
            await asyncio.sleep(0)

    await asyncio.gather(*(claimer(f"daemon-{i}") for i in range(4)))
    ids = [job_id for _, job_id in handled]
    assert len(ids) == 1000 and len(set(ids)) == 1000
    assert len({name for name, _ in handled}) == 4  # the work was really shared
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM shelfscan.jobs WHERE state = 'succeeded' AND attempts = 1"
        )
        == 1000
    )


async def test_expired_lease_is_reaped_and_the_old_owner_cannot_finish(pool: asyncpg.Pool) -> None:
    library_id = await _library(pool)
    await pool.execute(
        "INSERT INTO shelfscan.jobs (kind, payload) VALUES ('scan_library', $1)",
        {"library_id": library_id},
    )
    old = JobQueue(pool, "old", lease_s=0.3)
    new = JobQueue(pool, "new", lease_s=30)
    (job,) = await old.claim(1)
    await asyncio.sleep(0.5)
    reaped = (await new.reap()).reaped
    assert [(r.id, r.state, r.previous_owner) for r in reaped] == [(job.id, "queued", "old")]
    await pool.execute("UPDATE shelfscan.jobs SET run_at = now()")  # skip the backoff
    (again,) = await new.claim(1)
    assert (again.id, again.attempts) == (job.id, 2)
    # The old owner wakes up late: its heartbeat and its finish change nothing.
    assert await old.heartbeat([job.id]) == {}
    assert await old.finish(job.id, "succeeded", result={"late": True}) is False
    row = await pool.fetchrow(
        "SELECT state, owner, result FROM shelfscan.jobs WHERE id = $1", job.id
    )
    assert (row["state"], row["owner"], row["result"]) == ("running", "new", None)
    assert await new.finish(job.id, "succeeded")


async def test_reaper_fails_a_job_at_max_attempts(pool: asyncpg.Pool) -> None:
    await pool.execute("INSERT INTO shelfscan.jobs (kind, max_attempts) VALUES ('scan_path', 1)")
    queue = JobQueue(pool, "a", lease_s=0.1)
    await queue.claim(1)
    await asyncio.sleep(0.3)
    (reaped,) = (await queue.reap()).reaped
    assert reaped.state == "failed"
    assert (await pool.fetchval("SELECT last_error FROM shelfscan.jobs")).startswith(
        "lease expired"
    )


async def test_three_enqueues_at_once_leave_one_queued_row(pool: asyncpg.Pool, db_url: str) -> None:
    library_id = await _library(pool)
    payload = json.dumps({"library_id": library_id})
    conns = [await asyncpg.connect(db_url) for _ in range(3)]
    sql = "INSERT INTO shelfscan.jobs (kind, payload) VALUES ('scan_library', $1::jsonb)"
    try:
        # Plain INSERTs, as any book server would send them, from three open transactions.
        txs = [c.transaction() for c in conns]
        for t in txs:
            await t.start()
        inserts = {
            asyncio.ensure_future(c.execute(sql, payload)): (c, t)
            for c, t in zip(conns, txs, strict=True)
        }
        pending = set(inserts)
        while pending:
            # Inserters are serialised: exactly one finishes, the rest wait for its commit.
            done, pending = await asyncio.wait(
                pending, timeout=10, return_when=asyncio.FIRST_COMPLETED
            )
            assert len(done) == 1
            await inserts[done.pop()][1].commit()
        results = [task.result() for task in inserts]
    finally:
        for c in conns:
            await c.close()
    assert sorted(results) == ["INSERT 0 0", "INSERT 0 0", "INSERT 0 1"]
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.jobs") == 1


async def test_a_request_during_a_running_scan_leaves_one_follow_up(pool: asyncpg.Pool) -> None:
    library_id = await _library(pool)
    queue = JobQueue(pool, "d", lease_s=30)
    first = await queue.enqueue(ScanLibrary(library_id))
    (running,) = await queue.claim(5)
    assert running.id == first
    follow_ups = [await queue.enqueue(ScanLibrary(library_id)) for _ in range(3)]
    assert follow_ups[0] is not None and follow_ups[1:] == [None, None]
    # One library is never scanned twice at once: the follow-up waits for the running scan.
    other = JobQueue(pool, "e", lease_s=30)
    assert await other.claim(5) == []
    assert await queue.finish(running.id, "succeeded")
    (next_job,) = await other.claim(5)
    assert next_job.id == follow_ups[0]


async def test_claim_uses_the_partial_index_with_many_finished_rows(pool: asyncpg.Pool) -> None:
    await pool.execute(
        "INSERT INTO shelfscan.jobs (kind, state, finished_at) "
        "SELECT 'scan_path', 'succeeded', now() FROM generate_series(1, 20000)"
    )
    await pool.execute(
        "INSERT INTO shelfscan.jobs (kind) SELECT 'scan_path' FROM generate_series(1, 5)"
    )
    await pool.execute("ANALYZE shelfscan.jobs")
    from shelfscan.jobs.queue import _CLAIM

    plan = await pool.fetchval("EXPLAIN (FORMAT JSON) " + _CLAIM, "x", 1, 30.0)
    nodes = []

    def walk(node: dict[str, object]) -> None:
        nodes.append(node)
        for child in node.get("Plans", []):  # type: ignore[attr-defined]
            walk(child)

    walk((plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"])
    scans = {
        (n.get("Node Type"), n.get("Index Name")) for n in nodes if n.get("Relation Name") == "jobs"
    }
    assert ("Index Scan", "jobs_claim_idx") in scans
    assert not any(node_type == "Seq Scan" for node_type, _ in scans)


async def test_cancel_a_queued_job_and_retry_it(pool: asyncpg.Pool) -> None:
    queue = JobQueue(pool, "d", lease_s=30)
    job_id = await queue.enqueue(ScanFolders(await _library(pool), 1, ("",)))
    assert job_id is not None
    assert await queue.cancel(job_id) == "cancelled"
    assert await queue.claim(1) == []
    assert await queue.retry(job_id)
    (job,) = await queue.claim(1)
    assert job.id == job_id


async def test_release_on_shutdown_does_not_count_the_attempt(pool: asyncpg.Pool) -> None:
    queue = JobQueue(pool, "d", lease_s=30)
    await queue.enqueue(ScanFolders(await _library(pool), 1, ("",)))
    (job,) = await queue.claim(1)
    assert await queue.release([job.id]) == 1
    row = await pool.fetchrow("SELECT state, attempts, owner FROM shelfscan.jobs")
    assert (row["state"], row["attempts"], row["owner"]) == ("queued", 0, None)


async def test_failures_retry_with_backoff_then_dead_letter(pool: asyncpg.Pool) -> None:
    await pool.execute("INSERT INTO shelfscan.jobs (kind, max_attempts) VALUES ('scan_path', 2)")
    queue = JobQueue(pool, "d", lease_s=30)
    (job,) = await queue.claim(1)
    assert await queue.fail_or_retry(job, "boom") == "queued"
    row = await pool.fetchrow("SELECT run_at > now() AS later, last_error FROM shelfscan.jobs")
    assert row["later"] and row["last_error"] == "boom"
    assert await queue.claim(1) == []  # backoff: not due yet
    await pool.execute("UPDATE shelfscan.jobs SET run_at = now()")
    (job,) = await queue.claim(1)
    assert await queue.fail_or_retry(job, "boom again") == "failed"
    assert await pool.fetchval("SELECT state FROM shelfscan.jobs") == "failed"
