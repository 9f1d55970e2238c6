"""The daemon: claims jobs, runs them under a lease, and never leaves one stuck.

One heartbeat renews every lease this daemon holds and learns of cancel
requests; a reaper (in every daemon) requeues jobs whose owner went silent;
SIGTERM stops claiming, lets running jobs finish within a grace period, then
hands the rest back to the queue without counting the attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import structlog

from shelfscan.catalogue.known import purge_missing
from shelfscan.jobs.events import JobEvents
from shelfscan.jobs.handlers import Handler, JobContext, JobFailed
from shelfscan.jobs.listener import Listener
from shelfscan.jobs.queue import Job, JobQueue
from shelfscan.scan.contract import ScanCancelled
from shelfscan.scan.progress import Progress, publish_progress


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    concurrency: int = 2
    poll_interval_s: float = 5.0
    listen: bool = True
    grace_s: float = 20.0
    retention_s: float = 7 * 86400.0
    progress_interval_s: float = 1.0
    purge_after_s: float = 0.0  # 0: missing files are purged only by `shelfscan purge`


@dataclass(slots=True)
class DaemonStats:
    """Counters for /metrics; gauges are read from the database at scrape time."""

    jobs_finished: dict[str, int] = field(default_factory=dict)
    lease_expirations: int = 0
    files_scanned: int = 0
    files_failed: int = 0
    heartbeats_late: int = 0
    last_heartbeat: float = 0.0


@dataclass(slots=True)
class _Running:
    task: asyncio.Task[None]
    ctx: JobContext


class Daemon:
    def __init__(
        self,
        pool: asyncpg.Pool,
        url: str,
        queue: JobQueue,
        handlers: dict[str, Handler],
        options: DaemonOptions,
    ) -> None:
        self.pool = pool
        self.queue = queue
        self.handlers = handlers
        self.options = options
        self.stats = DaemonStats()
        self.log = structlog.get_logger("shelfscan.daemon").bind(owner=queue.owner)
        self._running: dict[int, _Running] = {}
        self._wake = asyncio.Event()
        self.listener = (
            Listener(url, self._wake.set, self._cancel_requested) if options.listen else None
        )
        self.heartbeat_interval_s = max(0.2, queue.lease_s / 3)

    # -- public --------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event, hard_stop: asyncio.Event | None = None) -> None:
        hard_stop = hard_stop or asyncio.Event()
        self.log.info(
            "daemon_started", concurrency=self.options.concurrency, lease_s=self.queue.lease_s
        )
        background = [
            asyncio.create_task(self._heartbeat_loop(), name="heartbeat"),
            asyncio.create_task(self._maintenance_loop(), name="maintenance"),
        ]
        if self.listener is not None:
            background.append(asyncio.create_task(self.listener.run(), name="listener"))
        try:
            await self._claim_loop(stopping)
            await self._drain(hard_stop)
        finally:
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.log.info("daemon_stopped")

    def healthy(self) -> dict[str, bool]:
        return {
            "listener": self.listener is None or self.listener.healthy(),
            "heartbeat": time.monotonic() - self.stats.last_heartbeat
            < self.heartbeat_interval_s * 3,
        }

    @property
    def running_jobs(self) -> list[int]:
        return list(self._running)

    def scan_rate(self) -> float:
        return float(sum(r.ctx.progress.snapshot()["rate"] for r in self._running.values()))

    # -- claiming ------------------------------------------------------------------------

    def _free_slots(self) -> int:
        busy = sum(1 for r in self._running.values() if not r.ctx.waiting)
        return self.options.concurrency - busy

    async def _claim_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            claimed: list[Job] = []
            free = self._free_slots()
            if free > 0:
                try:
                    claimed = await self.queue.claim(free)
                except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                    self.log.warning("claim_failed", error=str(exc))
            for job in claimed:
                self._start(job)
            if claimed and self._free_slots() > 0:
                continue
            self._wake.clear()
            waits = [
                asyncio.ensure_future(self._wake.wait()),
                asyncio.ensure_future(stopping.wait()),
            ]
            try:
                await asyncio.wait(
                    waits, timeout=self.options.poll_interval_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for w in waits:
                    w.cancel()

    def _start(self, job: Job) -> None:
        events = JobEvents.for_job(
            job.id, library_id=job.library_id, kind=job.kind, attempt=job.attempts
        )
        ctx = JobContext(job, events, Progress())
        task = asyncio.create_task(self._execute(ctx), name=f"job-{job.id}")
        self._running[job.id] = _Running(task, ctx)
        task.add_done_callback(functools.partial(self._finished, job.id))
        events.log.info("job_claimed")

    def _finished(self, job_id: int, _task: object = None) -> None:
        self._running.pop(job_id, None)
        self._wake.set()  # a slot is free

    async def _execute(self, ctx: JobContext) -> None:
        job, log = ctx.job, ctx.events.log
        handler = self.handlers.get(job.kind)
        try:
            async with publish_progress(
                self.pool,
                job.id,
                ctx.progress,
                ctx.events,
                interval_s=self.options.progress_interval_s,
            ):
                if handler is None:
                    raise JobFailed(f"unknown job kind {job.kind!r}")
                result = await handler(ctx)
        except ScanCancelled as exc:
            if ctx.cancel_requested:
                await self._finish(ctx, "cancelled", error=str(exc))
            elif ctx.lost:
                log.warning("job_abandoned", reason="lease lost to another daemon")
            return
        except asyncio.CancelledError:
            raise  # shutdown: the drain releases the job
        except JobFailed as exc:
            await self._finish(ctx, "failed", error=str(exc))
            return
        except Exception as exc:
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:1000]
            log.error("job_error", error=reason, exc_info=True)
            state = await self.queue.fail_or_retry(job, reason)
            self._count(state)
            log.warning(
                "job_retry" if state == "queued" else "job_failed", state=state, error=reason
            )
            return
        self.stats.files_scanned += int(result.get("books_added", 0)) + int(
            result.get("books_updated", 0)
        )
        self.stats.files_failed += int(result.get("files_failed", 0))
        await self._finish(ctx, "succeeded", result=result)

    async def _finish(self, ctx: JobContext, state: str, **kwargs: Any) -> None:
        ok = await self.queue.finish(ctx.job.id, state, progress=ctx.progress.snapshot(), **kwargs)
        if ok:
            self._count(state)
            ctx.events.log.info("job_finished", state=state)
        else:
            ctx.events.log.warning("job_finish_fenced", state=state, reason="no longer the owner")

    def _count(self, state: str) -> None:
        self.stats.jobs_finished[state] = self.stats.jobs_finished.get(state, 0) + 1

    # -- leases and cancellation ---------------------------------------------------------------

    def _cancel_requested(self, job_id: int) -> None:
        running = self._running.get(job_id)
        if running is not None:
            running.ctx.cancel_requested = True
            running.ctx.stop.set()
            running.ctx.events.log.info("job_cancel_requested", via="notify")

    async def _heartbeat_loop(self) -> None:
        interval = self.heartbeat_interval_s
        expected = time.monotonic()
        while True:
            late = time.monotonic() - expected
            if late > interval / 2:
                self.stats.heartbeats_late += 1
                self.log.warning("heartbeat_late", late_s=round(late, 3), interval_s=interval)
            try:
                ids = list(self._running)
                answers = await self.queue.heartbeat(ids)
                self.stats.last_heartbeat = time.monotonic()
                for job_id in ids:
                    running = self._running.get(job_id)
                    if running is None:
                        continue
                    if job_id not in answers:
                        running.ctx.lost = True
                        running.ctx.stop.set()
                        running.task.cancel()
                        running.ctx.events.log.warning("lease_lost")
                    elif answers[job_id] and not running.ctx.cancel_requested:
                        running.ctx.cancel_requested = True
                        running.ctx.stop.set()
                        running.ctx.events.log.info("job_cancel_requested", via="heartbeat")
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.log.warning("heartbeat_failed", error=str(exc))
            expected = time.monotonic() + interval
            await asyncio.sleep(interval)

    async def _maintenance_loop(self) -> None:
        last_prune = 0.0
        while True:
            try:
                for reaped in await self.queue.reap():
                    self.stats.lease_expirations += 1
                    self.log.warning(
                        "lease_expired",
                        job_id=reaped.id,
                        state=reaped.state,
                        previous_owner=reaped.previous_owner,
                    )
                if time.monotonic() - last_prune > 3600:
                    pruned = await self.queue.prune(self.options.retention_s)
                    last_prune = time.monotonic()
                    if pruned:
                        self.log.info("jobs_pruned", count=pruned)
                    if self.options.purge_after_s > 0:
                        files, books = await purge_missing(self.pool, self.options.purge_after_s)
                        if files:
                            self.log.info("missing_purged", files=files, books=books)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.log.warning("maintenance_failed", error=str(exc))
            await asyncio.sleep(max(0.5, self.queue.lease_s / 2))

    # -- shutdown ------------------------------------------------------------------------------

    async def _drain(self, hard_stop: asyncio.Event) -> None:
        if not self._running:
            return
        tasks = [r.task for r in self._running.values()]
        self.log.info("shutdown_waiting", jobs=list(self._running), grace_s=self.options.grace_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.options.grace_s
        hard = asyncio.ensure_future(hard_stop.wait())
        pending: set[asyncio.Future[Any]] = set(tasks)
        try:
            while pending and not hard.done():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                _, pending = await asyncio.wait(
                    pending | {hard}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                pending.discard(hard)
        finally:
            hard.cancel()
        leftover = dict(self._running)
        for running in leftover.values():
            running.task.cancel()
        for running in leftover.values():
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await running.task
        released = await self.queue.release(list(leftover))
        if leftover:
            self.log.info("jobs_released", jobs=list(leftover), released=released)
