"""Loops that cannot die silently, and progress reporting that outlives a failing sink."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
import pytest

from shelfscan.jobs.loops import LoopState, forever
from shelfscan.scan.progress import Progress, publish_progress


class Recorder:
    """A structlog-shaped logger that keeps what it was told."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def warning(self, event: str, **fields: Any) -> None:
        self.lines.append((event, fields))

    error = info = warning


class Fatal(BaseException):
    """Not an Exception: nothing should swallow it, but the loop must say it stopped."""


async def test_a_loop_survives_driver_errors_then_reports_when_it_fails_for_good() -> None:
    log = Recorder()
    state = LoopState("heartbeat", stale_s=60)
    calls = 0

    async def step() -> float:
        nonlocal calls
        calls += 1
        if calls <= 2:
            raise asyncpg.InternalClientError("cannot switch to state 11")
        if calls == 3:
            return 0.0
        raise ConnectionResetError("gone")

    task = asyncio.create_task(forever(state, step, log))
    while calls < 7:
        await asyncio.sleep(0.01)
        if calls == 3:
            assert state.healthy()
    # Three failures in a row: still running, but /healthz says it is failing.
    assert state.running and not state.healthy()
    assert state.last_error == "ConnectionResetError: gone"
    assert [e for e, _ in log.lines][:2] == ["loop_failed", "loop_failed"]
    assert log.lines[0][1]["error_type"] == "InternalClientError"
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not state.running


async def test_a_loop_that_stops_says_so() -> None:
    log = Recorder()
    state = LoopState("reaper", stale_s=60)

    async def step() -> float:
        raise Fatal("out of here")

    with pytest.raises(Fatal):
        await forever(state, step, log)
    assert not state.running and not state.healthy()
    assert log.lines == [("loop_stopped", {"loop": "reaper", "error": "out of here"})]


class FlakySink:
    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self.closed = False
        self.fail = 3

    async def publish(self, snapshot: dict[str, Any]) -> None:
        if self.fail:
            self.fail -= 1
            raise asyncpg.InternalClientError("cannot switch to state 11")
        self.published.append(snapshot)

    async def close(self) -> None:
        self.closed = True

    def warning(self, event: str, **fields: Any) -> None:
        self.warnings.append(event)


async def test_progress_reporting_outlives_a_failing_sink() -> None:
    sink = FlakySink()
    progress = Progress()
    async with publish_progress(sink, progress, interval_s=0.001):
        progress.enter("parse", 10)
        while not sink.published:
            progress.done = min(10, progress.done + 1)
            await asyncio.sleep(0.01)
    assert sink.warnings == ["progress_update_failed"] * 3
    assert sink.closed and sink.published[-1]["phase"] == "parse"
