"""Progress: counters the scan workers bump, published to a sink (the job row) and a terminal bar.

scan/ does not know about jobs: the job layer implements `ProgressSink`
(`jobs.events.JobProgress`) and passes it in.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from shelfscan.errors import one_line


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


class ScanEvents(Protocol):
    """Where a scan reports what happened to a file or a folder (the job's log)."""

    def info(self, event: str, path: str | None = None, **fields: Any) -> None: ...

    def warning(self, event: str, path: str | None = None, **fields: Any) -> None: ...

    def error(self, event: str, path: str | None = None, **fields: Any) -> None: ...


class ProgressSink(Protocol):
    """Where progress snapshots go while a scan runs (the job layer writes the job row)."""

    async def publish(self, snapshot: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...

    def warning(self, event: str, **fields: Any) -> None: ...


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
    sink: ProgressSink,
    progress: Progress,
    *,
    interval_s: float,
    view: ProgressView | None = None,
) -> AsyncIterator[None]:
    """Hand a snapshot to `sink` (and the bar) every `interval_s` while the block runs.

    Nothing the sink raises ends the reporting: a failed update is logged and the
    next interval tries again, since a database hiccup must not silence the rest
    of a long scan.
    """

    async def loop() -> None:
        failures = 0
        while True:
            await asyncio.sleep(interval_s * min(2**failures, 30))
            if view is not None:
                view.show(progress)
            try:
                await sink.publish(progress.snapshot())
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                failures += 1
                sink.warning("progress_update_failed", error=one_line(exc), failures=failures)

    task = asyncio.create_task(loop(), name="progress")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        if view is not None:
            view.show(progress)
        try:
            await sink.close()
        except Exception as exc:
            sink.warning("progress_close_failed", error=one_line(exc))
