"""Sidecar files that sit beside a book: calibre's metadata.opf, Audiobookshelf's
metadata.json, desc.txt and reader.txt.

Users write these to correct what the files say, so the merge stage ranks them
above embedded tags. They are still untrusted input: every parser takes bytes,
caps them, is lenient about types and fails only with a one-line `ParseError`.
"""

from __future__ import annotations

import codecs
import json
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from typing import Any

from shelfscan.formats.identifiers import classify_identifier
from shelfscan.formats.records import (
    Chapter,
    Contributor,
    Identifier,
    Metadata,
    ParseError,
    SeriesEntry,
)
from shelfscan.formats.text import clean, normalise_date, strip_html

__all__ = [
    "CUE_SUFFIX",
    "MAX_CHAPTERS",
    "MAX_JSON_BYTES",
    "MAX_OPF_BYTES",
    "MAX_TEXT_BYTES",
    "SIDECAR_NAMES",
    "is_sidecar_name",
    "parse_abs_metadata_json",
    "parse_desc_txt",
    "parse_metadata_opf",
    "parse_reader_txt",
]

SIDECAR_NAMES: frozenset[str] = frozenset(
    {
        "metadata.opf",
        "metadata.json",
        "desc.txt",
        "reader.txt",
        "cover.jpg",
        "cover.jpeg",
        "cover.png",
        "cover.webp",
        "folder.jpg",
        "folder.jpeg",
        "folder.png",
    }
)
"""Lower-case file names the scanner treats as sidecars of the folder's book."""

CUE_SUFFIX = ".cue"


def is_sidecar_name(name: str) -> bool:
    """A file the scanner tracks beside the books of its folder: a change re-reads them.

    Cue sheets (any `*.cue`) count too: the FLAC beside one reads its chapters from it
    (formats/audio/cue.py), so an edited sheet must refresh that book although the FLAC
    itself did not change.
    """
    lower = name.lower()
    return lower in SIDECAR_NAMES or lower.endswith(CUE_SUFFIX)


MAX_OPF_BYTES = 4 * 1024 * 1024
MAX_JSON_BYTES = 4 * 1024 * 1024
MAX_TEXT_BYTES = 1024 * 1024
MAX_CHAPTERS = 5000
_MAX_ITEMS = 100  # names, genres, tags, series: more is junk, not metadata
_MAX_FIELD_CHARS = 4000
_MAX_DESCRIPTION_CHARS = 1024 * 1024

# reader.txt: one narrator per line, or several joined by , ; & or the word "and"
_NARRATOR_SPLIT_RE = re.compile(r"\s*(?:[,;&\n]|\band\b)\s*")
_NARRATED_BY_RE = re.compile(r"^(?:narrated|read|performed)\s+by\s*:?\s*", re.IGNORECASE)
# metadata.json list fields given as one string
_NAME_SPLIT_RE = re.compile(r"\s*[;&]\s*")
_WORD_SPLIT_RE = re.compile(r"\s*[,;]\s*")
# "Series Name #1.5" (but "C# Programming" is a name)
_SERIES_SEQ_RE = re.compile(r"^(?P<name>.*?)\s*#\s*(?P<seq>\d[^#]*?)\s*$")
_LEADING_NUMBER_RE = re.compile(r"^\s*(\d{1,6}(?:[.,]\d{1,4})?)")


def parse_metadata_opf(data: bytes) -> Metadata:
    """calibre's metadata.opf: the EPUB OPF rules, format "opf".

    Language stays as written ("eng"), dc:subject gives genres (calibre's tags),
    calibre:title_sort is the sort title, calibre:rating lands in extra["rating"], and
    calibre's own producer credit is dropped.
    """
    if len(data) > MAX_OPF_BYTES:
        raise ParseError(f"metadata.opf is too large ({len(data)} bytes, limit {MAX_OPF_BYTES})")
    # Imported here: discovery needs this module's names, and a scan without OPF files
    # should not load the EPUB reader (and lxml) for them.
    from shelfscan.formats.epub import metadata_from_opf

    meta = metadata_from_opf(data, fmt="opf")
    people = tuple(c for c in meta.contributors if not _is_tool_credit(c))
    return meta if people == meta.contributors else replace(meta, contributors=people)


