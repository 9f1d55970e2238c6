"""The job lifecycle as a state machine, driven at random against a real PostgreSQL.

Several simulated daemons and CLI scans interleave every transition the queue offers
(enqueue by API and by plain SQL, duplicates, claim, heartbeat, lease expiry, reap,
finish, fail with and without attempts left, cancel, retry, SIGTERM release, split
into parts, CLI scans and kills), sometimes several at once. After every step the
invariants of docs/sql-contract.md are checked in the database; at the end everything
is drained and every request must have ended, or have been merged into a job that did.

Seeded: the seed is printed on failure; rerun one with SHELFSCAN_SM_SEED=<seed>.
SHELFSCAN_SM_STEPS sets the steps per seed (default 1,500).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import asyncpg
import pytest

from shelfscan.jobs.contract import ScanFiles, ScanFolders, ScanLibrary
from shelfscan.jobs.queue import Job, JobQueue
from shelfscan.jobs.store import ScanAlreadyRunning, queued_scan_id, start_cli_job

LIBRARIES = 3
DAEMONS = 3
STEPS = int(os.environ.get("SHELFSCAN_SM_STEPS", "1500"))

# One query for every invariant; each row is a violation, named.
_INVARIANTS = """
SELECT 'two running scans of library ' || library_id FROM shelfscan.jobs
 WHERE state = 'running' AND parent_id IS NULL AND kind IN ('scan_library', 'scan_path')
 GROUP BY library_id HAVING count(*) > 1
UNION ALL
SELECT 'two queued scans of library ' || library_id FROM shelfscan.jobs
 WHERE state = 'queued' AND kind = 'scan_library' GROUP BY library_id HAVING count(*) > 1
UNION ALL
SELECT 'running job ' || id || ' without owner or lease' FROM shelfscan.jobs
 WHERE state = 'running' AND (owner IS NULL OR lease_expires_at IS NULL)
UNION ALL
SELECT 'queued job ' || id || ' still owned or leased' FROM shelfscan.jobs
 WHERE state = 'queued' AND (owner IS NOT NULL OR lease_expires_at IS NOT NULL
                             OR finished_at IS NOT NULL)
UNION ALL
SELECT 'finished job ' || id || ' without finished_at or with a lease' FROM shelfscan.jobs
 WHERE state IN ('succeeded', 'failed', 'cancelled')
   AND (finished_at IS NULL OR lease_expires_at IS NOT NULL)
UNION ALL
SELECT 'job ' || j.id || ' merged into an unrelated job' FROM shelfscan.jobs j
 LEFT JOIN shelfscan.jobs m ON m.id = j.merged_into
 WHERE j.merged_into IS NOT NULL
   AND (j.state <> 'cancelled' OR m.kind IS DISTINCT FROM j.kind
        OR m.library_id IS DISTINCT FROM j.library_id)
