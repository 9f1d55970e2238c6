"""Which files make one book.

Units: the parse stage works on units, and a unit is read whole whenever any of
its files or sidecars changed, because a book is built from all its parts. A
folder is one unit, with its sidecars, when it holds audio (its `CD 1/`,
`Disc 2/` sub-folders folded in), a single book file, or a single book in
several formats: all its files share a name (`Title.epub`, `Title.pdf`), or no
format appears twice (`Title.epub` next to `Title - Author.mobi`). Any other
folder (a flat folder of 500 EPUBs) gives one unit per name, so `Dune.epub` and
`Dune.pdf` there are read together, and its sidecars belong to no one book.

Books, inside a unit (`form_books`):

- Audio parts sharing an album tag are one audiobook (but .m4b files of one
  album with titles of their own are several, as below: rippers put the
  series in the album); files with different albums are different books.
  Without albums, a folder is one audiobook when its files are parts: in disc
  folders, numbered by distinct track tags, or named as parts ("Part 2",
  "Chapter 3", "CD 1", "(2 of 5)", "Track 4", and for track formats such as
  mp3 a leading or trailing number: "01 - Intro").
  Otherwise each distinct work name (the title tag, or the file name when
  untagged, with part markers cut) is a book: `Author/Book One.m4b` and
  `Author/Book Two.m4b` are two audiobooks, Audiobookshelf's most reported
  grouping bug. In .m4b names a number is a series index ("1 - Title.m4b"),
  never a part, since an m4b is a whole book by design.
- Ebooks and comics with the same name (`Title.epub`, `Title.pdf`,
  `Title.kepub.epub`), or ebooks with the same title, first author and series
  entry, are one book in several formats; the richest format leads.
- An ebook whose title and first author match an audiobook, or whose name is
  that of a single-file audiobook (`Title.epub`, `Title.m4b`), joins it, and leads.
- Every other file is its own book.
"""

from __future__ import annotations

import posixpath
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from shelfscan import names
from shelfscan.catalogue.known import KnownFile
from shelfscan.formats.records import Metadata
from shelfscan.formats.registry import AUDIO_EXTENSIONS
from shelfscan.formats.text import natural_key
from shelfscan.paths.tokens import is_disc_folder, split_name
from shelfscan.scan.discovery import DiskFile, RootWalk

# A file's format as discovery names it (its extension: "mp4", "oga") or as the audio parser
# does ("m4a", "ogg"): both come from the parser's one extension table.
AUDIO_FORMATS = frozenset(e.lstrip(".") for e in AUDIO_EXTENSIONS) | frozenset(
    AUDIO_EXTENSIONS.values()
)
_LEADING_NUMBER = re.compile(r"^\s*(\d+)")
# A part marker and whatever follows it: "Part 2", "Pt. 3", "Chapter 04: The Road", "CD1",
# "Disc 2", "Track 07", "(2 of 5)", "2/5"; Teil, Kapitel, Partie, Capitulo, Cap. as users write.
_PART_MARKER = re.compile(
    r"(?:^|[\s\-_.,:;(\[])(?:part|pt|chapter|chap|ch|track|trk|cd|dis[ck]|teil|kapitel|partie"
    r"|cap[ií]tulo|cap|episode|ep)\.?\s*[-_#]?\s*\d{1,4}\b.*$"
    r"|[\s(\[]*\d{1,4}\s*(?:of|/|von|de|sur)\s*\d{1,4}[)\]]?.*$",
    re.IGNORECASE,
)
# Track formats only: "01 - Intro", "01. Intro", "001", "Intro 03".
_LEADING_TRACK = re.compile(r"^\s*\d{1,4}(?:\s*[-_.)]\s*|\s+|$)")
_TRAILING_TRACK = re.compile(r"(?:\s+|\s*[-_]\s*)\d{1,4}\s*$")
_WORD_NOISE = re.compile(r"[\W_]+")
_GENERIC_NAME = re.compile(r"^\W*(?:\d{1,4}|(?:part|track|chapter|cd|dis[ck])\s*\d{1,4})\W*$", re.I)
_WHOLE_BOOK_AUDIO = frozenset({"m4b"})
# Which format of a multi-format book leads (its text metadata is the richest).
_FORMAT_RANK = {"epub": 0, "fb2": 1, "mobi": 2, "pdf": 3, "cbz": 4, "cbr": 5, "cb7": 6, "cbt": 7}
_COMIC_FORMATS = frozenset({"cbz", "cbr", "cb7", "cbt"})

