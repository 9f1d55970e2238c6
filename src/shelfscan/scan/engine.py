"""The scan engine: `Scanner.run(request, reporter)` is the one way into a scan.

The CLI, the daemon's job handlers and watch mode all call it, with a
`ScanRequest` (whole library, some folders, some files) and a `ScanReporter`;
it returns one `ScanResult`. Its phases, in order:

1. plan — walk the roots (or folders, or files), guard the roots, diff against
   the catalogue, group into units, set aside files still being written. Pure:
   it reads the catalogue and writes nothing, so a plan can be looked at (the
   bench does) or thrown away.
2. reconcile — apply what planning found without reading a file: moved files
   take their new place, unchanged files that had gone missing are restored.
3. read — the chunk pipeline (scan/pipeline.py), or, when the split policy says
   so and a dispatcher is at hand, parts run by other daemons.
4. finish — library-level bookkeeping, once per scan: vanished files are marked
   missing, sidecar sizes remembered. A part of a split scan skips it (the
   scan it belongs to does it once, after every part).
5. follow up — folders left to settle are scanned again later (dispatcher).

Each committed step reports the books it changed (`ScanReporter.changes`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import asyncpg

from shelfscan.catalogue.entities import EntityResolver
from shelfscan.catalogue.known import (
    KnownFile,
    KnownFiles,
    KnownSidecar,
    Move,
    apply_moves,
    books_with_path_fields,
    load_known_files,
    load_known_paths,
    load_known_sidecars,
    load_known_under,
    mark_missing,
    mark_restored,
    save_sidecars,
)
from shelfscan.catalogue.libraries import Library
from shelfscan.catalogue.writer import BookWriter
from shelfscan.scan.assemble import Assembler
from shelfscan.scan.contract import (
    CatalogueChanges,
    RootUnavailable,
    ScanDispatch,
    ScanOptions,
    ScanReporter,
    ScanRequest,
    ScanResult,
    ScanScope,
    ScanStats,
    SplitPolicy,
)
from shelfscan.scan.diff import ScanPlan, diff, fingerprinter
from shelfscan.scan.discovery import IgnoreRules, RootWalk, stat_files, walk_root
from shelfscan.scan.executor import ParseExecutor
from shelfscan.scan.grouping import Unit, plan_units
from shelfscan.scan.pipeline import ChunkPipeline, ReadOutcome, chunk_size_for, pack_units


@dataclass(frozen=True, slots=True)
class Survey:
    """What planning found: the diff's verdict (`ScanPlan`), the units to read, and
    those left to settle. Nothing of it is in the catalogue yet."""

    diff: ScanPlan
    roots: dict[int, str]
    units: list[Unit]
    settling: list[Unit]
    files_seen: int

    @property
    def files_to_read(self) -> int:
        return sum(u.size for u in self.units)


class Scanner:
    """Everything a scan needs, passed in once; `run` can be called many times (a daemon)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        executor: ParseExecutor,
        options: ScanOptions | None = None,
        split: SplitPolicy | None = None,
    ) -> None:
        self.pool = pool
        self.executor = executor
        self.options = options or ScanOptions()
        self.split = split or SplitPolicy()

    async def run(
        self,
        request: ScanRequest,
        reporter: ScanReporter,
        dispatch: ScanDispatch | None = None,
    ) -> ScanResult:
        """Plan, reconcile, read (or split), finish, follow up; one result."""
        started = time.perf_counter()
        options = request.options or self.options
        restarts = self.executor.restarts
        # Per scan, not per daemon: its figures are this scan's, and a name deleted
        # since (a removed library) cannot linger as a stale id.
        resolver = EntityResolver(self.pool)
        writer = BookWriter(self.pool)
        survey = await self.plan(request, reporter)
        files_to_read = survey.files_to_read
        self.executor.begin_scan(files_to_read)
        split = (
            dispatch is not None
            and request.scope is ScanScope.LIBRARY
            and self.split.splits(files_to_read)
        )
        reporter.info(
            "scan_started",
            scope=request.scope.value,
            workers=options.workers,
            parse_processes=self.executor.size,
            parse_kind=self.executor.kind,
            chunk_size=chunk_size_for(files_to_read, max(1, options.workers), options.chunk_size),
            files_to_read=files_to_read,
            split=split,
        )
        restored = await self._reconcile(request.library.id, survey, reporter)
        parts: list[ScanResult] = []
        if split:
            assert dispatch is not None
            parts = await self._read_in_parts(request, survey, dispatch, reporter)
            outcome = ReadOutcome()
        else:
            pipeline = ChunkPipeline(
                self.pool,
                request.library.id,
                self.executor,
                writer,
                Assembler(resolver, request.library.id),
                reporter,
                options,
            )
            outcome = await pipeline.read(survey.units, survey.roots)
        missing = 0
        if request.scope is not ScanScope.FILES:
            missing = await self._finish(request.library, survey, reporter)
        stats = ScanStats(
            resolver.figures(), writer.batches, writer.fallbacks, self.executor.restarts - restarts
        )
        result = ScanResult(
            books_added=outcome.added,
            books_updated=outcome.updated,
            books_unchanged=_unchanged_books(survey.diff),
            books_missing=missing,
            books_restored=restored,
            files_seen=survey.files_seen,
            files_read=files_to_read,
            files_failed=outcome.failed,
            covers_failed=outcome.covers_failed,
            files_deferred=outcome.deferred + sum(u.size for u in survey.settling),
            elapsed_s=round(time.perf_counter() - started, 3),
            stats=stats,
            deferred_folders=tuple(sorted({(u.root_id, u.folder) for u in survey.settling})),
        ).absorb(parts)
        if dispatch is not None and result.deferred_folders:
            await self._follow_up(request, result, dispatch, options)
        reporter.info("scan_finished", **result.as_dict())
        return result

    # -- plan (pure) -----------------------------------------------------------------------

    async def plan(self, request: ScanRequest, reporter: ScanReporter) -> Survey:
        """Walk, guard the roots, diff, group. Reads the catalogue; writes nothing."""
        reporter.progress.enter("discovery", 0)
        library = request.library
        options = request.options or self.options
        settle_s = options.settle_s
        if request.scope is ScanScope.LIBRARY:
            # The catalogue first: the walk then shares its path strings (see walk_root).
            known = await load_known_files(self.pool, library.id)
            walks = await asyncio.to_thread(_walk_all, library, options.ignore, known)
            for walk in walks:
                guard_root(walk, bool(walk.files), known.held(walk.root_id))
            sidecars = await load_known_sidecars(self.pool, library.id)
            return await self._survey(walks, known, sidecars, reporter, settle_s)
        root_id, root = request.root_id, request.root()
        assert root_id is not None
        if request.scope is ScanScope.FOLDERS:
            folders = _outermost(list(request.paths))
            known = await load_known_under(self.pool, root_id, folders)
            walk, root_shows_files = await asyncio.to_thread(
                _walk_folders, root_id, root, folders, options.ignore, known
            )
            guard_root(walk, root_shows_files, known.held(root_id))
            sidecars = {
                k: v
                for k, v in (await load_known_sidecars(self.pool, library.id)).items()
                if k[0] == root_id and any(_under(v.path, f) for f in folders)
            }
            return await self._survey([walk], known, sidecars, reporter, settle_s)
        # FILES: a part of a split scan; its scan planned, guarded and settled already.
        files, sidecar_paths = list(request.paths), list(request.sidecars)
        walk = await asyncio.to_thread(stat_files, root_id, root, files, sidecar_paths)
        known = await load_known_paths(self.pool, root_id, files)
        plan = diff([walk], known)
        refresh = {(root_id, os.path.dirname(p)) for p in sidecar_paths}
        # The parent chose every named file to be read (new, changed, in a folder whose sidecars
        # changed, or moved with fields from its old path): the part reads them all.
        touched = {(root_id, d.path): d for d in walk.files}
        units = plan_units([walk], known, touched, refresh)
        return Survey(plan, {root_id: root}, units, [], len(walk.files))

    async def _survey(
        self,
        walks: list[RootWalk],
        known: KnownFiles,
        known_sidecars: dict[tuple[int, str], KnownSidecar],
        reporter: ScanReporter,
        settle_s: float,
    ) -> Survey:
        for walk in walks:
            for path, reason in walk.problems:
                reporter.warning("path_unreadable", path=path, reason=reason, root=walk.root)
        roots = {w.root_id: w.root for w in walks}
        plan = await asyncio.to_thread(diff, walks, known, known_sidecars, fingerprinter(roots))
        touched = plan.touched
        if plan.moved:
            # Fields read off the old path are stale: those books are re-read from the new one.
            stale = await books_with_path_fields(self.pool, [k.book_id for _, k in plan.moved])
            touched.update(((d.root_id, d.path), d) for d, k in plan.moved if k.book_id in stale)
            # Group as if the moves were applied (they are, in `_reconcile`): their new
            # places over the catalogue's view, which stays what the catalogue says (the
            # old paths were not walked, so grouping never asks for them).
            moved_to: dict[tuple[int, str], KnownFile] = {
                (d.root_id, d.path): dataclasses.replace(
                    k,
                    root_id=d.root_id,
                    path=d.path,
                    size=d.size,
                    mtime_ns=d.mtime_ns,
                    inode=d.inode,
                )
                for d, k in plan.moved
            }
            # ChainMap only reads the maps after the first (typeshed asks for mutable ones).
            grouping_view: Mapping[tuple[int, str], KnownFile] = ChainMap(
                moved_to,
                known,  # type: ignore[arg-type]
            )
        else:
            grouping_view = known
        units = plan_units(walks, grouping_view, touched, plan.refresh_folders)
        units, settling = _split_settling(units, settle_s)
        for unit in settling:
            for disk, _ in unit.files:
                reporter.info("file_settling", path=disk.path, settle_s=settle_s)
        files_seen = sum(len(w.files) for w in walks)
        reporter.info(
            "scan_planned",
            files_seen=files_seen,
            new=len(plan.new),
            changed=len(plan.changed),
            unchanged=plan.unchanged_files,
            missing=len(plan.missing),
            moved=len(plan.moved),
            sidecars_changed=len(plan.sidecars_changed) + len(plan.sidecars_gone),
            units=len(units),
        )
        return Survey(plan, roots, units, settling, files_seen)

    # -- writes ----------------------------------------------------------------------------

    async def _reconcile(self, library_id: int, survey: Survey, reporter: ScanReporter) -> int:
        """Moves and restores: what the plan decided that needs no file read. Books restored."""
        plan = survey.diff
        back_with_moves = await apply_moves(
            self.pool,
            [
                Move(k.id, k.book_id, d.root_id, d.path, d.size, d.mtime_ns, d.inode, d.device)
                for d, k in plan.moved
            ],
        )
        for d, k in plan.moved:
            reporter.info("file_moved", path=d.path, previous_path=k.path)
        restored = set(await mark_restored(self.pool, [k.id for k in plan.restored]))
        restored |= set(back_with_moves)
        moved_books = {k.book_id for _, k in plan.moved} - restored
        if restored or moved_books:
            await reporter.changes(
                CatalogueChanges(library_id, updated=tuple(moved_books), restored=tuple(restored))
            )
        return len(restored)

    async def _read_in_parts(
        self,
        request: ScanRequest,
        survey: Survey,
        dispatch: ScanDispatch,
        reporter: ScanReporter,
    ) -> list[ScanResult]:
        parts = [
            ScanRequest.files(
                request.library,
                part[0].root_id,
                [d.path for u in part for d, _ in u.files],
                [s.path for u in part for s in u.sidecars],
            )
            for part in split_units(survey.units, self.split.part_files)
        ]
        reporter.info("scan_split", parts=len(parts), files=survey.files_to_read)
        reporter.progress.enter("parts", survey.files_to_read)
        return await dispatch.run_parts(parts)

    async def _finish(self, library: Library, survey: Survey, reporter: ScanReporter) -> int:
        """Library-level bookkeeping, once per scan: missing files, sidecar state."""
        reporter.progress.enter("finalize")
        plan = survey.diff
        missing = await mark_missing(self.pool, library.id, [k.id for k in plan.missing])
        for k in plan.missing:
            reporter.info("file_missing", path=k.path)
        if missing:
            await reporter.changes(CatalogueChanges(library.id, missing=tuple(missing)))
        await save_sidecars(
            self.pool,
            library.id,
            [(s.root_id, s.path, s.size, s.mtime_ns) for s in plan.sidecars_changed],
            [s.id for s in plan.sidecars_gone],
        )
        return len(missing)

    async def _follow_up(
        self,
        request: ScanRequest,
        result: ScanResult,
        dispatch: ScanDispatch,
        options: ScanOptions,
    ) -> None:
        """Files still being written when we looked get a targeted scan once they settle."""
        by_root: dict[int, list[str]] = {}
        for root_id, folder in result.deferred_folders:
            by_root.setdefault(root_id, []).append(folder)
        for root_id, folders in by_root.items():
            await dispatch.follow_up(
                ScanRequest.folders(request.library, root_id, folders), options.settle_s + 1.0
            )


