"""One engine, three ways in: the CLI, the daemon and watch mode reach `Scanner.run` alike.

The same library is scanned by each, into a database of its own, and the three
catalogues must be the same; every scan says what it did (start and finish events
with the cache's and the writer's figures) in job_logs, the JSON log and `--json`.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from shelfscan.catalogue.libraries import ensure_library
from shelfscan.db.connect import open_pool
from shelfscan.jobs.handlers import ScanHandlers
from shelfscan.jobs.queue import JobQueue
from shelfscan.jobs.worker import Daemon, DaemonOptions
from shelfscan.scan.contract import (
    ScanOptions,
    ScanRequest,
    ScanResult,
    ScanStats,
    SplitPolicy,
)
from shelfscan.scan.engine import Scanner, split_units
from shelfscan.scan.executor import ParseExecutor
from shelfscan.watch import LibraryWatcher, WatchOptions
from tests.db_fixtures import NewDatabase
from tests.libraries import small_library
from tests.scanning import ListReporter, export

ENTITY_KINDS = {"persons", "genres", "tags", "series", "publishers", "subjects"}


def _catalogue(books: list[dict[str, Any]]) -> list[Any]:
    """The export without what differs between the runs (ids, timestamps, the root folder)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: clean(v)
                for k, v in value.items()
                if k not in ("id", "library", "root") and not k.endswith(("_id", "_at"))
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return sorted((clean(b) for b in books), key=lambda b: json.dumps(b, sort_keys=True))


def _cli_scan(db_url: str, root: Path, tmp_path: Path, *extra: str) -> dict[str, Any]:
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SHELFSCAN_DATA_DIR": str(tmp_path / "cli-data"),
        "SHELFSCAN_PARSE_EXECUTOR": "thread",
        "SHELFSCAN_LOG_FORMAT": "json",
        "SHELFSCAN_SETTLE_SECONDS": "0",  # the files were written a moment ago
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "shelfscan",
            "scan",
            str(root),
            "--library",
            "lib",
            "--json",
            *extra,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    events = [json.loads(line) for line in run.stderr.splitlines() if line.startswith("{")]
    finished = [e for e in events if e["event"] == "scan_finished"]
    assert finished and "stats" in finished[0], "the JSON log carries the finish event"
    result: dict[str, Any] = json.loads(run.stdout)
    return result


async def _until(check: Callable[[], Any], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "the scan did not finish in time"
        await asyncio.sleep(0.1)


async def _idle(pool: asyncpg.Pool) -> bool:
    return not await pool.fetchval(
        "SELECT count(*) FROM shelfscan.jobs WHERE state IN ('queued', 'running')"
    )


class _Running:
    """A daemon (and optionally a watcher) on one database, as `shelfscan serve` runs them."""

    def __init__(self, pool: asyncpg.Pool, url: str, covers: Path, split: SplitPolicy) -> None:
        self.executor = ParseExecutor("thread", 2, covers)
        scanner = Scanner(pool, self.executor, ScanOptions(workers=2), split)
        self.queue = JobQueue(pool, "engine-test", 10)
        self.daemon = Daemon(
            pool,
            url,
            self.queue,
            ScanHandlers(pool, scanner, self.queue).table(),
            DaemonOptions(poll_interval_s=0.2, progress_interval_s=0.1),
        )
        self.pool = pool
        self.stopping = asyncio.Event()
        self.tasks = [asyncio.create_task(self.daemon.run(self.stopping))]

    def watch(self) -> LibraryWatcher:
        watcher = LibraryWatcher(
            self.pool,
            self.queue,
            WatchOptions(mode="events", debounce_ms=200, full_scan_interval_s=0),
        )
        self.tasks.append(asyncio.create_task(watcher.run(self.stopping)))
        return watcher

    async def stop(self) -> None:
        self.stopping.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks, return_exceptions=True), 30)
        self.executor.close()


