"""The daemon against a real PostgreSQL: in-process for wake-ups and cancels, subprocesses for signals."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import pytest

from shelfscan.catalogue.libraries import ensure_library
from shelfscan.scan.contract import SplitPolicy
from tests.daemons import StartFn, until, until_db
from tests.libraries import small_library


async def _insert_scan(pool: asyncpg.Pool, library_id: int) -> int:
    """Enqueue the way a book server does: a plain INSERT."""
    job_id: int = await pool.fetchval(
        "INSERT INTO shelfscan.jobs (kind, payload) VALUES ('scan_library', jsonb_build_object('library_id', $1::bigint)) RETURNING id",
        library_id,
    )
    return job_id


async def test_a_job_inserted_with_sql_is_woken_by_notify_and_runs(
    pool: asyncpg.Pool, start_daemon: StartFn, tmp_path: Path
) -> None:
    small_library(tmp_path / "lib", 30)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    await start_daemon(poll=60.0)  # polling alone would take a minute
    started = time.monotonic()
    job_id = await _insert_scan(pool, library.id)
    await until_db(
        pool, "SELECT state = 'succeeded' FROM shelfscan.jobs WHERE id = $1", job_id, timeout=20
    )
    assert time.monotonic() - started < 20
    result = await pool.fetchval("SELECT result FROM shelfscan.jobs WHERE id = $1", job_id)
    assert result["books_added"] == 30
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.books") == 30


async def test_polling_only_mode_picks_jobs_up(
    pool: asyncpg.Pool, start_daemon: StartFn, tmp_path: Path
) -> None:
    small_library(tmp_path / "lib", 5)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    daemon = await start_daemon(listen=False, poll=0.3)
    assert daemon.listener is None
    job_id = await _insert_scan(pool, library.id)
    await until_db(
        pool, "SELECT state = 'succeeded' FROM shelfscan.jobs WHERE id = $1", job_id, timeout=20
    )


async def test_listener_killed_by_the_server_reconnects_and_wakes_again(
    pool: asyncpg.Pool, start_daemon: StartFn, tmp_path: Path
) -> None:
    small_library(tmp_path / "lib", 3)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    daemon = await start_daemon(poll=120.0)
    assert daemon.listener is not None
    old_pid = daemon.listener.backend_pid
    assert await pool.fetchval("SELECT pg_terminate_backend($1)", old_pid)
    await until(
        lambda: (
            daemon.listener is not None
            and daemon.listener.connects >= 2
            and daemon.listener.connected
        ),
        20,
    )
    assert daemon.listener.backend_pid != old_pid
    job_id = await _insert_scan(pool, library.id)
    await until_db(
        pool, "SELECT state = 'succeeded' FROM shelfscan.jobs WHERE id = $1", job_id, timeout=15
    )


@pytest.mark.parametrize("listen", [True, False], ids=["via-notify", "via-heartbeat"])
async def test_cancelling_a_running_scan_keeps_what_it_committed(
    pool: asyncpg.Pool, start_daemon: StartFn, tmp_path: Path, listen: bool
) -> None:
    small_library(tmp_path / "lib", 1000)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    # One file per chunk and one worker: slow enough to catch mid-scan.
    await start_daemon(listen=listen, poll=0.2, lease=1.5, workers=1, chunk_size=1)
    job_id = await _insert_scan(pool, library.id)
    await until_db(
        pool, "SELECT (progress->>'done')::int > 5 FROM shelfscan.jobs WHERE id = $1", job_id
    )
    await pool.execute("UPDATE shelfscan.jobs SET cancel_requested = true WHERE id = $1", job_id)
    await until_db(
        pool, "SELECT state = 'cancelled' FROM shelfscan.jobs WHERE id = $1", job_id, timeout=20
    )
    books = await pool.fetchval("SELECT count(*) FROM shelfscan.books")
    assert 0 < books < 1000
    # Every committed book is whole: one file, one author, one genre each.
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files") == books
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.book_authors") == books


async def test_a_big_scan_is_split_into_parts_shared_by_two_daemons(
    pool: asyncpg.Pool, start_daemon: StartFn, tmp_path: Path
) -> None:
    small_library(tmp_path / "lib", 150, folders=15)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    split = SplitPolicy(threshold=40, part_files=25)
    await start_daemon("a", split=split, chunk_size=5)
    await start_daemon("b", split=split, chunk_size=5)
    job_id = await _insert_scan(pool, library.id)
    await until_db(
        pool, "SELECT state = 'succeeded' FROM shelfscan.jobs WHERE id = $1", job_id, timeout=60
    )
    parts = await pool.fetch(
        "SELECT state, owner, result FROM shelfscan.jobs WHERE parent_id = $1", job_id
    )
    assert len(parts) >= 5 and all(p["state"] == "succeeded" for p in parts)
    assert sum(p["result"]["books_added"] for p in parts) == 150
    assert (await pool.fetchval("SELECT result FROM shelfscan.jobs WHERE id = $1", job_id))[
        "books_added"
    ] == 150
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.books") == 150
    assert await pool.fetchval("SELECT count(DISTINCT path) FROM shelfscan.files") == 150


# -- real processes --------------------------------------------------------------------------


def _serve(db_url: str, tmp_path: Path, name: str, **env: str) -> subprocess.Popen[bytes]:
    full_env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SHELFSCAN_DATA_DIR": str(tmp_path / f"data-{name}"),
        "SHELFSCAN_LOG_FORMAT": "json",
        "SHELFSCAN_PARSE_EXECUTOR": "thread",
        "SHELFSCAN_SETTLE_SECONDS": "0",
        **env,
    }
    log = open(tmp_path / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
    return subprocess.Popen(
        [sys.executable, "-m", "shelfscan", "serve"], env=full_env, stdout=log, stderr=log
    )


async def test_sigkill_mid_scan_another_daemon_finishes_without_duplicates(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    small_library(tmp_path / "lib", 1500)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    slow = {"SHELFSCAN_LEASE_SECONDS": "2", "SHELFSCAN_WORKERS": "1", "SHELFSCAN_CHUNK_SIZE": "1"}
    first = _serve(db_url, tmp_path, "first", **slow)
    second: subprocess.Popen[bytes] | None = None
    try:
        job_id = await _insert_scan(pool, library.id)
        await until_db(pool, "SELECT count(*) > 20 FROM shelfscan.books")
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        done_before = await pool.fetchval("SELECT count(*) FROM shelfscan.books")
        assert 0 < done_before < 1500
        second = _serve(
            db_url, tmp_path, "second", SHELFSCAN_LEASE_SECONDS="2", SHELFSCAN_POLL_INTERVAL="0.5"
        )
        await until_db(
            pool,
            "SELECT state = 'succeeded' FROM shelfscan.jobs WHERE id = $1",
            job_id,
            timeout=120,
        )
    finally:
        for proc in (first, second):
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
    job = await pool.fetchrow("SELECT attempts, result FROM shelfscan.jobs WHERE id = $1", job_id)
    assert job["attempts"] == 2
    assert job["result"]["books_added"] + done_before == 1500
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.books") == 1500
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.files") == 1500
    assert (
        await pool.fetchval("SELECT count(DISTINCT (root_id, path)) FROM shelfscan.files") == 1500
    )
    assert (
        await pool.fetchval(
            "SELECT count(*) FROM (SELECT 1 FROM shelfscan.persons GROUP BY library_id, name_key HAVING count(*) > 1) d"
        )
        == 0
    )


async def test_sigterm_finishes_a_short_job_and_releases_a_long_one(
    pool: asyncpg.Pool, db_url: str, tmp_path: Path
) -> None:
    small_library(tmp_path / "short", 3)
    small_library(tmp_path / "long", 2000)
    short = await ensure_library(pool, "short", [tmp_path / "short"])
    long = await ensure_library(pool, "long", [tmp_path / "long"])
    env = {"SHELFSCAN_WORKERS": "1", "SHELFSCAN_CHUNK_SIZE": "1", "SHELFSCAN_SHUTDOWN_GRACE": "1.5"}

    # A short job finishes within the grace period.
    proc = _serve(db_url, tmp_path, "short", **env)
    try:
        short_job = await _insert_scan(pool, short.id)
        await until_db(
            pool,
            "SELECT state = 'running' OR state = 'succeeded' FROM shelfscan.jobs WHERE id = $1",
            short_job,
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert (
        await pool.fetchval("SELECT state FROM shelfscan.jobs WHERE id = $1", short_job)
        == "succeeded"
    )

    # A long one is handed back to the queue, its attempt not counted.
    proc = _serve(db_url, tmp_path, "long", **env)
    try:
        long_job = await _insert_scan(pool, long.id)
        await until_db(
            pool, "SELECT count(*) > 5 FROM shelfscan.books WHERE library_id = $1", long.id
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    row = await pool.fetchrow(
        "SELECT state, attempts, owner FROM shelfscan.jobs WHERE id = $1", long_job
    )
    assert (row["state"], row["attempts"], row["owner"]) == ("queued", 0, None)
    assert await pool.fetchval("SELECT count(*) FROM shelfscan.jobs WHERE state = 'running'") == 0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_healthz_and_metrics_answer(pool: asyncpg.Pool, db_url: str, tmp_path: Path) -> None:
    small_library(tmp_path / "lib", 4)
    library = await ensure_library(pool, "lib", [tmp_path / "lib"])
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": db_url,
        "SHELFSCAN_DATA_DIR": str(tmp_path / "data"),
        "SHELFSCAN_SETTLE_SECONDS": "0",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "shelfscan", "serve", "--http", f"127.0.0.1:{port}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        job_id = await _insert_scan(pool, library.id)
        await until_db(pool, "SELECT state = 'succeeded' FROM shelfscan.jobs WHERE id = $1", job_id)
        deadline = time.monotonic() + 20
        while True:
            try:
                status, body = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/healthz")
                if status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "healthz never turned healthy"
            await asyncio.sleep(0.2)
        import json

        checks = json.loads(body)
        loops = checks.pop("loops")
        assert checks == {
            "listener": True,
            "heartbeat": True,
            "claim": True,
            "reaper": True,
            "database": True,
        }
        assert {name: loop["failures"] for name, loop in loops.items()} == {
            "claim": 0,
            "heartbeat": 0,
            "reaper": 0,
        }
        status, metrics = await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/metrics")
        assert status == 200
        assert 'shelfscan_jobs{kind="scan_library",state="succeeded"} 1.0' in metrics
        assert "shelfscan_books_written_total 4.0" in metrics
        assert "shelfscan_oldest_queued_job_age_seconds" in metrics
        assert (await asyncio.to_thread(_get, f"http://127.0.0.1:{port}/nope"))[0] == 404
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
