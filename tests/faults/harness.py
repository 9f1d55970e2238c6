"""Real shelfscan processes for the fault suite, and what every fault test asserts afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg

from tests.faults.processes import marked, new_mark

ENTITY_TABLES = ("persons", "series", "genres", "tags", "publishers")


@dataclass
class Fleet:
    """The shelfscan processes of one test, all carrying one environment marker."""

    url: str
    tmp: Path
    mark: dict[str, str] = field(default_factory=new_mark)
    daemons: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    started: int = 0

    def env(self, name: str, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            **self.mark,
            "DATABASE_URL": self.url,
            "SHELFSCAN_DATA_DIR": str(self.tmp / f"data-{name}"),
            "SHELFSCAN_COVERS_DIR": str(self.tmp / "covers"),
            "SHELFSCAN_LOG_FORMAT": "json",
            "SHELFSCAN_SETTLE_SECONDS": "0",
            "SHELFSCAN_PARSE_EXECUTOR": "thread",
            "SHELFSCAN_LEASE_SECONDS": "3",
            "SHELFSCAN_POLL_INTERVAL": "0.5",
            **extra,
        }

    def serve(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        self.started += 1
        log = open(self.tmp / f"{name}.{self.started}.log", "wb")  # noqa: SIM115 - the process owns it
        proc = subprocess.Popen(
            [sys.executable, "-m", "shelfscan", "serve", *args],
            env=self.env(name, **env),
            stdout=log,
            stderr=log,
        )
        log.close()
        self.daemons[name] = proc
        return proc

    def kill(self, name: str) -> None:
        proc = self.daemons.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

    def cli(self, name: str, *args: str, **env: str) -> CliRun:
        """`shelfscan ARGS` in the background; stdout and stderr to files beside the test."""
        self.started += 1
        run = CliRun(
            self.tmp / f"{name}.{self.started}.out", self.tmp / f"{name}.{self.started}.err"
        )
        with run.out.open("wb") as out, run.err.open("wb") as err:
            run.proc = subprocess.Popen(
                [sys.executable, "-m", "shelfscan", *args],
                env=self.env(name, **env),
                stdout=out,
                stderr=err,
            )
        return run

    def stop_all(self) -> None:
        for name in list(self.daemons):
            if self.daemons[name].poll() is None:
                self.kill(name)
            else:
                self.daemons.pop(name)
        for pid in marked(self.mark):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class CliRun:
    out: Path
    err: Path
    proc: subprocess.Popen[bytes] | None = None

    async def finish(self, timeout: float) -> int:
        assert self.proc is not None
        return await wait_exit(self.proc, timeout, f"shelfscan {self.proc.args!r}")

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")


@contextlib.asynccontextmanager
async def fleet(url: str, tmp: Path) -> AsyncIterator[Fleet]:
    crew = Fleet(url, tmp)
    try:
        yield crew
    finally:
        crew.stop_all()


async def query(url: str, sql: str, *args: Any, timeout: float = 60) -> Any:
    """One value, on a fresh connection, waiting for the server to be back if it is not."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            conn = await asyncpg.connect(url, timeout=5)
            try:
                return await conn.fetchval(sql, *args)
            finally:
                await conn.close()
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def until(check: Callable[[], Awaitable[Any]], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached within {timeout:g} s")
        await asyncio.sleep(0.2)


async def wait_exit(proc: subprocess.Popen[bytes], timeout: float, what: str) -> int:
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"{what}: still running after {timeout:g} s")
        await asyncio.sleep(0.2)
    return proc.returncode


async def enqueue_scan(url: str, library_id: int) -> int:
    job_id: int = await query(
        url,
        "INSERT INTO shelfscan.jobs (kind, payload) VALUES ('scan_library', "
        "jsonb_build_object('library_id', $1::bigint)) RETURNING id",
        library_id,
    )
    return job_id


async def add_library(url: str, name: str, root: Path) -> int:
    conn = await asyncpg.connect(url)
    try:
        library_id: int = await conn.fetchval(
            "INSERT INTO shelfscan.libraries (name) VALUES ($1) RETURNING id", name
        )
        await conn.execute(
            "INSERT INTO shelfscan.library_paths (library_id, path) VALUES ($1, $2)",
            library_id,
            str(root),
        )
    finally:
        await conn.close()
    return library_id


