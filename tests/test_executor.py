"""The parse pool: a file that hangs its parser costs that file, not the scan."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

from shelfscan.scan.executor import ParseExecutor
from shelfscan.scan.parse import ParseTask, UnitTask
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub
from tests.faults.processes import marked, new_mark, wait_for
from tests.libraries import small_library


def _task(index: int, path: Path) -> ParseTask:
    st = path.stat()
    return ParseTask(index, str(path), st.st_size, st.st_mtime_ns)


async def test_a_file_that_never_finishes_reading_is_cut_off_and_the_rest_parse(
    tmp_path: Path,
) -> None:
    good = tmp_path / "good.epub"
    write_epub(good, EpubSpec(title="Fine", creators=(CreatorSpec("A"),)))
    # Opening a FIFO for reading blocks until a writer comes: a real read that never returns,
    # like a file on a stuck network mount.
    stuck = tmp_path / "stuck.epub"
    os.mkfifo(stuck)
    executor = ParseExecutor(
        "process", 1, tmp_path / "covers", file_timeout_s=2.0, chunk_base_s=1.0
    )
    try:
        units = [UnitTask(0, (_task(0, good),)), UnitTask(1, (_task(0, stuck),))]
        outcomes = await executor.parse(units)
        assert outcomes[0].files[0].metadata is not None
        assert outcomes[0].files[0].metadata.title == "Fine"
        assert outcomes[1].files[0].error == "parser did not finish within 2 s"
        assert executor.restarts >= 2  # the chunk, then the stuck file alone
        # The rebuilt pool keeps working.
        (again,) = await executor.parse([UnitTask(0, (_task(0, good),))])
        assert again.files[0].metadata is not None
    finally:
        executor.close()


def test_parse_workers_die_with_a_scan_killed_by_sigkill(db_url: str, tmp_path: Path) -> None:
    """kill -9 of `shelfscan scan` takes its forkserver, resource tracker and workers with it."""
    small_library(tmp_path / "lib", 1500)
    mark = new_mark()
    env = {
        **os.environ,
        **mark,
        "DATABASE_URL": db_url,
        "SHELFSCAN_DATA_DIR": str(tmp_path / "data"),
        "SHELFSCAN_PARSE_EXECUTOR": "process",
        "SHELFSCAN_PARSE_PROCESSES": "2",
        "SHELFSCAN_WORKERS": "1",
        "SHELFSCAN_CHUNK_SIZE": "5",
        "SHELFSCAN_SETTLE_SECONDS": "0",
        "SHELFSCAN_LOG_FORMAT": "json",
    }
    with open(tmp_path / "scan.log", "wb") as log:
        scan = subprocess.Popen(
            [sys.executable, "-m", "shelfscan", "scan", str(tmp_path / "lib")],
            env=env,
            stdout=log,
            stderr=log,
        )
    try:
        # The scan itself, the forkserver, the resource tracker and at least one worker.
        wait_for(lambda: len(marked(mark)) >= 4, 60, "parse workers started")
        assert scan.poll() is None, "the scan ended before it could be killed"
        scan.kill()
        scan.wait(10)
        wait_for(lambda: not marked(mark), 15, "every process of the killed scan gone")
    finally:
        if scan.poll() is None:
            scan.kill()
            scan.wait(10)
        for pid in marked(mark):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert not marked(mark)
