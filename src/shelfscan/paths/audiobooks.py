"""Book title folders as Audiobookshelf documents them: sequence, year, title, subtitle,
narrators and ASIN in one folder name.

Conventions (Audiobookshelf's directory-structure docs and its folder scanner): the layout is
`Author/Series/Title/` or `Author/Title/`, and the title folder may read
`Vol 1 - 1994 - Wizards First Rule - Subtitle {Sam Tsoutsouvas}`:

* `{Narrator}` (several split like author lists) and `[B0XXXXXXXX]` / `{ASIN.x}` anywhere;
* the sequence is the first ` - `-separated part that is `Book 2`, `Vol 3`, `Vol. 3`,
  `Volume 12.`, `#2`, or (inside a series folder only) a bare `2`, `6.` or `0.5`; a part
  with more text keeps that text ("Vol. 3 Title Here" -> title "Title Here"), a bare
  number followed by words is a title ("101 Dalmatians"), so is a four-digit year. A middle
  part such as "volume 9" in `Title - volume 9 - Subtitle` goes, leaving `Title - Subtitle`;
* the year is a leading `1994 - ` or `(1994) - `, a last ` - 1994` part, or a `(1994)` /
  `[1994]` group;
* the subtitle is what follows the first ` - ` (for audiobook title folders);
* a whole ` - ` part naming a series and its number, first or last ("Sword Art Online Vol
  10 - Title", "Title - Hollows Vol 2.5"), is a series entry (Kavita's book names);
* other groups: a leading `[Author]`, `(Series #3)` / `(Series, Book 3)` series entries,
  `(Book 3)`, calibre's `(17)` id and `(Unabridged)`-like noise (dropped);
* a trailing `, Book 2`, ` Volume 2` or ` (Book 2)` is a sequence too (ebook names).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from shelfscan.paths.authors import split_authors
from shelfscan.paths.series import series_entry
from shelfscan.paths.tokens import is_noise, spaced, trim_separators

__all__ = ["TitleFolder", "parse_title_folder", "split_subtitle"]


@dataclass(frozen=True, slots=True)
class TitleFolder:
    """What one title folder (or file name) says."""

    raw: str  # the name, "_" read as space
    title: str  # what is left for the title ("" when the name held only a number)
    sequence: Decimal | None = None
    year: str | None = None
    narrators: tuple[str, ...] = ()
    asin: str | None = None
    authors: tuple[str, ...] = ()  # a leading "[Author]"
    series: tuple[str, Decimal | None] | None = None  # "(Series #3)"

    @property
    def marked(self) -> bool:
        """Does the name carry a title folder's markers (sequence, year, narrator, ASIN)?"""
        return bool(self.sequence is not None or self.year or self.narrators or self.asin)


_NUM = r"\d{1,4}(?:\.\d{1,2})?"
_LABEL = r"(?:book|bk\.?|volume|vol\.?|#)"
# "[B0015T963C]", "{ASIN.1774248182}", "(asin: B0...)", and Audiobookshelf's bare
# "[1774248182]": ten upper-case letters or digits in square brackets, with a digit.
_ASIN_RE = re.compile(
    r"[\[({]\s*(?:asin\s*[.:=]?\s*)?(B0[0-9A-Z]{8})\s*[\])}]"
    r"|[\[({]\s*asin\s*[.:=]?\s*(\d{9}[\dX])\s*[\])}]"
    r"|\[(?=[A-Z]*\d)((?-i:[A-Z0-9]{10}))\]",
    re.IGNORECASE,
)
_BRACES_RE = re.compile(r"\{([^{}]*)\}")
_BRACKETS_RE = re.compile(r"\[([^\[\]]*)\]")
_PARENS_RE = re.compile(r"\(([^()]*)\)")
_YEAR_RE = re.compile(r"^(1\d{3}|20\d{2})$")
_DIGITS_RE = re.compile(r"^\d{1,6}$")
_PAREN_NUMBER_RE = re.compile(rf"^{_LABEL}\s*(?P<num>{_NUM})$", re.IGNORECASE)
_LEADING_YEAR_RE = re.compile(r"^\(?(1\d{3}|20\d{2})\)?\s*[-–—]\s*(?=\S)")
_PART_SEQ_RE = re.compile(
    rf"^(?:(?P<label>{_LABEL})\s*)?(?P<num>\d{{1,4}}(?:\.\d{{1,2}})?)(?P<dot>\.)?"
    rf"(?:\s+(?P<rest>.*))?$",
    re.IGNORECASE,
)
_TRAILING_SEQ_RE = re.compile(
    rf"(?:^|\s*[-–—,:]\s*|\s+)\(?{_LABEL}\s*(?P<num>{_NUM})\)?$", re.IGNORECASE
)
_PARTS_SPLIT_RE = re.compile(r"\s+[-–—]\s+")
_EXTRA_NOISE = frozenset({"audio book", "dramatized", "dramatised", "illustrated", "full cast"})