async def jobs_settled(url: str) -> bool:
    """No job of any kind is queued or running."""
    left = await query(
        url, "SELECT count(*) FROM shelfscan.jobs WHERE state IN ('queued', 'running')"
    )
    return bool(left == 0)


def one_line_error(stderr: str) -> str:
    """The CLI's error output must be exactly one line, naming itself."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("shelfscan: ")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-3000:]
    return errors[0]


async def assert_catalogue_sound(url: str, library_id: int, expected_files: int) -> None:
    """Every file once, every book whole, no duplicate names, one-line errors, no job left over."""
    conn = await asyncpg.connect(url)
    try:
        files = await conn.fetchrow(
            "SELECT count(*) AS n, count(DISTINCT (root_id, path)) AS paths, "
            "count(*) FILTER (WHERE status <> 'ok') AS not_ok FROM shelfscan.files "
            "WHERE library_id = $1",
            library_id,
        )
        assert (files["n"], files["paths"], files["not_ok"]) == (expected_files, expected_files, 0)
        books = await conn.fetchrow(
            """
            SELECT count(*) AS n,
                   count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM shelfscan.files f
                                                      WHERE f.book_id = b.id)) AS empty,
                   count(*) FILTER (WHERE (SELECT count(*) FROM shelfscan.book_authors a
                                           WHERE a.book_id = b.id) <> 1) AS bad_authors,
                   count(*) FILTER (WHERE (SELECT count(*) FROM shelfscan.book_genres g
                                           WHERE g.book_id = b.id) <> 1) AS bad_genres
            FROM shelfscan.books b WHERE b.library_id = $1
            """,
            library_id,
        )
        # The generated libraries hold one book a file, one author and one genre a book.
        assert dict(books) == {
            "n": expected_files,
            "empty": 0,
            "bad_authors": 0,
            "bad_genres": 0,
        }
        for table in ENTITY_TABLES:
            duplicates = await conn.fetchval(
                f"SELECT count(*) FROM (SELECT 1 FROM shelfscan.{table} "
                "GROUP BY library_id, lower(name) HAVING count(*) > 1) d"
            )
            assert duplicates == 0, f"duplicate {table}"
        errors = await conn.fetch(
            "SELECT id, last_error FROM shelfscan.jobs WHERE last_error IS NOT NULL"
        )
        for row in errors:
            assert "\n" not in row["last_error"] and len(row["last_error"]) <= 400, row
        assert (
            await conn.fetchval(
                "SELECT count(*) FROM shelfscan.jobs WHERE state IN ('queued', 'running')"
            )
            == 0
        )
    finally:
        await conn.close()


def summary_of(stdout: str) -> dict[str, Any]:
    summary: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    return summary


async def catalogue_report(url: str, library_id: int) -> str:
    """What a failing assertion should show: counts, files not ok, books holding several files."""
    conn = await asyncpg.connect(url)
    try:
        counts = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM shelfscan.files WHERE library_id = $1) AS files, "
            "(SELECT count(*) FROM shelfscan.books WHERE library_id = $1) AS books",
            library_id,
        )
        odd = await conn.fetch(
            "SELECT path, status, scan_error FROM shelfscan.files WHERE library_id = $1 "
            "AND status <> 'ok' LIMIT 5",
            library_id,
        )
        shared = await conn.fetch(
            "SELECT book_id, array_agg(path) AS paths FROM shelfscan.files WHERE library_id = $1 "
            "GROUP BY book_id HAVING count(*) > 1 LIMIT 5",
            library_id,
        )
        jobs = await conn.fetch(
            "SELECT id, kind, state, attempts, last_error, result::text FROM shelfscan.jobs "
            "ORDER BY id DESC LIMIT 8"
        )
    finally:
        await conn.close()
    return (
        f"{dict(counts)}; not ok: {[tuple(r) for r in odd]}; "
        f"books with several files: {[tuple(r) for r in shared]}; jobs: {[tuple(r) for r in jobs]}"
    )
