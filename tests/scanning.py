"""Helpers to run real scans from tests."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shelfscan.app import make_executor, run_scan_job, scanner_for
from shelfscan.catalogue.export import export_books
from shelfscan.catalogue.libraries import ensure_library
from shelfscan.config import Settings
from shelfscan.scan.contract import CatalogueChanges, ScanRequest, ScanResult
from shelfscan.scan.progress import Progress

ScanFn = Callable[..., Awaitable[ScanResult]]


class ListReporter:
    """A `ScanReporter` that keeps everything in lists, for tests that drive `Scanner.run`.

    `on_event` is called with each event name: a test can act between two phases.
    """

    def __init__(self, on_event: Callable[[str], None] | None = None) -> None:
        self.progress = Progress()
        self.events: list[tuple[str, str, str | None, dict[str, Any]]] = []
        self.changes_seen: list[CatalogueChanges] = []
        self.stop = False
        self._on_event = on_event

    def stop_requested(self) -> bool:
        return self.stop

    def _add(self, level: str, event: str, path: str | None, fields: dict[str, Any]) -> None:
        self.events.append((level, event, path, fields))
        if self._on_event is not None:
            self._on_event(event)

    def info(self, event: str, path: str | None = None, **fields: Any) -> None:
        self._add("info", event, path, fields)

    def warning(self, event: str, path: str | None = None, **fields: Any) -> None:
        self._add("warning", event, path, fields)

    def error(self, event: str, path: str | None = None, **fields: Any) -> None:
        self._add("error", event, path, fields)

    async def changes(self, changes: CatalogueChanges) -> None:
        self.changes_seen.append(changes)

    def named(self, event: str) -> list[dict[str, Any]]:
        """The fields (and path) of every `event` reported."""
        return [
            {**fields, **({"path": path} if path else {})}
            for _, name, path, fields in self.events
            if name == event
        ]


def settings_for(tmp_path: Path, **overrides: Any) -> Settings:
    base = Settings.from_env({"SHELFSCAN_DATA_DIR": str(tmp_path / "data")})
    return dataclasses.replace(base, **overrides)


@pytest.fixture
async def scan(pool: asyncpg.Pool, tmp_path: Path) -> AsyncIterator[ScanFn]:
    """`await scan(root, library="lib", executor="thread")` runs a whole scan job."""
    executors = []

    async def run(
        root: Path,
        library: str = "lib",
        executor: str = "thread",
        workers: int = 4,
        chunk_size: int = 7,
        settle_s: float = 0.0,
    ) -> ScanResult:
        # Tests write files and scan at once: no settle time unless a test asks for one.
        settings = settings_for(
            tmp_path,
            parse_executor=executor,
            parse_processes=2,
            workers=workers,
            chunk_size=chunk_size,
            settle_s=settle_s,
        )
        lib = await ensure_library(pool, library, [root])
        ex = make_executor(settings)
        executors.append(ex)
        scanner = scanner_for(pool, settings, ex, workers)
        _, result = await run_scan_job(pool, scanner, ScanRequest.whole(lib), settings)
        return result

    yield run
    for ex in executors:
        ex.close()


async def export(pool: asyncpg.Pool, library: str | None = None) -> list[dict[str, Any]]:
    return [json.loads(doc) async for doc in export_books(pool, library)]
