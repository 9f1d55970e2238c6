"""Comic and manga names: series, volume, issue/chapter, year and special flag.

Conventions (Kavita's and Komga's parser tests; Kavita reads series from names, Komga from
folders, and a mixed library needs both):

* The series is the text before the first marker (`Vol.`, `v01`, `#57`, `Ch.`, `c106`,
  `SP01`, 第1巻...), or, with no marker, before the first bare number that ends a ` - `
  segment ("Scott Pilgrim 01 - Precious Little Life": series "Scott Pilgrim", 1). A bare
  four-digit year-like number (2077, 1989) is part of the series, not an issue.
* The issue/chapter is the first `#N`/chapter marker (episodes rank below them), else a bare
  number right after the volume ("Teen Titans v1 001"), else that bare trailing number. A
  volume without an issue leaves the issue empty ("Dorohedoro v01": volume 1).
* Groups: `(2012)`, `(December, 2004)`, `(1966-02)` give the year; `(v01)` or
  `[Volume 11]` a volume, `(Ch.071-079)` a chapter range, `(1 of 3)` an issue; every other
  group (scan groups, `(Digital)`, `[1080p]`) is noise. `[v2]` is a release version, not a
  volume, so square brackets count only with a spelled-out volume word.
* A name that is only "04 - Title" reads as series "Title" with no number when it is alone
  in the library root (Kavita), but as issue 4 of the folder's series when a folder names
  the series (`Asterix/04 - Asterix the Gladiator.cbz`).
* Paths: the nearest folder that names something other than a volume, chapter or specials
  container is the series folder; `Specials/`, `Extras/`, `Artbook/`, `Vol.1/`, `Chapter 1/`
  folders are containers: they give a special flag, a volume or a chapter, never the series.
  The series folder wins over the file name when it names the same series (its spelling,
  without the file's noise), when the file name gives no series ("Batman/001.cbz", "Vol
  1.cbz") or no number (a title: "Batman/Batman - Year One.cbr"), and for specials ("Love Hina/Specials/Art Collection.cbz"); a file name naming
  another series keeps it, as Kavita does ("Goblin Slayer/Goblin Slayer - Brand New Day
  006.5.cbz" is a spin-off filed with its parent; Komga would say "Goblin Slayer"). A file in
  the library root takes its series from its own name.
* Specials: an `SP01` marker, a name ending in a lone special word ("Love Hina - Special",
  "... - Omake"), or a `Specials/`, `Extras/`, `Omake/`, `Bonus/` folder (Kavita's current
  rules, the same for comics and manga). Annuals, one-shots, TPBs and omnibuses are issues
  of their own series ("Blood Syndicate Annual #001": series "Blood Syndicate Annual").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from shelfscan.paths.numbers import (
    NumberRange,
    find_chapter,
    find_episode,
    find_special,
    find_volume,
    group_year,
    trailing_number,
)
from shelfscan.paths.series import series_and_year
from shelfscan.paths.tokens import is_noise, spaced, split_name, strip_groups, trim_separators

__all__ = ["ComicName", "parse_comic_name", "parse_comic_path"]


@dataclass(frozen=True, slots=True)
class ComicName:
    """What a comic's name (and folders) say. `number` is the issue or chapter."""

    series: str | None = None
    volume: NumberRange | None = None
    number: NumberRange | None = None
    year: str | None = None
    special: bool = False
    title: str | None = None  # the name without its noise ("Saga 001")


_SEGMENT_SPLIT_RE = re.compile(r"\s+-\s+|\s+-(?=\S)|(?<=\S)-\s+")
_AFTER_VOLUME_RE = re.compile(r"^\s*(?:-\s*)?(?P<a>\d{1,5}(?:\.\d{1,3})?)(?=$|[\s\-,.])")
_GROUP_RE = re.compile(r"\(([^()]*)\)|\[([^\[\]]*)\]|\{([^{}]*)\}")
_OF_RE = re.compile(r"^(?:(?P<a>\d{1,4})\s+)?of\s+\d{1,4}$", re.I)
_LONG_VOLUME_WORD_RE = re.compile(r"^\s*(?:vol|volume|tome|том)", re.I)
_YEAR_LIKE_RE = re.compile(r"^(?:1[89]|20)\d{2}$")
_CONTAINER_FOLDERS = frozenset(
    {
        "specials", "special", "extras", "extra", "omake", "omakes", "bonus", "bonuses",
        "one shots", "one-shots", "oneshots", "annuals", "artbooks", "art books", "artbook",
        "covers", "scans", "tpb", "tpbs", "trades", "issues", "chapters", "volumes",
        "side stories", "misc", "others", "other",
    }
)  # fmt: skip
_SPECIAL_FOLDERS = frozenset(
    {"specials", "special", "extras", "extra", "omake", "omakes", "bonus", "bonuses"}
)
# Containers nest a few deep ("Series/Vol.1/Chapter 1/"); farther folders are shelves.
_MAX_FOLDERS = 8
_CUT_TAIL_RE = re.compile(r"[\s\-_,:;~]+$")


def _from_groups(
    groups: Sequence[str],
) -> tuple[str | None, NumberRange | None, NumberRange | None, NumberRange | None]:
    """(year, volume, chapter, "N of M" issue) that bracket groups give."""
    year = volume = chapter = of = None
    for group in groups:
        if not any(ch.isdigit() for ch in group):
            continue  # every year, volume, chapter and "N of M" has a digit
        if year is None:
            year = group_year(group)
            if year is not None:
                continue
        if volume is None:
            found = find_volume(group)
            if found is not None and found.start == 0 and found.number is not None:
                volume = found.number
                continue
        if chapter is None:
            found = find_chapter(group)
            if found is not None and found.start == 0 and found.number is not None:
                chapter = found.number
                continue
        if of is None:
            match = _OF_RE.match(group)
            if match and match.group("a"):
                number = trailing_number(match.group("a"))
                of = number[0] if number else None
    return year, volume, chapter, of


