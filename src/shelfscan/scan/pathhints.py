"""Book metadata guessed from where a file sits: the fallback when tags say nothing.

Users organise libraries for Audiobookshelf ("Author/Series/Title/...") or
calibre ("Author/Title (id)/Title - Author.epub"), or dump files flat
("ebooks/Title - Author.epub"); these rules read all three without any I/O.
`rel_path` is '/'-separated and relative to the library root.

1. Folders that name no book are dropped: generic containers anywhere in the
   path ("ebooks", "audiobooks", "books", "comics", "library", "calibre",
   format names such as "epub" or "mp3", ...), and disc folders ("CD 1",
   "Disc 2", "Part 3") right above the file, which are parts of the book in
   their parent (the same folders `scan.grouping` folds in).
2. Title folder or lone file. The nearest folder left is the book's title
   folder when the file is a multi-file audio format (mp3, m4a, flac, ogg,
   opus, ...: the ABS rule), when the file name repeats the folder's title
   ("Title/Title.m4b", "Title (1999)/Title.epub", "Title/Title (1999).epub"),
   or when the file name is generic ("01", "Track 3", "Part 1", "file"; never
   for comics, whose "001.cbz" is an issue). "X/X - Y.epub" counts only when Y
   names the parent folder (calibre's "Author/Title (17)/Title - Author.epub")
   or looks like a person while X does not; so "Author/Author - Title.epub"
   stays a lone file in an author folder. Otherwise (ebooks, comics, an m4b
   with its own name) the file is the book and its name is parsed for the title.
3. Folders above the title, nearest first (as ABS; farther ones are shelves
   and are ignored): with two or more, the nearest is the series and the next
   the author; with one, it is the author. For comics the nearest is the
   series and no folder is an author. "Unknown" or "Various" author folders
   hold their place but give no author.
   Comics and manga are read by `shelfscan.paths.comics` instead (series,
   volume, issue/chapter and year from scene-style names, reconciled with the
   folders: a series folder wins, `Specials/` or `Vol.1/` folders never name
   the series, a file in the root names its own).
4. The title text (folder or file name, "_" read as a space) is read by
   `shelfscan.paths.audiobooks.parse_title_folder` (Audiobookshelf's
   conventions) and gives:
   - `[B0XXXXXXXX]` or `{ASIN.x}`: the ASIN; `{Name}`: narrators; a leading
     `[Name]`: the author; other `[...]` groups are dropped unless a year;
   - `(1999)`, `[1999]` or a leading `1999 - `: the release year; `(17)`
     (calibre's id, a copy number) and `(Unabridged)`-like noise are dropped;
     `(Series #3)` / `(Series, Book 3)`: a series entry;
   - a series number from a ` - ` part `Book 3`, `Vol. 2`, `Volume 2`, `#2`
     (anywhere: "Title - volume 9 - Subtitle"), `03` or `3.` (inside a series
     folder), a trailing `, Book 2`, ` Vol. 2`, ` #2`, or a name that starts
     with its series folder ("Discworld 03 - Mort"); it goes to the series
     folder and is dropped without one;
   - for an audio title folder, the text after the first " - " (once an
     author piece is gone) is the subtitle ("Heart of Black Ice - Sister of
     Darkness");
   - "X - Y": with an author known, a piece naming that author is dropped
     ("Author - Title"); with none, for a file (not a comic), Y becomes the
     author when it looks like a person (1-4 capitalised words, no digits:
     calibre's "Title - Author"); otherwise the whole text stays the title.
5. The file name (no extension, "_" as space) is the last-resort title.
   `Metadata.title` is None only for an empty path.
"""

from __future__ import annotations

import re
from decimal import Decimal

from shelfscan.formats.identifiers import classify_identifier
from shelfscan.formats.records import Contributor, Identifier, Metadata, SeriesEntry
from shelfscan.names import is_name_particle, person_display, person_key
from shelfscan.paths import (
    COMIC_EXTS,
    TRACK_EXTS,
    TitleFolder,
    is_disc_folder,
    parse_comic_path,
    parse_title_folder,
    spaced,
    split_authors,
    split_name,
    split_subtitle,
)

__all__ = ["metadata_from_path"]

_GENERIC_FOLDERS = frozenset(
    {
        "ebooks", "ebook", "e-books", "e-book", "audiobooks", "audiobook", "audio books",
        "audio book", "audio", "books", "book", "comics", "comic", "manga", "mangas",
        "library", "libraries", "calibre", "calibre library", "my books", "media",
        "novels", "downloads", "kindle", "epub", "epubs", "mobi", "azw3", "pdf", "pdfs",
        "fb2", "cbz", "cbr", "mp3", "m4b", "unsorted", "incoming",
    }
)  # fmt: skip
_NO_AUTHOR = frozenset(
    {"unknown", "unknown author", "unknown authors", "various", "various authors",
     "various artists", "va", "n/a", "none"}
)  # fmt: skip
_ARTICLES = frozenset({"the", "a", "an"})

