"""Diff: what the disk shows against what the catalogue knows.

Unchanged files (same size, mtime in nanoseconds and inode) cost nothing more
than the stat the walk already did, except files whose last read failed: the
cause may have passed without touching the file, so they are read again (but
not an empty file: nothing in it can change while its size stays 0). A new path that matches a vanished file by
(device, inode) and size, or by content fingerprint, is that file moved: it
keeps its row, its book and its edits. Only new files whose size equals a
vanished file's are fingerprinted, so a move costs a couple of reads.

Memory: a plan keeps only the files something happens to (new, changed, moved,
restored, missing); unchanged files leave a count and an array of their book ids, so the
catalogue's view of a million files can be dropped as soon as planning is done.
"""

from __future__ import annotations

import os
import posixpath
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from shelfscan.catalogue.known import KnownFile, KnownFiles, KnownSidecar, Verdict
from shelfscan.scan.discovery import DiskFile, RootWalk


@dataclass(frozen=True, slots=True)
class ScanPlan:
    new: list[DiskFile]
    changed: list[tuple[DiskFile, KnownFile]]
    restored: list[KnownFile]  # unchanged on disk, but the catalogue had them missing
    unchanged_files: int
    unchanged_books: array[int]  # one entry per unchanged file (a set of a million ints: 60 MB)
    missing: list[KnownFile]
    sidecars_changed: list[DiskFile]  # new or edited sidecars, to remember after the scan
    sidecars_gone: list[KnownSidecar]
    refresh_folders: set[tuple[int, str]]  # folders whose sidecars changed: their book is re-read
    moved: list[tuple[DiskFile, KnownFile]] = field(default_factory=list)  # new place, old row

    @property
    def touched(self) -> dict[tuple[int, str], DiskFile]:
        """Every file to read, new or changed, by (root id, path): grouping puts these very
        objects in its units, so a file read is in memory once."""
        chosen = {(d.root_id, d.path): d for d in self.new}
        chosen.update(((d.root_id, d.path), d) for d, _ in self.changed)
        return chosen


def diff(
    walks: Iterable[RootWalk],
    known: Mapping[tuple[int, str], KnownFile],
    known_sidecars: Mapping[tuple[int, str], KnownSidecar] | None = None,
    fingerprint: Callable[[DiskFile], str | None] | None = None,
) -> ScanPlan:
    new: list[DiskFile] = []
    changed: list[tuple[DiskFile, KnownFile]] = []
    restored: list[KnownFile] = []
    unchanged_files = 0
    unchanged_books = array("q")
    if not isinstance(known, KnownFiles):
        known = KnownFiles.of(known.values())
    seen = bytearray(len(known))  # by catalogue row: a byte a file, not a key tuple and a set slot
    shielded: list[tuple[int, str]] = []  # (root id, folder prefix) we could not list
    scanned_roots: set[int] = set()
    known_sidecars = known_sidecars or {}
    sidecars_changed: list[DiskFile] = []
    seen_sidecars: set[tuple[int, str]] = set()
    refresh: set[tuple[int, str]] = set()
    for walk in walks:
        for sc in walk.sidecars:
            seen_sidecars.add((sc.root_id, sc.path))
            ks = known_sidecars.get((sc.root_id, sc.path))
            if ks is None or ks.size != sc.size or ks.mtime_ns != sc.mtime_ns:
                sidecars_changed.append(sc)
                refresh.add((sc.root_id, posixpath.dirname(sc.path)))
        scanned_roots.add(walk.root_id)
        shielded.extend((walk.root_id, prefix + "/") for prefix in walk.unreadable)
        # On the columns: a DiskFile is made only for a file something happens to.
        files = walk.files
        last_root: int | None = None
        paths: Mapping[str, int] = {}
        for i, root_id, path, size, mtime_ns, inode in files.columns():
            if root_id != last_root:
                paths, last_root = known.paths_of(root_id), root_id
            row = paths.get(path)
            if row is None:
                new.append(files.at(i))
                continue
            seen[row] = 1
            verdict = known.verdict(row, size, mtime_ns, inode)
            if verdict is Verdict.UNCHANGED:
                unchanged_files += 1
                unchanged_books.append(known.book_of(row))
            elif verdict is Verdict.CHANGED:
                changed.append((files.at(i), known.at(row)))
            else:
                restored.append(known.at(row))
    vanished = []
    row = seen.find(0)
    while row != -1:
        k = known.at(row)
        if k.root_id in scanned_roots and not any(
            k.root_id == rid and k.path.startswith(prefix) for rid, prefix in shielded
        ):
            vanished.append(k)
        row = seen.find(0, row + 1)
    del seen
    moved = _match_moves(new, vanished, fingerprint) if new and vanished else []
    if moved:
        moved_ids = {k.id for _, k in moved}
        moved_paths = {id(d) for d, _ in moved}
        new = [d for d in new if id(d) not in moved_paths]
        vanished = [k for k in vanished if k.id not in moved_ids]
    missing = [k for k in vanished if k.status != "missing"]
    sidecars_gone = [
        ks
        for key, ks in known_sidecars.items()
        if key not in seen_sidecars and ks.root_id in scanned_roots
    ]
    refresh.update((ks.root_id, posixpath.dirname(ks.path)) for ks in sidecars_gone)
    return ScanPlan(
        new,
        changed,
        restored,
        unchanged_files,
        unchanged_books,
        missing,
        sidecars_changed,
        sidecars_gone,
        refresh,
        moved,
    )


def _match_moves(
    new: list[DiskFile],
    vanished: list[KnownFile],
    fingerprint: Callable[[DiskFile], str | None] | None,
) -> list[tuple[DiskFile, KnownFile]]:
    by_inode = {(k.device, k.inode): k for k in vanished if k.device is not None and k.inode}
    by_fingerprint: dict[int, dict[str, KnownFile]] = defaultdict(dict)
    for v in vanished:
        if v.fingerprint:
            by_fingerprint[v.size][v.fingerprint] = v
    taken: set[int] = set()
    moves: list[tuple[DiskFile, KnownFile]] = []
    for d in new:
        k: KnownFile | None = by_inode.get((d.device, d.inode))
        if k is None or k.size != d.size or k.id in taken:
            k = None
            candidates = by_fingerprint.get(d.size)
            if candidates and fingerprint is not None:
                fp = fingerprint(d)
                k = candidates.get(fp) if fp else None
                if k is not None and k.id in taken:
                    k = None
        if k is not None:
            taken.add(k.id)
            moves.append((d, k))
    return moves


def fingerprinter(roots: Mapping[int, str]) -> Callable[[DiskFile], str | None]:
    """Fingerprint a file on disk the way the parse stage does; None if it cannot be read."""
    from shelfscan.scan.parse import file_fingerprint

    def run(d: DiskFile) -> str | None:
        try:
            return file_fingerprint(os.path.join(roots[d.root_id], d.path))
        except OSError:
            return None

    return run
