"""A SIGKILL storm: daemons killed again and again while they share a split scan."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

from tests.faults.harness import (
    add_library,
    assert_catalogue_sound,
    enqueue_scan,
    fleet,
    jobs_settled,
    query,
    summary_of,
    until,
)
from tests.faults.pgcluster import Cluster
from tests.faults.processes import marked
from tests.libraries import small_library

BOOKS = 800
KILLS = 4  # below max_attempts (5): no job may fail for having been killed too often
DAEMON = {
    "SHELFSCAN_WORKERS": "1",
    "SHELFSCAN_CHUNK_SIZE": "2",
    "SHELFSCAN_SPLIT_FILES": "100",  # the scan is cut into parts any daemon may take
    "SHELFSCAN_PART_FILES": "100",
    "SHELFSCAN_PARSE_EXECUTOR": "process",  # real parse workers, which must die with a daemon
    "SHELFSCAN_PARSE_PROCESSES": "1",
}


async def test_daemons_killed_mid_split_scan_lose_and_duplicate_nothing(
    cluster: Cluster, fault_db: str, tmp_path: Path
) -> None:
    small_library(tmp_path / "lib", BOOKS, authors=13)
    library_id = await add_library(fault_db, "lib", tmp_path / "lib")
    rng = random.Random(14)
    names = ["d1", "d2", "d3"]
    async with fleet(fault_db, tmp_path) as crew:
        for name in names:
            crew.serve(name, **DAEMON)
        job_id = await enqueue_scan(fault_db, library_id)
        await until(
            lambda: query(
                fault_db, "SELECT count(*) > 0 FROM shelfscan.jobs WHERE parent_id = $1", job_id
            ),
            120,
            "the scan split into parts",
        )
        kills_mid_scan = 0
        for _ in range(KILLS):
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            victim = rng.choice(names)
            if not await jobs_settled(fault_db):
                kills_mid_scan += 1
            crew.kill(victim)
            crew.serve(victim, **DAEMON)
        assert kills_mid_scan >= 1, "the storm came after the scan had ended"

        await until(lambda: jobs_settled(fault_db), 240, "every job ended")
        states = await query(
            fault_db,
            "SELECT array_agg(DISTINCT state) FROM shelfscan.jobs WHERE id = $1 OR parent_id = $1",
            job_id,
        )
        assert states == ["succeeded"]

        # Killed daemons leave no parse worker, forkserver or resource tracker behind.
        for name in names:
            crew.kill(name)
        await until(lambda: _none_left(crew.mark), 30, "every process of the killed daemons gone")

        again = crew.cli("cli", "scan", str(tmp_path / "lib"), "--library", "lib", "--json")
        assert await again.finish(180) == 0, again.stderr[-3000:]
        summary = summary_of(again.stdout)
        assert (summary["books_added"], summary["books_unchanged"]) == (0, BOOKS)
    await assert_catalogue_sound(fault_db, library_id, BOOKS)


async def _none_left(mark: dict[str, str]) -> bool:
    return not marked(mark)
