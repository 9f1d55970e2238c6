"""Which files make one book.

Units: the parse stage works on units. A folder holding audio (with its `CD 1/`,
`Disc 2/` sub-folders folded in) or a single book file is one unit with its
sidecars, and is read whole when any part or sidecar changed, because a book is
built from all its parts. Any other folder (a flat folder of 500 EPUBs) gives
one unit per new or changed file, and its sidecars are not attributed to any
one book.

Books: inside a unit, audio parts sharing an album (or, with no album tags, all
parts of the folder) form one audiobook ordered by disc, track and natural file
name; an ebook whose title and first author match an audiobook joins it; every
other file is its own book.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from shelfscan import names
from shelfscan.catalogue.known import KnownFile
from shelfscan.formats.records import Metadata
from shelfscan.scan.discovery import DiskFile, RootWalk

AUDIO_FORMATS = frozenset({"m4b", "m4a", "mp4", "mp3", "flac", "ogg", "oga", "opus"})
_DISC_DIR = re.compile(r"^(cd|dis[ck]|part)\s*[-_ ]?\s*\d{1,3}$", re.IGNORECASE)
_LEADING_NUMBER = re.compile(r"^\s*(\d+)")
_NATURAL = re.compile(r"(\d+)")

FolderKey = tuple[int, str]  # (root id, folder relative to the root)


@dataclass(slots=True)
class Unit:
    root_id: int
    folder: str
    files: list[tuple[DiskFile, KnownFile | None]]
    sidecars: list[DiskFile] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.files)


def book_folder(path: str) -> str:
    """The folder a file's book lives in: a `CD 2/` or `Disc 1/` level is folded into its parent."""
    folder = posixpath.dirname(path)
    if folder and _DISC_DIR.match(posixpath.basename(folder)):
        return posixpath.dirname(folder)
    return folder


def disc_of_path(path: str) -> int:
    folder = posixpath.basename(posixpath.dirname(path))
    if _DISC_DIR.match(folder):
        digits = re.findall(r"\d+", folder)
        return int(digits[-1]) if digits else 0
    return 0


def plan_units(
    walks: Iterable[RootWalk],
    known: Mapping[tuple[int, str], KnownFile],
    touched: set[tuple[int, str]],
    refresh_folders: set[FolderKey],
) -> list[Unit]:
    """Units to read: those with a new or changed file, or a changed sidecar."""
    files_by_folder: dict[FolderKey, list[DiskFile]] = defaultdict(list)
    sidecars_by_folder: dict[FolderKey, list[DiskFile]] = defaultdict(list)
    for walk in walks:
        for f in walk.files:
            files_by_folder[(f.root_id, book_folder(f.path))].append(f)
        for s in walk.sidecars:
            sidecars_by_folder[(s.root_id, posixpath.dirname(s.path))].append(s)
    units: list[Unit] = []
    for key, files in files_by_folder.items():
        root_id, folder = key
        whole = len(files) == 1 or any(f.format in AUDIO_FORMATS for f in files)
        if whole:
            dirty = key in refresh_folders or any((f.root_id, f.path) in touched for f in files)
            if dirty:
                units.append(
                    Unit(
                        root_id,
                        folder,
                        [(f, known.get((f.root_id, f.path))) for f in files],
                        sidecars_by_folder.get(key, []),
                    )
                )
            continue
        for f in files:
            if (f.root_id, f.path) in touched:
                units.append(Unit(root_id, folder, [(f, known.get((f.root_id, f.path)))]))
    return units


def natural_key(name: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(p)) if p.isdigit() else (1, p.casefold()) for p in _NATURAL.split(name) if p
    )


def _number(value: str | None) -> int:
    if not value:
        return 0
    match = _LEADING_NUMBER.match(value)
    return int(match.group(1)) if match else 0


def part_order(
    path: str, meta: Metadata | None
) -> tuple[int, int, tuple[tuple[int, int | str], ...]]:
    extra = meta.extra if meta else {}
    disc = _number(extra.get("disc")) or disc_of_path(path)
    return (disc, _number(extra.get("track")), natural_key(posixpath.basename(path)))


def _work_key(meta: Metadata) -> tuple[str, str]:
    title = names.name_key(meta.title or "")
    author = next((names.name_key(c.name) for c in meta.contributors if c.role == "author"), "")
    return title, author


def form_books(items: Sequence[tuple[str, Metadata]]) -> list[list[int]]:
    """Group the readable files of one unit into books; returns lists of indexes into `items`.

    `items` holds (path, metadata) of every successfully parsed file of the unit.
    """
    audio = [i for i, (_, meta) in enumerate(items) if meta.format in AUDIO_FORMATS]
    others = [i for i, (_, meta) in enumerate(items) if meta.format not in AUDIO_FORMATS]
    groups: dict[str, list[int]] = defaultdict(list)
    loose: list[int] = []
    has_albums = any(items[i][1].extra.get("album") for i in audio)
    for i in audio:
        album = items[i][1].extra.get("album")
        if album:
            groups[names.name_key(album)].append(i)
        elif has_albums:
            loose.append(i)
        else:
            groups[""].append(i)
    books = [sorted(g, key=lambda i: part_order(items[i][0], items[i][1])) for g in groups.values()]
    books.extend([i] for i in loose)
    by_work = {_work_key(items[b[0]][1]): b for b in books if items[b[0]][1].title}
    for i in others:
        match = by_work.get(_work_key(items[i][1])) if items[i][1].title else None
        if match is not None:
            match.insert(0, i)  # the ebook leads: its text metadata is the richer
        else:
            books.append([i])
    return books
