"""Progress: counters the workers bump, published to the job row and a terminal bar."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

import asyncpg

from shelfscan.jobs.events import JobEvents
from shelfscan.jobs.store import update_progress


@dataclass(slots=True)
class Progress:
    phase: str = "starting"
    done: int = 0
    total: int = 0
    failed: int = 0
    started: float = field(default_factory=time.monotonic)
    phase_started: float = field(default_factory=time.monotonic)

    def enter(self, phase: str, total: int | None = None) -> None:
        """Start a phase; without a total the counts of the previous phase stay (finalize)."""
        self.phase = phase
        if total is not None:
            self.total, self.done, self.phase_started = total, 0, time.monotonic()

    def snapshot(self) -> dict[str, Any]:
        elapsed = max(time.monotonic() - self.phase_started, 1e-9)
        return {
            "phase": self.phase,
            "done": self.done,
            "total": self.total,
            "failed": self.failed,
            "rate": round(self.done / elapsed, 1),
        }


class ProgressView(Protocol):
    def show(self, progress: Progress) -> None: ...


class RichProgressView:
    """A progress bar with files/s, for a person watching a terminal."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TaskProgressColumn,
            TextColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        self._bar = RichProgress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TaskProgressColumn(),
            TextColumn("{task.fields[rate]} files/s"),
            TimeRemainingColumn(),
            transient=True,
        )
        self._task = self._bar.add_task("scan", total=None, rate="0")

    def __enter__(self) -> RichProgressView:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def show(self, progress: Progress) -> None:
        snap = progress.snapshot()
        self._bar.update(
            self._task,
            description=progress.phase,
            completed=progress.done,
            total=progress.total or None,
            rate=f"{snap['rate']:.0f}",
        )


@contextlib.asynccontextmanager
async def publish_progress(
    pool: asyncpg.Pool,
    job_id: int,
    progress: Progress,
    events: JobEvents,
    *,
    interval_s: float,
    view: ProgressView | None = None,
) -> AsyncIterator[None]:
    """Refresh the job row (and the bar) every `interval_s` while the block runs."""

    async def loop() -> None:
        last: dict[str, Any] | None = None
        while True:
            await asyncio.sleep(interval_s)
            if view is not None:
                view.show(progress)
            snap = progress.snapshot()
            try:
                if snap != last:
                    await update_progress(pool, job_id, snap)
                    last = snap
                await events.flush(pool)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                # A database hiccup must not end progress reporting for the rest of the scan.
                events.log.warning("progress_update_failed", error=str(exc))

    task = asyncio.create_task(loop(), name=f"progress-{job_id}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if view is not None:
            view.show(progress)
        await events.close(pool)
