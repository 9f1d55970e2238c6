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
4. The title text (folder or file name, "_" read as a space) gives:
   - `[B0XXXXXXXX]` or `{ASIN.x}`: the ASIN; `{Name}`: narrators; a leading
     `[Name]`: the author; other `[...]` groups are dropped unless a year;
   - `(1999)`, `[1999]` or a leading `1999 - `: the release year; `(17)`
     (calibre's id, a copy number) and `(Unabridged)`-like noise are dropped;
     `(Series #3)` / `(Series, Book 3)`: a series entry;
   - a series number from a leading `Book 3 - `, `Vol. 2 `, `Volume 2 `, `#2 `,
     `03 - ` or `3. `, a trailing `, Book 2`, ` - Vol 12`, ` Vol. 2`, ` #2`, or
     a name that starts with its series folder ("Discworld 03 - Mort",
     "Batman 001"); it goes to the series folder and is dropped without one;
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
from shelfscan.formats.text import clean
from shelfscan.names import person_display, person_key

__all__ = ["metadata_from_path"]

_TRACK_EXTS = frozenset(
    {"mp3", "m4a", "mp4", "flac", "ogg", "oga", "opus", "wav", "aac", "wma", "aif", "aiff", "mka"}
)
_COMIC_EXTS = frozenset({"cbz", "cbr", "cb7", "cbt", "cba"})
_DOUBLE_EXTS = (".kepub.epub", ".fb2.zip")
_MAX_SEGMENT_CHARS = 512  # file systems cap a name at 255 bytes; longer is hostile input
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
_NOISE = frozenset(
    {"unabridged", "abridged", "retail", "audiobook", "audio book", "ebook", "epub", "mobi",
     "azw3", "kepub", "pdf", "mp3", "m4b", "dramatized", "dramatised", "illustrated"}
)  # fmt: skip
_PARTICLES = frozenset({"van", "von", "de", "der", "den", "du", "la", "le", "da", "di", "del"})
_ARTICLES = frozenset({"the", "a", "an"})

_DISC_DIR_RE = re.compile(r"^(?:cd|dis[ck]|part)\s*[-_ ]?\s*\d{1,3}$", re.IGNORECASE)
_GENERIC_STEM_RE = re.compile(
    r"^(?:\d{1,4}|(?:track|chapter|ch|part|pt|disc|disk|cd|side)\s*[-_.]?\s*\d{1,4}"
    r"|file|book|ebook|audiobook|index|text)$",
    re.IGNORECASE,
)
_NUM = r"\d{1,4}(?:\.\d{1,2})?"
_LABEL = r"(?:book|bk\.?|volume|vol\.?|#)"
_ASIN_RE = re.compile(
    r"[\[({]\s*(?:asin\s*[.:=]?\s*)?(B0[0-9A-Z]{8})\s*[\])}]"
    r"|[\[({]\s*asin\s*[.:=]?\s*(\d{9}[\dX])\s*[\])}]",
    re.IGNORECASE,
)
_BRACES_RE = re.compile(r"\{([^{}]*)\}")
_BRACKETS_RE = re.compile(r"\[([^\[\]]*)\]")
_PARENS_RE = re.compile(r"\(([^()]*)\)")
_YEAR_RE = re.compile(r"^(1\d{3}|20\d{2})$")
_DIGITS_RE = re.compile(r"^\d{1,6}$")
_PAREN_SERIES_RE = re.compile(rf"^(?P<name>.+?),?\s+{_LABEL}\s*(?P<num>{_NUM})$", re.IGNORECASE)
_PAREN_NUMBER_RE = re.compile(rf"^{_LABEL}\s*(?P<num>{_NUM})$", re.IGNORECASE)
_LEADING_YEAR_RE = re.compile(r"^(1\d{3}|20\d{2})\s+[-–—]\s+(?=\S)")
_LEADING_SEQ_RE = re.compile(
    rf"^(?:{_LABEL}\s*(?P<a>{_NUM})(?:\s*[-–—:.,]\s*|\s+)"
    rf"|(?P<b>{_NUM})(?:\s*[-–—]\s+|\.\s+|\s+[-–—]\s*))(?=\S)",
    re.IGNORECASE,
)
_TRAILING_SEQ_RE = re.compile(
    rf"(?:^|\s*[-–—,:]\s*|\s+)\(?{_LABEL}\s*(?P<num>{_NUM})\)?$", re.IGNORECASE
)
_AFTER_SERIES_RE = re.compile(
    rf"^\s*[-–—,:]?\s*(?:{_LABEL}\s*)?(?P<num>{_NUM})(?:\s*[-–—:.]\s*|\s+|$)(?P<rest>.*)$",
    re.IGNORECASE,
)
_DASH_SPLIT_RE = re.compile(r"\s+[-–—]\s+")
_PEOPLE_SPLIT_RE = re.compile(r"\s*(?:;|&|\band\b)\s*")
_DASHES = (" - ", " – ", " — ")
_SEPARATORS = (*_DASHES, " (", " [", " {", ": ", " by ", ", ")
_APOSTROPHES = str.maketrans({"’": "'", "‘": "'"})


class _Segment:
    """What one folder or file name says; a plain slotted holder, local to one call."""

    __slots__ = ("asin", "authors", "narrators", "number", "paren_series", "raw", "title", "year")

    def __init__(self, raw: str) -> None:
        self.raw = raw
        self.title = raw
        self.year: str | None = None
        self.asin: str | None = None
        self.authors: list[str] = []
        self.narrators: list[str] = []
        self.number: Decimal | None = None
        self.paren_series: SeriesEntry | None = None


def _spaced(text: str) -> str:
    return clean(text.replace("_", " ")) or ""


def _loose(text: str) -> str:
    """Comparison form: casefolded, one kind of apostrophe, "_" as space."""
    return " ".join(text.replace("_", " ").casefold().translate(_APOSTROPHES).split())


def _split_name(filename: str) -> tuple[str, str]:
    """(stem, lower-case extension); "Mr. Smith" has no extension, ".kepub.epub" is one."""
    lowered = filename.lower()
    for double in _DOUBLE_EXTS:
        if lowered.endswith(double) and len(filename) > len(double):
            return filename[: -len(double)], double.rpartition(".")[2]
    stem, dot, ext = filename.rpartition(".")
    if dot and stem.strip() and 1 <= len(ext) <= 5 and ext.isalnum() and not ext.isdigit():
        return stem, ext.lower()
    return filename, ""


def _parse_segment(text: str) -> _Segment:
    seg = _Segment(_spaced(text[:_MAX_SEGMENT_CHARS]))
    title = seg.raw

    def asin(match: re.Match[str]) -> str:
        value = match.group(1) or match.group(2)
        if seg.asin is None:
            seg.asin = value.upper()
        return " "

    title = _ASIN_RE.sub(asin, title)

    def braces(match: re.Match[str]) -> str:
        seg.narrators.extend(_people(match.group(1)))
        return " "

    title = _BRACES_RE.sub(braces, title)

    def brackets(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        if _YEAR_RE.match(inner):
            seg.year = seg.year or inner
        elif match.start() == 0 and inner and not seg.authors:
            seg.authors = _people(inner)
        return " "

    title = _BRACKETS_RE.sub(brackets, title.strip())

    def parens(match: re.Match[str]) -> str:
        inner = " ".join(match.group(1).split())
        if _YEAR_RE.match(inner):
            seg.year = seg.year or inner
            return " "
        if _DIGITS_RE.match(inner) or inner.casefold() in _NOISE:
            return " "
        found = _PAREN_NUMBER_RE.match(inner)
        if found:
            seg.number = seg.number if seg.number is not None else Decimal(found.group("num"))
            return " "
        found = _PAREN_SERIES_RE.match(inner)
        if found and seg.paren_series is None:
            name = clean(found.group("name"))
            if name and any(ch.isalpha() for ch in name):
                seg.paren_series = SeriesEntry(name, Decimal(found.group("num")))
                return " "
        return match.group(0)

    title = " ".join(_PARENS_RE.sub(parens, title).split())
    year = _LEADING_YEAR_RE.match(title)
    if year:
        seg.year = seg.year or year.group(1)
        title = title[year.end() :]
    seq = _LEADING_SEQ_RE.match(title)
    if seq and seg.number is None:
        seg.number = Decimal(seq.group("a") or seq.group("b"))
        title = title[seq.end() :]
    seg.title = _trim(title)
    return seg


def _trim(text: str) -> str:
    return text.strip(" -–—,:;").strip() if text else ""


def _looks_like_person(text: str) -> bool:
    """1-4 capitalised words per name, no digits, not starting with an article."""
    if not text or len(text) > 100 or any(ch.isdigit() for ch in text):
        return False
    for name in _PEOPLE_SPLIT_RE.split(text):
        words = name.replace(",", " ").split()
        if not 1 <= len(words) <= 4 or words[0].lower() in _ARTICLES:
            return False
        for word in words:
            if word.lower() not in _PARTICLES and not word[0].isupper():
                return False
    return True


def _is_initial(word: str) -> bool:
    core = word.rstrip(".")
    return len(core) == 1 and core.isalpha()


def _people(text: str) -> list[str]:
    """Split "A & B", "A; B", "A and B", and "A B, C D" (but never "Last, First")."""
    found: list[str] = []
    for chunk in _PEOPLE_SPLIT_RE.split(text):
        name = clean(chunk)
        if not name:
            continue
        pieces = [p.strip() for p in name.split(",")]
        if len(pieces) > 1 and all(
            len(p.split()) >= 2 and not _is_initial(p.split()[-1]) for p in pieces
        ):
            found.extend(p for p in pieces if p)
        else:
            found.append(name)
    return found


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


def metadata_from_path(rel_path: str) -> Metadata:
    """Title, authors, series, narrators, year and ASIN read off a relative path (format "path")."""
    parts = [p for p in rel_path.split("/") if p.strip() and p not in (".", "..")]
    if not parts:
        return Metadata(format="path")
    stem, ext = _split_name(parts[-1])
    stem_text = _spaced(stem)
    folders = [f for f in parts[:-1] if _loose(f) not in _GENERIC_FOLDERS]
    while folders and _DISC_DIR_RE.match(folders[-1].strip()):
        folders.pop()
    comic = ext in _COMIC_EXTS

    seg: _Segment | None = None
    above = folders
    named_author: str | None = None  # "Title/Title - Author.epub"
    if folders:
        folder_seg = _parse_segment(folders[-1])
        if ext in _TRACK_EXTS or (not comic and _GENERIC_STEM_RE.match(stem_text)):
            seg, above = folder_seg, folders[:-1]
        else:
            parent = _spaced(folders[-2]) if len(folders) > 1 else None
            same, named_author = _same_book(stem_text, folders[-1], folder_seg.title, parent)
            if same:
                seg, above = folder_seg, folders[:-1]
                # The file name may add what the folder name lacks: "Title (1999).epub".
                stem_seg = _parse_segment(stem_text)
                seg.year = seg.year or stem_seg.year
                seg.asin = seg.asin or stem_seg.asin
                seg.narrators = seg.narrators or stem_seg.narrators
    in_folder = seg is not None
    if seg is None:
        seg = _parse_segment(stem_text)

    series_name: str | None = None
    author_text: str | None = None
    if comic:
        series_name = _spaced(above[-1]) if above else None
    elif len(above) >= 2:
        series_name, author_text = _spaced(above[-1]), _spaced(above[-2])
    elif above:
        author_text = _spaced(above[0])
    if author_text and _loose(author_text) in _NO_AUTHOR:
        author_text = None
    authors = seg.authors or (_people(author_text) if author_text else [])
    if not authors and named_author and _loose(named_author) not in _NO_AUTHOR:
        authors = _people(named_author)

    title = seg.title
    if (
        series_name
        and seg.number is None
        and _loose(title[: len(series_name)]) == _loose(series_name)
    ):
        after = _AFTER_SERIES_RE.match(title[len(series_name) :])
        if after:
            seg.number = Decimal(after.group("num"))
            title = _trim(after.group("rest"))

    if series_name and seg.number is None and title.isdigit() and len(title) <= 4:
        seg.number = Decimal(title)  # "Batman/001.cbz": issue 1 of Batman
        title = f"{series_name} {title}"

    pieces = _DASH_SPLIT_RE.split(title)
    if len(pieces) >= 2:
        if authors or author_text:
            if _names_match(pieces[0], authors, author_text):
                pieces = pieces[1:]
            elif _names_match(pieces[-1], authors, author_text):
                pieces = pieces[:-1]
        elif not in_folder and not comic and _looks_like_person(pieces[-1]):
            authors = _people(pieces[-1])
            pieces = pieces[:-1]
        title = " - ".join(pieces)

    if seg.number is None:
        trailing = _TRAILING_SEQ_RE.search(title)
        if trailing:
            seg.number = Decimal(trailing.group("num"))
            title = _trim(title[: trailing.start()])

    final_title = title or seg.title or seg.raw or stem_text or stem.strip() or None
    series: list[SeriesEntry] = []
    paren = seg.paren_series
    if series_name:
        number = seg.number
        if paren is not None and _loose(paren.name) == _loose(series_name):
            number = number if number is not None else paren.number
            paren = None
        series.append(SeriesEntry(series_name, number))
    if paren is not None:
        series.append(paren)
    identifiers: tuple[Identifier, ...] = ()
    if seg.asin:
        identifiers = classify_identifier(seg.asin, "asin")
    return Metadata(
        format="path",
        title=final_title,
        contributors=tuple(_contributor(a) for a in dict.fromkeys(authors)),
        narrators=tuple(dict.fromkeys(seg.narrators)),
        series=tuple(series),
        release_date=seg.year,
        identifiers=identifiers,
    )
