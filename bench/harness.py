"""`python -m bench`: the naive baseline and the real scanner, interleaved, as medians.

Why it is built this way (see /work/shared/research/limits.md, "noise"): on this
shared 2-core VM the same CPU work runs up to 1.8x slower for minutes at a time.
So every round times every case once, in an order that rotates each round, and a
fixed pure-Python loop (the noise probe) is timed before each round and each case;
ratios between cases of one run stay valid even when the absolute figures wander.

Each case runs in a fresh subprocess (peak RSS is then per case) on a fresh
database cloned from a migrated template, or, for rescans, from a snapshot of a
finished first scan, so a first scan is really first. The scanner is driven the
way `shelfscan scan` drives it (`Settings` defaults, `make_executor`, `scanner_for`,
`run_scan_job`); the process pool is started before the clock, as a daemon keeps it,
and its start-up is reported apart.

CPU: the scan process's own time is `getrusage(RUSAGE_SELF)`; its children's time is
read from /proc for the whole process tree, because the parse pool's workers are
forked by the forkserver, whose rusage reaches us only when it exits. PostgreSQL's
time is the utime+stime of the postmaster and all its processes (backends and
background workers) from /proc, found through `pg_backend_pid()`.
Peak RSS: `ru_maxrss` of the case process, plus the peak (VmHWM) of each child.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import hashlib
import importlib.util
import io
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from shelfscan.covers import read_cover

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "bench" / "results"
DEFAULT_CACHE = REPO / "bench" / "cache"
RESULT_PREFIX = "BENCH-RESULT "
SCHEMA_VERSION = 1
PROBE_LOOPS = 2_000_000
CASE_TIMEOUT_S = 3600.0

# Targets of the issue, for 10,000 EPUBs on this 2-core machine, warm page cache.
TARGET_RATIO = 10.0
TARGET_FIRST_BOOKS_S = 2000.0
TARGET_NOCHANGE_FILES_S = 25_000.0
TARGET_RSS_MB = 300.0
TARGET_AUDIO_FILES_S = 1000.0
CHANGED_BUDGET = 0.05  # a 1%-changed rescan may add at most 5% of a first scan's time

VARIANT_LABELS = {
    "naive": "(1) naive baseline: one file at a time, find-or-create per name, INSERT per row, autocommit",
    "w1": "(2) shelfscan, 1 worker (SHELFSCAN_WORKERS=1, SHELFSCAN_PARSE_PROCESSES=1)",
    "default": "(3) shelfscan, defaults: first scan",
    "nochange": "no-change rescan",
    "changed1": "rescan, 1% of the EPUBs changed",
    "audio": "audio first scan (MP3/M4B parts)",
    "discover": "discovery + diff only (walk, bulk SELECT, diff, plan), placeholders",
    "placeholders": "first scan of placeholders (walk, read, one error row per file)",
}
PLOT_LABELS = {
    "naive": "naive baseline",
    "w1": "shelfscan, 1 worker",
    "default": "shelfscan, defaults",
    "nochange": "no-change rescan",
    "changed1": "rescan, 1% changed",
    "discover": "discovery + diff only (placeholders)",
}


class BenchError(RuntimeError):
    """The benchmark could not run a case; the message says which and why."""


# --- /proc accounting ----------------------------------------------------------------------------

_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_table() -> dict[int, tuple[int, float]]:
    """pid -> (ppid, CPU seconds of the process plus its reaped children)."""
    table: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        rest = data[data.rindex(b")") + 2 :].split()
        ticks = int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])
        table[int(entry.name)] = (int(rest[1]), ticks / _CLK_TCK)
    return table


def process_tree(table: dict[int, tuple[int, float]], root: int) -> list[int]:
    """`root` and all its live descendants."""
    children: dict[int, list[int]] = defaultdict(list)
    for pid, (ppid, _) in table.items():
        children[ppid].append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in table:
            found.append(pid)
            stack.extend(children[pid])
    return found


def tree_cpu(table: dict[int, tuple[int, float]], root: int) -> float:
    """CPU seconds of a process tree; a child reaped inside the tree stays counted by its parent."""
    return sum(table[pid][1] for pid in process_tree(table, root))


def vm_hwm_mb(pid: int) -> float:
    """Peak resident set size of a live process (VmHWM), in MB."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def machine_cpu() -> dict[str, float]:
    """Seconds of all CPUs by state since boot (/proc/stat), to tell idle from busy from stolen."""
    with open("/proc/stat", encoding="ascii") as handle:
        fields = handle.readline().split()[1:]
    names = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")
    return {name: int(value) / _CLK_TCK for name, value in zip(names, fields, strict=False)}