def _is_tool_credit(contributor: Contributor) -> bool:
    """calibre credits itself as book producer ("calibre (1.3.0) [...]"); that is no person."""
    return contributor.role == "producer" and contributor.name.lower().startswith("calibre")


def _decode_text(data: bytes) -> str:
    """UTF-8 (with or without BOM), UTF-16 with a BOM, else cp1252 as Windows tools write."""
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def _check_text_size(data: bytes, name: str) -> None:
    if len(data) > MAX_TEXT_BYTES:
        raise ParseError(f"{name} is too large ({len(data)} bytes, limit {MAX_TEXT_BYTES})")


def parse_desc_txt(data: bytes) -> str | None:
    """The description from desc.txt; plain text keeps its lines, HTML is stripped."""
    _check_text_size(data, "desc.txt")
    return strip_html(_decode_text(data)) or None


def parse_reader_txt(data: bytes) -> tuple[str, ...]:
    """Narrators from reader.txt: one per line or joined by ",", ";", "&" or "and"."""
    _check_text_size(data, "reader.txt")
    found: list[str] = []
    seen: set[str] = set()
    text = _decode_text(data).replace("\r\n", "\n").replace("\r", "\n")
    for line in text.split("\n"):
        line = _NARRATED_BY_RE.sub("", line.strip())
        for part in _NARRATOR_SPLIT_RE.split(line):
            name = clean(part)
            if name and name.casefold() not in seen:
                seen.add(name.casefold())
                found.append(name)
                if len(found) >= _MAX_ITEMS:
                    return tuple(found)
    return tuple(found)


# ---------------------------------------------------------------------------
# Audiobookshelf metadata.json
# ---------------------------------------------------------------------------


def _string(value: Any, limit: int = _MAX_FIELD_CHARS) -> str | None:
    """A scalar as one clean line; numbers become text, anything else is ignored."""
    if isinstance(value, str):
        return clean(value[:limit])
    if isinstance(value, int | float) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return str(value)
    return None


def _items(value: Any, splitter: re.Pattern[str]) -> Iterator[Any]:
    """A list field may arrive as a list, a single string or a single object."""
    if isinstance(value, list):
        yield from value[: _MAX_ITEMS * 4]
    elif isinstance(value, str):
        yield from splitter.split(value[:_MAX_FIELD_CHARS])
    elif isinstance(value, dict):
        yield value


def _strings(value: Any, splitter: re.Pattern[str]) -> tuple[str, ...]:
    """Distinct (case-insensitively) clean strings; objects contribute their "name"."""
    found: list[str] = []
    seen: set[str] = set()
    for item in _items(value, splitter):
        text = _string(item.get("name") if isinstance(item, dict) else item)
        if text and text.casefold() not in seen:
            seen.add(text.casefold())
            found.append(text)
            if len(found) >= _MAX_ITEMS:
                break
    return tuple(found)