def split_units(units: Sequence[Unit], part_files: int) -> list[list[Unit]]:
    """Runs of whole units in path order, each on one root, of about `part_files` files."""
    return pack_units(sorted(units, key=lambda u: (u.root_id, u.folder)), part_files, one_root=True)


def guard_root(walk: RootWalk, shows_files: bool, held: int) -> None:
    """The one root guard, for every scope: stop, marking nothing, when the root is
    missing or unreadable, or shows nothing while the catalogue holds books there
    (an unmounted drive looks exactly like a library whose books were all deleted)."""
    if walk.error:
        raise RootUnavailable(f"{walk.error}; nothing was marked missing")
    if not shows_files and held:
        raise RootUnavailable(
            f"library root {walk.root} has no book files but the catalogue holds {held} "
            "for it (unmounted drive?); nothing was marked missing"
        )


def _split_settling(units: list[Unit], settle_s: float) -> tuple[list[Unit], list[Unit]]:
    """Units with a file modified within `settle_s` (likely still being copied) wait for later."""
    if settle_s <= 0:
        return units, []
    cutoff = time.time_ns() - int(settle_s * 1e9)
    ready: list[Unit] = []
    settling: list[Unit] = []
    for unit in units:
        (settling if any(d.mtime_ns > cutoff for d, _ in unit.files) else ready).append(unit)
    return ready, settling


