"""What goes into a scan, what comes out, and the seams it reports through.

The scan engine (`shelfscan.scan.engine.Scanner.run`) is driven the same way by
the CLI, the daemon's job handlers and watch mode: a `ScanRequest` in, a
`ScanResult` out. Everything a caller wants to learn while it runs — progress
counters, events, which books changed — goes through `ScanReporter`, a protocol
defined here so that `scan/` depends on no job table: the job layer implements
it to write job rows, a test can implement it with a list.

Splitting a big scan across daemons and coming back for files still being
copied need a queue, which the engine does not have; `ScanDispatch` is the seam
for those two. Without one (the CLI) a scan never splits and reports its
deferred files in the result.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from shelfscan.catalogue.entities import CacheFigures
from shelfscan.catalogue.libraries import Library
from shelfscan.errors import ShelfscanError
from shelfscan.scan.discovery import DEFAULT_RULES, IgnoreRules
from shelfscan.scan.progress import Progress


class RootUnavailable(ShelfscanError):
    """A root is missing, unreadable or suspiciously empty: the scan stops and marks nothing."""


class ScanCancelled(ShelfscanError):
    """The scan stopped at a safe point because it was asked to; what it wrote stays."""


class ScanScope(enum.StrEnum):
    LIBRARY = "library"  # every root; the only scope that may split
    FOLDERS = "folders"  # some folders of one root, with the same missing/move rules
    FILES = "files"  # named files and sidecars of one root (a part of a split scan)


@dataclass(frozen=True, slots=True)
class ScanOptions:
    """How hard to work. `workers` are scan coroutines (SHELFSCAN_WORKERS), not processes."""

    workers: int = 4
    chunk_size: int = 200  # the largest chunk; small scans use smaller ones (chunk_size_for)
    settle_s: float = 0.0  # files modified more recently than this are left for a later pass
    ignore: IgnoreRules = DEFAULT_RULES  # junk folder and file names the walk skips


@dataclass(frozen=True, slots=True)
class ScanRequest:
    """One scan: which library, how much of it, and optionally different options.

    Paths are relative to the root named by `root_id` (FOLDERS, FILES).
    """

    library: Library
    scope: ScanScope = ScanScope.LIBRARY
    root_id: int | None = None
    paths: tuple[str, ...] = ()
    sidecars: tuple[str, ...] = ()
    options: ScanOptions | None = None

    @classmethod
    def whole(cls, library: Library, options: ScanOptions | None = None) -> ScanRequest:
        return cls(library, ScanScope.LIBRARY, options=options)

    @classmethod
    def folders(
        cls, library: Library, root_id: int, folders: Iterable[str], **kw: Any
    ) -> ScanRequest:
        return cls(library, ScanScope.FOLDERS, root_id, tuple(folders), **kw)

    @classmethod
    def files(
        cls,
        library: Library,
        root_id: int,
        files: Iterable[str],
        sidecars: Iterable[str] = (),
        **kw: Any,
    ) -> ScanRequest:
        return cls(library, ScanScope.FILES, root_id, tuple(files), tuple(sidecars), **kw)

    def root(self) -> str:
        """The path of `root_id`; a root that is not the library's stops the scan."""
        for root in self.library.roots:
            if root.id == self.root_id:
                return str(root.path)
        raise RootUnavailable(f"root {self.root_id} is not a folder of library {self.library.name}")


class ChangeKind(enum.StrEnum):
    ADDED = "added"
    UPDATED = "updated"
    MISSING = "missing"
    RESTORED = "restored"


@dataclass(frozen=True, slots=True)
class CatalogueChanges:
    """Books one committed step of a scan changed (a chunk, the moves, the missing marks)."""

    library_id: int
    added: tuple[int, ...] = ()
    updated: tuple[int, ...] = ()
    missing: tuple[int, ...] = ()
    restored: tuple[int, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.missing or self.restored)

    def rows(self) -> list[tuple[int, ChangeKind]]:
        """(book id, change), each book once per kind, in a stable order."""
        out: list[tuple[int, ChangeKind]] = []
        for kind, ids in (
            (ChangeKind.ADDED, self.added),
            (ChangeKind.UPDATED, self.updated),
            (ChangeKind.MISSING, self.missing),
            (ChangeKind.RESTORED, self.restored),
        ):
            out.extend((book_id, kind) for book_id in sorted(set(ids)))
        return out