def machine_share(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """Share of all the machine's CPU time between two readings: busy, iowait, steal."""
    delta = {k: after[k] - before[k] for k in before}
    total = sum(delta.values()) or 1.0
    idle = delta["idle"] + delta["iowait"]
    return {
        "busy_s": round(total - idle, 2),
        "busy": round(1 - idle / total, 3),
        "iowait": round(delta["iowait"] / total, 3),
        "steal": round(delta.get("steal", 0.0) / total, 3),
        "system": round((delta["system"] + delta["irq"] + delta["softirq"]) / total, 3),
    }


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def postmaster_pid(url: str) -> int | None:
    """The postmaster of the server behind `url`, when it runs on this machine and /proc shows it.

    The backend's process title names its database: that guards against a server in a
    container whose pids mean something else here."""
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        database = str(await conn.fetchval("SELECT current_database()"))
        return _postmaster_of(backend, database)  # while the backend is alive
    finally:
        await conn.close()


def _postmaster_of(backend: int, database: str) -> int | None:
    try:
        cmdline = Path(f"/proc/{backend}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        if database not in cmdline:
            return None
        ppid = proc_table().get(backend, (0, 0.0))[0]
        comm = Path(f"/proc/{ppid}/comm").read_text().strip()
    except OSError:
        return None
    return ppid if ppid > 1 and ("postgres" in comm or "postmaster" in comm) else None


@dataclass(frozen=True, slots=True)
class CpuMark:
    """A point in time: wall clock and CPU of this process, its tree and PostgreSQL."""

    wall: float
    main: float
    tree: float
    pg: float | None
    machine: dict[str, float]

    @classmethod
    def take(cls, pg_pid: int | None) -> CpuMark:
        table = proc_table()
        return cls(
            time.perf_counter(),
            _self_cpu(),
            tree_cpu(table, os.getpid()),
            tree_cpu(table, pg_pid) if pg_pid else None,
            machine_cpu(),
        )


# --- the noise probe -----------------------------------------------------------------------------


def probe_ms(loops: int = PROBE_LOOPS) -> float:
    """A fixed pure-Python loop; its time tracks how much CPU the host gives us right now."""
    started = time.perf_counter()
    total = 0
    for i in range(loops):
        total += i * i % 7
    elapsed = (time.perf_counter() - started) * 1000
    assert total >= 0
    return round(elapsed, 1)


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
    return result


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
                    "unchanged": len(survey.diff.unchanged),
                    "units": len(survey.units),
                }
            else:
                request = ScanRequest.whole(library)
                _, result = await run_scan_job(pool, scanner, request, settings)
                counts = dict(result.as_dict())
            after = CpuMark.take(pg_pid)
            # Read the workers' peaks now: closing the pool ends them.
            rss_children = {
                pid: vm_hwm_mb(pid)
                for pid in process_tree(proc_table(), os.getpid())
                if pid != os.getpid()
            }
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


# --- profiling -----------------------------------------------------------------------------------


def _start_profiler() -> Any:
    try:
        from pyinstrument import Profiler
    except ImportError as exc:
        raise BenchError("profiling needs pyinstrument: pip install -e '.[bench]'") from exc
    profiler = Profiler(interval=0.001, async_mode="enabled")
    profiler.start()
    return profiler


def _finish_profiles(profiler: Any, spec: dict[str, Any], root: Path) -> dict[str, Any]:
    """Write the scan's profile, then profile the parse stage serially (what workers run)."""
    session = profiler.stop()
    out = Path(spec["profile_dir"])
    name = spec.get("profile_name", "first-scan")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"profile-{name}.txt").write_text(
        profiler.output_text(unicode=True, color=False), encoding="utf-8"
    )
    result: dict[str, Any] = {
        "name": name,
        "files": [f"profile-{name}.txt"],
        "main": hotspots(session.root_frame(), session.duration),
        "main_inclusive": inclusive(session.root_frame(), session.duration),
        "main_seconds": round(session.duration, 3),
        "main_cpu_seconds": round(float(getattr(session, "cpu_time", 0.0) or 0.0), 3),
    }
    try:
        parse_file = out / f"profile-{name}-parse.txt"
        result["parse"], result["parse_seconds"], result["parse_files"] = _profile_parse(
            root, int(spec.get("profile_parse_files", 1000)), parse_file
        )
        result["files"].append(parse_file.name)
    except Exception as exc:  # the internals it uses may move; the scan profile still counts
        result["parse_error"] = f"{type(exc).__name__}: {exc}"
    return result


def _profile_parse(root: Path, limit: int, out: Path) -> tuple[list[dict[str, Any]], float, int]:
    """pyinstrument over `parse_units` in this process, in chunks of 50 as the pool gets them.

    The covers go to a fresh temporary folder, as the measured scans' covers do."""
    from pyinstrument import Profiler

    from shelfscan.scan.discovery import walk_root
    from shelfscan.scan.parse import ParseTask, UnitTask, parse_units

    files = walk_root(0, str(root)).files[:limit]
    tasks = [
        UnitTask(i, (ParseTask(0, str(root / f.path), f.size, f.mtime_ns),))
        for i, f in enumerate(files)
    ]
    with tempfile.TemporaryDirectory(prefix="shelfscan-bench-covers-") as covers:
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for i in range(0, len(tasks), 50):
            parse_units(tasks[i : i + 50], covers)
        session = profiler.stop()
    out.write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
    return hotspots(session.root_frame(), session.duration), round(session.duration, 3), len(files)


_WAITS = ("[await]", "epoll.poll", "select.select", "EpollSelector.select", "lock.acquire")


def hotspots(root: Any, total: float, top: int = 15) -> list[dict[str, Any]]:
    """Self time per file:function, biggest first, with its share of the profiled time.

    Waiting (an `await`, the event loop's poll, a lock) is summed into one "waiting" row:
    what is left is where the process spent CPU (or a blocking system call)."""
    spent: dict[str, float] = defaultdict(float)

    def visit(frame: Any, parent: Any) -> None:
        if frame.is_synthetic:
            owner = parent or frame
            label = "" if frame.function == "[self]" else f" {frame.function}"
            spent[f"{owner.file_path_short}:{owner.function}{label}"] += frame.time
            return
        if not frame.children:
            spent[f"{frame.file_path_short}:{frame.function}"] += frame.time
        for child in frame.children:
            visit(child, frame)

    if root is not None:
        visit(root, None)
    waiting = sum(sec for where, sec in spent.items() if any(w in where for w in _WAITS))
    ranked = sorted(
        ((w, sec) for w, sec in spent.items() if not any(x in w for x in _WAITS)),
        key=lambda kv: kv[1],
        reverse=True,
    )[:top]
    rows = [("waiting (await, event-loop poll, locks)", waiting), *ranked]
    return [
        {"where": where, "seconds": round(sec, 3), "share": round(sec / total, 3) if total else 0.0}
        for where, sec in rows
    ]


def inclusive(root: Any, total: float, top: int = 15) -> list[dict[str, Any]]:
    """Time under each shelfscan function (children included, recursion counted once)."""
    spent: dict[str, float] = defaultdict(float)

    def visit(frame: Any, stack: frozenset[str]) -> None:
        if frame.is_synthetic:
            return
        key = f"{frame.file_path_short}:{frame.function}"
        if "shelfscan/" in (frame.file_path or "") and key not in stack:
            spent[key] += frame.time
            stack = stack | {key}
        for child in frame.children:
            visit(child, stack)

    if root is not None:
        visit(root, frozenset())
    ranked = sorted(spent.items(), key=lambda kv: kv[1], reverse=True)[:top]
    return [
        {"where": where, "seconds": round(sec, 3), "share": round(sec / total, 3) if total else 0.0}
        for where, sec in ranked
    ]