FolderKey = tuple[int, str]  # (root id, folder relative to the root)


@dataclass(slots=True)
class Unit:
    root_id: int
    folder: str
    files: list[tuple[DiskFile, KnownFile | None]]
    sidecars: Sequence[DiskFile] = ()  # shared empty default: most units have none

    @property
    def size(self) -> int:
        return len(self.files)


def book_folder(path: str) -> str:
    """The folder a file's book lives in: a `CD 2/` or `Disc 1/` level is folded into its parent."""
    # rpartition, not posixpath: paths here are normalised ('/'-separated, relative), and
    # this runs twice for every file a first scan plans.
    folder = path.rpartition("/")[0]
    if folder and is_disc_folder(folder.rpartition("/")[2]):
        return folder.rpartition("/")[0]
    return folder


def disc_of_path(path: str) -> int:
    folder = posixpath.basename(posixpath.dirname(path))
    if is_disc_folder(folder):
        digits = re.findall(r"\d+", folder)
        return int(digits[-1]) if digits else 0
    return 0


def plan_units(
    walks: Iterable[RootWalk],
    known: Mapping[tuple[int, str], KnownFile],
    touched: Mapping[tuple[int, str], DiskFile] | AbstractSet[tuple[int, str]],
    refresh_folders: set[FolderKey],
) -> list[Unit]:
    """Units to read: those with a new or changed file, or a changed sidecar.

    Only the folders holding such a file are grouped: a no-change rescan of a million
    files builds no per-folder lists at all, and a small change builds a few. When
    `touched` maps to the planned `DiskFile`s, units hold those objects (not a second
    copy read out of the walk).
    """
    planned = touched if isinstance(touched, Mapping) else {}
    # Keyed by the dirty folders alone; a walked file's key is looked up and dropped.
    files_by_folder: dict[FolderKey, list[DiskFile]] = {
        (root_id, book_folder(path)): [] for root_id, path in touched
    }
    files_by_folder.update((key, []) for key in refresh_folders if key not in files_by_folder)
    if not files_by_folder:
        return []
    sidecars_by_folder: dict[FolderKey, list[DiskFile]] = defaultdict(list)
    in_walk_order: list[list[DiskFile]] = []  # units come out in the order the walk found them
    for walk in walks:
        for f in walk.files:
            in_folder = files_by_folder.get((f.root_id, book_folder(f.path)))
            if in_folder is not None:
                if not in_folder:
                    in_walk_order.append(in_folder)
                in_folder.append(planned.get((f.root_id, f.path), f))
        for s in walk.sidecars:
            sidecars_by_folder[(s.root_id, posixpath.dirname(s.path))].append(s)
    del files_by_folder
    units: list[Unit] = []
    for files in in_walk_order:
        root_id, folder = files[0].root_id, book_folder(files[0].path)
        key = (root_id, folder)
        dirty = [f for f in files if (root_id, f.path) in touched]
        if not dirty and key not in refresh_folders:
            continue  # nothing new here (a no-change rescan): no names to compare
        if _one_unit(files):
            units.append(
                Unit(
                    root_id,
                    folder,
                    [(f, known.get((root_id, f.path))) for f in files],
                    sidecars_by_folder.get(key, ()),
                )
            )
            continue
        if len(_rough_names(files)) == len(files):  # every name once: a unit per dirty file
            units.extend(Unit(root_id, folder, [(f, known.get((root_id, f.path)))]) for f in dirty)
            continue
        by_stem: dict[str, list[DiskFile]] = defaultdict(list)
        for f in files:
            by_stem[stem_key(f.path)].append(f)
        for same_name in by_stem.values():
            paths = [(root_id, f.path) for f in same_name]
            if any(p in touched for p in paths):
                units.append(
                    Unit(
                        root_id,
                        folder,
                        [(f, known.get(p)) for f, p in zip(same_name, paths, strict=True)],
                    )
                )
    return units