async def test_cli_daemon_and_watch_mode_build_the_same_catalogue(
    new_database: NewDatabase, tmp_path: Path
) -> None:
    staging = tmp_path / "staging"
    small_library(staging, 36, folders=6)
    library = tmp_path / "lib"
    shutil.copytree(staging, library)

    # 1. The CLI, in a subprocess, as a user runs it.
    cli_url = await new_database()
    cli = _cli_scan(cli_url, library, tmp_path)
    assert cli["books_added"] == 36 and cli["files_failed"] == 0

    # 2. The daemon, given a job by a plain INSERT; split into parts (another code path of
    #    the same engine) because the policy says so.
    daemon_url = await new_database()
    async with open_pool(daemon_url, max_size=10) as pool:
        await ensure_library(pool, "lib", [library])
        running = _Running(pool, daemon_url, tmp_path / "covers-d", SplitPolicy(10, 8))
        try:
            await pool.execute(
                "INSERT INTO shelfscan.jobs (kind, payload) SELECT 'scan_library', "
                "jsonb_build_object('library_id', id) FROM shelfscan.libraries"
            )
            await _until(lambda: _idle(pool))
        finally:
            await running.stop()
        parent = await pool.fetchrow(
            "SELECT state, result FROM shelfscan.jobs WHERE kind = 'scan_library'"
        )
        parts = await pool.fetchval(
            "SELECT count(*) FROM shelfscan.jobs WHERE parent_id IS NOT NULL"
        )
        daemon_books = await export(pool)
    assert parent["state"] == "succeeded" and parts >= 4
    daemon = parent["result"]

    # 3. Watch mode: the folders arrive in an empty, watched root (renamed in whole, as a
    #    finished copy lands).
    watch_url = await new_database()
    watched = tmp_path / "watched"
    watched.mkdir()
    async with open_pool(watch_url, max_size=10) as pool:
        await ensure_library(pool, "lib", [watched])
        running = _Running(pool, watch_url, tmp_path / "covers-w", SplitPolicy())
        try:
            watcher = running.watch()
            await _until(lambda: _watching(watcher))
            await asyncio.sleep(0.3)
            for folder in sorted(staging.iterdir()):
                folder.rename(watched / folder.name)

            async def all_there() -> bool:
                count = await pool.fetchval("SELECT count(*) FROM shelfscan.books")
                return bool(count == 36 and await _idle(pool))

            await _until(all_there)
        finally:
            await running.stop()
        watch_results = [
            ScanResult.from_dict(r["result"])
            for r in await pool.fetch(
                "SELECT result FROM shelfscan.jobs WHERE state = 'succeeded' ORDER BY id"
            )
        ]
        watch_books = await export(pool)

    async with open_pool(cli_url, max_size=2) as pool:
        cli_books = await export(pool)
    # The same catalogue, whichever way in (paths are relative to the root).
    assert _catalogue(cli_books) == _catalogue(daemon_books) == _catalogue(watch_books)
    assert len(cli_books) == 36
    # The same counts.
    assert daemon["books_added"] == cli["books_added"] == sum(r.books_added for r in watch_results)
    assert daemon["files_seen"] == cli["files_seen"] == 36
    assert daemon["stats"]["writer"]["batches"] >= 4  # the parts' figures add up in the parent


async def _watching(watcher: LibraryWatcher) -> bool:
    return bool(watcher.watching)


