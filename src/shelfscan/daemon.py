"""`shelfscan serve`: wire the daemon together and run it until a signal."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal

from shelfscan.app import make_executor, owner_id, scanner_for
from shelfscan.config import Settings
from shelfscan.covers import compaction_loop
from shelfscan.db.connect import open_pool
from shelfscan.db.migrate import migrate
from shelfscan.health import HealthServer, parse_listen
from shelfscan.jobs.handlers import ScanHandlers
from shelfscan.jobs.queue import JobQueue
from shelfscan.jobs.worker import Daemon, DaemonOptions
from shelfscan.watch import LibraryWatcher, WatchOptions


async def _finish_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task


async def serve(
    url: str,
    settings: Settings,
    http: str | None,
    concurrency: int | None,
    poll_only: bool,
    watch: bool = False,
) -> int:
    listen_on = parse_listen(http) if http else None
    settings = dataclasses.replace(
        settings,
        concurrency=concurrency or settings.concurrency,
        listen=settings.listen and not poll_only,
    )
    await migrate(url)
    stopping, hard_stop = asyncio.Event(), asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        # First signal: stop claiming and drain; second: stop now.
        (hard_stop if stopping.is_set() else stopping).set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    pool_size = settings.concurrency * (settings.workers + 2) + 4
    async with open_pool(url, max_size=pool_size, application_name="shelfscan-daemon") as pool:
        executor = make_executor(settings)
        try:
            scanner = scanner_for(pool, settings, executor)
            queue = JobQueue(pool, owner_id(), settings.lease_s)
            handlers = ScanHandlers(pool, scanner, queue).table()
            daemon = Daemon(
                pool,
                url,
                queue,
                handlers,
                DaemonOptions(
                    concurrency=settings.concurrency,
                    poll_interval_s=settings.poll_interval_s,
                    listen=settings.listen,
                    grace_s=settings.shutdown_grace_s,
                    retention_s=settings.job_retention_days * 86400,
                    progress_interval_s=settings.progress_interval_s,
                    purge_after_s=settings.purge_after_days * 86400,
                ),
            )
            async with contextlib.AsyncExitStack() as stack:
                if listen_on is not None:
                    await stack.enter_async_context(HealthServer(pool, daemon).serving(*listen_on))
                if watch:
                    watcher = LibraryWatcher(
                        pool,
                        queue,
                        WatchOptions(
                            mode=settings.watch_mode,  # type: ignore[arg-type]
                            debounce_ms=settings.watch_debounce_ms,
                            poll_interval_s=settings.watch_poll_interval_s,
                            full_scan_interval_s=settings.full_scan_hours * 3600,
                            ignore=scanner.options.ignore,
                        ),
                    )
                    watch_task = asyncio.create_task(watcher.run(stopping), name="watcher")
                    stack.push_async_callback(_finish_task, watch_task)
                if settings.covers_compact_hours > 0:
                    compactor = asyncio.create_task(
                        compaction_loop(
                            pool,
                            settings.covers_dir,
                            settings.covers_compact_hours * 3600,
                            stopping,
                        ),
                        name="covers-compaction",
                    )
                    stack.push_async_callback(_finish_task, compactor)
                await daemon.run(stopping, hard_stop)
        finally:
            executor.close()
    return 0