"""


@dataclass(slots=True)
class Owner:
    queue: JobQueue
    held: set[int] = field(default_factory=set)
    alive: bool = True


@dataclass(slots=True)
class World:
    pool: asyncpg.Pool
    rng: random.Random
    libraries: list[int]
    owners: list[Owner]
    jobs: list[int] = field(default_factory=list)
    # Requests whose INSERT was dropped as a duplicate: the queued job that took them over.
    merged_at_insert: list[int] = field(default_factory=list)
    clis: int = 0
    log: list[str] = field(default_factory=list)

    def owner(self) -> Owner:
        return self.rng.choice([o for o in self.owners if o.alive])

    def some_job(self) -> int | None:
        return self.rng.choice(self.jobs) if self.jobs else None

    async def row(self, job_id: int) -> asyncpg.Record:
        row: asyncpg.Record = await self.pool.fetchrow(
            "SELECT state, owner, kind, library_id FROM shelfscan.jobs WHERE id = $1", job_id
        )
        return row

    # -- producers ---------------------------------------------------------------------

    async def _enqueued(self, library_id: int, job_id: int | None, exact: bool) -> None:
        if job_id is not None:
            self.jobs.append(job_id)
            return
        # Dropped as a duplicate: there must be a queued scan that does its work.
        queued = await queued_scan_id(self.pool, library_id)
        if queued is None and not exact:
            # A concurrent step may have claimed (or cancelled) that scan since the INSERT.
            queued = await self.pool.fetchval(
                "SELECT max(id) FROM shelfscan.jobs WHERE kind = 'scan_library' "
                "AND library_id = $1",
                library_id,
            )
        assert queued is not None, f"scan request for library {library_id} dropped, none queued"
        self.merged_at_insert.append(queued)

    async def enqueue(self, exact: bool) -> None:
        library_id = self.rng.choice(self.libraries)
        await self._enqueued(
            library_id, await self.owner().queue.enqueue(ScanLibrary(library_id)), exact
        )

    async def enqueue_sql(self, exact: bool) -> None:
        """What a book server does: a plain INSERT, possibly several rows in one statement."""
        library_id = self.rng.choice(self.libraries)
        n = self.rng.choice((1, 1, 2))
        rows = await self.pool.fetch(
            "INSERT INTO shelfscan.jobs (kind, payload) SELECT 'scan_library', "
            "jsonb_build_object('library_id', $1::bigint) FROM generate_series(1, $2) RETURNING id",
            library_id,
            n,
        )
        for r in rows:
            self.jobs.append(r["id"])
        for _ in range(n - len(rows)):
            await self._enqueued(library_id, None, exact)

    async def enqueue_watch(self, exact: bool) -> None:
        library_id = self.rng.choice(self.libraries)
        job_id = await self.owner().queue.enqueue(ScanFolders(library_id, 1, ("a",)), priority=2)
        assert job_id is not None
        self.jobs.append(job_id)

    # -- a daemon's own jobs -----------------------------------------------------------

    async def claim(self, exact: bool) -> None:
        owner = self.owner()
        for job in await owner.queue.claim(self.rng.randint(1, 3)):
            owner.held.add(job.id)
            if exact:
                row = await self.row(job.id)
                assert (row["state"], row["owner"]) == ("running", owner.queue.owner)

    async def heartbeat(self, exact: bool) -> None:
        owner = self.owner()
        held = sorted(owner.held)
        answers = await owner.queue.heartbeat(held)
        owner.held -= set(held) - set(answers)  # lost: taken over or retried by an operator
        if exact:
            for job_id in answers:
                row = await self.row(job_id)
                assert (row["state"], row["owner"]) == ("running", owner.queue.owner)

    async def _settle(self, exact: bool, op: Callable[[Owner, int], Awaitable[object]]) -> None:
        owner = self.owner()
        if not owner.held:
            return
        job_id = self.rng.choice(sorted(owner.held))
        before = await self.row(job_id) if exact else None
        done = await op(owner, job_id)
        owner.held.discard(job_id)
        if before is not None:
            mine = before["state"] == "running" and before["owner"] == owner.queue.owner
            # Fencing: only the owner of a running job can end it.
            assert (done not in (False, None)) == mine, (job_id, before, done)

    async def finish(self, exact: bool) -> None:
        await self._settle(exact, lambda o, j: o.queue.finish(j, "succeeded", result={"ok": 1}))

    async def fail(self, exact: bool) -> None:
        async def op(owner: Owner, job_id: int) -> object:
            attempts = self.rng.choice((1, 5))  # a last attempt, or retries left
            job = Job(job_id, "scan_library", {}, None, attempts, 5, None)
            return await owner.queue.fail_or_retry(job, RuntimeError("boom"))

        await self._settle(exact, op)

    async def release(self, exact: bool) -> None:
        """SIGTERM: hand back everything held."""
        owner = self.owner()
        await owner.queue.release(sorted(owner.held))
        owner.held.clear()

    async def split(self, exact: bool) -> None:
        owner = self.owner()
        for job_id in sorted(owner.held):
            row = await self.row(job_id)
            if row["kind"] == "scan_library" and row["state"] == "running":
                parts = [
                    ScanFiles(row["library_id"], 1, (f"p{i}.epub",))
                    for i in range(self.rng.randint(1, 3))
                ]
                self.jobs.extend(await owner.queue.enqueue_parts(job_id, parts))
                return

    # -- time, other daemons, operators ----------------------------------------------------

    async def expire(self, exact: bool) -> None:
        """Time passes for one lease: its owner stalled past it."""
        await self.pool.execute(
            """UPDATE shelfscan.jobs SET lease_expires_at = now() - interval '1 second'
               WHERE id = (SELECT id FROM shelfscan.jobs WHERE state = 'running'
                           ORDER BY random() LIMIT 1)"""
        )

    async def time_passes(self, exact: bool) -> None:
        await self.pool.execute(
            "UPDATE shelfscan.jobs SET run_at = now() WHERE state = 'queued' AND run_at > now()"
        )

    async def reap(self, exact: bool) -> None:
        report = await self.owner().queue.reap()
        assert report.errors == (), report.errors

    async def cancel(self, exact: bool) -> None:
        job_id = self.some_job()
        if job_id is not None:
            await JobQueue(self.pool, "operator", 30).cancel(job_id)

    async def retry(self, exact: bool) -> None:
        job_id = self.some_job()
        if job_id is not None:
            await JobQueue(self.pool, "operator", 30).retry(job_id)

    async def cli_scan(self, exact: bool) -> None:
        self.clis += 1
        owner = Owner(JobQueue(self.pool, f"cli-{self.clis}", 30))
        library_id = self.rng.choice(self.libraries)
        try:
            started = await start_cli_job(owner.queue, ScanLibrary(library_id))
        except ScanAlreadyRunning:
            if exact:  # refused only while a live scan of the library runs
                assert await self.pool.fetchval(
                    "SELECT count(*) FROM shelfscan.jobs WHERE state = 'running' "
                    "AND parent_id IS NULL AND library_id = $1 AND lease_expires_at >= now()",
                    library_id,
                )
            return
        owner.held.add(started.id)
        self.jobs.append(started.id)
        self.owners.append(owner)

    async def kill(self, exact: bool) -> None:
        """SIGKILL of a daemon or a CLI: it never renews or finishes anything again."""
        alive = [o for o in self.owners if o.alive]
        if len(alive) > 2:
            self.rng.choice(alive).alive = False

    async def spawn(self, exact: bool) -> None:
        self.owners.append(Owner(JobQueue(self.pool, f"daemon-{len(self.owners)}", 30)))


# name, weight
STEPS_TABLE: list[tuple[str, int]] = [
    ("enqueue", 6),
    ("enqueue_sql", 4),
    ("enqueue_watch", 2),
    ("claim", 8),
    ("heartbeat", 5),
    ("finish", 6),
    ("fail", 3),
    ("release", 2),
    ("split", 2),
    ("expire", 3),
    ("time_passes", 2),
    ("reap", 4),
    ("cancel", 2),
    ("retry", 2),
    ("cli_scan", 3),
    ("kill", 1),
    ("spawn", 1),
]
CONCURRENT = [
    "enqueue",
    "enqueue_sql",
    "claim",
    "heartbeat",
    "reap",
    "release",
    "cancel",
    "retry",
    "cli_scan",
    "finish",
]


async def _check(world: World, where: str) -> None:
    violations = [r[0] for r in await world.pool.fetch(_INVARIANTS)]
    assert not violations, f"{where}: {violations}"


async def _drain(world: World) -> None:
    """Every owner stops; everything still unfinished is reaped and run to its end."""
    pool = world.pool
    for _ in range(200):
        await pool.execute(
            "UPDATE shelfscan.jobs SET lease_expires_at = now() - interval '1 second' "
            "WHERE state = 'running'"
        )
        drainer = JobQueue(pool, "drainer", 30)
        assert (await drainer.reap()).errors == ()
        await pool.execute("UPDATE shelfscan.jobs SET run_at = now() WHERE state = 'queued'")
        for job in await drainer.claim(50):
            assert await drainer.finish(job.id, "succeeded")
        await _check(world, "drain")
        if not await pool.fetchval(
            "SELECT count(*) FROM shelfscan.jobs WHERE state IN ('queued', 'running')"
        ):
            return
    left = await pool.fetch(
        "SELECT id, kind, state, library_id, parent_id, owner, lease_expires_at, run_at "
        "FROM shelfscan.jobs WHERE state IN ('queued', 'running')"
    )
    raise AssertionError(f"jobs still unfinished after draining, wedged: {[dict(r) for r in left]}")


async def _ends(pool: asyncpg.Pool, job_id: int) -> str:
    """The final state of a request, following merges."""
    seen = set()
    while True:
        row = await pool.fetchrow(
            "SELECT state, merged_into FROM shelfscan.jobs WHERE id = $1", job_id
        )
        assert row is not None, f"job {job_id} vanished"
        if row["merged_into"] is None:
            return str(row["state"])
        assert job_id not in seen, f"merge cycle at job {job_id}"
        seen.add(job_id)
        job_id = row["merged_into"]


async def _run(pool: asyncpg.Pool, seed: int) -> World:
    rng = random.Random(seed)
    libraries = [
        await pool.fetchval(
            "INSERT INTO shelfscan.libraries (name) VALUES ($1) RETURNING id", f"lib{i}"
        )
        for i in range(LIBRARIES)
    ]
    owners = [Owner(JobQueue(pool, f"daemon-{i}", 30)) for i in range(DAEMONS)]
    world = World(pool, rng, libraries, owners)
    names = [n for n, _ in STEPS_TABLE]
    weights = [w for _, w in STEPS_TABLE]
    for step in range(STEPS):
        if rng.random() < 0.1:
            picked = [rng.choice(CONCURRENT) for _ in range(rng.randint(2, 4))]
            world.log.append(f"{step}: together {picked}")
            await asyncio.gather(*(getattr(world, n)(False) for n in picked))
        else:
            (name,) = rng.choices(names, weights)
            world.log.append(f"{step}: {name}")
            await getattr(world, name)(True)
        await _check(world, f"after step {world.log[-1]}")
    await _drain(world)
    for job_id in world.jobs + world.merged_at_insert:
        assert await _ends(pool, job_id) in ("succeeded", "failed", "cancelled")
    return world


@pytest.mark.parametrize("run", [0, 1])
async def test_random_interleavings_keep_the_invariants(pool: asyncpg.Pool, run: int) -> None:
    seed = int(os.environ.get("SHELFSCAN_SM_SEED", random.SystemRandom().randrange(2**32)))
    seed += run
    try:
        world = await _run(pool, seed)
    except BaseException as exc:
        raise AssertionError(
            f"state machine failed with SHELFSCAN_SM_SEED={seed}: {exc!r}"
        ) from exc
    states = await pool.fetch("SELECT state, count(*) AS n FROM shelfscan.jobs GROUP BY state")
    counts = {r["state"]: r["n"] for r in states}
    # The run exercised the interesting outcomes, not just one path.
    assert counts.get("succeeded", 0) and counts.get("failed", 0) and counts.get("cancelled", 0)
    assert world.merged_at_insert and await pool.fetchval(
        "SELECT count(*) FROM shelfscan.jobs WHERE merged_into IS NOT NULL"
    )