def _rough_names(files: Sequence[DiskFile]) -> set[str]:
    """A coarser `stem_key` (the name up to its first dot, without case, spaces or "_"),
    cheap enough for every file of a flat folder: names it tells apart are different books."""
    return {
        f.path[f.path.rfind("/") + 1 :]
        .partition(".")[0]
        .casefold()
        .replace("_", "")
        .replace(" ", "")
        for f in files
    }


def _one_unit(files: Sequence[DiskFile]) -> bool:
    """A folder read whole: audio, one file, or (by its names) one book in several formats."""
    if len(files) == 1 or any(f.format in AUDIO_FORMATS for f in files):
        return True
    formats = [f.format for f in files]
    if len(set(formats)) == len(formats):
        return True
    first = stem_key(files[0].path)
    return all(stem_key(f.path) == first for f in files[1:])


def file_stem(path: str) -> str:
    """A file's name without its extension (".kepub.epub" and ".fb2.zip" count as one)."""
    return split_name(path[path.rfind("/") + 1 :])[0]


def stem_key(path: str) -> str:
    """What makes two files' names "the same book": the stem, case and spacing aside.

    Runs for every file of a multi-file folder while units are planned, so the
    spacing work is done only for names that need it.
    """
    stem = file_stem(path).casefold()
    if "_" in stem:
        stem = stem.replace("_", " ")
    return " ".join(stem.split()) if "  " in stem or stem[:1] == " " or stem[-1:] == " " else stem


def _number(value: str | None) -> int:
    if not value:
        return 0
    match = _LEADING_NUMBER.match(value)
    return int(match.group(1)) if match else 0


def part_order(
    path: str, meta: Metadata | None
) -> tuple[int, int, tuple[tuple[int, int, str], ...]]:
    extra = meta.extra if meta else {}
    disc = _number(extra.get("disc")) or disc_of_path(path)
    return (disc, _number(extra.get("track")), natural_key(posixpath.basename(path)))


def _work_key(meta: Metadata) -> tuple[str, str]:
    title = names.name_key(meta.title or "")
    author = next((names.name_key(c.name) for c in meta.contributors if c.role == "author"), "")
    return title, author


def _edition_key(meta: Metadata) -> tuple[str, str, str] | None:
    """Same title, first author and series entry: the same book in another format.

    None when the tags cannot say (no title or no author, or a comic, whose
    issues share a series, a writer and often a title).
    """
    if meta.format in _COMIC_FORMATS or not meta.title:
        return None
    title, author = _work_key(meta)
    if not title or not author:
        return None
    series = f"{names.name_key(meta.series[0].name)}#{meta.series[0].number}" if meta.series else ""
    return title, author, series


def work_name(path: str, meta: Metadata | None) -> tuple[str, bool]:
    """(the work a single audio file belongs to, whether its name marks it as a part).

    The name is the file name when it carries a part marker, else the title
    tag, else the file name; the marker and what follows it are cut, and the
    rest is compared without case or punctuation ("" when only a marker was left).
    """
    fmt = meta.format if meta is not None else posixpath.splitext(path)[1].lstrip(".").lower()
    stem = file_stem(path)
    title = meta.title if meta is not None and meta.title else None
    for candidate in (stem, title):
        if candidate:
            cut = _cut_part(candidate, fmt)
            if cut is not None:
                return cut, True
    return _loose(title or stem), False


def _cut_part(name: str, fmt: str) -> str | None:
    """`name` without its part marker (loose form), or None when it has none."""
    kept = _before_part(name, fmt)
    return None if kept is None else _loose(kept)


def _before_part(name: str, fmt: str) -> str | None:
    """The text of `name` before its part marker, as written; None when it has no marker."""
    marker = _PART_MARKER.search(name)
    if marker:
        return name[: marker.start()]
    if fmt in _WHOLE_BOOK_AUDIO:
        return None
    if _LEADING_TRACK.match(name):
        return ""
    trailing = _TRAILING_TRACK.search(name)
    if trailing:
        return name[: trailing.start()]
    return None


