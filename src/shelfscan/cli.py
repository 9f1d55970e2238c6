"""`shelfscan` command line.

For a small library the start-up is most of a scan's run, so this module imports only
what every command needs; a command's own code (`_COMMAND_MODULES`) is imported while
the embedded PostgreSQL boots (on the other core), not before it starts.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import importlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import asyncpg

from shelfscan.config import Settings
from shelfscan.db.connect import database_url, open_pool, redact_url
from shelfscan.db.migrate import migrate
from shelfscan.errors import ShelfscanError, one_line
from shelfscan.logs import configure_logging

if TYPE_CHECKING:
    from shelfscan.scan.contract import ScanResult


class CliError(ShelfscanError):
    """A one-line reason the command could not do its job (exit status 1)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="shelfscan", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    scan = sub.add_parser("scan", help="scan folders into the catalogue")
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument("--library", help="library name (default: the first folder's name)")
    scan.add_argument(
        "--workers", type=int, help="coroutine workers (default SHELFSCAN_WORKERS or 4)"
    )
    scan.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    export = sub.add_parser("export", help="print the catalogue as JSON Lines, one book per line")
    export.add_argument("--library", help="only this library")

    sub.add_parser("migrate", help="apply database migrations")

    serve = sub.add_parser("serve", help="run as a daemon: claim and run jobs from the jobs table")
    serve.add_argument(
        "--http",
        metavar="[HOST]:PORT",
        help="serve /healthz and /metrics, e.g. :8080 (default SHELFSCAN_HTTP; none: off)",
    )
    serve.add_argument(
        "--concurrency", type=int, help="jobs run at once (default SHELFSCAN_CONCURRENCY or 2)"
    )
    serve.add_argument(
        "--poll-only", action="store_true", help="do not LISTEN; poll the jobs table only"
    )
    serve.add_argument(
        "--watch", action="store_true", help="watch library folders and scan what changes"
    )

    cover = sub.add_parser("cover", help="write a cover image (by sha256) to a file or stdout")
    cover.add_argument("sha256")
    cover.add_argument("-o", "--output", help="file to write (default: stdout)")

    covers = sub.add_parser("covers", help="manage the cover packs")
    covers_sub = covers.add_subparsers(dest="covers_command", required=True)
    compact = covers_sub.add_parser(
        "compact", help="rewrite mostly-unreferenced packs (safe while scans run)"
    )
    compact.add_argument(
        "--grace", type=float, default=3600.0, metavar="SECONDS",
        help="leave packs younger than this, delete retired ones older (default 3600)",
    )  # fmt: skip
    compact.add_argument("--json", action="store_true", help="print the result as JSON")

    purge = sub.add_parser("purge", help="delete files missing for longer than a grace period")
    purge.add_argument("--older-than", required=True, metavar="AGE", help="e.g. 30d, 12h, 90m")
    purge.add_argument("--library", help="only this library")

    jobs = sub.add_parser("jobs", help="inspect and steer jobs")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    enqueue = jobs_sub.add_parser("enqueue", help="queue a job")
    enqueue.add_argument("what", choices=["scan"])
    enqueue.add_argument("--library", required=True)
    jobs_list = jobs_sub.add_parser("list", help="recent jobs")
    jobs_list.add_argument("--json", action="store_true", help="JSON Lines")
    jobs_list.add_argument("--limit", type=int, default=50)
    for name, text in (
        ("show", "one job"),
        ("cancel", "cancel a job that has not finished (and its parts)"),
        ("retry", "queue a job again now (any job that has not succeeded)"),
    ):
        cmd = jobs_sub.add_parser(name, help=text)
        cmd.add_argument("id", type=int)
    logs = jobs_sub.add_parser("logs", help="a job's log events")
    logs.add_argument("id", type=int)
    logs.add_argument(
        "--follow", action="store_true", help="keep printing new events until the job ends"
    )

    library = sub.add_parser("library", help="manage libraries without scanning")
    lib_sub = library.add_subparsers(dest="library_command", required=True)
    lib_add = lib_sub.add_parser("add", help="create a library or add folders to it")
    lib_add.add_argument("name")
    lib_add.add_argument("paths", nargs="+", metavar="PATH")
    lib_list = lib_sub.add_parser("list", help="libraries and their folders")
    lib_list.add_argument("--json", action="store_true")
    lib_rm = lib_sub.add_parser(
        "remove", help="delete a library and its catalogue (files on disk untouched)"
    )
    lib_rm.add_argument("name")

    db = sub.add_parser("db", help="database helpers")
    db_sub = db.add_subparsers(dest="db_command", required=True)
    db_sub.add_parser("url", help="print the database URL (starts the embedded server if needed)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # platformdirs warns when XDG_RUNTIME_DIR is unset (containers, cron); harmless here.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    _tune_gc()
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_format, settings.log_level)
        return _dispatch(args, settings)
    except KeyboardInterrupt:
        print("shelfscan: interrupted", file=sys.stderr)
        return 130
    except BaseException as exc:
        leaf = _leaf(exc)
        if isinstance(leaf, BrokenPipeError):
            # `shelfscan export | head`: the reader left; that is not an error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        if isinstance(leaf, _DATABASE_ERRORS):
            print(f"shelfscan: database error: {redact_url(one_line(leaf))}", file=sys.stderr)
            return 1
        if isinstance(leaf, _ONE_LINE_ERRORS):
            # Their message is the reason; the class name would only be noise.
            print(
                f"shelfscan: {redact_url(one_line(str(leaf) or type(leaf).__name__))}",
                file=sys.stderr,
            )
            return 1
        raise


