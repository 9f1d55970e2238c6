"""Runs parse chunks off the event loop, in processes (default) or threads.

Measured here: threads never beat serial parsing (GIL), two processes fed
chunks of files give 1.5-1.9x. Two things can go wrong with a hostile or odd
file, and neither may cost more than that file:
- a parser crashes its process: the pool breaks; it is rebuilt and the chunk is
  parsed again file by file, so only the culprit fails;
- a parser never returns (a file that blocks on read, a stuck network mount):
  a watchdog bounds every hand-off; on expiry the workers are killed, the pool
  is rebuilt, and the chunk is parsed file by file under a per-file bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from shelfscan.config import ExecutorKind
from shelfscan.errors import ShelfscanError
from shelfscan.scan import lifeline
from shelfscan.scan.parse import ParseOutcome, UnitOutcome, UnitTask, parse_units


class ParseTimeout(ShelfscanError):
    """A hand-off to the parse pool did not come back in time."""


class ParseExecutor:
    def __init__(
        self,
        kind: ExecutorKind,
        size: int,
        covers_dir: Path,
        *,
        file_timeout_s: float = 60.0,
        chunk_base_s: float = 60.0,
        inline_max_files: int = 0,
    ) -> None:
        self.kind = kind
        self.size = size
        self._covers_dir = str(covers_dir)
        self._executor: Executor | None = None
        self.restarts = 0
        self.file_timeout_s = file_timeout_s
        self.chunk_base_s = chunk_base_s
        # A scan of at most this many files is parsed in this process while no pool runs: a
        # CLI scan of a few dozen files spends more starting the pool (~0.15-0.3 s) than
        # parsing them. The size of the whole scan decides, not of a chunk: a big scan in
        # small chunks still gets the pool's processes and its watchdog.
        self.inline_max_files = inline_max_files
        self._scan_files = 0

    def _make(self) -> Executor:
        if self.kind == "thread":
            return ThreadPoolExecutor(self.size, thread_name_prefix="shelfscan-parse")
        # forkserver: forking a process that runs an event loop and threads is unsafe.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["shelfscan.scan.parse", "shelfscan.scan.lifeline"])
        # Each worker exits when this process does, even after a SIGKILL (see lifeline).
        return ProcessPoolExecutor(
            self.size, mp_context=ctx, initializer=lifeline.die_with, initargs=(os.getpid(),)
        )

    def start(self) -> None:
        if self._executor is None:
            self._executor = self._make()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    def begin_scan(self, files: int) -> None:
        """The engine says how many files the scan ahead will read (chooses in-process parsing)."""
        self._scan_files = files

    def chunk_timeout_s(self, units: list[UnitTask]) -> float:
        """Generous: a healthy chunk takes well under a second a file; this only catches hangs."""
        files = sum(len(u.files) + len(u.sidecars) for u in units)
        return self.chunk_base_s + self.file_timeout_s * files / 4

    async def parse(self, units: list[UnitTask]) -> list[UnitOutcome]:
        if self._executor is None and 0 < self._scan_files <= self.inline_max_files:
            with contextlib.suppress(TimeoutError):  # stalled: the pool's watchdog path below
                return await asyncio.wait_for(self._inline(units), self.chunk_timeout_s(units))
        try:
            return await self._run(units, self.chunk_timeout_s(units))
        except (BrokenProcessPool, ParseTimeout):
            self._restart()
        # A file broke or stalled a worker: parse file by file so only that file fails.
        outcomes = []
        for unit in units:
            files: list[ParseOutcome] = []
            for task in unit.files:
                try:
                    (single,) = await self._run(
                        [UnitTask(unit.index, (task,))], self.file_timeout_s
                    )
                    files.extend(single.files)
                except BrokenProcessPool:
                    self._restart()
                    files.append(ParseOutcome(task.index, error="parser crashed on this file"))
                except ParseTimeout:
                    self._restart()
                    files.append(
                        ParseOutcome(
                            task.index,
                            error=f"parser did not finish within {self.file_timeout_s:g} s",
                        )
                    )
            sidecars = None
            if unit.sidecars:
                try:
                    (with_sidecars,) = await self._run(
                        [UnitTask(unit.index, (), unit.sidecars)], self.file_timeout_s
                    )
                    sidecars = with_sidecars.sidecars
                except (BrokenProcessPool, ParseTimeout):
                    self._restart()
            outcomes.append(UnitOutcome(unit.index, tuple(files), sidecars))
        return outcomes

    async def _inline(self, units: list[UnitTask]) -> list[UnitOutcome]:
        """A daemon thread, not the loop's executor: a file that never returns must not
        keep the process from exiting."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[UnitOutcome]] = loop.create_future()

        def settle(result: list[UnitOutcome] | None, error: BaseException | None) -> None:
            if future.done():
                return
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(result or [])

        def work() -> None:
            try:
                outcome = parse_units(units, self._covers_dir)
            except BaseException as exc:  # reported to the awaiting coroutine
                loop.call_soon_threadsafe(settle, None, exc)
            else:
                loop.call_soon_threadsafe(settle, outcome, None)

        threading.Thread(target=work, name="shelfscan-parse-inline", daemon=True).start()
        return await future

    async def _run(self, units: list[UnitTask], timeout_s: float) -> list[UnitOutcome]:
        self.start()
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._executor, parse_units, units, self._covers_dir)
        try:
            return await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            self._kill_workers()
            raise ParseTimeout from None

    def _kill_workers(self) -> None:
        """Only a process can be stopped from outside; a stuck thread is abandoned."""
        if isinstance(self._executor, ProcessPoolExecutor):
            # The pool offers no public way to stop a running task: kill its workers.
            for process in list((getattr(self._executor, "_processes", None) or {}).values()):
                process.kill()

    def _restart(self) -> None:
        self.restarts += 1
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._make()
