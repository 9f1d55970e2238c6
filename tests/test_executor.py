"""The parse pool: a file that hangs its parser costs that file, not the scan."""

from __future__ import annotations

import os
from pathlib import Path

from shelfscan.scan.executor import ParseExecutor
from shelfscan.scan.parse import ParseTask, UnitTask
from shelfscan.testing.epubs import CreatorSpec, EpubSpec, write_epub


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
