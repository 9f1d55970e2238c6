"""PostgreSQL stopped, killed -9, or down for 30 s while a CLI scan and daemons are mid-scan.

Whatever the fault, afterwards: every job has ended, the library scans again
at once, every file is catalogued exactly once with no duplicate names, and
the CLI said what went wrong in one line (or rode the fault out).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.faults.harness import (
    add_library,
    assert_catalogue_sound,
    catalogue_report,
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
SLOW = {"SHELFSCAN_WORKERS": "1", "SHELFSCAN_CHUNK_SIZE": "1"}  # long enough to be hit mid-scan


async def _books(url: str, library: str) -> int:
    count: int = await query(
        url,
        "SELECT count(*) FROM shelfscan.books b JOIN shelfscan.libraries l ON l.id = b.library_id "
        "WHERE l.name = $1",
        library,
    )
    return count


@pytest.mark.parametrize(
    ("fault", "down_s"),
    [("stop", 1.0), ("kill9", 1.0), ("kill9", 30.0)],
    ids=["stopped", "killed-9", "down-30s"],
)
async def test_the_database_goes_away_mid_scan(
    cluster: Cluster, fault_db: str, tmp_path: Path, fault: str, down_s: float
) -> None:
    small_library(tmp_path / "cli-lib", BOOKS)
    small_library(tmp_path / "daemon-lib", BOOKS)
    daemon_lib = await add_library(fault_db, "daemon-lib", tmp_path / "daemon-lib")
    async with fleet(fault_db, tmp_path) as crew:
        for name in ("d1", "d2"):
            crew.serve(name, **SLOW)
        job_id = await enqueue_scan(fault_db, daemon_lib)
        scan = crew.cli("cli", "scan", str(tmp_path / "cli-lib"), "--json", **SLOW)
        await until(lambda: _both_started(fault_db), 120, "the CLI and a daemon have written books")

        at_fault = (await _books(fault_db, "cli-lib"), await _books(fault_db, "daemon-lib"))
        assert max(at_fault) < BOOKS, f"a scan had ended before the fault: {at_fault}"
        if fault == "stop":
            cluster.stop()
        else:
            cluster.kill9()
        await asyncio.sleep(down_s)
        if down_s >= 30:
            # Down for good, as far as the CLI can tell: it gives up with one line.
            assert scan.proc is not None and scan.proc.poll() is not None, "CLI still waiting"
        cluster.start()

        status = await scan.finish(180)
        if status != 0:
            line = one_line_error(scan.stderr)
            assert status == 1 and "database" in line, line
        if down_s >= 30:
            assert status == 1

        # The daemons recover and end their job (its retry, after a lost lease, succeeds).
        await until(lambda: jobs_settled(fault_db), 180, "every job ended")
        state = await query(fault_db, "SELECT state FROM shelfscan.jobs WHERE id = $1", job_id)
        assert state == "succeeded"
        assert all(proc.poll() is None for proc in crew.daemons.values()), "a daemon died"

        # The library can be scanned again at once, and the catalogue is whole.
        again = crew.cli("cli", "scan", str(tmp_path / "cli-lib"), "--json")
        assert await again.finish(180) == 0, again.stderr[-3000:]
        summary = summary_of(again.stdout)
        assert summary["files_seen"] == BOOKS, summary
        second = await enqueue_scan(fault_db, daemon_lib)
        await until(lambda: jobs_settled(fault_db), 120, "the daemons' rescan ended")
        unchanged = await query(
            fault_db,
            "SELECT (result->>'books_unchanged')::int FROM shelfscan.jobs WHERE id = $1",
            second,
        )
        assert unchanged == BOOKS, await catalogue_report(fault_db, daemon_lib)
    cli_lib = await query(fault_db, "SELECT id FROM shelfscan.libraries WHERE name = 'cli-lib'")
    await assert_catalogue_sound(fault_db, cli_lib, BOOKS)
    await assert_catalogue_sound(fault_db, daemon_lib, BOOKS)


async def _both_started(url: str) -> bool:
    return await _books(url, "cli-lib") > 20 and await _books(url, "daemon-lib") > 20
