"""The job side of the command line, as a user runs it: killed scans, bad names, lost databases."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub
from tests.libraries import small_library

LATIN1 = os.fsdecode(b"latin1-\xe9t\xe9")  # a name from an old Samba share: not UTF-8


def _env(db_url: str, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": db_url,
        "SHELFSCAN_DATA_DIR": str(tmp_path / "data"),
        "SHELFSCAN_SETTLE_SECONDS": "0",
        "SHELFSCAN_LOG_FORMAT": "json",
        **extra,
    }


def _run(
    args: list[str], db_url: str, tmp_path: Path, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shelfscan", *args],
        env=_env(db_url, tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=300,
    )


def _plain_lines(stderr: str) -> list[str]:
    """stderr without the JSON log lines: what a person reads."""
    return [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]


async def _wait_running(pool: asyncpg.Pool, proc: subprocess.Popen[str]) -> int:
    while True:
        job_id = await pool.fetchval(
            "SELECT id FROM shelfscan.jobs WHERE state = 'running' AND kind = 'scan_library'"
        )
        if job_id is not None:
            return int(job_id)
        assert proc.poll() is None, "the scan ended before it could be interrupted"
        await asyncio.sleep(0.01)


def _start_scan(folder: Path, db_url: str, tmp_path: Path, **extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "shelfscan", "scan", str(folder), "--library", "big"],
        env=_env(db_url, tmp_path, SHELFSCAN_WORKERS="1", SHELFSCAN_CHUNK_SIZE="5", **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so the kill reaches its parse workers too
    )


async def test_a_sigkilled_cli_scan_can_be_cancelled_and_rerun(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    small_library(tmp_path / "big", 400)
    proc = _start_scan(tmp_path / "big", db_url, tmp_path, SHELFSCAN_LEASE_SECONDS="2")
    killed = await _wait_running(pool, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    row = await pool.fetchrow(
        "SELECT state, lease_expires_at FROM shelfscan.jobs WHERE id = $1", killed
    )
    assert row["state"] == "running" and row["lease_expires_at"] is not None  # it had a lease

    cancel = await asyncio.to_thread(_run, ["jobs", "cancel", str(killed)], db_url, tmp_path)
    assert cancel.returncode == 0, cancel.stderr
    # Once the dead CLI's lease has run out, a rerun takes over at once: no SQL by hand.
    await _until(pool, "SELECT lease_expires_at < now() FROM shelfscan.jobs WHERE id = $1", killed)
    rerun = await asyncio.to_thread(
        _run, ["scan", str(tmp_path / "big"), "--library", "big", "--json"], db_url, tmp_path
    )
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["files_failed"] == 0
    old = await pool.fetchrow("SELECT state, last_error FROM shelfscan.jobs WHERE id = $1", killed)
    assert old["state"] == "cancelled"
    assert "lease expired" in old["last_error"]
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files") == 400


async def test_a_rerun_right_after_a_kill_says_when_it_can_take_over(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    small_library(tmp_path / "big", 400)
    proc = _start_scan(tmp_path / "big", db_url, tmp_path, SHELFSCAN_LEASE_SECONDS="600")
    killed = await _wait_running(pool, proc)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.communicate()
    refused = await asyncio.to_thread(
        _run, ["scan", str(tmp_path / "big"), "--library", "big"], db_url, tmp_path
    )
    assert refused.returncode == 1
    (line,) = _plain_lines(refused.stderr)
    assert line.startswith(
        f"shelfscan: a scan of this library is already running (job {killed} by "
    )
    assert "lease runs out in" in line
    # `jobs retry` takes the job from its dead owner; a daemon (or the CLI) can run it now.
    retried = await asyncio.to_thread(_run, ["jobs", "retry", str(killed)], db_url, tmp_path)
    assert retried.returncode == 0 and "taken from its owner" in retried.stdout
    assert await pool.fetchval("SELECT state FROM shelfscan.jobs WHERE id = $1", killed) == "queued"


async def _until(pool: asyncpg.Pool, sql: str, *args: object) -> None:
    deadline = time.monotonic() + 60
    while not await pool.fetchval(sql, *args):
        assert time.monotonic() < deadline, sql
        await asyncio.sleep(0.1)


def _latin1_books(folder: Path) -> None:
    folder.mkdir(parents=True)
    write_epub(folder / f"{LATIN1}.epub", EpubSpec(title="Été", creators=(CreatorSpec("Zoé"),)))
    (folder / f"{LATIN1}-broken.epub").write_bytes(b"not a zip")


async def test_a_latin1_file_name_is_scanned_and_logged_by_the_cli_and_the_daemon(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path, start_daemon: object
) -> None:
    from shelfscan.catalogue.libraries import ensure_library
    from shelfscan.jobs.contract import ScanLibrary
    from tests.daemons import StartFn, until_db

    _latin1_books(tmp_path / "cli")
    scanned = await asyncio.to_thread(
        _run, ["scan", str(tmp_path / "cli"), "--json"], db_url, tmp_path
    )
    assert scanned.returncode == 0, scanned.stderr
    summary = json.loads(scanned.stdout)
    assert summary["books_added"] == 1, summary

    _latin1_books(tmp_path / "daemon")
    library = await ensure_library(pool, "daemon", [tmp_path / "daemon"])
    assert callable(start_daemon)
    start: StartFn = start_daemon
    daemon = await start("d1", listen=False, poll=0.2)
    job_id = await daemon.queue.enqueue(ScanLibrary(library.id))
    await until_db(pool, "SELECT state = 'succeeded' FROM shelfscan.jobs WHERE id = $1", job_id)

    logged = await pool.fetch(
        "SELECT l.path FROM shelfscan.job_logs l JOIN shelfscan.jobs j ON j.id = l.job_id "
        "WHERE l.event = 'file_unreadable' ORDER BY j.id"
    )
    assert [r["path"] for r in logged] == ["latin1-\\xe9t\\xe9-broken.epub"] * 2


async def test_library_remove_with_books_and_jobs(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    small_library(tmp_path / "books", 20)
    assert (
        await asyncio.to_thread(_run, ["scan", str(tmp_path / "books")], db_url, tmp_path)
    ).returncode == 0
    library_id = await pool.fetchval("SELECT id FROM shelfscan.libraries WHERE name = 'books'")
    queued = await pool.fetchval(
        "INSERT INTO shelfscan.jobs (kind, payload) VALUES ('scan_library', $1) RETURNING id",
        {"library_id": library_id},
    )
    part = await pool.fetchval(
        "INSERT INTO shelfscan.jobs (kind, payload, parent_id) VALUES ('scan_path', $1, $2) RETURNING id",
        {"library_id": library_id, "root_id": 1, "files": ["x.epub"]},
        queued,
    )
    removed = await asyncio.to_thread(_run, ["library", "remove", "books"], db_url, tmp_path)
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == "library books removed\n"
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.books") == 0
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files") == 0
    states = await pool.fetch(
        "SELECT id, state FROM shelfscan.jobs WHERE id = ANY($1::bigint[]) ORDER BY id",
        [queued, part],
    )
    assert [r["state"] for r in states] == ["cancelled", "cancelled"]


async def test_losing_the_database_mid_scan_is_one_line_not_a_traceback(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    small_library(tmp_path / "big", 400)
    proc = _start_scan(tmp_path / "big", db_url, tmp_path)
    job_id = await _wait_running(pool, proc)
    # Every connection the CLI holds is named for what it is, so the storm spares ours.
    names: set[str] = set()
    while proc.poll() is None:
        rows = await pool.fetch(
            "SELECT application_name, pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE application_name LIKE 'shelfscan-cli%' AND pid <> pg_backend_pid()"
        )
        names |= {r["application_name"] for r in rows}
        await asyncio.sleep(0.05)
    _, stderr = proc.communicate()
    assert names == {"shelfscan-cli/scan"}
    assert "Traceback" not in stderr
    if proc.returncode != 0:
        (line,) = _plain_lines(stderr)
        assert line.startswith("shelfscan: "), line
        assert "TaskGroup" not in line
    last_error = await pool.fetchval("SELECT last_error FROM shelfscan.jobs WHERE id = $1", job_id)
    assert last_error is None or ("TaskGroup" not in last_error and "\n" not in last_error)


async def test_jobs_cancel_stops_a_running_cli_scan(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    small_library(tmp_path / "big", 400)
    proc = _start_scan(tmp_path / "big", db_url, tmp_path, SHELFSCAN_LEASE_SECONDS="1")
    job_id = await _wait_running(pool, proc)
    cancel = await asyncio.to_thread(_run, ["jobs", "cancel", str(job_id)], db_url, tmp_path)
    assert cancel.returncode == 0, cancel.stderr
    _, stderr = await asyncio.to_thread(proc.communicate)
    state = await pool.fetchval("SELECT state FROM shelfscan.jobs WHERE id = $1", job_id)
    if proc.returncode == 0:
        # It had finished before its heartbeat saw the request: nothing left to stop.
        assert state == "succeeded"
        return
    assert state == "cancelled"
    (line,) = _plain_lines(stderr)
    assert line.startswith(f"shelfscan: job {job_id} cancelled: stopped after "), line