_GENERIC_STEM_RE = re.compile(
    r"^(?:\d{1,4}|(?:track|chapter|ch|part|pt|disc|disk|cd|side)\s*[-_.]?\s*\d{1,4}"
    r"|file|book|ebook|audiobook|index|text)$",
    re.IGNORECASE,
)
_AFTER_SERIES_RE = re.compile(
    r"^\s*[-–—,:]?\s*(?:(?:book|bk\.?|volume|vol\.?|#)\s*)?(?P<num>\d{1,4}(?:\.\d{1,2})?)"
    r"(?:\s*[-–—:.]\s*|\s+|$)(?P<rest>.*)$",
    re.IGNORECASE,
)
_DASH_SPLIT_RE = re.compile(r"\s+[-–—]\s+")
_DASHES = (" - ", " – ", " — ")
_SEPARATORS = (*_DASHES, " (", " [", " {", ": ", " by ", ", ")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'"})


def _loose(text: str) -> str:
    """Comparison form: casefolded, one kind of apostrophe, "_" as space."""
    return " ".join(text.replace("_", " ").casefold().translate(_APOSTROPHES).split())


def _trim(text: str) -> str:
    return text.strip(" -–—,:;").strip() if text else ""


def _looks_like_person(text: str) -> bool:
    """1-4 capitalised words per name, no digits, not starting with an article."""
    if not text or len(text) > 100 or any(ch.isdigit() for ch in text):
        return False
    for name in split_authors(text):
        words = name.replace(",", " ").split()
        if not 1 <= len(words) <= 4 or words[0].lower() in _ARTICLES:
            return False
        for word in words:
            if not is_name_particle(word) and not word[0].isupper():
                return False
    return True


def _same_book(
    stem: str, folder: str, folder_title: str, parent: str | None
) -> tuple[bool, str | None]:
    """Does the file name repeat the folder's title, so the folder is the book?

    "Title/Title.m4b" and "Title (1999)/Title.epub" do. "X/X - Y.epub" is
    ambiguous: calibre's "Title (17)/Title - Author.epub" says yes, the common
    "Author/Author - Title.epub" says no. Y decides: it must name the parent
    folder, or look like a person while the folder does not; Y is then also
    returned as the author the file name gives.
    """
    a = _loose(stem)
    if not a:
        return False, None
    for b in (_loose(folder), _loose(folder_title)):
        if not b:
            continue
        if a == b:
            return True, None
        if a.startswith(b) and a[len(b) :].startswith(_SEPARATORS):
            rest = a[len(b) :]
        elif b.startswith(a) and b[len(a) :].startswith(_SEPARATORS):
            return True, None
        elif a.endswith(b) and a[: -len(b)].endswith(_DASHES):
            rest = a[: -len(b)]
        else:
            continue
        if not rest.startswith(_DASHES) and not rest.endswith(_DASHES):
            return True, None  # "Title (1999)", "Title: Subtitle", "Title [Retail]"
        pieces = _DASH_SPLIT_RE.split(stem)
        other = pieces[-1] if rest.startswith(_DASHES) else pieces[0]
        if parent is not None and (
            _loose(other) == _loose(parent) or person_key(other) == person_key(parent)
        ):
            return True, other
        if _looks_like_person(other) and not _looks_like_person(folder_title):
            return True, other
        return False, None
    return False, None


def _names_match(piece: str, authors: list[str], author_text: str | None) -> bool:
    loose = _loose(piece)
    if author_text and loose == _loose(author_text):
        return True
    key = person_key(piece)
    return any(person_key(a) == key for a in authors)


def _contributor(name: str) -> Contributor:
    display = person_display(name)
    return Contributor(name=display, role="author", sort_name=name if display != name else None)


def _comic(parts: list[str], stem: str) -> Metadata:
    """Comics and manga: `shelfscan.paths.comics` reads series, volume, issue and year."""
    comic = parse_comic_path(parts)
    title = comic.title or spaced(stem) or stem.strip() or None
    if comic.series and title and title.replace(".", "").isdigit():
        title = f"{comic.series} {title}"  # "Batman/001.cbz": issue 1 of Batman
    series: tuple[SeriesEntry, ...] = ()
    number = comic.number or comic.volume
    if comic.series:
        series = (SeriesEntry(comic.series, number.start if number else None),)
    extra: dict[str, str] = {}
    if comic.volume is not None:
        extra["volume"] = str(comic.volume)
    if comic.number is not None and comic.number.end is not None:
        extra["number"] = str(comic.number)
    if comic.special:
        extra["special"] = "true"
    return Metadata(format="path", title=title, series=series, release_date=comic.year, extra=extra)


