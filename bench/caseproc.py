"""The case process: one measured case in a fresh interpreter (peak RSS is then per case).

A JSON spec arrives on stdin; one result line leaves on stdout. The scanner is driven
the way `shelfscan scan` drives it (`Settings` defaults, `make_executor`, `scanner_for`,
`run_scan_job`); the process pool is started before the clock, as a daemon keeps it, and
its start-up is reported apart. Peak RSS: `ru_maxrss` of this process plus the peak
(VmHWM) of each child.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import os
import resource
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import asyncpg

from bench import reference
from bench.cases import REFERENCE_KINDS
from bench.common import RESULT_PREFIX
from bench.measure import (
    CpuMark,
    machine_share,
    postmaster_pid,
    proc_table,
    process_tree,
    vm_hwm_mb,
)
from bench.profiling import _finish_profiles, _start_profiler
from shelfscan.covers import read_cover

# --- the case process ----------------------------------------------------------------------------


def case_main() -> int:
    """Entry point of a case subprocess: a JSON spec on stdin, one result line on stdout."""
    spec: dict[str, Any] = json.loads(sys.stdin.read())
    from shelfscan.logs import configure_logging

    # 100,000 placeholder files make 100,000 warnings: the terminal must not be what we time.
    configure_logging("json", "error")
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    result = asyncio.run(_run_case(spec))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


async def _run_case(spec: dict[str, Any]) -> dict[str, Any]:
    url: str = spec["url"]
    root = Path(spec["root"])
    covers = Path(spec["covers_dir"])
    pg_pid = await postmaster_pid(url)
    if spec["kind"] == "naive":
        from bench.naive import naive_scan

        before = CpuMark.take(pg_pid)
        outcome = await naive_scan(url, root, covers, spec["library"])
        after = CpuMark.take(pg_pid)
        counts: dict[str, Any] = dataclasses.asdict(outcome)
        items = outcome.books
        extra: dict[str, Any] = {"startup_s": 0.0, "settings": {"connections": 1}}
    elif spec["kind"] in REFERENCE_KINDS:
        before, after, counts, items, extra = await _run_reference(spec, root, covers, pg_pid)
    else:
        before, after, counts, items, extra = await _run_scanner(spec, root, covers, pg_pid)
    rss_children: dict[int, float] = extra.pop("rss_children", {})
    main_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result: dict[str, Any] = {
        "seconds": round(after.wall - before.wall, 4),
        "items": items,
        "counts": counts,
        "cpu_main_s": round(after.main - before.main, 3),
        # Clock ticks are 10 ms: an idle pool can come out a tick below zero.
        "cpu_children_s": round(
            max(0.0, (after.tree - before.tree) - (after.main - before.main)), 3
        ),
        "cpu_pg_s": None
        if after.pg is None or before.pg is None
        else round(after.pg - before.pg, 3),
        "machine": machine_share(before.machine, after.machine),
        "rss_main_mb": round(main_rss, 1),
        "rss_children_mb": round(sum(rss_children.values()), 1),
        "rss_total_mb": round(main_rss + sum(rss_children.values()), 1),
        "children": len(rss_children),
        **extra,
    }
    result["rows"] = await _row_counts(url, covers)
    result["ref_rows"] = await reference.row_counts(url)
    return result


def _children_peaks() -> dict[int, float]:
    """Peak RSS of every live descendant (read before a pool is closed: closing ends them)."""
    me = os.getpid()
    return {pid: vm_hwm_mb(pid) for pid in process_tree(proc_table(), me) if pid != me}


async def _run_reference(
    spec: dict[str, Any], root: Path, covers: Path, pg_pid: int | None
) -> tuple[CpuMark, CpuMark, dict[str, Any], int, dict[str, Any]]:
    """The reference pipeline; its pool is started and warmed before the clock."""
    url = spec["url"]
    await reference.prepare(url)
    if spec["kind"] == "reference_rescan":
        before = CpuMark.take(pg_pid)
        counts = await reference.rescan(url, str(root))
        after = CpuMark.take(pg_pid)
        return before, after, counts, counts["files_seen"], {"startup_s": 0.0, "rss_children": {}}
    started = time.perf_counter()
    pool = reference.start_pool()
    startup = time.perf_counter() - started
    try:
        before = CpuMark.take(pg_pid)
        counts = await reference.first_scan(
            url, str(root), pool, full=spec["kind"] == "reference_full", covers=str(covers)
        )
        after = CpuMark.take(pg_pid)
        peaks = _children_peaks()
    finally:
        pool.shutdown(wait=True)
    items = int(counts["books_added"] if spec["unit"] == "books" else counts["files_seen"])
    extra = {
        "startup_s": round(startup, 3),
        "rss_children": peaks,
        "settings": {"parse_processes": reference.PROCESSES, "chunk_size": reference.CHUNK},
    }
    return before, after, counts, items, extra


async def _run_scanner(
    spec: dict[str, Any], root: Path, covers: Path, pg_pid: int | None
) -> tuple[CpuMark, CpuMark, dict[str, Any], int, dict[str, Any]]:
    """Drive the scanner as `shelfscan scan` does; time only the scan itself."""
    from shelfscan.app import make_executor, run_scan_job, scanner_for
    from shelfscan.catalogue.libraries import ensure_library
    from shelfscan.config import Settings
    from shelfscan.db.connect import open_pool
    from shelfscan.jobs.events import JobEvents
    from shelfscan.jobs.reporter import JobReporter
    from shelfscan.scan.contract import ScanRequest
    from shelfscan.scan.progress import Progress

    settings = dataclasses.replace(
        Settings.from_env({}),  # the defaults, whatever this shell exports
        database_url=spec["url"],
        data_dir=Path(spec["data_dir"]),
        covers_dir=covers,
    )
    if spec.get("workers"):
        settings = dataclasses.replace(
            settings, workers=spec["workers"], parse_processes=spec["workers"]
        )
    async with open_pool(spec["url"], max_size=settings.workers + 4) as pool:
        library = await ensure_library(pool, spec["library"], [root])
        executor = make_executor(settings)
        try:
            started = time.perf_counter()
            executor.start()
            # Fork the pool's workers before the clock, as a long-running daemon keeps them.
            await asyncio.gather(*(executor.parse([]) for _ in range(settings.parse_processes)))
            startup = time.perf_counter() - started
            scanner = scanner_for(pool, settings, executor, settings.workers)
            profiler = _start_profiler() if spec.get("profile_dir") else None
            before = CpuMark.take(pg_pid)
            if spec["kind"] == "plan":
                events = JobEvents.for_job(0, library=library.name)
                reporter = JobReporter(pool, 0, events, Progress())
                survey = await scanner.plan(ScanRequest.whole(library), reporter)
                counts: dict[str, Any] = {
                    "files_seen": survey.files_seen,
                    "new": len(survey.diff.new),
                    "changed": len(survey.diff.changed),
                    "unchanged": survey.diff.unchanged_files,
                    "units": len(survey.units),
                }
            else:
                request = ScanRequest.whole(library)
                _, result = await run_scan_job(pool, scanner, request, settings)
                counts = dict(result.as_dict())
            after = CpuMark.take(pg_pid)
            rss_children = _children_peaks()
        finally:
            executor.close()
    items = int(counts["books_added"] if spec["unit"] == "books" else counts["files_seen"])
    extra: dict[str, Any] = {
        "startup_s": round(startup, 3),
        "rss_children": rss_children,
        "settings": {
            "workers": settings.workers,
            "parse_executor": settings.parse_executor,
            "parse_processes": settings.parse_processes,
            "chunk_size": settings.chunk_size,
        },
    }
    if profiler is not None:
        extra["profile"] = _finish_profiles(profiler, spec, root)
    return before, after, counts, items, extra


_TABLES = (
    "books", "files", "persons", "series", "genres", "tags", "publishers", "covers",
    "book_authors", "book_series", "book_genres", "book_tags", "file_identifiers", "chapters",
    "file_narrators",
)  # fmt: skip


async def _row_counts(url: str, covers: Path) -> dict[str, int]:
    """Rows per table (the variants must write the same catalogue) and consistency checks."""
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        counts = {
            t: int(await conn.fetchval(f"SELECT count(*) FROM shelfscan.{t}")) for t in _TABLES
        }
        counts["books_with_cover"] = int(
            await conn.fetchval("SELECT count(*) FROM shelfscan.books WHERE cover_id IS NOT NULL")
        )
        counts["books_without_file"] = int(
            await conn.fetchval(
                "SELECT count(*) FROM shelfscan.books b "
                "WHERE NOT EXISTS (SELECT 1 FROM shelfscan.files f WHERE f.book_id = b.id)"
            )
        )
        counts["files_error"] = int(
            await conn.fetchval("SELECT count(*) FROM shelfscan.files WHERE status = 'error'")
        )
        # Every cover row must point at bytes in a pack that hash back to its sha256.
        readable = 0
        for row in await conn.fetch("SELECT sha256, pack, pack_offset, size FROM shelfscan.covers"):
            try:
                data = read_cover(covers, row["pack"], row["pack_offset"], row["size"])
            except FileNotFoundError:
                continue  # a rescan case starts from a snapshot whose packs stayed with the warm-up
            readable += hashlib.sha256(data).hexdigest() == row["sha256"]
        counts["cover_files"] = readable
    finally:
        await conn.close()
    return counts
