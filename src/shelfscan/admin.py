"""`shelfscan jobs ...` and `shelfscan library ...`: operators' commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import asyncpg

from shelfscan.app import owner_id, resolve_roots
from shelfscan.catalogue.libraries import ensure_library, get_library
from shelfscan.config import Settings
from shelfscan.db.connect import open_pool
from shelfscan.db.migrate import migrate
from shelfscan.errors import ShelfscanError
from shelfscan.jobs.contract import JobStatus, ScanLibrary
from shelfscan.jobs.queue import JobQueue
from shelfscan.jobs.store import (
    cancel_library_jobs,
    job_logs_after,
    job_rows,
    job_state,
    queued_scan_id,
)


class AdminError(ShelfscanError):
    """A one-line reason an operator's command could not be done."""


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")


async def jobs_command(url: str, settings: Settings, args: argparse.Namespace) -> int:
    await migrate(url)
    async with open_pool(url, max_size=2, application_name="shelfscan-cli/jobs") as pool:
        queue = JobQueue(pool, owner_id(), settings.lease_s)
        cmd = args.jobs_command
        if cmd == "enqueue":
            library = await get_library(pool, args.library)
            if library is None:
                raise AdminError(f"no library named {args.library!r}")
            job_id = await queue.enqueue(ScanLibrary(library.id))
            if job_id is None:
                existing = await queued_scan_id(pool, library.id)
                _out(f"a scan of {library.name} is already queued (job {existing})")
            else:
                _out(f"queued job {job_id}")
            return 0
        if cmd == "list":
            for row in reversed(await job_rows(pool, limit=args.limit)):
                if args.json:
                    keys = ("id", "kind", "state", "library", "attempts", "progress", "last_error")
                    _out(json.dumps({k: row[k] for k in keys}))
                else:
                    p = row["progress"] or {}
                    _out(
                        f"{row['id']:>6} {row['kind']:<13} {row['state']:<10} {row['library'] or '-':<20} "
                        f"try {row['attempts']}/{row['max_attempts']} "
                        f"{p.get('phase', '-')} {p.get('done', 0)}/{p.get('total', 0)}"
                        + (f"  {row['last_error']}" if row["last_error"] else "")
                    )
            return 0
        if cmd == "show":
            rows = await job_rows(pool, job_id=args.id)
            if not rows:
                raise AdminError(f"no job {args.id}")
            _out(json.dumps(rows[0], indent=2, default=str))
            return 0
        if cmd == "cancel":
            state = await queue.cancel(args.id)
            if state is None:
                raise AdminError(f"job {args.id} is unknown or already finished")
            _out(
                f"job {args.id} cancelled"
                if state == JobStatus.CANCELLED
                else f"job {args.id}: cancel requested; it stops at its next safe point"
            )
            return 0
        if cmd == "retry":
            previous = await queue.retry(args.id)
            if previous is None:
                raise AdminError(f"job {args.id} is unknown or succeeded; queue a new scan instead")
            _out(
                f"job {args.id} queued again"
                + (" (taken from its owner, which stops)" if previous == JobStatus.RUNNING else "")
            )
            return 0
        if cmd == "logs":
            await _logs(pool, args.id, args.follow)
            return 0
    raise AdminError(f"unknown jobs command {cmd}")


async def _logs(pool: asyncpg.Pool, job_id: int, follow: bool) -> None:
    last = 0
    while True:
        rows = await job_logs_after(pool, job_id, last)
        for r in rows:
            last = r["id"]
            doc: dict[str, Any] = {
                "at": r["at"].isoformat(),
                "level": r["level"],
                "event": r["event"],
            }
            if r["path"]:
                doc["path"] = r["path"]
            doc.update(r["fields"] or {})
            _out(json.dumps(doc, default=str))
        if not follow:
            return
        if await job_state(pool, job_id) not in ("queued", "running") and not rows:
            return
        await asyncio.sleep(1.0)


async def library_command(url: str, args: argparse.Namespace) -> int:
    await migrate(url)
    async with open_pool(url, max_size=2, application_name="shelfscan-cli/library") as pool:
        cmd = args.library_command
        if cmd == "add":
            roots = resolve_roots(args.paths)
            missing = [str(r) for r in roots if not r.is_dir()]
            if missing:
                raise AdminError(f"no such folder: {', '.join(missing)}")
            library = await ensure_library(pool, args.name, roots)
            _out(
                f"library {library.name} (id {library.id}): "
                + ", ".join(str(r.path) for r in library.roots)
            )
            return 0
        if cmd == "list":
            rows = await pool.fetch(
                """
                SELECT l.id, l.name, coalesce(array_agg(p.path ORDER BY p.id) FILTER (WHERE p.id IS NOT NULL),
                       '{}') AS paths,
                       (SELECT count(*) FROM shelfscan.books b WHERE b.library_id = l.id) AS books
                FROM shelfscan.libraries l LEFT JOIN shelfscan.library_paths p ON p.library_id = l.id
                GROUP BY l.id ORDER BY l.name
                """
            )
            for r in rows:
                doc = {
                    "id": r["id"],
                    "name": r["name"],
                    "paths": list(r["paths"]),
                    "books": r["books"],
                }
                _out(
                    json.dumps(doc)
                    if args.json
                    else f"{r['id']:>4} {r['name']:<24} {r['books']:>7} books  "
                    + ", ".join(doc["paths"])
                )
            return 0
        if cmd == "remove":
            async with pool.acquire() as conn, conn.transaction():
                # FOR UPDATE: a scan still writing books of it waits, then fails on the FK.
                library_id = await conn.fetchval(
                    "SELECT id FROM shelfscan.libraries WHERE name = $1 FOR UPDATE", args.name
                )
                if library_id is None:
                    raise AdminError(f"no library named {args.name!r}")
                await cancel_library_jobs(conn, library_id)
                # Books first: their links to persons, series, genres and tags do not cascade
                # from those, so deleting the library alone hit book_authors_person_id_fkey.
                await conn.execute("DELETE FROM shelfscan.books WHERE library_id = $1", library_id)
                await conn.execute("DELETE FROM shelfscan.libraries WHERE id = $1", library_id)
            _out(f"library {args.name} removed")
            return 0
    raise AdminError(f"unknown library command {cmd}")