def _walk_folders(
    root_id: int,
    root: str,
    folders: list[str],
    ignore: IgnoreRules,
    known: KnownFiles,
) -> tuple[RootWalk, bool]:
    """One walk of some folders of a root, and whether the root shows anything at all.

    A folder that is gone gives no files (its books went missing); a root that
    is empty is the unmounted-drive case the guard is for.
    """
    merged = RootWalk(root_id, root)
    for folder in folders:
        walk = walk_root(root_id, root, folder, ignore, known)
        if walk.error:
            return walk, False
        merged.files.extend(walk.files)
        merged.sidecars.extend(walk.sidecars)
        merged.unreadable.extend(walk.unreadable)
        merged.problems.extend(walk.problems)
    try:
        shows = bool(os.listdir(root))
    except OSError as exc:
        merged.error = f"library root {root} cannot be listed: {exc.strerror or exc}"
        shows = False
    return merged, shows


def _under(path: str, folder: str) -> bool:
    return not folder or path == folder or path.startswith(folder + "/")


def _outermost(folders: list[str]) -> list[str]:
    """Drop folders inside other listed folders: each file is walked once."""
    chosen: list[str] = []
    for folder in sorted({f.strip("/") for f in folders}, key=len):
        if not any(_under(folder, c) for c in chosen):
            chosen.append(folder)
    return chosen


def _walk_all(library: Library, ignore: IgnoreRules, known: KnownFiles) -> list[RootWalk]:
    return [
        walk_root(root.id, str(root.path), ignore=ignore, known=known) for root in library.roots
    ]


def _unchanged_books(plan: ScanPlan) -> int:
    """Distinct books among unchanged and moved files; counted after the scan, when the
    walk and the catalogue's view are gone."""
    books = set(plan.unchanged_books)
    books.update(k.book_id for _, k in plan.moved)
    return len(books)