async def test_a_scan_says_what_it_did_in_job_logs_and_json(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    lib = tmp_path / "lib"
    small_library(lib, 25, authors=4, folders=3)
    result = _cli_scan(db_url, lib, tmp_path, "--workers", "2")
    stats = result["stats"]
    assert set(stats["cache"]) == ENTITY_KINDS
    persons = stats["cache"]["persons"]
    # 25 books by 4 writers, in chunks: each chunk asks for its writers once; each writer
    # is looked up in the database once, every later ask is a hit.
    assert persons["entries"] == 4
    assert persons["lookups"] > persons["entries"]
    assert persons["hits"] == persons["lookups"] - persons["entries"]
    assert 1 <= persons["round_trips"] <= stats["writer"]["batches"]
    assert stats["cache"]["genres"]["entries"] == 5
    assert stats["cache"]["subjects"]["entries"] == 0  # comic arcs/characters: none in EPUBs
    assert stats["writer"]["batches"] >= 1 and stats["writer"]["fallbacks"] == 0

    logs = {
        r["event"]: r["fields"]
        for r in await pool.fetch("SELECT event, fields FROM shelfscan.job_logs ORDER BY id")
    }
    started = logs["scan_started"]
    assert started["workers"] == 2 and started["files_to_read"] == 25
    assert started["parse_kind"] in ("process", "thread") and started["parse_processes"] >= 1
    assert 1 <= started["chunk_size"] <= 200
    assert logs["scan_finished"]["stats"] == stats
    assert logs["scan_finished"]["books_added"] == result["books_added"] == 25


async def test_planning_writes_nothing(pool: asyncpg.Pool, tmp_path: Path) -> None:
    """`plan` is pure: a moved and a restored file are only written when the scan runs."""
    lib = tmp_path / "lib"
    small_library(lib, 4, folders=2)
    library = await ensure_library(pool, "lib", [lib])
    executor = ParseExecutor("thread", 1, tmp_path / "covers")
    try:
        scanner = Scanner(pool, executor, ScanOptions(workers=1))
        await scanner.run(ScanRequest.whole(library), ListReporter())
        (lib / "shelf00").rename(lib / "renamed")
        # As a drive that was away for a scan leaves them: files and books missing.
        await pool.execute(
            "UPDATE shelfscan.files SET status = 'missing' WHERE path LIKE 'shelf01/%'"
        )
        await pool.execute(
            "UPDATE shelfscan.books SET status = 'missing' WHERE id IN "
            "(SELECT book_id FROM shelfscan.files WHERE path LIKE 'shelf01/%')"
        )
        before = await pool.fetch(
            "SELECT id, path, status, updated_at FROM shelfscan.files ORDER BY id"
        )
        survey = await scanner.plan(ScanRequest.whole(library), ListReporter())
        assert len(survey.diff.moved) == 2 and len(survey.diff.restored) == 2
        after = await pool.fetch(
            "SELECT id, path, status, updated_at FROM shelfscan.files ORDER BY id"
        )
        assert before == after
        reporter = ListReporter()
        result = await scanner.run(ScanRequest.whole(library), reporter)
    finally:
        executor.close()
    assert result.books_restored == 2 and result.books_added == 0
    paths = {r["path"] for r in await pool.fetch("SELECT path FROM shelfscan.files")}
    assert {p.split("/")[0] for p in paths} == {"renamed", "shelf01"}
    assert [f["path"] for f in reporter.named("file_moved")] and reporter.changes_seen


def test_split_units_keeps_units_whole_per_root_in_path_order() -> None:
    from shelfscan.scan.grouping import Unit

    def unit(root: int, folder: str, files: int) -> Unit:
        return Unit(root, folder, [(object(), None)] * files)  # type: ignore[list-item]

    units = [unit(2, "b", 3), unit(1, "c", 5), unit(1, "a", 4), unit(1, "d", 1)]
    parts = split_units(units, 6)
    assert [[(u.root_id, u.folder) for u in p] for p in parts] == [
        [(1, "a")],
        [(1, "c"), (1, "d")],
        [(2, "b")],
    ]


def test_a_result_survives_its_json_round_trip() -> None:
    from shelfscan.catalogue.entities import CacheFigures

    stats = ScanStats({"persons": CacheFigures(1, 5, 4, 1)}, writer_batches=2, parse_restarts=1)
    result = ScanResult(books_added=3, files_seen=9, files_read=4, elapsed_s=0.5, stats=stats)
    back = ScanResult.from_dict(json.loads(json.dumps(result.as_dict())))
    assert back == result
    assert (stats + stats).cache["persons"] == CacheFigures(2, 10, 8, 2)


@pytest.mark.parametrize("scope", ["folders", "files"])
async def test_a_root_that_is_not_the_librarys_stops_a_targeted_scan(
    pool: asyncpg.Pool, tmp_path: Path, scope: str
) -> None:
    from shelfscan.scan.contract import RootUnavailable

    lib = tmp_path / "lib"
    lib.mkdir()
    library = await ensure_library(pool, "lib", [lib])
    executor = ParseExecutor("thread", 1, tmp_path / "covers")
    request = (
        ScanRequest.folders(library, 999, [""])
        if scope == "folders"
        else ScanRequest.files(library, 999, ["a.epub"])
    )
    try:
        with pytest.raises(RootUnavailable, match="not a folder of library lib"):
            await Scanner(pool, executor).run(request, ListReporter())
    finally:
        executor.close()


def test_every_shelfscan_exception_derives_from_the_root_and_is_documented() -> None:
    import importlib
    import inspect
    import pkgutil

    import shelfscan
    from shelfscan.errors import ShelfscanError

    doc = (Path(__file__).resolve().parents[1] / "docs/architecture.md").read_text("utf-8")
    found = []
    for info in pkgutil.walk_packages(shelfscan.__path__, "shelfscan."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == info.name:
                found.append(cls)
                assert issubclass(cls, ShelfscanError), f"{info.name}.{name}"
                if cls is not ShelfscanError:
                    assert f"── {name}" in doc, f"{name} missing from the hierarchy"
    assert len(found) >= 14


def test_the_scan_engine_imports_nothing_of_the_job_layer() -> None:
    """scan/ is a library the job layer drives, through scan/contract.py's protocols."""
    import ast

    scan_dir = Path(__file__).resolve().parents[1] / "src/shelfscan/scan"
    for path in sorted(scan_dir.glob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.startswith(("shelfscan.jobs", "shelfscan.app")), (path.name, name)
