"""Diff: what the disk shows against what the catalogue knows.

Unchanged files (same size, mtime in nanoseconds and inode) cost nothing more
than the stat the walk already did.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from shelfscan.catalogue.known import KnownFile, KnownSidecar
from shelfscan.scan.discovery import DiskFile, RootWalk


@dataclass(frozen=True, slots=True)
class ScanPlan:
    new: list[DiskFile]
    changed: list[tuple[DiskFile, KnownFile]]
    restored: list[KnownFile]  # unchanged on disk, but the catalogue had them missing
    unchanged: list[KnownFile]
    missing: list[KnownFile]
    sidecars_changed: list[DiskFile]  # new or edited sidecars, to remember after the scan
    sidecars_gone: list[KnownSidecar]
    refresh_folders: set[tuple[int, str]]  # folders whose sidecars changed: their book is re-read


def diff(
    walks: Iterable[RootWalk],
    known: Mapping[tuple[int, str], KnownFile],
    known_sidecars: Mapping[tuple[int, str], KnownSidecar] | None = None,
) -> ScanPlan:
    new: list[DiskFile] = []
    changed: list[tuple[DiskFile, KnownFile]] = []
    restored: list[KnownFile] = []
    unchanged: list[KnownFile] = []
    seen: set[tuple[int, str]] = set()
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
    sidecars_gone = [
        ks
        for key, ks in known_sidecars.items()
        if key not in seen_sidecars and ks.root_id in scanned_roots
    ]
    refresh.update((ks.root_id, posixpath.dirname(ks.path)) for ks in sidecars_gone)
    return ScanPlan(
        new, changed, restored, unchanged, missing, sidecars_changed, sidecars_gone, refresh
    )
