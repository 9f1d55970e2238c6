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
from shelfscan.scan.pipeline import ScanSummary

ScanFn = Callable[..., Awaitable[ScanSummary]]


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
    ) -> ScanSummary:
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
        _, summary = await run_scan_job(pool, scanner, lib, settings)
        return summary

    yield run
    for ex in executors:
        ex.close()


async def export(pool: asyncpg.Pool, library: str | None = None) -> list[dict[str, Any]]:
    return [json.loads(doc) async for doc in export_books(pool, library)]