# --- changing 1% of a library, reversibly ---------------------------------------------------------


@dataclass(slots=True)
class ChangeSet:
    """EPUBs retitled in place for one rescan, then restored byte for byte.

    In place (same inode) so that the cached library and the snapshot database stay in
    step; a journal of backups under the cache folder repairs the library if a run dies
    before restoring it."""

    backup: Path
    entries: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def apply(cls, root: Path, paths: Sequence[Path], backup: Path) -> ChangeSet:
        restore_pending(backup)
        backup.mkdir(parents=True, exist_ok=True)
        changes = cls(backup)
        for i, path in enumerate(paths):
            st = path.stat()
            original = path.read_bytes()
            saved = backup / f"{i}.bin"
            saved.write_bytes(original)
            changes.entries.append(
                {
                    "path": str(path),
                    "backup": str(saved),
                    "atime_ns": st.st_atime_ns,
                    "mtime_ns": st.st_mtime_ns,
                }
            )
        (backup / "journal.json").write_text(json.dumps(changes.entries), encoding="utf-8")
        for entry in changes.entries:
            path = Path(entry["path"])
            _overwrite(path, retitled(path.read_bytes()))
            os.utime(path, ns=(entry["atime_ns"], entry["mtime_ns"] + 1_000_000_000))
        return changes

    def restore(self) -> None:
        restore_pending(self.backup)


def restore_pending(backup: Path) -> None:
    """Put back every file a journal names (after a crash too), then drop the journal."""
    journal = backup / "journal.json"
    if journal.is_file():
        for entry in json.loads(journal.read_text(encoding="utf-8")):
            path = Path(entry["path"])
            _overwrite(path, Path(entry["backup"]).read_bytes())
            os.utime(path, ns=(entry["atime_ns"], entry["mtime_ns"]))
    if backup.exists():
        shutil.rmtree(backup)


def _overwrite(path: Path, data: bytes) -> None:
    with open(path, "r+b") as handle:
        handle.write(data)
        handle.truncate()


def retitled(epub: bytes) -> bytes:
    """The same EPUB with " (revised)" appended to its dc:title: a real metadata change."""
    source = zipfile.ZipFile(io.BytesIO(epub))
    container = source.read("META-INF/container.xml")
    match = re.search(rb'full-path="([^"]+)"', container)
    if match is None:
        raise BenchError("generated EPUB without an OPF path")
    opf = match.group(1).decode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            body = source.read(info)
            if info.filename == opf:
                body = re.sub(
                    rb"(<dc:title[^>]*>)(.*?)(</dc:title>)", rb"\1\2 (revised)\3", body, count=1
                )
            target.writestr(info, body, compress_type=info.compress_type)
    return out.getvalue()


