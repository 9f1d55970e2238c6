"""Runs parse chunks off the event loop, in processes (default) or threads.

Measured here: threads never beat serial parsing (GIL), two processes fed ~50
files per hand-off give 1.5-1.9x. A worker process that dies (a parser crash on
a hostile file) breaks the pool; we rebuild it and isolate the file.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from shelfscan.config import ExecutorKind
from shelfscan.scan.parse import ParseOutcome, UnitOutcome, UnitTask, parse_units


class ParseExecutor:
    def __init__(self, kind: ExecutorKind, size: int, covers_dir: Path) -> None:
        self.kind = kind
        self.size = size
        self._covers_dir = str(covers_dir)
        self._executor: Executor | None = None
        self.restarts = 0

    def _make(self) -> Executor:
        if self.kind == "thread":
            return ThreadPoolExecutor(self.size, thread_name_prefix="shelfscan-parse")
        # forkserver: forking a process that runs an event loop and threads is unsafe.
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["shelfscan.scan.parse"])
        return ProcessPoolExecutor(self.size, mp_context=ctx)

    def start(self) -> None:
        if self._executor is None:
            self._executor = self._make()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None

    async def parse(self, units: list[UnitTask]) -> list[UnitOutcome]:
        try:
            return await self._run(units)
        except BrokenProcessPool:
            self._restart()
        # A file broke a worker: parse file by file so only that file fails.
        outcomes = []
        for unit in units:
            files: list[ParseOutcome] = []
            for task in unit.files:
                try:
                    (single,) = await self._run([UnitTask(unit.index, (task,))])
                    files.extend(single.files)
                except BrokenProcessPool:
                    self._restart()
                    files.append(ParseOutcome(task.index, error="parser crashed on this file"))
            sidecars = None
            if unit.sidecars:
                try:
                    (with_sidecars,) = await self._run([UnitTask(unit.index, (), unit.sidecars)])
                    sidecars = with_sidecars.sidecars
                except BrokenProcessPool:
                    self._restart()
            outcomes.append(UnitOutcome(unit.index, tuple(files), sidecars))
        return outcomes

    async def _run(self, units: list[UnitTask]) -> list[UnitOutcome]:
        self.start()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, parse_units, units, self._covers_dir)

    def _restart(self) -> None:
        self.restarts += 1
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = self._make()