def _tune_gc() -> None:
    """Fewer, cheaper cycle collections for an allocation-heavy scan (~5% of its main-process
    CPU went to the collector at the default thresholds).

    Everything shelfscan runs is imported by now: `freeze` moves those long-lived objects
    out of the collector's sight, so a full collection no longer walks them, and a larger
    first generation collects the many short-lived records of a chunk less often. Cycles
    are rare in this code, so little waits longer to be freed.
    """
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


# Errors that are the user's or the environment's, not a bug: one line on stderr, exit 1.
# Every error shelfscan raises on purpose derives from the one root (docs/architecture.md);
# OSError is the environment's (a folder, a disk). The database's own errors name what
# went wrong; a traceback would only hide it. Anything else is a bug and keeps its traceback.
_ONE_LINE_ERRORS = (ShelfscanError, OSError)
_DATABASE_ERRORS = (
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    ConnectionError,
    TimeoutError,
)


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside exception groups (a TaskGroup wraps what failed)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


# What each command imports beyond this module: most of the CLI's import time for a scan.
_COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "scan": ("shelfscan.app", "shelfscan.catalogue.libraries", "shelfscan.scan.progress"),
    "export": ("shelfscan.catalogue.export",),
    "serve": ("shelfscan.daemon",),
    "jobs": ("shelfscan.admin",),
    "library": ("shelfscan.admin",),
    "covers": ("shelfscan.covers",),
    "cover": ("shelfscan.covers",),
}


def _importer(command: str) -> Callable[[], None]:
    def load() -> None:
        for name in _COMMAND_MODULES.get(command, ()):
            importlib.import_module(name)

    return load