def _groups_with_volume_words(text: str) -> list[str]:
    """Bracket groups as `_from_groups` may read them: `[v2]` (a release version) is left out."""
    out: list[str] = []
    if not any(ch in text for ch in "([{"):
        return out
    for match in _GROUP_RE.finditer(text):
        paren, square, brace = match.groups()
        if paren is not None:
            out.append(paren.strip())
        elif square is not None and (
            _LONG_VOLUME_WORD_RE.match(square) or not find_volume(square.strip())
        ):
            out.append(square.strip())
        elif brace is not None:
            out.append(brace.strip())
    return out


def _bare(text: str, series_known: bool) -> tuple[str, NumberRange | None]:
    """Series text and number of a name with no marker (bare numbers only)."""
    segments = _SEGMENT_SPLIT_RE.split(text)
    for index, segment in enumerate(segments):
        words = segment.split()
        while len(words) > 1 and is_noise(words[-1]):
            words.pop()
        segment = " ".join(words)
        found = trailing_number(segment)
        if found is None:
            continue
        number, start = found
        head = segment[:start]
        digits = segment[start:].split("-")[0].strip()
        if head.strip() and _YEAR_LIKE_RE.match(digits):
            continue  # "Cyberpunk 2077", "Batman 1989": part of the series
        if not head.strip():
            if index == 0 and len(segments) > 1:
                # "04 - Asterix the Gladiator": an album number before a title.
                if series_known:  # the rest is the album's title, not a series
                    return "", number
                return " - ".join(segments[1:]), None
            if index == 0:
                return "", number
        kept = [*segments[:index], head] if head.strip() else segments[:index]
        return " - ".join(kept), number
    return text, None


def parse_comic_name(name: str, *, series_known: bool = False) -> ComicName:
    """Read one file or folder name (extension already removed or not).

    `series_known`: a folder already names the series, so a leading "04 - " is an issue.
    """
    stem, ext = split_name(name)
    if ext and not ext.isalpha():
        stem = name
    text = spaced(stem, dots=True)
    groups = tuple(_groups_with_volume_words(text))
    rest, _ = strip_groups(text)
    year, group_volume, group_chapter, of = _from_groups(groups)

    digits = any(ch.isdigit() for ch in rest)
    volume = find_volume(rest) if digits else None
    chapter = find_chapter(rest) if digits else None
    special = find_special(rest)
    episode = find_episode(rest) if chapter is not None else None
    cut_at = min(
        (m.start for m in (volume, chapter, episode) if m is not None),
        default=None,
    )
    if special is not None and special.number is not None:  # "SP01" ends the series too
        cut_at = special.start if cut_at is None else min(cut_at, special.start)

    number: NumberRange | None = chapter.number if chapter else None
    if cut_at is not None:
        series_text = rest[:cut_at]
        if number is None and volume is not None and volume.number is not None:
            after = _AFTER_VOLUME_RE.match(rest[volume.end :])
            if after:
                found = trailing_number(after.group("a"))
                number = found[0] if found else None
    else:
        series_text, number = _bare(rest, series_known)
    series, _ = series_and_year(_CUT_TAIL_RE.sub("", series_text))
    return ComicName(
        series=series,
        volume=(volume.number if volume else None) or group_volume,
        number=number or group_chapter or of,
        year=year,
        special=special is not None,
        title=trim_separators(rest) or None,
    )


def _container(folder: str) -> ComicName | None:
    """What a volume/chapter/specials container folder gives; None for any other folder."""
    key = " ".join(spaced(folder).casefold().split())
    if key in _CONTAINER_FOLDERS:
        return ComicName(special=key in _SPECIAL_FOLDERS)
    if not any(ch.isdigit() for ch in key):
        return None  # "Vol.1", "Chapter 1", "v01" all carry a number
    parsed = parse_comic_name(folder)
    if parsed.series is None and (parsed.volume is not None or parsed.number is not None):
        return parsed
    return None


def parse_comic_path(parts: Sequence[str]) -> ComicName:
    """Reconcile a file name with its folders (`parts`: folders nearest-last, then the file).

    Folders must already be stripped of library-level containers ("Comics", "Manga").
    """
    if not parts:
        return ComicName()
    folders = list(parts[-_MAX_FOLDERS - 1 : -1])
    volume: NumberRange | None = None
    chapter: NumberRange | None = None
    special = False
    series_folder: str | None = None
    while folders:
        folder = folders.pop()
        parsed = _container(folder)
        if parsed is not None:
            volume = volume or parsed.volume
            chapter = chapter or parsed.number
            special = special or parsed.special
            continue
        series_folder = folder
        break
    own = parse_comic_name(parts[-1], series_known=series_folder is not None)
    if series_folder is None:
        return ComicName(
            series=own.series,
            volume=own.volume or volume,
            number=chapter or own.number,
            year=own.year,
            special=own.special or special,
            title=own.title,
        )
    series, folder_year = series_and_year(series_folder)
    special = own.special or special
    numbered = own.number is not None or own.volume is not None
    if own.series and series and numbered and not special and _loose(own.series) != _loose(series):
        series = own.series  # "Goblin Slayer/Goblin Slayer - Brand New Day 006.5": a spin-off
    return ComicName(
        series=series or own.series,
        volume=own.volume or volume,
        number=chapter or own.number,  # "Vol.1 Chapter 2/1.cbz": the file is a part of chapter 2
        year=own.year or folder_year,
        special=special,
        title=own.title,
    )


def _loose(text: str) -> str:
    """Comparison form of a series: casefolded letters and digits only."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())