def metadata_from_path(rel_path: str) -> Metadata:
    """Title, authors, series, narrators, year and ASIN read off a relative path (format "path")."""
    parts = [p for p in rel_path.split("/") if p.strip() and p not in (".", "..")]
    if not parts:
        return Metadata(format="path")
    stem, ext = split_name(parts[-1])
    stem_text = spaced(stem)
    folders = [f for f in parts[:-1] if _loose(f) not in _GENERIC_FOLDERS]
    while folders and is_disc_folder(folders[-1]):
        folders.pop()
    if ext in COMIC_EXTS:
        return _comic([*folders, parts[-1]], stem)

    seg: TitleFolder | None = None
    above = folders
    named_author: str | None = None  # "Title/Title - Author.epub"
    year = asin = None
    narrators: tuple[str, ...] = ()
    if folders:
        folder_seg = parse_title_folder(folders[-1], in_series=len(folders) >= 3)
        if (
            ext in TRACK_EXTS
            or (ext == "m4b" and folder_seg.marked)
            or _GENERIC_STEM_RE.match(stem_text)
        ):
            # Audio tracks, an audiobook in a folder named as a title folder ("Vol 2 - 1995 -
            # Title", "Title {Narrator}") or a generic file name: the folder is the book.
            seg, above = folder_seg, folders[:-1]
        else:
            parent = spaced(folders[-2]) if len(folders) > 1 else None
            same, named_author = _same_book(stem_text, folders[-1], folder_seg.title, parent)
            if same:
                seg, above = folder_seg, folders[:-1]
                # The file name may add what the folder name lacks: "Title (1999).epub".
                stem_seg = parse_title_folder(stem_text)
                year, asin, narrators = stem_seg.year, stem_seg.asin, stem_seg.narrators
    in_folder = seg is not None
    if seg is None:
        seg = parse_title_folder(stem_text, in_series=len(folders) >= 2)
    year = seg.year or year
    asin = seg.asin or asin
    narrators = seg.narrators or narrators
    if ext not in TRACK_EXTS and ext != "m4b":
        narrators = ()  # "{r2}" on an ebook is a release tag; narrators are audiobook names
    number = seg.sequence

    series_name: str | None = None
    author_text: str | None = None
    if len(above) >= 2:
        series_name, author_text = spaced(above[-1]), spaced(above[-2])
    elif above:
        author_text = spaced(above[0])
    if author_text and _loose(author_text) in _NO_AUTHOR:
        author_text = None
    authors = list(seg.authors) or (list(split_authors(author_text)) if author_text else [])
    if not authors and named_author and _loose(named_author) not in _NO_AUTHOR:
        authors = list(split_authors(named_author))

    title = seg.title
    if series_name and number is None and _loose(title[: len(series_name)]) == _loose(series_name):
        after = _AFTER_SERIES_RE.match(title[len(series_name) :])
        if after:
            number = Decimal(after.group("num"))
            title = _trim(after.group("rest"))

    pieces = _DASH_SPLIT_RE.split(title)
    if len(pieces) >= 2:
        if authors or author_text:
            if _names_match(pieces[0], authors, author_text):
                pieces = pieces[1:]
            elif _names_match(pieces[-1], authors, author_text):
                pieces = pieces[:-1]
        elif not in_folder and _looks_like_person(pieces[-1]):
            authors = list(split_authors(pieces[-1]))
            pieces = pieces[:-1]
        elif not in_folder and "," in pieces[0] and _looks_like_person(pieces[0]):
            # "Harrison, Kim - Title": calibre's "author sort - title" file names.
            authors = list(split_authors(pieces[0]))
            pieces = pieces[1:]
        title = " - ".join(pieces)
    subtitle: str | None = None
    if in_folder and ext in TRACK_EXTS:
        title, subtitle = split_subtitle(title)

    final_title = title or seg.title or seg.raw or stem_text or stem.strip() or None
    series: list[SeriesEntry] = []
    paren = SeriesEntry(*seg.series) if seg.series else None
    if series_name:
        if paren is not None and _loose(paren.name) == _loose(series_name):
            number = number if number is not None else paren.number
            paren = None
        series.append(SeriesEntry(series_name, number))
    if paren is not None:
        series.append(paren)
    elif not series and number is not None and title and not in_folder and ext not in TRACK_EXTS:
        # "Faust - Volume 01.epub", "Harry Potter - Book 1.epub": a numbered book with no
        # series folder is volume N of the series its title names (Kavita's book names).
        series.append(SeriesEntry(title, number))
    identifiers: tuple[Identifier, ...] = ()
    if asin:
        identifiers = classify_identifier(asin, "asin")
    return Metadata(
        format="path",
        title=final_title,
        subtitle=subtitle,
        contributors=tuple(_contributor(a) for a in dict.fromkeys(authors)),
        narrators=narrators,
        series=tuple(series),
        release_date=year,
        identifiers=identifiers,
    )