def _part_sequence(part: str, in_series: bool) -> tuple[Decimal, str] | None:
    """(number, what the part keeps) when a ` - ` part is a sequence."""
    found = _PART_SEQ_RE.match(part)
    if not found:
        return None
    label, num, dot, rest = found.group("label", "num", "dot", "rest")
    if label is None:
        if not in_series or len(num.partition(".")[0]) > 3:
            return None  # a bare number means a sequence only inside a series; 1994 is a year
        if rest and not dot:
            return None  # "101 Dalmatians" is a title
    return Decimal(num), (rest or "").strip()


def parse_title_folder(text: str, *, in_series: bool = False) -> TitleFolder:
    """Read a title folder or file-name stem; `in_series`: a series folder sits above it."""
    raw = spaced(text)
    title = raw
    asin: str | None = None
    narrators: list[str] = []
    authors: tuple[str, ...] = ()
    year: str | None = None
    sequence: Decimal | None = None
    series: tuple[str, Decimal | None] | None = None

    if any(ch in title for ch in "[({"):
        for match in _ASIN_RE.finditer(title):
            asin = asin or (match.group(1) or match.group(2) or match.group(3)).upper()
        title = _ASIN_RE.sub(" ", title)
        for match in _BRACES_RE.finditer(title):
            narrators.extend(split_authors(match.group(1)))
        title = _BRACES_RE.sub(" ", title).strip()
        kept: list[str] = []
        position = 0
        for match in _BRACKETS_RE.finditer(title):
            kept.append(title[position : match.start()])
            position = match.end()
            inner = match.group(1).strip()
            if _YEAR_RE.match(inner):
                year = year or inner
            elif match.start() == 0 and inner and not authors:
                authors = split_authors(inner)
            kept.append(" ")
        kept.append(title[position:])
        title = "".join(kept)
        kept = []
        position = 0
        for match in _PARENS_RE.finditer(title):
            kept.append(title[position : match.start()])
            position = match.end()
            inner = " ".join(match.group(1).split())
            if _YEAR_RE.match(inner):
                year = year or inner
            elif _DIGITS_RE.match(inner) or is_noise(inner) or inner.casefold() in _EXTRA_NOISE:
                pass
            elif (number := _PAREN_NUMBER_RE.match(inner)) is not None:
                sequence = sequence if sequence is not None else Decimal(number.group("num"))
            elif (
                series is None
                and (named := series_entry(inner)) is not None
                and any(ch.isalpha() for ch in named[0])
            ):
                series = (" ".join(named[0].split()), named[1])
            else:
                kept.append(match.group(0))
                continue
            kept.append(" ")
        kept.append(title[position:])
        title = " ".join("".join(kept).split())

    parts = _PARTS_SPLIT_RE.split(title)
    if sequence is None:
        for index, part in enumerate(parts):
            found = _part_sequence(part, in_series)
            if found is not None:
                sequence, rest = found
                if rest:
                    parts[index] = rest
                else:
                    del parts[index]
                break
    if sequence is None and series is None and len(parts) > 1:
        # "Sword Art Online Vol 10 - Title", "Author - Title - Hollows Vol 2.5": a named
        # series with its number as a whole " - " part.
        for index in (0, len(parts) - 1):
            named = series_entry(parts[index])
            if named is not None and any(ch.isalpha() for ch in named[0]):
                series = (" ".join(named[0].split()), named[1])
                del parts[index]
                break
    if len(parts) > 1 and _YEAR_RE.match(parts[-1]):
        year = year or parts.pop()  # "Book 7 - Title - 2007"
    title = " - ".join(parts)
    leading = _LEADING_YEAR_RE.match(title)
    if leading:
        year = year or leading.group(1)
        title = title[leading.end() :]
    if sequence is None:
        trailing = _TRAILING_SEQ_RE.search(title)
        if trailing and trailing.start() > 0:
            sequence = Decimal(trailing.group("num"))
            title = title[: trailing.start()]
    return TitleFolder(
        raw=raw,
        title=trim_separators(title),
        sequence=sequence,
        year=year,
        narrators=tuple(dict.fromkeys(narrators)),
        asin=asin,
        authors=authors,
        series=series,
    )


def split_subtitle(title: str) -> tuple[str, str | None]:
    """Audiobookshelf's subtitle rule: what follows the first " - " is the subtitle."""
    head, sep, tail = title.partition(" - ")
    if not sep or not head.strip() or not tail.strip():
        return title, None
    return head.strip(), tail.strip()