def _dispatch(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "db":
        return _db_url(settings)
    with database_url(settings, while_starting=_importer(args.command)) as url:
        if args.command == "migrate":
            applied = asyncio.run(migrate(url))
            print(
                f"applied {len(applied)} migration(s)"
                + (": " + ", ".join(applied) if applied else "")
            )
            return 0
        if args.command == "export":
            return asyncio.run(_export(url, args.library))
        if args.command == "scan":
            return asyncio.run(_scan(url, settings, args))
        if args.command == "serve":
            from shelfscan.daemon import serve

            return asyncio.run(
                serve(
                    url,
                    settings,
                    args.http or settings.http,
                    args.concurrency,
                    args.poll_only,
                    args.watch,
                )
            )
        if args.command == "cover":
            return asyncio.run(_cover(url, settings, args.sha256, args.output))
        if args.command == "covers":
            from shelfscan.covers import compact_command

            return asyncio.run(compact_command(url, settings.covers_dir, args.grace, args.json))
        if args.command == "purge":
            return asyncio.run(_purge(url, parse_age(args.older_than), args.library))
        if args.command == "jobs":
            from shelfscan.admin import jobs_command

            return asyncio.run(jobs_command(url, settings, args))
        if args.command == "library":
            from shelfscan.admin import library_command

            return asyncio.run(library_command(url, args))
    raise CliError(f"unknown command {args.command}")


def _db_url(settings: Settings) -> int:
    if settings.database_url:
        print(settings.database_url)
        return 0
    from shelfscan.db.embedded import start_detached

    # Left running on purpose so the printed URL stays usable (e.g. for psql).
    print(start_detached(settings.data_dir))
    return 0


async def _export(url: str, library: str | None) -> int:
    from shelfscan.catalogue.export import export_books

    async with open_pool(url, max_size=2, application_name="shelfscan-cli/export") as pool:
        await migrate(url, pool)
        out = sys.stdout
        async for doc in export_books(pool, library):
            out.write(doc + "\n")
    return 0


async def _scan(url: str, settings: Settings, args: argparse.Namespace) -> int:
    from shelfscan.app import (
        SMALL_SCAN_FILES,
        make_executor,
        resolve_roots,
        run_scan_job,
        scanner_for,
    )
    from shelfscan.catalogue.libraries import default_library_name, ensure_library
    from shelfscan.scan.contract import ScanRequest
    from shelfscan.scan.progress import RichProgressView

    roots = resolve_roots(args.paths)
    for root in roots:
        if not root.is_dir():
            raise CliError(f"cannot scan {root}: no such folder")
    if args.workers is not None and not 1 <= args.workers <= 64:
        raise CliError("--workers must be between 1 and 64")
    settings = dataclasses.replace(settings, workers=args.workers or settings.workers)
    async with open_pool(
        url, max_size=settings.workers + 4, application_name="shelfscan-cli/scan"
    ) as pool:
        await migrate(url, pool)
        library = await ensure_library(pool, args.library or default_library_name(roots), roots)
        chosen = {str(r) for r in roots}
        library = dataclasses.replace(
            library, roots=tuple(r for r in library.roots if str(r.path) in chosen)
        )
        executor = make_executor(settings, inline_max_files=SMALL_SCAN_FILES)
        try:
            scanner = scanner_for(pool, settings, executor)
            request = ScanRequest.whole(library)
            if sys.stderr.isatty() and not args.json:
                with RichProgressView() as view:
                    _, result = await run_scan_job(pool, scanner, request, settings, view=view)
            else:
                _, result = await run_scan_job(pool, scanner, request, settings)
        finally:
            executor.close()
    _print_summary(result, as_json=args.json, library=library.name)
    return 0


def parse_age(text: str) -> float:
    """'30d' -> seconds; units s, m, h, d, w."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    value, unit = text[:-1], text[-1:].lower()
    if unit not in units or not value.replace(".", "", 1).isdigit():
        raise CliError(
            f"--older-than wants a number and a unit (s, m, h, d, w), e.g. 30d, not {text!r}"
        )
    return float(value) * units[unit]


async def _cover(url: str, settings: Settings, sha256: str, output: str | None) -> int:
    """Write one cover out of its pack; the file I/O runs through aiofiles, off the loop."""
    import aiofiles

    from shelfscan.covers import read_cover_async

    await migrate(url)
    async with open_pool(url, max_size=1, application_name="shelfscan-cli/cover") as pool:
        row = await pool.fetchrow(
            "SELECT pack, pack_offset, size FROM shelfscan.covers WHERE sha256 = $1", sha256.lower()
        )
    if row is None or row["pack"] is None:
        raise CliError(f"no cover with sha256 {sha256}")
    try:
        data = await read_cover_async(
            settings.covers_dir, row["pack"], row["pack_offset"], row["size"]
        )
    except (OSError, ValueError) as exc:
        raise CliError(f"cannot read cover {sha256}: {one_line(exc)}") from exc
    if output:
        async with aiofiles.open(output, "wb") as out:
            await out.write(data)
    else:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    return 0


async def _purge(url: str, older_than_s: float, library: str | None) -> int:
    from shelfscan.catalogue.known import purge_missing
    from shelfscan.catalogue.libraries import get_library

    await migrate(url)
    async with open_pool(url, max_size=2, application_name="shelfscan-cli/purge") as pool:
        library_id = None
        if library:
            found = await get_library(pool, library)
            if found is None:
                raise CliError(f"no library named {library!r}")
            library_id = found.id
        files, books = await purge_missing(pool, older_than_s, library_id)
    print(f"purged {files} missing file(s) and {books} book(s) left without files")
    return 0


def _print_summary(result: ScanResult, *, as_json: bool, library: str) -> None:
    if as_json:
        print(json.dumps(result.as_dict()))
        return
    s = result
    print(
        f"{library}: {s.books_added} added, {s.books_updated} updated, {s.books_unchanged} unchanged, "
        f"{s.books_missing} missing, {s.files_failed} failed; {s.files_seen} files in {s.elapsed_s:.2f}s"
        + (
            f"; {s.files_deferred} still being written, left for the next scan"
            if s.files_deferred
            else ""
        )
    )


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