def pick_changed(library: Path, fraction: float) -> list[Path]:
    """Every k-th EPUB of the manifest (deterministic), at least one."""
    from shelfscan.testing.library import load_manifest

    epubs = [e.path for e in load_manifest(library / "manifest.jsonl") if e.kind == "epub"]
    count = max(1, round(len(epubs) * fraction))
    step = max(1, len(epubs) // count)
    return [library / p for p in epubs[::step][:count]]


# --- the run -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Case:
    """One measured variant at one library size."""

    variant: str
    size: int
    library: Path  # the generated library folder
    scan_root: Path  # the folder scanned (its ebooks/ or audiobooks/)
    kind: str  # naive | scan | plan
    unit: str  # books | files
    fresh: bool = True  # an empty migrated database; False: a clone of the first-scan snapshot
    workers: int | None = None
    change: float = 0.0
    tree: str = "EPUBs"  # what the scanned folder holds: EPUBs | audio files | placeholders

    @property
    def key(self) -> str:
        return f"{self.variant}@{self.size}"


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


class Database:
    """Databases for the cases: a migrated template, snapshots, one clone per case."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url
        self.prefix = f"bench_{os.getpid()}_"
        self.template = self.prefix + "tpl"
        self.made: list[str] = []

    async def sql(self, *statements: str) -> None:
        conn: asyncpg.Connection = await asyncpg.connect(self.admin_url)
        try:
            for statement in statements:
                await conn.execute(statement)
        finally:
            await conn.close()

    async def version(self) -> str:
        conn: asyncpg.Connection = await asyncpg.connect(self.admin_url)
        try:
            return str(await conn.fetchval("SHOW server_version"))
        finally:
            await conn.close()

    def url(self, name: str) -> str:
        return with_database(self.admin_url, name)

    async def create_template(self) -> None:
        from shelfscan.db.migrate import migrate

        await self.create(self.template, None)
        await migrate(self.url(self.template))

    async def create(self, name: str, template: str | None) -> str:
        clause = f' TEMPLATE "{template}"' if template else ""
        await self.sql(
            f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"{clause}'
        )
        self.made.append(name)
        # A clone writes its pages; flush them now, not during the next timed scan.
        with contextlib.suppress(asyncpg.PostgresError):
            await self.sql("CHECKPOINT")
        return self.url(name)

    async def drop(self, name: str) -> None:
        await self.sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if name in self.made:
            self.made.remove(name)

    async def drop_all(self) -> None:
        for name in list(reversed(self.made)):
            with contextlib.suppress(Exception):
                await self.drop(name)


@contextlib.contextmanager
def database_server(url: str | None) -> Iterator[str]:
    """The given server, or an embedded pgserver in a temporary folder for this run."""
    if url:
        yield url
        return
    import pgserver

    with tempfile.TemporaryDirectory(prefix="shelfscan-bench-pg-") as tmp:
        os.chmod(tmp, 0o755)  # pgserver runs postgres as its own user when we are root
        server = pgserver.get_server(Path(tmp) / "pg", cleanup_mode="delete")
        try:
            yield str(server.get_uri())
        finally:
            server.cleanup()


def run_case_process(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one case in a fresh interpreter and return its result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    code = "from bench.harness import case_main; raise SystemExit(case_main())"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=CASE_TIMEOUT_S,
        check=False,
    )
    for line in proc.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            result: dict[str, Any] = json.loads(line[len(RESULT_PREFIX) :])
            return result
    tail = (proc.stderr or proc.stdout)[-3000:]
    raise BenchError(f"case {spec.get('key')} failed (exit {proc.returncode}):\n{tail}")


@dataclass(slots=True)
class Runner:
    """Runs cases against the databases; keeps the warm-up snapshots."""

    db: Database
    cache: Path
    change_backup: Path
    snapshots: dict[Path, str] = field(default_factory=dict)
    counter: int = 0

    async def run(self, case: Case, *, profile_dir: Path | None = None) -> dict[str, Any]:
        self.counter += 1
        name = f"{self.db.prefix}c{self.counter}"
        template = self.db.template if case.fresh else self.snapshots[case.scan_root]
        url = await self.db.create(name, template)
        work = Path(tempfile.mkdtemp(prefix="shelfscan-bench-"))
        changes: ChangeSet | None = None
        try:
            if case.change:
                changes = ChangeSet.apply(
                    case.scan_root, pick_changed(case.library, case.change), self.change_backup
                )
            spec = {
                "key": case.key,
                "kind": case.kind,
                "unit": case.unit,
                "url": url,
                "root": str(case.scan_root),
                "library": f"bench-{case.size}",
                "covers_dir": str(work / "covers"),
                "data_dir": str(work / "data"),
                "workers": case.workers,
            }
            if profile_dir is not None:
                spec["profile_dir"] = str(profile_dir)
                spec["profile_name"] = case.variant
            probe = probe_ms()
            result = await asyncio.to_thread(run_case_process, spec)
            result["probe_ms"] = probe
            if changes is not None:
                result["changed_files"] = len(changes.entries)
            return result
        finally:
            if changes is not None:
                changes.restore()
            await self.db.drop(name)
            await asyncio.to_thread(shutil.rmtree, work, True)

    async def snapshot(self, case: Case) -> dict[str, Any]:
        """A first scan kept as the template of this library's rescans (also warms the cache)."""
        self.counter += 1
        name = f"{self.db.prefix}snap{self.counter}"
        url = await self.db.create(name, self.db.template)
        work = Path(tempfile.mkdtemp(prefix="shelfscan-bench-"))
        try:
            spec = {
                "key": f"warm-up {case.size}",
                "kind": "scan",
                "unit": case.unit,
                "url": url,
                "root": str(case.scan_root),
                "library": f"bench-{case.size}",
                "covers_dir": str(work / "covers"),
                "data_dir": str(work / "data"),
            }
            result = await asyncio.to_thread(run_case_process, spec)
        finally:
            await asyncio.to_thread(shutil.rmtree, work, True)
        self.snapshots[case.scan_root] = name
        return result


def plan_cases(
    libraries: dict[int, Path], audio: Path | None, big: tuple[int, Path] | None, change: float
) -> list[Case]:
    """Every case of a round, in the base order that rounds rotate."""
    cases: list[Case] = []
    for size, lib in sorted(libraries.items()):
        root = lib / "ebooks"
        cases += [
            Case("naive", size, lib, root, "naive", "books"),
            Case("w1", size, lib, root, "scan", "books", workers=1),
            Case("default", size, lib, root, "scan", "books"),
            Case("nochange", size, lib, root, "scan", "files", fresh=False),
            Case("changed1", size, lib, root, "scan", "files", fresh=False, change=change),
        ]
    if audio is not None:
        files = sum(1 for _ in _audio_files(audio / "audiobooks"))
        cases.append(
            Case("audio", files, audio, audio / "audiobooks", "scan", "files", tree="audio files")
        )
    if big is not None:
        size, lib = big
        root = lib / "ebooks"
        cases += [
            Case("discover", size, lib, root, "plan", "files", tree="placeholders"),
            Case("placeholders", size, lib, root, "scan", "files", tree="placeholders"),
            Case("nochange", size, lib, root, "scan", "files", fresh=False, tree="placeholders"),
        ]
    return cases


def describe_library(library: Path) -> dict[str, Any]:
    """What the generator's manifest says the library holds (the ground truth for checks)."""
    from shelfscan.testing.library import load_manifest

    epubs = [e for e in load_manifest(library / "manifest.jsonl") if e.kind == "epub"]
    return {
        "path": str(library),
        "epubs": len(epubs),
        "epubs_with_cover": sum(1 for e in epubs if e.has_cover),
        "bytes": sum(e.bytes for e in epubs),
    }


def _audio_files(root: Path) -> Iterator[Path]:
    for folder, _, files in os.walk(root):
        for name in files:
            if name.lower().endswith((".mp3", ".m4b", ".m4a")):
                yield Path(folder) / name


async def run_benchmark(args: argparse.Namespace, admin_url: str) -> dict[str, Any]:
    from shelfscan.testing.library import generate_library_cached

    log = _log
    cache: Path = args.cache
    sizes = sorted({args.books, *[s for s in args.sizes if 0 < s < args.books]})
    libraries: dict[int, Path] = {}
    started = time.perf_counter()
    restore_pending(cache / ".bench-changed")
    for size in sizes:
        log(f"library: {size:,} EPUBs (cached under {cache})")
        libraries[size] = await asyncio.to_thread(
            generate_library_cached, cache, books=size, seed=args.seed, jobs=args.jobs
        )
    audio = None
    if args.audio > 0:
        log(f"library: {args.audio:,} audiobooks")
        audio = await asyncio.to_thread(
            generate_library_cached,
            cache,
            books=max(50, args.audio // 5),
            audio=args.audio,
            seed=args.seed,
            jobs=args.jobs,
        )
    big = None
    if not args.no_100k:
        log(f"library: {args.big:,} placeholders")
        big_lib = await asyncio.to_thread(
            generate_library_cached,
            cache,
            books=args.big,
            placeholders=True,
            seed=args.seed,
            jobs=args.jobs,
        )
        big = (args.big, big_lib)
    generated_s = time.perf_counter() - started
    library_info = {size: describe_library(lib) for size, lib in libraries.items()}

    db = Database(admin_url)
    runner = Runner(db, cache, cache / ".bench-changed")
    cases = plan_cases(libraries, audio, big, args.change_fraction)
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    noise: list[dict[str, Any]] = []
    warmups: dict[str, Any] = {}
    profiles: list[dict[str, Any]] = []
    try:
        await db.create_template()
        pg_version = await db.version()
        for case in cases:
            if case.scan_root not in runner.snapshots and any(
                not c.fresh and c.scan_root == case.scan_root for c in cases
            ):
                log(f"warm-up and snapshot: first scan of {case.scan_root}")
                warm = await runner.snapshot(case)
                warmups[str(case.scan_root)] = {
                    "seconds": warm["seconds"],
                    "counts": warm["counts"],
                }
        for rnd in range(args.rounds):
            probes = [probe_ms() for _ in range(5)]
            shift = rnd % len(cases)
            order = cases[shift:] + cases[:shift]
            noise.append(
                {"round": rnd + 1, "probe_ms": probes, "median_ms": statistics.median(probes)}
            )
            log(
                f"round {rnd + 1}/{args.rounds}: noise probe median {statistics.median(probes):.0f} ms"
            )
            for position, case in enumerate(order):
                result = await runner.run(case)
                result.update(round=rnd + 1, position=position + 1)
                runs[case.key].append(result)
                rate = result["items"] / result["seconds"] if result["seconds"] else 0.0
                log(
                    f"  {case.key:<22} {result['seconds']:8.3f} s  {rate:9,.0f} {case.unit}/s"
                    f"  (probe {result['probe_ms']:.0f} ms)"
                )
        report = build_report(args, cases, runs, noise, warmups, pg_version, generated_s)
        report["libraries"] = {str(size): info for size, info in library_info.items()}
        report["targets"] = evaluate_targets(report, args)
        wanted = profile_cases(report, cases, args)
        if wanted and importlib.util.find_spec("pyinstrument") is None:
            log("not profiling: pyinstrument is missing (pip install -e '.[bench]')")
            report["profile_error"] = "pyinstrument is not installed"
            wanted = []
        for case in wanted:
            log(f"profiling {case.key} (pyinstrument)")
            try:
                profiled = await runner.run(case, profile_dir=args.out)
            except BenchError as exc:  # the measurements stand without a profile
                log(f"profiling {case.key} failed: {exc}")
                report["profile_error"] = str(exc)[-1000:]
                continue
            if profiled.get("profile") is not None:
                profiled["profile"]["key"] = case.key
                profiled["profile"]["seconds_under_profiler"] = profiled["seconds"]
                profiles.append(profiled["profile"])
        report["profiles"] = profiles
        return report
    finally:
        await db.drop_all()
        restore_pending(cache / ".bench-changed")


def profile_cases(
    report: dict[str, Any], cases: list[Case], args: argparse.Namespace
) -> list[Case]:
    """The scans to profile: those behind a missed target (auto), or the first scan (always)."""
    if args.profile == "never":
        return []
    keys: list[str] = []
    for target in report["targets"]:
        if target["met"] is False or args.profile == "always":
            name = target["target"]
            if name.startswith(("first scan", "covers")):
                keys.append(f"default@{args.books}")
            elif name.startswith("audio"):
                keys.extend(c.key for c in cases if c.variant == "audio")
            elif name.startswith("no-change"):
                keys.append(f"nochange@{name.split('(')[1].split()[0]}")
            elif name.startswith("rescan"):
                keys.append(f"changed1@{args.books}")
            elif name.startswith("peak RSS"):
                keys.append(f"placeholders@{args.big}")
    if args.profile == "always":
        keys = [f"default@{args.books}"] + [k for k in keys if k.startswith("audio")]
    chosen = list(dict.fromkeys(keys))
    return [c for key in chosen for c in cases if c.key == key]


# --- the report ----------------------------------------------------------------------------------


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 4) if present else None


def _other_cpu(result: dict[str, Any]) -> float:
    """Busy CPU time of everything else: other users' processes, kernel threads (writeback)."""
    ours = float(result["cpu_main_s"] + result["cpu_children_s"] + (result["cpu_pg_s"] or 0.0))
    busy = float(result["machine"]["busy_s"])
    return round(max(0.0, busy - ours), 2)


def summarise(case: Case, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds; the rate is items at the median time."""
    seconds = [r["seconds"] for r in results]
    items = int(statistics.median(r["items"] for r in results))
    median_s = statistics.median(seconds)
    return {
        "seconds": round(median_s, 4),
        "seconds_min": round(min(seconds), 4),
        "seconds_max": round(max(seconds), 4),
        "items": items,
        "rate": round(items / median_s, 1) if median_s else 0.0,
        "cpu_main_s": _median([r["cpu_main_s"] for r in results]),
        "cpu_children_s": _median([r["cpu_children_s"] for r in results]),
        "cpu_pg_s": _median([r["cpu_pg_s"] for r in results]),
        "machine_busy": _median([r["machine"]["busy"] for r in results]),
        "cpu_other_s": _median([_other_cpu(r) for r in results]),
        "rss_main_mb": _median([r["rss_main_mb"] for r in results]),
        "rss_total_mb": _median([r["rss_total_mb"] for r in results]),
        "rss_total_mb_max": max(r["rss_total_mb"] for r in results),
        "startup_s": _median([r.get("startup_s") for r in results]),
        "probe_ms": _median([r["probe_ms"] for r in results]),
    }


def build_report(
    args: argparse.Namespace,
    cases: list[Case],
    runs: dict[str, list[dict[str, Any]]],
    noise: list[dict[str, Any]],
    warmups: dict[str, Any],
    pg_version: str,
    generated_s: float,
) -> dict[str, Any]:
    variants: list[dict[str, Any]] = []
    for case in cases:
        results = runs[case.key]
        variants.append(
            {
                "key": case.key,
                "variant": case.variant,
                "label": VARIANT_LABELS[case.variant],
                "size": case.size,
                "unit": case.unit,
                "kind": case.kind,
                "tree": case.tree,
                "library": str(case.library),
                "median": summarise(case, results),
                "runs": results,
            }
        )
    naive_rates = {v["size"]: v["median"]["rate"] for v in variants if v["variant"] == "naive"}
    main_naive = naive_rates.get(args.books) or next(iter(naive_rates.values()), 0.0)
    for v in variants:
        base = naive_rates.get(v["size"], main_naive)
        v["ratio_basis"] = f"naive@{v['size'] if v['size'] in naive_rates else args.books}"
        v["ratio_to_naive"] = round(v["median"]["rate"] / base, 2) if base else None
    probes = [p for n in noise for p in n["probe_ms"]]
    report: dict[str, Any] = {
        "schema": SCHEMA_VERSION,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench " + " ".join(sys.argv[1:]),
        "machine": machine_info(pg_version),
        "params": {
            "books": args.books,
            "rounds": args.rounds,
            "seed": args.seed,
            "audio": args.audio,
            "big": None if args.no_100k else args.big,
            "change_fraction": args.change_fraction,
            "generation_s": round(generated_s, 1),
        },
        "noise": {
            "rounds": noise,
            "min_ms": min(probes) if probes else None,
            "median_ms": statistics.median(probes) if probes else None,
            "max_ms": max(probes) if probes else None,
            "note": "2M-iteration pure-Python loop timed before each round (5x) and each case (1x); "
            "a median well above the run's minimum means the host was slowing us down",
        },
        "warmups": warmups,
        "variants": variants,
    }
    return report


def _find(report: dict[str, Any], key: str) -> dict[str, Any] | None:
    return next((v for v in report["variants"] if v["key"] == key), None)


def evaluate_targets(report: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """The issue's targets at --books (and the placeholder tree), each met, missed or not measured."""
    n = args.books
    targets: list[dict[str, Any]] = []

    def add(name: str, measured: str, met: bool | None) -> None:
        targets.append({"target": name, "measured": measured, "met": met})

    first, naive = _find(report, f"default@{n}"), _find(report, f"naive@{n}")
    if first and naive:
        ratio = first["ratio_to_naive"] or 0.0
        add(
            f"first scan >= {TARGET_RATIO:.0f}x naive ({n:,} EPUBs)",
            f"{ratio:.1f}x",
            ratio >= TARGET_RATIO,
        )
        rate = first["median"]["rate"]
        add(
            f"first scan >= {TARGET_FIRST_BOOKS_S:,.0f} books/s",
            f"{rate:,.0f} books/s",
            rate >= TARGET_FIRST_BOOKS_S,
        )
        rows = first["runs"][-1]["rows"]
        expected = report.get("libraries", {}).get(str(n), {}).get("epubs_with_cover")
        ok = (
            rows["books_with_cover"] == expected
            and rows["cover_files"] >= min(1, rows["books_with_cover"])
            and rows["books_without_file"] == 0
            and rows["books"] == n
        )
        add(
            "covers stored, every book whole",
            f"{rows['books_with_cover']:,} books with a cover (manifest: {expected:,}), "
            f"{rows['cover_files']:,} covers readable from packs, {rows['books']:,} books, "
            f"{rows['books_without_file']} without a file",
            ok,
        )
    for key in (f"nochange@{n}", f"nochange@{args.big}"):
        v = _find(report, key)
        label = f"no-change rescan >= {TARGET_NOCHANGE_FILES_S:,.0f} files/s ({key.split('@')[1]} files)"
        if v is None:
            add(label, "not measured", None)
        else:
            rate = v["median"]["rate"]
            add(label, f"{rate:,.0f} files/s", rate >= TARGET_NOCHANGE_FILES_S)
    changed, still = _find(report, f"changed1@{n}"), _find(report, f"nochange@{n}")
    if changed and still and first:
        t_c, t_n, t_f = (
            changed["median"]["seconds"],
            still["median"]["seconds"],
            first["median"]["seconds"],
        )
        updated = [r["counts"].get("books_updated", 0) for r in changed["runs"]]
        expected = [r.get("changed_files", 0) for r in changed["runs"]]
        extra = t_c - t_n
        add(
            "rescan with 1% changed costs O(changed)",
            f"{t_c:.3f} s vs {t_n:.3f} s no-change ({t_c / t_n:.2f}x); +{extra:.3f} s = "
            f"{extra / t_f:.1%} of a first scan ({t_f:.2f} s); books_updated {updated} of {expected}",
            extra <= CHANGED_BUDGET * t_f and updated == expected,
        )
    big = [v for v in report["variants"] if v["size"] == args.big and v["tree"] == "placeholders"]
    label = f"peak RSS <= {TARGET_RSS_MB:.0f} MB ({args.big:,}-file scans)"
    if not big:
        add(label, "not measured", None)
    else:
        # The worst run of any scan of the big tree; workers' peaks are summed (shared pages twice).
        worst = max(big, key=lambda v: v["median"]["rss_total_mb_max"])
        peak = worst["median"]["rss_total_mb_max"]
        main = max(r["rss_main_mb"] for v in big for r in v["runs"])
        add(
            label,
            f"{peak:.0f} MB with the parse workers, worst: {worst['key']} "
            f"(scan process alone at most {main:.0f} MB)",
            peak <= TARGET_RSS_MB,
        )
    audio = next((v for v in report["variants"] if v["variant"] == "audio"), None)
    if audio is None:
        add(f"audio first scan >= {TARGET_AUDIO_FILES_S:,.0f} files/s", "not measured", None)
    else:
        rate = audio["median"]["rate"]
        add(
            f"audio first scan >= {TARGET_AUDIO_FILES_S:,.0f} files/s",
            f"{rate:,.0f} files/s",
            rate >= TARGET_AUDIO_FILES_S,
        )
    return targets


def machine_info(pg_version: str) -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError, IndexError):
        mem_gib = round(int(Path("/proc/meminfo").read_text().split()[1]) / 1024 / 1024, 1)
    try:
        from importlib.metadata import version

        shelfscan_version = version("shelfscan")
    except Exception:
        shelfscan_version = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": mem_gib,
        "kernel": platform.release(),
        "python": platform.python_version(),
        "postgresql": pg_version,
        "shelfscan": shelfscan_version,
    }


