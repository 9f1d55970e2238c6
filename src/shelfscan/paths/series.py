"""Cleaning series names: what is left of a name once numbers and noise are cut away.

A series folder or the front of a file name keeps separators, release noise, a year or a
publication span and special words: `Akame ga KILL! ZERO (2016-2019) (Digital) (LuCaZ)`,
`Battle Royale,`, `Grand Blue Dreaming - SP02 Extra`. The clean name is what a reader calls
the series; the year is returned apart because it identifies a volume run ("Batman (2016)").
"""

from __future__ import annotations

import re
from decimal import Decimal

from shelfscan.paths.numbers import group_year
from shelfscan.paths.tokens import spaced, strip_groups, trim_separators

__all__ = ["SERIES_MARKED_RE", "clean_series", "series_and_year", "series_entry"]

# "Name, Book 3", "Name #3", "Name (Vol. 2)", "Name Teil 4": a series name and its position,
# as series tags, groupings and "(Series #3)" groups in names write them.
SERIES_MARKED_RE = re.compile(
    r"^(?P<name>.*?\w.*?)[\s,:\-–—(]*"
    r"(?:#|\b(?:book|bk\.?|vol\.?|volume|part|pt\.?|no\.?|number|band|tome|teil|folge)\s*#?)"
    r"\s*(?P<num>\d{1,6}(?:\.\d{1,4})?)\)?\s*$",
    re.IGNORECASE,
)

# Special words a name carries next to the series ("Circle of Fire Special - Adam Strange",
# "Identity Crisis Extra - ...", "Darker than Black Omake-1"): not part of the series.
_SPECIAL_TAIL_RE = re.compile(r"\s+(?:special|extra|omake)(?=\s*(?:-|$))", re.I)
# Editions name a printing, not the series ("Air Gear Omnibus", "Chobits Omnibus Edition",
# "To Love Ru Uncensored": Kavita's edition rule).
_EDITION_TAIL_RE = re.compile(r"\s+(?:omnibus(?:\s+edition)?|uncensored)$", re.I)
_TRAILING_SPAN_RE = re.compile(r"\s+\(?((?:1[89]|20)\d{2})\s*-\s*(?:(?:1[89]|20)\d{2}|\d{2})?\)?$")


def series_and_year(text: str) -> tuple[str | None, str | None]:
    """(series, year) from a series-like text: groups and noise dropped, the first year kept."""
    text, groups = strip_groups(spaced(text))
    year = next((y for y in map(group_year, groups) if y), None)
    span = _TRAILING_SPAN_RE.search(text)
    if span:
        year = year or span.group(1)
        text = text[: span.start()]
    if " " in text:
        text = _SPECIAL_TAIL_RE.sub("", text)
        text = _EDITION_TAIL_RE.sub("", trim_separators(text))
    text = " ".join(trim_separators(text).split())
    return (text or None), year


def clean_series(text: str) -> str | None:
    """The series a folder or name part means, or None when nothing is left."""
    return series_and_year(text)[0]


def series_entry(text: str) -> tuple[str, Decimal] | None:
    """("Name", number) from "Name, Book 3" / "Name #3" / "Name Vol. 2"; None without both."""
    found = SERIES_MARKED_RE.match(text)
    if not found:
        return None
    name = found.group("name").rstrip(" ,:-–—(")
    return (name, Decimal(found.group("num"))) if name else None
