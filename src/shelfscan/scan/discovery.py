"""Discovery: one `os.scandir` walk per root, run in a worker thread.

Measured on this hardware, a single-threaded scandir walk with `DirEntry.stat`
reaches 60-85k files/s; per-file async stats are ~18x slower. So the whole walk
is one blocking call handed to a thread, and the event loop stays free.

Junk is skipped by name (`IgnoreRules`, set by SHELFSCAN_IGNORE): what NAS
boxes, desktops and tools leave inside shared folders would otherwise become
duplicate books (a Synology snapshot is a whole second copy of the share).
The defaults cover what the peers skip and what those systems are known to
write: any dot-name (Komga and Audiobookshelf skip hidden folders; macOS
`._*` and `.DS_Store`, `.Trash-1000`, calibre's `.caltrash`, `.@__thumb`),
Synology `@eaDir`, `#recycle`, `#snapshot`, `@SynoResource`, `@tmp`, QNAP
`@Recycle` and `@Recently-Snapshot`, macOS `__MACOSX` (zip extraction),
Windows `$RECYCLE.BIN` and `System Volume Information`, and `lost+found`.
Dot-names are also listed one by one, so a user who drops `.*` to reach a
hidden folder still skips the trash.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat as stat_mod
from array import array
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import overload

from shelfscan.catalogue.known import KnownFiles
from shelfscan.formats.registry import format_for_name
from shelfscan.formats.sidecars import is_sidecar_name

IGNORED_SUFFIXES = (".part", ".tmp", ".crdownload", ".download", ".partial")

DEFAULT_IGNORE: tuple[str, ...] = (
    ".*",
    "._*",
    ".DS_Store",
    ".AppleDouble",
    ".Trashes",
    ".Trash",
    ".Trash-*",
    ".caltrash",
    ".@__thumb",
    "__MACOSX",
    "@eaDir",
    "@SynoResource",
    "@tmp",
    "#recycle",
    "#snapshot",
    "@Recycle",
    "@Recently-Snapshot",
    "$RECYCLE.BIN",
    "System Volume Information",
    "lost+found",
)
"""Name patterns (shell globs, case-insensitive) skipped by default; `default` in
SHELFSCAN_IGNORE stands for this list."""


@dataclass(frozen=True, slots=True)
class IgnoreRules:
    """Which folder and file names a walk skips, matched on the name alone.

    Built once per scanner: exact names go to a set, globs into one compiled
    pattern, so each directory entry costs a set look-up and at most one match.
    """

    patterns: tuple[str, ...]
    _exact: frozenset[str] = field(repr=False, compare=False)
    _globs: re.Pattern[str] | None = field(repr=False, compare=False)
    # First characters any pattern can match (None: a pattern starts with a wildcard). Most
    # names start with none of them and cost one set look-up.
    _starts: frozenset[str] | None = field(repr=False, compare=False)

    @classmethod
    def from_patterns(cls, patterns: Iterable[str]) -> IgnoreRules:
        chosen: list[str] = []
        for raw in patterns:
            pattern = raw.strip()
            if pattern.casefold() == "default":
                chosen.extend(DEFAULT_IGNORE)
            elif pattern:
                chosen.append(pattern)
        unique = tuple(dict.fromkeys(chosen))
        exact = frozenset(p.casefold() for p in unique if not any(c in p for c in "*?["))
        globs = [fnmatch.translate(p.casefold()) for p in unique if any(c in p for c in "*?[")]
        starts: frozenset[str] | None = frozenset(
            c for p in unique for c in {p[0].casefold(), p[0].upper(), p[0].lower()}
        )
        if any(p[0] in "*?[" for p in unique):
            starts = None
        return cls(unique, exact, re.compile("|".join(globs)) if globs else None, starts)

    def skips(self, name: str) -> bool:
        if self._starts is not None and (not name or name[0] not in self._starts):
            return False
        folded = name.casefold()
        if folded in self._exact:
            return True
        return self._globs is not None and self._globs.match(folded) is not None

    def skips_path(self, rel_path: str) -> bool:
        """True when any folder or file name along `rel_path` is skipped."""
        return any(self.skips(part) for part in rel_path.split("/") if part)


DEFAULT_RULES = IgnoreRules.from_patterns(DEFAULT_IGNORE)


@dataclass(frozen=True, slots=True)
class DiskFile:
    root_id: int
    path: str  # relative to the root, '/'-separated
    size: int
    mtime_ns: int
    inode: int
    device: int
    format: str


class DiskFiles(Sequence[DiskFile]):
    """A walk's files, stored in columns; a `DiskFile` is made for each one read out.

    A walk holds every file of a root until planning is done (a million in a big
    library), and a `DiskFile` object with its number objects cost ~160 bytes on
    top of its path string. Here a file costs its path string (on a rescan, the
    catalogue's own: see `walk_root`) and ~41 bytes of arrays; planning keeps a
    `DiskFile` only for the files it reads.
    """

    __slots__ = (
        "_codes",
        "_device",
        "_format",
        "_formats",
        "_inode",
        "_mtime",
        "_paths",
        "_root",
        "_size",
    )

    def __init__(self, files: Iterable[DiskFile] = ()) -> None:
        self._root = array("q")
        self._paths: list[str] = []
        self._size = array("q")
        self._mtime = array("q")
        self._inode = array("Q")
        self._device = array("Q")
        self._format = bytearray()  # an index into _formats
        self._formats: list[str] = []
        self._codes: dict[str, int] = {}
        self.extend(files)

    def add(
        self, root_id: int, path: str, size: int, mtime_ns: int, inode: int, device: int, fmt: str
    ) -> None:
        code = self._codes.get(fmt)
        if code is None:
            code = self._codes[fmt] = len(self._formats)
            self._formats.append(fmt)
        self._format.append(code)  # ValueError past 256 formats: the registry has ~20
        self._root.append(root_id)
        self._paths.append(path)
        self._size.append(size)
        self._mtime.append(mtime_ns)
        self._inode.append(inode)
        self._device.append(device)

    def append(self, f: DiskFile) -> None:
        self.add(f.root_id, f.path, f.size, f.mtime_ns, f.inode, f.device, f.format)

    def extend(self, files: Iterable[DiskFile]) -> None:
        for f in files:
            self.append(f)

    def __iadd__(self, files: Iterable[DiskFile]) -> DiskFiles:
        self.extend(files)
        return self

    def at(self, i: int) -> DiskFile:
        return DiskFile(
            self._root[i],
            self._paths[i],
            self._size[i],
            self._mtime[i],
            self._inode[i],
            self._device[i],
            self._formats[self._format[i]],
        )

    def columns(self) -> Iterator[tuple[int, int, str, int, int, int]]:
        """(index, root id, path, size, mtime, inode) per file, without a `DiskFile` each:
        what the diff compares (`at(index)` gives the file when it is to be read)."""
        return zip(
            range(len(self._paths)),
            self._root,
            self._paths,
            self._size,
            self._mtime,
            self._inode,
            strict=True,
        )

    def __len__(self) -> int:
        return len(self._paths)

    def __iter__(self) -> Iterator[DiskFile]:
        return map(self.at, range(len(self._paths)))

    @overload
    def __getitem__(self, i: int) -> DiskFile: ...
    @overload
    def __getitem__(self, i: slice) -> list[DiskFile]: ...
    def __getitem__(self, i: int | slice) -> DiskFile | list[DiskFile]:
        if isinstance(i, slice):
            return [self.at(j) for j in range(len(self._paths))[i]]
        return self.at(range(len(self._paths))[i])


@dataclass(slots=True)
class RootWalk:
    root_id: int
    root: str
    files: DiskFiles = field(default_factory=DiskFiles)
    sidecars: list[DiskFile] = field(
        default_factory=list
    )  # metadata.opf, cover.jpg, ... (format "sidecar")
    error: str | None = None  # the root itself could not be read
    unreadable: list[str] = field(default_factory=list)  # sub-folders we could not list
    problems: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)


def walk_root(
    root_id: int,
    root: str,
    start: str = "",
    ignore: IgnoreRules = DEFAULT_RULES,
    known: KnownFiles | None = None,
) -> RootWalk:
    """Every supported file under `root` (or only under its sub-folder `start`).

    Never raises for a bad sub-folder; a `start` folder that no longer exists,
    or one inside a skipped folder (a watcher saw `@eaDir/` change), gives no
    files, not an error.

    With `known` (what the catalogue holds, loaded before the walk), a file it
    holds takes the catalogue's path string instead of a new copy: on a rescan
    each file's path is then in memory once, not twice.
    """
    result = RootWalk(root_id, root)
    if start and ignore.skips_path(start):
        return result
    try:
        st = os.stat(root)
    except OSError as exc:
        result.error = f"library root {root} is not reachable: {exc.strerror or exc}"
        return result
    if not stat_mod.S_ISDIR(st.st_mode):
        result.error = f"library root {root} is not a folder"
        return result
    # Only a symlinked folder can lead the walk in a loop or twice over the same files, so
    # only those are resolved; a set of every folder walked cost ~140 bytes a folder (a
    # million-file library has over a million folders). The folders already covered:
    covered = [os.path.realpath(root)]
    stack: list[tuple[str, str]] = [(root, "")]
    if start:
        top = os.path.join(root, start)
        if not os.path.isdir(top):
            return result
        stack = [(top, start)]
    while stack:
        folder, rel = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as exc:
            if rel == start:
                result.error = f"library root {root} cannot be listed: {exc.strerror or exc}"
                return result
            result.unreadable.append(rel)
            result.problems.append((rel, f"folder cannot be listed: {exc.strerror or exc}"))
            continue
        for entry in entries:
            name = entry.name
            if ignore.skips(name):
                continue
            child_rel = f"{rel}/{name}" if rel else name
            try:
                if entry.is_dir():
                    if entry.is_symlink():
                        # A link to a folder inside the root (walked under its real path),
                        # to one holding the root, or into a link already followed: skipped.
                        target = os.path.realpath(entry.path)
                        if any(_nested(target, c) for c in covered):
                            continue
                        covered.append(target)
                    stack.append((entry.path, child_rel))
                    continue
                spec = format_for_name(name)
                if spec is None or name.lower().endswith(IGNORED_SUFFIXES):
                    if is_sidecar_name(name):
                        sst = entry.stat()
                        result.sidecars.append(
                            DiskFile(
                                root_id,
                                child_rel,
                                sst.st_size,
                                sst.st_mtime_ns,
                                sst.st_ino,
                                sst.st_dev,
                                "sidecar",
                            )
                        )
                    continue
                fst = entry.stat()
            except OSError as exc:
                # Vanished between listing and stat, or a dangling link: not an error of the scan.
                result.problems.append((child_rel, f"cannot stat: {exc.strerror or exc}"))
                continue
            if not stat_mod.S_ISREG(fst.st_mode):
                continue
            fmt = spec.format_of(name)
            if known:
                child_rel = known.path_of(root_id, child_rel) or child_rel
            result.files.add(
                root_id, child_rel, fst.st_size, fst.st_mtime_ns, fst.st_ino, fst.st_dev, fmt
            )
    return result


def _nested(a: str, b: str) -> bool:
    """One of two absolute real paths is the other or inside it."""
    short, long = (a, b) if len(a) <= len(b) else (b, a)
    return long == short or long.startswith(short.rstrip("/") + "/")


def stat_files(
    root_id: int, root: str, paths: list[str], sidecar_paths: list[str] | None = None
) -> RootWalk:
    """Stat named files under a root (a part of a split scan); vanished ones are skipped."""
    result = RootWalk(root_id, root)
    for rel in paths:
        spec = format_for_name(rel)
        if spec is None:
            continue
        try:
            st = os.stat(os.path.join(root, rel))
        except OSError as exc:
            result.problems.append((rel, f"cannot stat: {exc.strerror or exc}"))
            continue
        if stat_mod.S_ISREG(st.st_mode):
            result.files.append(
                DiskFile(
                    root_id,
                    rel,
                    st.st_size,
                    st.st_mtime_ns,
                    st.st_ino,
                    st.st_dev,
                    spec.format_of(rel),
                )
            )
    for rel in sidecar_paths or ():
        try:
            st = os.stat(os.path.join(root, rel))
        except OSError:
            continue
        result.sidecars.append(
            DiskFile(root_id, rel, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, "sidecar")
        )
    return result
