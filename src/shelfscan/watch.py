"""Live changes: watch library roots and enqueue targeted scans.

watchfiles gives inotify events where the filesystem has them; NFS, CIFS and
FUSE mounts do not deliver events for changes made elsewhere, so there (or when
asked) it polls the directory trees instead. Bursts are debounced into one
`scan_path` job per root. A periodic full scan catches whatever both missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Literal

import anyio
import asyncpg
import structlog
from watchfiles import awatch

from shelfscan.errors import one_line
from shelfscan.formats.registry import format_for_name
from shelfscan.formats.sidecars import is_sidecar_name
from shelfscan.jobs.contract import ScanFolders
from shelfscan.jobs.queue import JobQueue
from shelfscan.jobs.store import enqueue_due_full_scans
from shelfscan.scan.discovery import DEFAULT_RULES, IgnoreRules

WatchMode = Literal["auto", "events", "polling"]
NETWORK_FILESYSTEMS = frozenset(
    {
        "nfs",
        "nfs4",
        "cifs",
        "smb3",
        "smbfs",
        "9p",
        "fuse.sshfs",
        "fuse.rclone",
        "davfs",
        "afs",
        "ceph",
        "glusterfs",
    }
)


@dataclass(frozen=True, slots=True)
class WatchOptions:
    mode: WatchMode = "auto"
    debounce_ms: int = 1600
    poll_interval_s: float = 30.0
    full_scan_interval_s: float = 24 * 3600.0  # 0 disables the scheduled full scans
    ignore: IgnoreRules = DEFAULT_RULES  # changes below junk folders (@eaDir, ...) start no scan
    refresh_roots_s: float = 60.0


def filesystem_type(path: str) -> str | None:
    """The type of the mount holding `path`, from /proc/mounts (Linux); None when unknown."""
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as fh:
            mounts = [line.split()[1:3] for line in fh if len(line.split()) >= 3]
    except OSError:
        return None
    real = os.path.realpath(path)
    best: tuple[str, str | None] = ("", None)
    for mount_point, fstype in mounts:
        mount_point = mount_point.replace("\\040", " ")
        if (real == mount_point or real.startswith(mount_point.rstrip("/") + "/")) and len(
            mount_point
        ) > len(best[0]):
            best = (mount_point, fstype)
    return best[1]


def needs_polling(roots: list[str], mode: WatchMode) -> bool:
    if mode != "auto":
        return mode == "polling"
    return any(filesystem_type(r) in NETWORK_FILESYSTEMS for r in roots)


def relevant(path: str) -> bool:
    """Book files, sidecars and folders matter; temp files and dot-files do not."""
    name = os.path.basename(path)
    if name.startswith("."):
        return False
    return format_for_name(name) is not None or is_sidecar_name(name) or "." not in name


class LibraryWatcher:
    def __init__(self, pool: asyncpg.Pool, queue: JobQueue, options: WatchOptions) -> None:
        self.pool = pool
        self.queue = queue
        self.options = options
        self.log = structlog.get_logger("shelfscan.watch")
        self.polling: bool | None = None
        self.watching: dict[str, tuple[int, int]] = {}

    async def _roots(self) -> dict[str, tuple[int, int]]:
        rows = await self.pool.fetch(
            "SELECT id, library_id, path FROM shelfscan.library_paths ORDER BY id"
        )
        present = await asyncio.to_thread(
            lambda: {r["path"] for r in rows if os.path.isdir(r["path"])}
        )
        return {r["path"]: (r["library_id"], r["id"]) for r in rows if r["path"] in present}

    async def run(self, stopping: asyncio.Event) -> None:
        tasks = [asyncio.create_task(self._watch_loop(stopping), name="watch")]
        if self.options.full_scan_interval_s > 0:
            tasks.append(asyncio.create_task(self._schedule_loop(stopping), name="full-scans"))
        try:
            await stopping.wait()
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task

    async def _watch_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            roots = await self._roots()
            if not roots:
                await _sleep_or_stop(stopping, self.options.refresh_roots_s)
                continue
            self.watching = roots
            self.polling = await asyncio.to_thread(needs_polling, list(roots), self.options.mode)
            self.log.info("watch_started", roots=list(roots), polling=self.polling)
            # Restart now and then so that libraries added later are watched too.
            restart = asyncio.Event()
            timer = asyncio.get_running_loop().call_later(self.options.refresh_roots_s, restart.set)
            stop_any = asyncio.Event()
            relay = asyncio.create_task(_first_of(stopping, restart, stop_any))
            try:
                async for changes in awatch(
                    *roots,
                    debounce=self.options.debounce_ms,
                    stop_event=stop_any,
                    force_polling=self.polling,
                    poll_delay_ms=int(self.options.poll_interval_s * 1000),
                    recursive=True,
                    ignore_permission_denied=True,
                ):
                    await self._enqueue(roots, [path for _, path in changes])
            except Exception as exc:
                # Whatever failed (the watcher, the database behind an enqueue), watching goes on.
                self.log.warning("watch_failed", error=one_line(exc))
                await _sleep_or_stop(stopping, 5.0)
            finally:
                timer.cancel()
                relay.cancel()

    async def _enqueue(self, roots: dict[str, tuple[int, int]], paths: list[str]) -> None:
        by_root: dict[str, set[str]] = defaultdict(set)
        for path in paths:
            if not relevant(path):
                continue
            for root in roots:
                if path == root or path.startswith(root.rstrip("/") + "/"):
                    rel = path[len(root.rstrip("/")) + 1 :] if path != root else ""
                    if not self.options.ignore.skips_path(rel):
                        by_root[root].add(rel)
                    break
        for root, rels in by_root.items():
            library_id, root_id = roots[root]
            payload = ScanFolders(library_id, root_id, tuple(sorted(rels)))
            job_id = await self.queue.enqueue(payload, priority=2)
            self.log.info("watch_changes", job_id=job_id, root=root, paths=len(rels))

    async def _schedule_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                queued = await enqueue_due_full_scans(self.pool, self.options.full_scan_interval_s)
                if queued:
                    self.log.info("full_scans_scheduled", libraries=queued)
            except Exception as exc:
                self.log.warning("schedule_failed", error=one_line(exc))
            await _sleep_or_stop(stopping, min(300.0, self.options.full_scan_interval_s / 4))


async def _sleep_or_stop(stopping: asyncio.Event, seconds: float) -> None:
    # anyio's cancel scope: the wait ends at the deadline without a TimeoutError to swallow.
    with anyio.move_on_after(seconds):
        await stopping.wait()


async def _first_of(a: asyncio.Event, b: asyncio.Event, out: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(a.wait()), asyncio.ensure_future(b.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        out.set()
    finally:
        for w in waits:
            w.cancel()
