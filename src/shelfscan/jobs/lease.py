"""The lease of a job this process runs itself (the CLI), renewed while it runs.

A CLI scan is a job like any other: if the process is killed, its lease runs out and
the job is ended the way a dead daemon's is (by a daemon's reaper, or by the next CLI
scan of the library). While it runs, the renewal also learns of `jobs cancel` and of
the job having been taken away (`jobs retry`, or a lease that ran out while the
database was unreachable), and then asks the scan to stop at its next safe point.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from shelfscan.jobs.loops import LoopState, forever
from shelfscan.jobs.queue import JobQueue
from shelfscan.jobs.store import job_state


@dataclass(slots=True)
class HeldLease:
    job_id: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    cancel_requested: bool = False
    lost: bool = False
    state: LoopState | None = None


@contextlib.asynccontextmanager
async def hold_lease(queue: JobQueue, job_id: int, log: Any) -> AsyncIterator[HeldLease]:
    lease = HeldLease(job_id)
    interval = max(0.2, queue.lease_s / 3)
    lease.state = LoopState("lease", stale_s=interval * 3)

    async def renew() -> float:
        answers = await queue.heartbeat([job_id])
        if job_id not in answers:
            if not lease.lost:
                state = await job_state(queue.pool, job_id)
                # Cancelled outright (its lease had lapsed while the process stalled) is
                # still a cancel to the person who asked for it.
                lease.cancel_requested = state == "cancelled"
                log.warning("lease_lost", job_id=job_id, state=state)
            lease.lost = True
            lease.stop.set()
        elif answers[job_id] and not lease.cancel_requested:
            log.info("job_cancel_requested", job_id=job_id, via="heartbeat")
            lease.cancel_requested = True
            lease.stop.set()
        return interval

    task = asyncio.create_task(forever(lease.state, renew, log), name=f"lease-{job_id}")
    try:
        yield lease
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
