"""One regression test per job-side finding of "Nothing wedges" (issue 14), on a real PostgreSQL.

Each of these failed on the code before the fix: the reaper raised UniqueViolation with a
queued follow-up, a driver error killed the heartbeat, a bad payload scanned the whole
library, ... .
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shelfscan.catalogue.libraries import ensure_library
from shelfscan.jobs.contract import ScanFiles, ScanLibrary
from shelfscan.jobs.queue import Job, JobQueue
from shelfscan.scan.contract import SplitPolicy
from tests.daemons import StartFn, until, until_db
from tests.libraries import small_library


async def _library(pool: asyncpg.Pool, name: str) -> int:
    library_id: int = await pool.fetchval(
        "INSERT INTO shelfscan.libraries (name) VALUES ($1) RETURNING id", name
    )
    return library_id


async def _row(pool: asyncpg.Pool, job_id: int) -> asyncpg.Record:
    row: asyncpg.Record = await pool.fetchrow("SELECT * FROM shelfscan.jobs WHERE id = $1", job_id)
    return row


async def _running_with_follow_up(pool: asyncpg.Pool, name: str) -> tuple[JobQueue, Job, int]:
    library_id = await _library(pool, name)
    queue = JobQueue(pool, f"daemon-{name}", lease_s=30)
    await queue.enqueue(ScanLibrary(library_id))
    (job,) = await queue.claim(1)
    follow_up = await queue.enqueue(ScanLibrary(library_id))
    assert follow_up is not None
    return queue, job, follow_up


async def _expire(pool: asyncpg.Pool, job_id: int) -> None:
    await pool.execute(
        "UPDATE shelfscan.jobs SET lease_expires_at = now() - interval '1 second' WHERE id = $1",
        job_id,
    )


async def test_reaper_with_a_queued_follow_up_reaps_every_library(pool: asyncpg.Pool) -> None:
    _, wedged, follow_up = await _running_with_follow_up(pool, "a")
    _, other, _ = await _running_with_follow_up(pool, "b")
    await _expire(pool, wedged.id)
    await _expire(pool, other.id)
    report = await JobQueue(pool, "reaper", lease_s=30).reap()
    assert report.errors == ()
    assert sorted((r.id, r.state) for r in report.reaped) == [
        (wedged.id, "queued"),
        (other.id, "queued"),
    ]
    merged = await _row(pool, follow_up)
    assert (merged["state"], merged["merged_into"]) == ("cancelled", wedged.id)
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM shelfscan.jobs WHERE state = 'queued' AND library_id = $1",
            wedged.library_id,
        )
        == 1
    )


async def test_retry_after_failure_and_release_absorb_the_follow_up(pool: asyncpg.Pool) -> None:
    queue, job, follow_up = await _running_with_follow_up(pool, "a")
    assert await queue.fail_or_retry(job, RuntimeError("boom")) == "queued"
    assert (await _row(pool, follow_up))["merged_into"] == job.id

    queue, job, follow_up = await _running_with_follow_up(pool, "b")
    assert await queue.release([job.id]) == 1  # SIGTERM hands it back
    row = await _row(pool, job.id)
    assert (row["state"], row["owner"]) == ("queued", None)
    assert (await _row(pool, follow_up))["state"] == "cancelled"


async def test_operator_retry_and_cancel_work_on_any_unfinished_job(pool: asyncpg.Pool) -> None:
    queue, job, follow_up = await _running_with_follow_up(pool, "a")
    # A running job is taken from its owner: fenced, the owner can no longer finish it.
    assert await JobQueue(pool, "operator", 30).retry(job.id) == "running"
    assert await queue.finish(job.id, "succeeded") is False
    assert await queue.heartbeat([job.id]) == {}
    assert (await _row(pool, job.id))["state"] == "queued"
    assert (await _row(pool, follow_up))["merged_into"] == job.id
    # Running under a dead owner's expired lease: cancelled outright.
    (again,) = await queue.claim(1)
    await _expire(pool, again.id)
    assert await JobQueue(pool, "operator", 30).cancel(again.id) == "cancelled"
    assert await JobQueue(pool, "operator", 30).cancel(again.id) is None  # finished now


async def test_a_lease_less_running_row_is_reaped(pool: asyncpg.Pool) -> None:
    """What a pre-lease CLI left behind after a crash: it used to block its library for good."""
    library_id = await _library(pool, "old")
    job_id = await pool.fetchval(
        "INSERT INTO shelfscan.jobs (kind, payload, state, attempts, max_attempts, owner) "
        "VALUES ('scan_library', $1, 'running', 1, 1, 'host:1') RETURNING id",
        {"library_id": library_id},
    )
    report = await JobQueue(pool, "d", 30).reap()
    assert [(r.id, r.state) for r in report.reaped] == [(job_id, "failed")]


class FlakyQueue(JobQueue):
    """The real queue, but its first calls fail the way asyncpg fails on a killed connection.

    InternalClientError is not an InterfaceError: it escaped the old loops' except clauses.
    """

    failures: dict[str, int]

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.failures = {"heartbeat": 2, "reap": 2, "claim": 2}

    def _trip(self, name: str) -> None:
        if self.failures[name] > 0:
            self.failures[name] -= 1
            raise asyncpg.InternalClientError(
                "cannot switch to state 11; another operation is in progress"
            )

    async def heartbeat(self, job_ids: list[int]) -> dict[int, bool]:
        self._trip("heartbeat")
        return await super().heartbeat(job_ids)

    async def reap(self, **kwargs: Any) -> Any:
        self._trip("reap")
        return await super().reap(**kwargs)

    async def claim(self, limit: int) -> list[Job]:
        self._trip("claim")
        return await super().claim(limit)


async def test_driver_errors_do_not_kill_the_loops(
    pool: asyncpg.Pool, start_daemon: StartFn, tmp_path: Path
) -> None:
    small_library(tmp_path / "lib", 3)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    daemon = await start_daemon("flaky", listen=False, poll=0.2, lease=1.5, queue_type=FlakyQueue)
    queue = daemon.queue
    assert isinstance(queue, FlakyQueue)
    await until(lambda: not any(queue.failures.values()), 30)
    # Every loop failed twice, logged it, and came back.
    await until(lambda: all(daemon.healthy().values()), 30)
    report = daemon.loop_report()
    assert all(loop["running"] for loop in report.values())
    assert {name: loop["last_error"] for name, loop in report.items()} == {
        name: "InternalClientError: cannot switch to state 11; another operation is in progress"
        for name in ("claim", "heartbeat", "reaper")
    }
    job_id = await queue.enqueue(ScanLibrary(library.id))
    await until_db(pool, "SELECT state = 'succeeded' FROM shelfscan.jobs WHERE id = $1", job_id)


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (
            {"root_id": "ROOT", "paths": [1, None]},
            "bad payload: paths[0]: must be a path, not 1",
        ),
        (
            {"root_id": "ROOT", "files": ["../other-lib/x.epub"]},
            "bad payload: files[0]: '../other-lib/x.epub' is outside the library folder",
        ),
        ({"root_id": 999999, "files": ["x.epub"]}, "bad payload: root_id: 999999 is not a folder"),
    ],
)
async def test_a_bad_payload_fails_once_with_its_reason(
    pool: asyncpg.Pool, start_daemon: StartFn, tmp_path: Path, payload: dict[str, Any], reason: str
) -> None:
    small_library(tmp_path / "lib", 3)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    if payload["root_id"] == "ROOT":
        payload["root_id"] = library.roots[0].id
    job_id = await pool.fetchval(
        "INSERT INTO shelfscan.jobs (kind, payload) VALUES ('scan_path', $1) RETURNING id",
        {"library_id": library.id, **payload},
    )
    unknown = await pool.fetchval(
        "INSERT INTO shelfscan.jobs (kind, payload) VALUES ('scan_library', $1) RETURNING id",
        {"library_id": library.id + 1000},
    )
    await start_daemon("d1", listen=False, poll=0.2)
    for job, expected in (
        (job_id, reason),
        (unknown, "bad payload: library_id: no library with id"),
    ):
        await until_db(pool, "SELECT state = 'failed' FROM shelfscan.jobs WHERE id = $1", job)
        row = await _row(pool, job)
        assert row["last_error"].startswith(expected), row["last_error"]
        assert row["attempts"] == 1  # not retried: retrying cannot fix a bad request
    # Nothing was catalogued: [1, null] is not "the whole library".
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files") == 0


async def test_after_a_takeover_the_parent_counts_what_its_earlier_parts_did(
    pool: asyncpg.Pool, start_daemon: StartFn, tmp_path: Path
) -> None:
    """A parent whose daemon died after splitting: its parts finished, then it ran again."""
    paths = small_library(tmp_path / "lib", 30, folders=30)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    root = library.roots[0]
    parent = await pool.fetchval(
        "INSERT INTO shelfscan.jobs (kind, payload, state, attempts, owner, lease_expires_at) "
        "VALUES ('scan_library', $1, 'running', 1, 'dead:1', now() - interval '1 s') RETURNING id",
        {"library_id": library.id},
    )
    earlier = sorted(str(p.relative_to(root.path)) for p in paths)[:10]
    queue = JobQueue(pool, "dead:1", 30)
    await queue.enqueue_parts(parent, [ScanFiles(library.id, root.id, tuple(earlier))])
    daemon = await start_daemon("d1", listen=False, poll=0.2, split=SplitPolicy(25, 10))
    await until_db(
        pool, "SELECT state = 'succeeded' FROM shelfscan.jobs WHERE id = $1", parent, timeout=60
    )
    result = (await _row(pool, parent))["result"]
    assert (result["books_added"], result["files_failed"]) == (30, 0)
    progress = (await _row(pool, parent))["progress"]
    assert progress["done"] <= progress["total"]
    # Books counted once in the metrics: by the part that read them, then by the parent.
    assert daemon.stats.books_written == 30


async def test_parts_done_never_exceeds_the_total(
    pool: asyncpg.Pool, start_daemon: StartFn, tmp_path: Path
) -> None:
    small_library(tmp_path / "lib", 60, folders=20)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    daemon = await start_daemon("d1", listen=False, poll=0.2, split=SplitPolicy(20, 15))
    job_id = await daemon.queue.enqueue(ScanLibrary(library.id))
    assert job_id is not None
    seen: list[tuple[int, int]] = []
    while (await _row(pool, job_id))["state"] != "succeeded":
        p = (await _row(pool, job_id))["progress"]
        if p.get("phase") == "parts":
            seen.append((p["done"], p["total"]))
        await asyncio.sleep(0.05)
    assert all(done <= total for done, total in seen)
    assert (await _row(pool, job_id))["result"]["books_added"] == 60
    assert daemon.stats.books_written == 60


async def test_one_claim_never_takes_two_scans_of_a_library(pool: asyncpg.Pool) -> None:
    """Found by the state machine: a full scan and a watch scan of one library, both queued,
    made every claim of a daemon with two free slots fail on jobs_one_running_scan."""
    from shelfscan.jobs.contract import ScanFolders

    library_id = await _library(pool, "a")
    queue = JobQueue(pool, "d", lease_s=30)
    full = await queue.enqueue(ScanLibrary(library_id))
    await queue.enqueue(ScanFolders(library_id, 1, ("new",)), priority=2)
    other = await queue.enqueue(ScanLibrary(await _library(pool, "b")))
    claimed = await queue.claim(5)
    assert len(claimed) == 2 and other in {j.id for j in claimed}
    assert full not in {j.id for j in claimed}  # the watch scan has the higher priority


async def test_hostile_text_reaches_job_rows_escaped_not_as_a_failed_flush(
    pool: asyncpg.Pool,
) -> None:
    from shelfscan.jobs.events import JobEvents
    from shelfscan.jobs.store import update_progress

    library_id = await _library(pool, "a")
    queue = JobQueue(pool, "d", lease_s=30)
    await queue.enqueue(ScanLibrary(library_id))
    (job,) = await queue.claim(1)
    hostile = "bad\x00name-\udce9-\ud800.epub"  # a NUL, an escaped byte, a lone surrogate
    events = JobEvents.for_job(job.id)
    events.warning("file_unreadable", path=hostile, reason=f"cannot read {hostile}")
    await events.flush(pool)
    await update_progress(pool, job.id, {"phase": "parse", "current": hostile})
    assert await queue.finish(job.id, "failed", error=RuntimeError(f"broke on {hostile}"))
    log = await pool.fetchrow(
        "SELECT path, fields FROM shelfscan.job_logs WHERE job_id = $1", job.id
    )
    assert log["path"] == "badname-\\udce9-\\ud800.epub"
    assert log["fields"] == {"reason": "cannot read badname-\\udce9-\\ud800.epub"}
    row = await _row(pool, job.id)
    assert row["last_error"] == "RuntimeError: broke on badname-\\udce9-\\ud800.epub"
    assert row["progress"]["current"] == "badname-\\udce9-\\ud800.epub"
