"""Reading numbers out of names: volumes, issues/chapters, ranges, years, specials.

The markers are those that comic, manga and audiobook keepers write (the conventions
Kavita's and Komga's parser tests assert): `#57`, `v01`, `Vol.2000`, `Volume 12`, `Tome 2`,
`T3`, `Ch. 001`, `Chapter 11`, `c106`, `Episode 406`, `Ep. 1`, `SP01`, decimals (`#12.5`),
ranges (`c001-008`, `v16-17`, `1-3巻`: the first number, the range kept), and the volume and
chapter words of Japanese/Chinese (第1巻, 第3话, 卷2), Korean (1권, 106화, 13회), Russian
(Том 1, Глава 3) and Thai (เล่ม 1, ตอนที่ 5). A "range" whose end is not above its start
("vol_356-1", "38-1화") is a number followed by something else, not a range.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

__all__ = [
    "Marker",
    "NumberRange",
    "find_chapter",
    "find_episode",
    "find_special",
    "find_volume",
    "group_year",
    "parse_decimal",
    "trailing_number",
]


@dataclass(frozen=True, slots=True)
class NumberRange:
    """A number as a name gives it: `start`, and `end` for a range ("1-3" -> 1, 3)."""

    start: Decimal
    end: Decimal | None = None

    def __str__(self) -> str:
        first = _plain(self.start)
        return first if self.end is None else f"{first}-{_plain(self.end)}"


@dataclass(frozen=True, slots=True)
class Marker:
    """A number found in a text, with where its marker starts and ends (for series cuts)."""

    number: NumberRange | None  # None: a marker without a number ("Vol.tbd", "Special")
    start: int
    end: int


def _plain(value: Decimal) -> str:
    text = format(value.normalize(), "f")
    return text


def parse_decimal(text: str) -> Decimal | None:
    """ "001" -> 1, "033.5" -> 33.5, "153b" -> 153.5 (a letter suffix is a half issue)."""
    half = text[-1:].isalpha()
    if half:
        text = text[:-1]
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    if not value.is_finite() or value >= 1_000_000:
        return None
    return value + Decimal("0.5") if half else value


def _range(first: str, last: str | None) -> NumberRange | None:
    start = parse_decimal(first)
    if start is None:
        return None
    end = parse_decimal(last) if last else None
    return NumberRange(start, end if end is not None and end > start else None)


# (ASCII-only alternation, all-scripts alternation) of one marker family.
_Family = tuple[re.Pattern[str], re.Pattern[str]]

_N = r"\d{1,6}(?:\.\d{1,3})?"
# What may stand before a marker: the start, a separator, or a bracket.
_B = r"(?:^|(?<=[\s\-_.,(\[:#~]))"
# What may follow a number: the end, a separator, a bracket, a version tag ("Chapter11v2").
_A = r"(?:x\d+)?(?:v\d{1,2})?(?=$|[\s\-_,()\[\]#:!~+.])"
# A range is "1-3", or "c000 - c006" with a marker repeated; "v6 - 10" is a volume, then an issue.
_RANGE = rf"(?P<a>{_N})(?:(?:-|\s+-\s*(?=c|ch|#)|\s*-\s+(?=c|ch|#))(?:c|ch\.?|#)?(?P<b>{_N}))?"


def _family(latin: tuple[str, ...], other: tuple[str, ...]) -> Callable[[], _Family]:
    """One alternation per family, so a name is searched once: (ASCII-only, all scripts).

    Each alternative's range groups are renamed a0/b0, a1/b1...; `_marker` finds the one that
    matched from `lastgroup`. Alternatives keep their order, so at one position the first
    listed wins, as the leftmost match wins across positions.

    Compiled on first use (then kept): these alternations take ~40 ms to compile, which a
    CLI run that never reads a comic name (a rescan, an EPUB library) need not pay.
    """

    def join(templates: tuple[str, ...]) -> re.Pattern[str]:
        parts = [
            t.replace("(?P<a>", f"(?P<a{i}>").replace("(?P<b>", f"(?P<b{i}>")
            for i, t in enumerate(templates)
        ]
        return re.compile("|".join(f"(?:{p})" for p in parts), re.I)

    @functools.cache
    def compiled() -> _Family:
        return join(latin), join(latin + other)

    return compiled


_VOLUMES = _family(
    (
        # "Vol. 1", "Volume 01", "Tome 2", "vol_356", "t. 2"
        rf"{_B}(?:vols?\.?|volumes?|tomes?|t\.)\s*[-.]?\s*{_RANGE}{_A}",
        # Single letters glued to the number: "v01", "V2000", "T3", "t6"
        rf"{_B}[vt]{_RANGE}{_A}",
        # A season before an issue: "Tower Of God S01 014"
        rf"{_B}s(?P<a>\d{{1,2}})(?=\s+\d)",
    ),
    (
        # Russian "Том 1", "Тома 1-4"
        rf"{_B}тома?\s*[-.]?\s*{_RANGE}{_A}",
        # CJK: 第03卷, 第1册, 1巻, 1-3巻, 7.5권, 卷2; Thai เล่ม 1 / เล่มที่ 5; Korean 시즌34
        rf"第\s*{_RANGE}\s*[巻卷册冊集]",
        rf"{_RANGE}\s*[巻卷册冊권]",
        rf"[卷巻]\s*{_RANGE}",
        rf"เล่ม(?:ที่)?\s*{_RANGE}",
        rf"시즌\s*{_RANGE}",
    ),
)
_VOLUME_TBD_RE = re.compile(rf"{_B}vol(?:ume)?\.?\s*tbd\b", re.I)

_CHAPTERS = _family(
    (
        # "#57", "issue #25", "x#3"
        rf"{_B}(?:issue\s*)?#\s*{_RANGE}{_A}",
        rf"#\s*{_RANGE}{_A}",
        # "Chapter 001", "chapters 101-108", "Ch.15", "Chp. 1", "c106", "c001-008"
        rf"{_B}(?:chapters?|chap|chp|ch)\.?\s*[-.]?\s*{_RANGE}{_A}",
        rf"{_B}c{_RANGE}{_A}",
    ),
    (
        # Russian "Глава 3" and "2 Глава"
        rf"{_B}глава\s*{_RANGE}",
        rf"{_B}{_RANGE}\s*глава(?!\s*\d)",
        # Thai ตอนที่ / บทที่; CJK 第3话, 第10話; Korean 106화, 13회, 13장
        rf"(?:ตอนที่|บทที่)\s*{_RANGE}",
        rf"第\s*{_RANGE}\s*[话話回]",
        rf"{_RANGE}\s*[화회장]",
    ),
)
# Episodes rank below chapters and issues: "Umineko - Episode 3 - ... #02" is issue 2.
_EPISODES = _family((rf"{_B}(?:episode|ep)\.?\s*[-.]?\s*{_RANGE}{_A}",), ())

# Specials, as Kavita's current scanner tests assert them: an "SP01" marker, or a name whose
# last " - " part is only a special word ("Love Hina - Special", "... - Omake"). Annuals,
# one-shots, TPBs and omnibuses are issues of their own series ("Batman Beyond Annual" is a
# series in ComicVine's sense), so words inside a title flag nothing.
_SP_RE = re.compile(rf"{_B}sp\s?(?P<a>\d{{1,3}}){_A}", re.I)
_SPECIAL_WORD_RE = re.compile(
    r"(?:^|\s-\s*)(?:specials?|omake|extras?|bonus|one[\s-]?shot)\s*$", re.I
)
_YEAR_GROUP_RE = re.compile(
    r"^(?:(?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,?\s+)?"
    r"(?:\d{1,2}[-/.]\d{1,2}\s+)?(?P<y>(?:1[89]|20)\d{2})"
    r"(?:[-/.]\d{1,2}){0,2}(?:\s*-\s*(?:(?:1[89]|20)\d{2}|\d{2}))?$",
    re.I,
)
_TRAILING_RE = re.compile(
    rf"(?:^|(?<=[\s\-_]))(?P<a>{_N}[a-e]?)(?:\s*-\s*(?P<b>{_N}[a-e]?))?(?P<tail>\s+[A-Z]{{2,5}})?$"
)


def _marker(match: re.Match[str]) -> Marker:
    last = match.lastgroup or "a"
    suffix = last[1:]
    groups = match.groupdict()
    first = groups.get(f"a{suffix}")
    second = groups.get(f"b{suffix}")
    number = _range(first, second) if first else None
    return Marker(number, match.start(), match.end())


def _first(family: Callable[[], _Family], text: str) -> Marker | None:
    match = family()[0 if text.isascii() else 1].search(text)
    return _marker(match) if match is not None else None


def find_volume(text: str) -> Marker | None:
    """The first volume marker in `text` ("Vol. 1", "v01", "T3", "第1巻", "Том 1", "เล่ม 1")."""
    found = _first(_VOLUMES, text)
    if "tbd" in text.lower():
        tbd = _VOLUME_TBD_RE.search(text)
        if tbd and (found is None or tbd.start() < found.start):
            return Marker(None, tbd.start(), tbd.end())
    return found


def find_chapter(text: str) -> Marker | None:
    """The first issue/chapter marker (`#N`, `Ch.`, `Chapter`, `c106`, 第3话, 106화, Глава),
    else the first episode marker (`Episode 406`, `Ep. 1`)."""
    return _first(_CHAPTERS, text) or find_episode(text)


def find_episode(text: str) -> Marker | None:
    """The first episode marker ("Episode 406", "Ep. 001")."""
    return _first(_EPISODES, text)


def find_special(text: str) -> Marker | None:
    """An `SP01` marker (with its index), or a last " - " part that is only a special word
    (Special, Specials, Omake, Extra, Bonus, One Shot); None for an ordinary issue."""
    sp = _SP_RE.search(text)
    word = _SPECIAL_WORD_RE.search(text)
    if sp and (word is None or sp.start() <= word.start()):
        return _marker(sp)
    if word:
        return Marker(None, word.start(), word.end())
    return None


def group_year(group: str) -> str | None:
    """The year a bracket group gives: "2012", "1966-02", "December, 2004", "Sep 1973",
    "1984-04-28", "2016-2019" (the first year), "09-10 1943"; None for anything else."""
    if len(group) > 24:
        return None
    found = _YEAR_GROUP_RE.match(group)
    return found.group("y") if found else None


def trailing_number(segment: str) -> tuple[NumberRange, int] | None:
    """A bare number ending `segment` ("Saga 001", "spawn-123", "Bleach 001-003",
    "Beelzebub 172 RHS") and where it starts; None when the segment does not end in one."""
    found = _TRAILING_RE.search(segment)
    if not found:
        return None
    number = _range(found.group("a"), found.group("b"))
    return (number, found.start()) if number is not None else None