def _fmt_s(m: dict[str, Any]) -> str:
    return f"{m['seconds']:.3f} ({m['seconds_min']:.3f}–{m['seconds_max']:.3f})"


def _fmt_cpu(m: dict[str, Any]) -> str:
    main, kids = m["cpu_main_s"] or 0.0, m["cpu_children_s"] or 0.0
    return f"{main + kids:.2f} ({main:.2f} + {kids:.2f})"


def render_markdown(report: dict[str, Any]) -> str:
    """The results as Markdown: machine, table, targets, noise, profile."""
    mach, params, noise = report["machine"], report["params"], report["noise"]
    lines = [
        f"# shelfscan benchmark — {report['created']}",
        "",
        f"`{report['command']}` · {mach['cores']} × {mach['cpu']} · {mach['memory_gib']} GiB · "
        f"Python {mach['python']} · PostgreSQL {mach['postgresql']} · Linux {mach['kernel']} · "
        f"{params['rounds']} interleaved rounds, medians (min–max) · warm page cache",
        "",
        "| Variant | Library | Median s (min–max) | Throughput | × naive | CPU shelfscan s (main + children) "
        "| CPU PostgreSQL s | Machine busy (other CPU s) | Peak RSS MB (scan / +workers) | Outcome |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for v in report["variants"]:
        m = v["median"]
        outcome = _outcome(v)
        pg = "—" if m["cpu_pg_s"] is None else f"{m['cpu_pg_s']:.2f}"
        ratio = "—" if v["ratio_to_naive"] is None else f"{v['ratio_to_naive']:.1f}×"
        lines.append(
            f"| {v['label']} | {v['size']:,} {v['tree']} | {_fmt_s(m)} | "
            f"**{m['rate']:,.0f} {v['unit']}/s** | {ratio} | {_fmt_cpu(m)} | {pg} | "
            f"{m['machine_busy']:.0%} ({m['cpu_other_s']:.1f}) | "
            f"{m['rss_main_mb']:.0f} / {m['rss_total_mb']:.0f} | {outcome} |"
        )
    lines += [
        "",
        "× naive: throughput over the naive baseline's books/s at the same library size "
        "(rows without a naive run of their size use the largest EPUB library's).",
        "CPU children: the parse workers (and the forkserver). Pool start-up, before the clock: "
        + ", ".join(
            f"{v['key']} {v['median']['startup_s']:.2f} s"
            for v in report["variants"]
            if v["median"]["startup_s"] and v["variant"] in ("w1", "default")
        )
        + ".",
        "Machine busy: share of both cores busy during the scan (/proc/stat); other CPU: busy time "
        "not spent by the scan's processes or PostgreSQL (other users' jobs, kernel writeback).",
        "",
        "## Targets",
        "",
        "| Target | Measured | Met |",
        "|---|---|---|",
    ]
    for t in report["targets"]:
        met = {True: "✅ yes", False: "❌ **no**", None: "— not measured"}[t["met"]]
        lines.append(f"| {t['target']} | {t['measured']} | {met} |")
    lines += [
        "",
        "## Noise probe",
        "",
        f"Run: min {noise['min_ms']} / median {noise['median_ms']} / max {noise['max_ms']} ms "
        f"({noise['note']}).",
        "",
        "| Round | probe ms (5 samples) | median |",
        "|---|---|---|",
    ]
    for n in noise["rounds"]:
        lines.append(
            f"| {n['round']} | {', '.join(f'{p:.0f}' for p in n['probe_ms'])} | {n['median_ms']:.0f} |"
        )
    rows = _rows_line(report)
    if rows:
        lines += ["", "## Rows written (last round)", "", *rows]
    for profile in report.get("profiles") or []:
        lines += ["", f"## Profile of {profile['key']} (pyinstrument)", ""]
        lines += _profile_lines(profile)
    return "\n".join(lines) + "\n"


def _outcome(v: dict[str, Any]) -> str:
    counts = v["runs"][-1]["counts"]
    if v["variant"] == "naive":
        return f"{counts['books']:,} books, {counts['statements']:,} statements"
    if v["kind"] == "plan":
        return f"{counts['files_seen']:,} seen, {counts['new']:,} new, {counts['units']:,} units"
    text = f"{counts.get('books_added', 0):,} added, {counts.get('books_updated', 0):,} updated"
    if counts.get("files_failed"):
        text += f", {counts['files_failed']:,} failed"
    return text


def _rows_line(report: dict[str, Any]) -> list[str]:
    keys = (
        "books",
        "files",
        "persons",
        "covers",
        "book_authors",
        "book_genres",
        "book_series",
        "file_identifiers",
        "chapters",
    )
    out = ["| Variant | " + " | ".join(keys) + " |", "|---|" + "---|" * len(keys)]
    for v in report["variants"]:
        if v["variant"] in ("naive", "w1", "default") and v["size"] == report["params"]["books"]:
            rows = v["runs"][-1]["rows"]
            out.append(f"| {v['key']} | " + " | ".join(f"{rows.get(k, 0):,}" for k in keys) + " |")
    return out if len(out) > 2 else []


def _profile_lines(profile: dict[str, Any]) -> list[str]:
    def table(rows: list[dict[str, Any]]) -> list[str]:
        out = ["| Where | s | share |", "|---|---|---|"]
        out += [f"| `{h['where']}` | {h['seconds']:.3f} | {h['share']:.1%} |" for h in rows]
        return out

    lines = [
        f"Scan process (the event loop): {profile['main_seconds']:.2f} s wall under the profiler, "
        f"{profile.get('main_cpu_seconds', 0):.2f} s CPU; unprofiled the same scan takes "
        f"the median of the table above. Files: {', '.join(profile.get('files', []))}.",
        "",
        "Self time per file:function (waiting summed in the first row):",
        "",
        *table(profile.get("main", [])),
        "",
        "Time under shelfscan functions (inclusive; async ones include their awaits):",
        "",
        *table(profile.get("main_inclusive", [])),
    ]
    if profile.get("parse"):
        lines += [
            "",
            f"Parse stage: {profile['parse_files']:,} files through `parse_units` serially in one "
            f"process, chunks of 50, covers to a fresh folder on the same disk "
            f"({profile['parse_seconds']:.2f} s under the profiler; this is what each pool worker runs):",
            "",
            *table(profile["parse"]),
        ]
    if profile.get("parse_error"):
        lines.append(f"\nParse-stage profile failed: {profile['parse_error']}")
    return lines


def render_plot(report: dict[str, Any], path: Path) -> bool:
    """Throughput against library size; False when matplotlib is not installed."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    variants = report["variants"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6))
    styles = {"naive": ("tab:red", "o"), "w1": ("tab:orange", "s"), "default": ("tab:blue", "D")}
    for name, (color, marker) in styles.items():
        points = sorted((v["size"], v["median"]["rate"]) for v in variants if v["variant"] == name)
        if points:
            left.plot(
                *zip(*points, strict=True),
                marker=marker,
                color=color,
                label=PLOT_LABELS[name],
            )
    for v in variants:
        if v["variant"] == "placeholders":
            left.scatter(
                [v["size"]],
                [v["median"]["rate"]],
                marker="o",
                facecolors="none",
                edgecolors="tab:blue",
                label="shelfscan, defaults: placeholders (empty files → error rows)",
            )
        if v["variant"] == "audio":
            left.scatter(
                [v["size"]],
                [v["median"]["rate"]],
                marker="^",
                color="tab:green",
                label="shelfscan, defaults: audio files (files/s)",
            )
    left.axhline(
        TARGET_FIRST_BOOKS_S,
        color="grey",
        linestyle="--",
        linewidth=1,
        label="target 2,000 books/s",
    )
    left.set(
        xscale="log",
        yscale="log",
        xlabel="library size (files)",
        ylabel="first scan, books/s",
        title="First full scan",
    )
    left.legend(fontsize=7)
    for name, color, marker in (
        ("nochange", "tab:purple", "D"),
        ("changed1", "tab:brown", "s"),
        ("discover", "tab:cyan", "o"),
    ):
        points = sorted((v["size"], v["median"]["rate"]) for v in variants if v["variant"] == name)
        if points:
            right.plot(
                *zip(*points, strict=True),
                marker=marker,
                color=color,
                label=PLOT_LABELS[name],
            )
    right.axhline(
        TARGET_NOCHANGE_FILES_S,
        color="grey",
        linestyle="--",
        linewidth=1,
        label="target 25,000 files/s",
    )
    right.set(
        xscale="log", yscale="log", xlabel="library size (files)", ylabel="files/s", title="Rescans"
    )
    right.legend(fontsize=7)
    fig.suptitle(
        f"shelfscan throughput vs library size — {report['machine']['cores']} cores, "
        f"medians of {report['params']['rounds']} interleaved rounds",
        fontsize=10,
    )
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    os.replace(tmp, path)
    return True


def write_outputs(report: dict[str, Any], out: Path) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "latest.json",
        "markdown": out / "latest.md",
        "plot": out / "throughput.png",
    }
    report["outputs"] = {"plot": paths["plot"].name if render_plot(report, paths["plot"]) else None}
    for key, text in (
        ("json", json.dumps(report, indent=1, ensure_ascii=False) + "\n"),
        ("markdown", render_markdown(report)),
    ):
        tmp = paths[key].with_name(paths[key].name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, paths[key])
    return paths


# --- command line --------------------------------------------------------------------------------


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _sizes(text: str) -> list[int]:
    return [int(s) for s in text.split(",") if s.strip()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark shelfscan against the naive baseline, interleaved, as medians of rounds.",
    )
    parser.add_argument(
        "--books", type=int, default=10_000, help="EPUBs in the main library (default 10000)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument(
        "--sizes", type=_sizes, default=[1000], help="smaller libraries for the plot (default 1000)"
    )
    parser.add_argument(
        "--audio", type=int, default=None, help="audiobooks (default books/10, at most 1000)"
    )
    parser.add_argument(
        "--big",
        type=int,
        default=100_000,
        help="placeholder files of the big tree (default 100000)",
    )
    parser.add_argument("--no-100k", action="store_true", help="skip the big placeholder tree")
    parser.add_argument(
        "--database-url", help="a PostgreSQL server to use (default: an embedded pgserver)"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="where results go (default bench/results)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=DEFAULT_CACHE,
        help="generated libraries (default bench/cache)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 2, help="processes generating libraries"
    )
    parser.add_argument(
        "--change-fraction", type=float, default=0.01, help="EPUBs changed for the rescan (0.01)"
    )
    parser.add_argument(
        "--from-json", type=Path, metavar="JSON",
        help="measure nothing: re-evaluate the targets and re-write the table and plot of a results JSON",
    )  # fmt: skip
    parser.add_argument(
        "--profile", choices=("auto", "always", "never"), default="auto",
        help="profile the first scan when a target is missed (auto), always, or never",
    )  # fmt: skip
    return parser


def rerender(path: Path, args: argparse.Namespace) -> int:
    """Targets, Markdown and plot again from a results JSON (after a change to the report code)."""
    report = json.loads(path.read_text(encoding="utf-8"))
    params = report["params"]
    args.books, args.big = params["books"], params["big"] or args.big
    report["targets"] = evaluate_targets(report, args)
    paths = write_outputs(report, args.out.resolve())
    print(paths["markdown"].read_text(encoding="utf-8"))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.from_json is not None:
        return rerender(args.from_json, args)
    if args.books < 1 or args.rounds < 1:
        print("bench: --books and --rounds must be at least 1", file=sys.stderr)
        return 2
    if args.audio is None:
        args.audio = min(1000, max(10, args.books // 10))
    from shelfscan.logs import configure_logging

    configure_logging("console", "warning")  # migrations of the template: not news here
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    args.out = args.out.resolve()
    args.cache = args.cache.resolve()
    started = time.perf_counter()
    try:
        with database_server(args.database_url) as url:
            report = asyncio.run(run_benchmark(args, url))
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    report["elapsed_s"] = round(time.perf_counter() - started, 1)
    paths = write_outputs(report, args.out)
    print(paths["markdown"].read_text(encoding="utf-8"))
    _log("wrote " + ", ".join(str(p) for p in paths.values() if p.exists()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
