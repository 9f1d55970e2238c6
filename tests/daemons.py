"""An in-process daemon for tests, on the real database (a fixture shared by test modules)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shelfscan.jobs.handlers import ScanHandlers
from shelfscan.jobs.queue import JobQueue
from shelfscan.jobs.worker import Daemon, DaemonOptions
from shelfscan.scan.contract import ScanOptions, SplitPolicy
from shelfscan.scan.engine import Scanner
from shelfscan.scan.executor import ParseExecutor

StartFn = Callable[..., Awaitable[Daemon]]


@pytest.fixture
async def start_daemon(pool: asyncpg.Pool, db_url: str, tmp_path: Path) -> AsyncIterator[StartFn]:
    running: list[tuple[Daemon, asyncio.Event, asyncio.Task[None], ParseExecutor]] = []

    async def start(
        name: str = "d1",
        *,
        listen: bool = True,
        poll: float = 60.0,
        lease: float = 10.0,
        workers: int = 2,
        chunk_size: int = 10,
        split: SplitPolicy | None = None,
        queue_type: type[JobQueue] = JobQueue,
    ) -> Daemon:
        executor = ParseExecutor("thread", 2, tmp_path / "covers")
        options = ScanOptions(workers=workers, chunk_size=chunk_size)
        scanner = Scanner(pool, executor, options, split or SplitPolicy())
        queue = queue_type(pool, name, lease)
        handlers = ScanHandlers(pool, scanner, queue).table()
        daemon = Daemon(
            pool,
            db_url,
            queue,
            handlers,
            DaemonOptions(
                concurrency=2,
                poll_interval_s=poll,
                listen=listen,
                grace_s=1.0,
                progress_interval_s=0.1,
            ),
        )
        stopping = asyncio.Event()
        task = asyncio.create_task(daemon.run(stopping))
        running.append((daemon, stopping, task, executor))
        if listen:
            await until(lambda: daemon.listener is not None and daemon.listener.connected, 10)
        return daemon

    yield start
    for _, stopping, task, executor in running:
        stopping.set()
        await asyncio.wait_for(task, 30)
        executor.close()


async def until(check: Callable[[], Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def until_db(pool: asyncpg.Pool, sql: str, *args: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await pool.fetchval(sql, *args)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout}s: {sql}")
        await asyncio.sleep(0.05)
