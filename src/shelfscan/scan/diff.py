"""Diff: what the disk shows against what the catalogue knows.

Unchanged files (same size, mtime in nanoseconds and inode) cost nothing more
than the stat the walk already did.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shelfscan.catalogue.known import KnownFile
from shelfscan.scan.discovery import DiskFile, RootWalk


@dataclass(frozen=True, slots=True)
class ScanPlan:
    new: list[DiskFile]
    changed: list[tuple[DiskFile, KnownFile]]
    restored: list[KnownFile]  # unchanged on disk, but the catalogue had them missing
    unchanged: list[KnownFile]
    missing: list[KnownFile]


def diff(walks: Iterable[RootWalk], known: Mapping[tuple[int, str], KnownFile]) -> ScanPlan:
    new: list[DiskFile] = []
    changed: list[tuple[DiskFile, KnownFile]] = []
    restored: list[KnownFile] = []
    unchanged: list[KnownFile] = []
    seen: set[tuple[int, str]] = set()
    shielded: list[tuple[int, str]] = []  # (root id, folder prefix) we could not list
    scanned_roots: set[int] = set()
    for walk in walks:
        scanned_roots.add(walk.root_id)
        shielded.extend((walk.root_id, prefix + "/") for prefix in walk.unreadable)
        for f in walk.files:
            key = (f.root_id, f.path)
            seen.add(key)
            k = known.get(key)
            if k is None:
                new.append(f)
            elif (
                k.size != f.size
                or k.mtime_ns != f.mtime_ns
                or (k.inode is not None and k.inode != f.inode)
            ):
                changed.append((f, k))
            elif k.status == "missing":
                restored.append(k)
            else:
                unchanged.append(k)
    missing = [
        k
        for key, k in known.items()
        if key not in seen
        and k.root_id in scanned_roots
        and k.status != "missing"
        and not any(k.root_id == rid and k.path.startswith(prefix) for rid, prefix in shielded)
    ]
    return ScanPlan(new, changed, restored, unchanged, missing)