@dataclass(frozen=True, slots=True)
class ScanStats:
    """What the scan's machinery did: the answer to "why was this scan slow (or fast)?"."""

    cache: dict[str, CacheFigures] = field(default_factory=dict)  # per entity kind
    writer_batches: int = 0  # chunk transactions that committed whole
    writer_fallbacks: int = 0  # batches that failed and were written again book by book
    parse_restarts: int = 0  # parse pools rebuilt after a crash or a hang

    def as_dict(self) -> dict[str, Any]:
        return {
            "cache": {kind: fig.as_dict() for kind, fig in sorted(self.cache.items())},
            "writer": {"batches": self.writer_batches, "fallbacks": self.writer_fallbacks},
            "parse": {"restarts": self.parse_restarts},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanStats:
        writer = data.get("writer") or {}
        return cls(
            cache={k: CacheFigures(**v) for k, v in (data.get("cache") or {}).items()},
            writer_batches=int(writer.get("batches", 0)),
            writer_fallbacks=int(writer.get("fallbacks", 0)),
            parse_restarts=int((data.get("parse") or {}).get("restarts", 0)),
        )

    def __add__(self, other: ScanStats) -> ScanStats:
        cache = dict(self.cache)
        for kind, fig in other.cache.items():
            cache[kind] = cache[kind] + fig if kind in cache else fig
        return ScanStats(
            cache,
            self.writer_batches + other.writer_batches,
            self.writer_fallbacks + other.writer_fallbacks,
            self.parse_restarts + other.parse_restarts,
        )


@dataclass(frozen=True, slots=True)
class ScanResult:
    """The one result of every scan (whole library, folders, a part of a split scan)."""

    books_added: int = 0
    books_updated: int = 0
    books_unchanged: int = 0
    books_missing: int = 0
    books_restored: int = 0
    files_seen: int = 0
    files_read: int = 0  # handed to the parsers (a part's share of a split scan's progress)
    files_failed: int = 0
    files_deferred: int = 0
    covers_failed: int = 0  # books written without their cover (covers disk full); retried
    elapsed_s: float = 0.0
    stats: ScanStats = field(default_factory=ScanStats)
    # (root id, folder) of books left for later because a file was still being written.
    deferred_folders: tuple[tuple[int, str], ...] = field(default=(), repr=False)

    def as_dict(self) -> dict[str, Any]:
        """The job's `result` and `scan --json`: counts, then `stats`."""
        out: dict[str, Any] = {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if f.name not in ("stats", "deferred_folders")
        }
        out["stats"] = self.stats.as_dict()
        return out

    def absorb(self, parts: Sequence[ScanResult]) -> ScanResult:
        """This result with the reading other scans did for it (the parts of a split scan).

        Only what reading produces adds up; missing, restored and unchanged books are
        the planning scan's own bookkeeping.
        """
        if not parts:
            return self
        stats = self.stats
        for part in parts:
            stats = stats + part.stats
        return dataclasses.replace(
            self,
            books_added=self.books_added + sum(p.books_added for p in parts),
            books_updated=self.books_updated + sum(p.books_updated for p in parts),
            files_failed=self.files_failed + sum(p.files_failed for p in parts),
            files_deferred=self.files_deferred + sum(p.files_deferred for p in parts),
            covers_failed=self.covers_failed + sum(p.covers_failed for p in parts),
            stats=stats,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScanResult:
        """Read back a result stored as JSON (a part's job row); unknown keys are ignored."""
        counts = {
            f.name: data[f.name]
            for f in fields(cls)
            if f.name not in ("stats", "deferred_folders") and f.name in data
        }
        return cls(**counts, stats=ScanStats.from_dict(data.get("stats") or {}))


class ScanReporter(Protocol):
    """Where a running scan says what it is doing. The job layer writes it to job rows."""

    @property
    def progress(self) -> Progress:
        """Counters the scan bumps; the reporter publishes them as it sees fit."""
        ...

    def stop_requested(self) -> bool:
        """True once the scan should stop at its next safe point (between chunks)."""
        ...

    def info(self, event: str, path: str | None = None, **fields: Any) -> None: ...

    def warning(self, event: str, path: str | None = None, **fields: Any) -> None: ...

    def error(self, event: str, path: str | None = None, **fields: Any) -> None: ...

    async def changes(self, changes: CatalogueChanges) -> None:
        """Books a step changed, called once the step's transaction committed."""
        ...


class ScanDispatch(Protocol):
    """What needs a queue: running parts of a split scan elsewhere, coming back later."""

    async def run_parts(self, parts: Sequence[ScanRequest]) -> list[ScanResult]:
        """Run every part (FILES scope) to its end and return their results."""
        ...

    async def follow_up(self, request: ScanRequest, delay_s: float) -> None:
        """Run `request` again in `delay_s` seconds (files that were still being written)."""
        ...


@dataclass(frozen=True, slots=True)
class SplitPolicy:
    """A scan with more files to read than `threshold` is cut into parts of ~`part_files`."""

    threshold: int = 5000
    part_files: int = 2000

    def splits(self, files_to_read: int) -> bool:
        return files_to_read > self.threshold