def book_path(lead: str, fmt: str, files: int, shared_folder: bool = False) -> str:
    """The path that names an audiobook: its lead file's, as the path rules should read it.

    A book in parts is named by what its parts share: `Moby Dick/Moby Dick -
    Part 1.m4b` is read as `Moby Dick/Moby Dick.m4b`, so the folder names the
    book and the path rules see no "Part 1" in its title (a part named by its
    marker alone, "01.mp3" or "Part 1.m4b", keeps its path). A book split out of
    a folder that holds several (`shared_folder`) is read as if in a folder of
    its own name: `Le Guin/A Wizard of Earthsea.mp3` as `Le Guin/A Wizard of
    Earthsea/A Wizard of Earthsea.mp3`, since its folder names its author, not it.
    """
    if fmt not in AUDIO_FORMATS or (files < 2 and not shared_folder):
        return lead
    folder, _, base = lead.rpartition("/")
    stem = file_stem(base)
    kept = _before_part(stem, fmt) if files > 1 else None
    if kept and kept.strip(" -_.,:;([{"):
        stem = kept.rstrip(" -_.,:;([{")
        base = stem + base[len(file_stem(base)) :]
    if shared_folder and not _GENERIC_NAME.match(stem):
        base = f"{stem}/{base}"
    return f"{folder}/{base}" if folder else base


def _loose(text: str) -> str:
    return " ".join(_WORD_NOISE.sub(" ", text.casefold()).split())


def split_audio(items: Sequence[tuple[str, Metadata]], group: Sequence[int]) -> list[list[int]]:
    """Split the untagged-album audio files of one folder into audiobooks (see the module doc)."""
    if len(group) < 2:
        return [list(group)]
    if any(disc_of_path(items[i][0]) for i in group):
        return [list(group)]
    tracks = [_number(items[i][1].extra.get("track")) for i in group]
    if all(tracks) and len(set(tracks)) == len(tracks):
        return [list(group)]
    works: dict[str, list[int]] = {}
    for i in group:
        name, _ = work_name(items[i][0], items[i][1])
        works.setdefault(name, []).append(i)
    bare = works.pop("", [])
    if not works:
        return [bare]
    if len(works) == 1:
        return [next(iter(works.values())) + bare]
    return [*works.values(), *([bare] if bare else [])]


def _format_rank(meta: Metadata) -> int:
    return _FORMAT_RANK.get(meta.format, len(_FORMAT_RANK))


def form_books(items: Sequence[tuple[str, Metadata]]) -> list[list[int]]:
    """Group the readable files of one unit into books; returns lists of indexes into `items`.

    `items` holds (path, metadata) of every successfully parsed file of the unit.
    """
    if len(items) == 1:
        return [[0]]  # a lone file (most units of a flat library): nothing to decide
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
    untagged = groups.pop("", None)
    found: list[list[int]] = []
    for same_album in groups.values():
        # An album tag names the book, except on whole-book files, where rippers often put
        # the series there: m4b files of one album with their own titles are still books.
        whole = all(
            items[i][1].format in _WHOLE_BOOK_AUDIO and items[i][1].title for i in same_album
        )
        found.extend(split_audio(items, same_album) if whole else [same_album])
    if untagged:
        found.extend(split_audio(items, untagged))
    books = [sorted(g, key=lambda i: part_order(items[i][0], items[i][1])) for g in found]
    books.extend([i] for i in loose)

    editions: list[list[int]] = []
    by_stem: dict[str, list[int]] = {}
    by_edition: dict[tuple[str, str, str], list[int]] = {}
    for i in others:
        path, meta = items[i]
        stem, edition = stem_key(path), _edition_key(meta)
        book = by_stem.get(stem) or (by_edition.get(edition) if edition else None)
        if book is None:
            book = []
            editions.append(book)
        book.append(i)
        by_stem.setdefault(stem, book)
        if edition:
            by_edition.setdefault(edition, book)

    by_work = {_work_key(items[b[0]][1]): b for b in books if items[b[0]][1].title}
    by_name = {stem_key(items[b[0]][0]): b for b in books if len(b) == 1}  # Title.m4b
    for edition_files in editions:
        edition_files.sort(key=lambda i: (_format_rank(items[i][1]), natural_key(items[i][0])))
        lead = items[edition_files[0]][1]
        match = by_work.get(_work_key(lead)) if lead.title else None
        if match is None:
            match = by_name.get(stem_key(items[edition_files[0]][0]))
        if match is not None:
            match[:0] = edition_files  # the ebook leads: its text metadata is the richer
        else:
            books.append(edition_files)
    return books