def _sequence(value: Any) -> Decimal | None:
    """A series position: "3", 3, "1.5", "2,5"; "1-3" counts as 1; junk gives None."""
    text = _string(value)
    if not text:
        return None
    match = _LEADING_NUMBER_RE.match(text)
    if match is None:
        return None
    try:
        number = Decimal(match.group(1).replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern only admits digits
        return None
    return number if number.is_finite() else None


def _series(value: Any) -> tuple[SeriesEntry, ...]:
    found: list[SeriesEntry] = []
    seen: dict[str, int] = {}
    for item in _items(value, _NAME_SPLIT_RE):
        name: str | None
        number: Decimal | None = None
        if isinstance(item, dict):
            name = _string(item.get("name"))
            number = _sequence(item.get("sequence"))
        else:
            name = _string(item)
            if name:
                match = _SERIES_SEQ_RE.match(name)
                if match and match.group("name"):
                    name = clean(match.group("name"))
                    number = _sequence(match.group("seq"))
        if not name:
            continue
        at = seen.get(name.casefold())
        if at is None:
            seen[name.casefold()] = len(found)
            found.append(SeriesEntry(name=name, number=number))
            if len(found) >= _MAX_ITEMS:
                break
        elif found[at].number is None and number is not None:
            found[at] = SeriesEntry(name=name, number=number)
    return tuple(found)


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip()[:64])
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) and 0 <= number < 1e9 else None


def _chapters(value: Any) -> tuple[Chapter, ...]:
    if not isinstance(value, list):
        return ()
    found: list[Chapter] = []
    for item in value:
        if not isinstance(item, dict):
            continue
        start = _seconds(item.get("start"))
        if start is None:
            continue
        found.append(Chapter(title=_string(item.get("title")) or "", start_s=start))
        if len(found) >= MAX_CHAPTERS:
            break
    return tuple(found)


def _identifiers(data: dict[str, Any]) -> tuple[Identifier, ...]:
    found: list[Identifier] = []
    for key, scheme in (("isbn", "isbn"), ("asin", "asin")):
        text = _string(data.get(key))
        if text:
            found.extend(i for i in classify_identifier(text, scheme) if i not in found)
    return tuple(found)


def _description(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return strip_html(value[:_MAX_DESCRIPTION_CHARS]) or None


def _flags(data: dict[str, Any], keys: Iterable[str]) -> dict[str, str]:
    return {key: "true" for key in keys if data.get(key) is True}


def _load_json(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_JSON_BYTES:
        raise ParseError(f"metadata.json is too large ({len(data)} bytes, limit {MAX_JSON_BYTES})")
    try:
        loaded = json.loads(data.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ParseError(f"metadata.json is not UTF-8: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise ParseError(f"invalid metadata.json: {exc.msg} at line {exc.lineno}") from None
    except (ValueError, RecursionError) as exc:
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise ParseError(f"invalid metadata.json: {reason}") from None
    if not isinstance(loaded, dict):
        raise ParseError(f"invalid metadata.json: top level is a {type(loaded).__name__}")
    return loaded


def parse_abs_metadata_json(data: bytes) -> Metadata:
    """Audiobookshelf's metadata.json, format "abs-json"; wrong-typed fields are skipped.

    Authors are the contributors (role "author"); narrators are kept apart as in
    the audio parser. Series are "Name #1" strings or {name, sequence} objects.
    publishedDate wins over publishedYear when it says more and agrees with it.
    """
    doc = _load_json(data)
    year = normalise_date(_string(doc.get("publishedYear")))
    date = normalise_date(_string(doc.get("publishedDate")))
    # The year is what ABS users edit; a full date counts only when it agrees with it.
    release = date if date and (year is None or date.startswith(year)) else year
    authors = _strings(doc.get("authors"), _NAME_SPLIT_RE)
    return Metadata(
        format="abs-json",
        title=_string(doc.get("title")),
        subtitle=_string(doc.get("subtitle")),
        contributors=tuple(Contributor(name=name, role="author") for name in authors),
        narrators=_strings(doc.get("narrators"), _NAME_SPLIT_RE),
        series=_series(doc.get("series")),
        genres=_strings(doc.get("genres"), _WORD_SPLIT_RE),
        tags=_strings(doc.get("tags"), _WORD_SPLIT_RE),
        description=_description(doc.get("description")),
        publisher=_string(doc.get("publisher")),
        release_date=release,
        language=_string(doc.get("language")),
        identifiers=_identifiers(doc),
        chapters=_chapters(doc.get("chapters")),
        extra=_flags(doc, ("abridged", "explicit")),
    )
