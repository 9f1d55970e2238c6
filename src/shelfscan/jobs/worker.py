"""The daemon: claims jobs, runs them under a lease, and never leaves one stuck.

One heartbeat renews every lease this daemon holds and learns of cancel
requests; a reaper (in every daemon) requeues jobs whose owner went silent;
SIGTERM stops claiming, lets running jobs finish within a grace period, then
hands the rest back to the queue without counting the attempt. Every loop runs
under `loops.forever`: no exception from the driver ends one silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import asyncpg
import structlog

from shelfscan.catalogue.known import purge_missing
from shelfscan.errors import one_line
from shelfscan.jobs.contract import JobFailed, JobStatus, decode
from shelfscan.jobs.events import JobEvents, JobProgress
from shelfscan.jobs.handlers import Handler, JobContext
from shelfscan.jobs.listener import Listener
from shelfscan.jobs.loops import LoopState, forever
from shelfscan.jobs.queue import Job, JobQueue, backoff_seconds
from shelfscan.scan.contract import ScanCancelled
from shelfscan.scan.progress import Progress, publish_progress

T = TypeVar("T")
_COUNTED = ("books_added", "books_updated", "files_failed")


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
    """Counters for /metrics; gauges are read from the database at scrape time.

    Book and file counts come from the jobs that did the reading: a split scan's
    parent only sums its parts, so it adds nothing here (its parts already did).
    """

    jobs_finished: dict[str, int] = field(default_factory=dict)
    lease_expirations: int = 0
    books_written: int = 0
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
        self.maintenance_interval_s = max(0.5, queue.lease_s / 2)
        self.loops = {
            "claim": LoopState("claim", stale_s=options.poll_interval_s * 3 + 5),
            "heartbeat": LoopState("heartbeat", stale_s=self.heartbeat_interval_s * 3),
            "reaper": LoopState("reaper", stale_s=self.maintenance_interval_s * 3 + 5),
        }
        self._last_prune = 0.0
        self._expected_beat = 0.0

    # -- public --------------------------------------------------------------------------

    async def run(self, stopping: asyncio.Event, hard_stop: asyncio.Event | None = None) -> None:
        hard_stop = hard_stop or asyncio.Event()
        self.log.info(
            "daemon_started", concurrency=self.options.concurrency, lease_s=self.queue.lease_s
        )
        background = [
            asyncio.create_task(
                forever(self.loops["heartbeat"], self._heartbeat_once, self.log),
                name="heartbeat",
            ),
            asyncio.create_task(
                forever(self.loops["reaper"], self._maintenance_once, self.log),
                name="maintenance",
            ),
        ]
        if self.listener is not None:
            background.append(asyncio.create_task(self.listener.run(), name="listener"))
        try:
            await forever(
                self.loops["claim"],
                functools.partial(self._claim_once, stopping),
                self.log,
                stopping=stopping,
            )
        finally:
            # However the claim loop ended, the jobs it started are finished or handed back.
            await self._drain(hard_stop)
            for task in background:
                task.cancel()
            for task in background:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.log.info("daemon_stopped")

    def healthy(self) -> dict[str, bool]:
        checks = {name: state.healthy() for name, state in self.loops.items()}
        checks["listener"] = self.listener is None or self.listener.healthy()
        return checks

    def loop_report(self) -> dict[str, dict[str, Any]]:
        return {name: state.report() for name, state in self.loops.items()}

    @property
    def running_jobs(self) -> list[int]:
        return list(self._running)

    def scan_rate(self) -> float:
        return float(sum(r.ctx.progress.snapshot()["rate"] for r in self._running.values()))

    # -- claiming ------------------------------------------------------------------------

    def _free_slots(self) -> int:
        busy = sum(1 for r in self._running.values() if not r.ctx.waiting)
        return self.options.concurrency - busy

    async def _claim_once(self, stopping: asyncio.Event) -> float:
        """Claim what fits; then wait for a wake-up, a free slot or the poll interval."""
        free = self._free_slots()
        claimed = await self.queue.claim(free) if free > 0 else []
        for job in claimed:
            self._start(job)
        if claimed and self._free_slots() > 0:
            return 0.0
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
        return 0.0

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
                JobProgress(self.pool, ctx.events),
                ctx.progress,
                interval_s=self.options.progress_interval_s,
            ):
                if handler is None:
                    raise JobFailed(f"unknown job kind {job.kind!r}")
                ctx.payload = decode(job.kind, job.payload)
                result = await handler(ctx)
        except ScanCancelled as exc:
            if ctx.cancel_requested:
                await self._finish(ctx, JobStatus.CANCELLED, error=exc)
            elif ctx.lost:
                log.warning("job_abandoned", reason="lease lost to another daemon")
            return
        except asyncio.CancelledError:
            raise  # shutdown: the drain releases the job
        except JobFailed as exc:
            await self._finish(ctx, JobStatus.FAILED, error=exc)
            return
        except Exception as exc:
            reason = one_line(exc)
            log.error("job_error", error=reason, exc_info=True)
            state = await self._settle(ctx, lambda: self.queue.fail_or_retry(job, reason))
            if state is not None:
                self._count(state)
                log.warning(
                    "job_retry" if state == JobStatus.QUEUED else "job_failed",
                    state=str(state),
                    error=reason,
                )
            return
        own = {k: int(result.get(k, 0)) - ctx.from_parts.get(k, 0) for k in _COUNTED}
        self.stats.books_written += own["books_added"] + own["books_updated"]
        self.stats.files_failed += own["files_failed"]
        await self._finish(ctx, JobStatus.SUCCEEDED, result=result)

    async def _finish(self, ctx: JobContext, state: JobStatus, **kwargs: Any) -> None:
        progress = ctx.progress.snapshot()
        ok = await self._settle(
            ctx, lambda: self.queue.finish(ctx.job.id, state, progress=progress, **kwargs)
        )
        if ok:
            self._count(state)
            ctx.events.log.info("job_finished", state=str(state))
        elif ok is not None:
            ctx.events.log.warning(
                "job_finish_fenced", state=str(state), reason="no longer the owner"
            )

    async def _settle(self, ctx: JobContext, op: Callable[[], Awaitable[T]]) -> T | None:
        """Record a job's outcome, retrying a database hiccup for about one lease.

        None when it could not be recorded: the job is no longer renewed, so its lease
        expires and the reaper requeues it -- late, but never stuck.
        """
        deadline = time.monotonic() + self.queue.lease_s
        attempt = 0
        while True:
            try:
                return await op()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                attempt += 1
                if time.monotonic() > deadline:
                    ctx.events.log.error("job_settle_failed", error=one_line(exc), tries=attempt)
                    return None
                ctx.events.log.warning("job_settle_retry", error=one_line(exc), tries=attempt)
                await asyncio.sleep(backoff_seconds(attempt, base=0.2, cap=2.0))

    def _count(self, state: JobStatus) -> None:
        key = str(state)
        self.stats.jobs_finished[key] = self.stats.jobs_finished.get(key, 0) + 1

    # -- leases and cancellation ---------------------------------------------------------------

    def _cancel_requested(self, job_id: int) -> None:
        running = self._running.get(job_id)
        if running is not None:
            running.ctx.cancel_requested = True
            running.ctx.stop.set()
            running.ctx.events.log.info("job_cancel_requested", via="notify")

    async def _heartbeat_once(self) -> float:
        interval = self.heartbeat_interval_s
        now = time.monotonic()
        if self._expected_beat and now - self._expected_beat > interval / 2:
            self.stats.heartbeats_late += 1
            self.log.warning(
                "heartbeat_late", late_s=round(now - self._expected_beat, 3), interval_s=interval
            )
        self._expected_beat = now + interval
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
        return interval

    async def _maintenance_once(self) -> float:
        report = await self.queue.reap()
        for reaped in report.reaped:
            self.stats.lease_expirations += 1
            self.log.warning(
                "lease_expired",
                job_id=reaped.id,
                state=str(reaped.state),
                previous_owner=reaped.previous_owner,
            )
        for job_id, error in report.errors:
            self.log.warning("reap_failed", job_id=job_id, error=error)
        if time.monotonic() - self._last_prune > 3600:
            pruned = await self.queue.prune(self.options.retention_s)
            self._last_prune = time.monotonic()
            if pruned:
                self.log.info("jobs_pruned", count=pruned)
            if self.options.purge_after_s > 0:
                files, books = await purge_missing(self.pool, self.options.purge_after_s)
                if files:
                    self.log.info("missing_purged", files=files, books=books)
        return self.maintenance_interval_s

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
        try:
            released = await self.queue.release(list(leftover))
        except Exception as exc:
            # Their leases run out and any daemon's reaper requeues them.
            self.log.warning("release_failed", jobs=list(leftover), error=one_line(exc))
            return
        self.log.info("jobs_released", jobs=list(leftover), released=released)
