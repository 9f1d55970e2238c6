"""A storm of pg_terminate_backend: every shelfscan connection killed, again and again, mid-scan."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg

from tests.faults.harness import (
    add_library,
    assert_catalogue_sound,
    enqueue_scan,
    fleet,
    jobs_settled,
    one_line_error,
    query,
    summary_of,
    until,
)
from tests.faults.pgcluster import Cluster
from tests.libraries import small_library

BOOKS = 500
SLOW = {"SHELFSCAN_WORKERS": "2", "SHELFSCAN_CHUNK_SIZE": "2"}


async def _storm(url: str, seconds: float, every_s: float) -> int:
    """Terminate every other backend on the test's database every `every_s`; return how many."""
    killed = 0
    conn = await asyncpg.connect(url)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            killed += await conn.fetchval(
                "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            await asyncio.sleep(every_s)
    finally:
        await conn.close()
    return killed


async def test_a_storm_of_killed_connections_loses_and_duplicates_nothing(
    cluster: Cluster, fault_db: str, tmp_path: Path
) -> None:
    small_library(tmp_path / "cli-lib", BOOKS)
    small_library(tmp_path / "daemon-lib", BOOKS, authors=11)
    daemon_lib = await add_library(fault_db, "daemon-lib", tmp_path / "daemon-lib")
    async with fleet(fault_db, tmp_path) as crew:
        for name in ("d1", "d2"):
            crew.serve(name, **SLOW)
        job_id = await enqueue_scan(fault_db, daemon_lib)
        scan = crew.cli("cli", "scan", str(tmp_path / "cli-lib"), "--json", **SLOW)
        await until(
            lambda: query(fault_db, "SELECT count(*) > 10 FROM shelfscan.books"),
            120,
            "books being written",
        )
        killed = await _storm(fault_db, seconds=6, every_s=0.4)
        assert killed >= 20  # the storm really hit: several daemons' and the CLI's connections

        status = await scan.finish(180)
        if status != 0:  # riding it out is better; giving up must still be one clear line
            assert status == 1, scan.stderr[-3000:]
            one_line_error(scan.stderr)
        await until(lambda: jobs_settled(fault_db), 180, "every job ended")
        state = await query(fault_db, "SELECT state FROM shelfscan.jobs WHERE id = $1", job_id)
        assert state == "succeeded"
        assert all(proc.poll() is None for proc in crew.daemons.values()), "a daemon died"

        again = crew.cli("cli", "scan", str(tmp_path / "cli-lib"), "--json")
        assert await again.finish(180) == 0, again.stderr[-3000:]
        assert summary_of(again.stdout)["files_seen"] == BOOKS
    cli_lib = await query(fault_db, "SELECT id FROM shelfscan.libraries WHERE name = 'cli-lib'")
    await assert_catalogue_sound(fault_db, cli_lib, BOOKS)
    await assert_catalogue_sound(fault_db, daemon_lib, BOOKS)
