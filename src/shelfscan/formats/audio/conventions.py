"""The audiobook conventions, applied once to what any container's tags said.

* title: for an audiobook the album names the book and the track title only
  the part or chapter, so the album wins; for any other file (music, podcast
  episodes) the track title wins. The track title always goes to
  ``extra["track_title"]``.
* audiobook: the file is an ``.m4b``, or an MP4 with ``stik`` 2, or its genre
  says audiobook / Hörbuch / spoken word, or it names a narrator explicitly.
* narrators: an explicit narrator tag (``©nrt``, ``NARRATOR`` freeform, TXXX or
  Vorbis comment, or a narrator role in TIPL/TMCL) always counts. Without one,
  an audiobook's Vorbis PERFORMER, else its composer, is taken as the narrator
  (the convention of Audible exports and most audiobook taggers). Music
  composers are never narrators.
* series: explicit SERIES / SERIES-PART tags, else iTunes movement name and
  number (``©mvn``/``©mvi``, MVNM/MVIN), else a grouping such as "Name #3" or
  "Name, Book 3"; a bare "Name 3" grouping counts only for audiobooks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

from shelfscan.formats.audio.tags import (
    DESCRIPTION_KEYS,
    MAX_CHAPTERS,
    MAX_DESCRIPTION_CHARS,
    MAX_TEXT_CHARS,
    MAX_VALUES,
    Stream,
    Tags,
)
from shelfscan.formats.identifiers import classify_identifier
from shelfscan.formats.records import AudioFacts, Contributor, Identifier, Metadata, SeriesEntry
from shelfscan.formats.text import clean, normalise_date, strip_html
from shelfscan.paths.series import SERIES_MARKED_RE as _SERIES_MARKED_RE

_MAX_NAMES = 64

_AUDIOBOOK_GENRE_RE = re.compile(
    r"audio\s*-?books?|h(?:ö|oe)rb(?:u|ü)ch|spoken\s*word|livres?\s+audio|audiolibro",
    re.IGNORECASE,
)
_NAME_SPLIT_RE = re.compile(r"\s*;\s*|\s+&\s+|\s*/\s*|\x00")
_KEYWORD_SPLIT_RE = re.compile(r"[;,]")
_NUMBER_RE = re.compile(r"\d{1,6}(?:[.,]\d{1,4})?")
_SERIES_BARE_RE = re.compile(r"^(?P<name>.*[^\W\d_].*?)[\s,:\-–—]+(?P<num>\d{1,4}(?:\.\d{1,4})?)$")
_PART_RE = re.compile(r"\s*0*(\d{1,6})\s*(?:(?:/|\bof\b)\s*0*(\d{1,6}))?", re.IGNORECASE)
_DATE_KEYS = ("date", "releasedate", "year", "originaldate")


def assemble(fmt: str, tags: Tags, stream: Stream) -> Metadata:
    text = tags.text
    genres = _unique(_split(text.get("genre", ()), _split_genre), limit=_MAX_NAMES)
    narrators = _names(text.get("narrator", ()))
    stik = tags.first("stik")
    audiobook = (
        fmt == "m4b"
        or stik == "2"
        or bool(narrators)
        or any(_AUDIOBOOK_GENRE_RE.search(g) for g in genres)
    )
    if not narrators and audiobook:
        narrators = _names(text.get("performer", ())) or _names(text.get("composer", ()))

    track_title = _line(tags.first("title"))
    album = _line(tags.first("album"))
    title = (album or track_title) if audiobook else (track_title or album)

    authors = (
        _names(text.get("albumartist", ()))
        or _names(text.get("artist", ()))
        or _names(text.get("author", ()))
    )
    description = None
    for key in (*DESCRIPTION_KEYS, "othercomment"):
        for raw in text.get(key, ()):
            description = strip_html(raw[:MAX_DESCRIPTION_CHARS]) or None
            if description:
                break
        if description:
            break
    release = None
    for key in _DATE_KEYS:
        release = next((d for d in map(normalise_date, text.get(key, ())) if d), None)
        if release:
            break

    extra: dict[str, str] = {}
    for key, value in (
        ("track_title", track_title),
        ("album", album),
        ("track", _line(tags.first("track"))),
        ("disc", _line(tags.first("disc"))),
        ("codec", stream.codec),
        ("bitrate", _str(stream.bitrate)),
        ("sample_rate", _str(stream.sample_rate)),
        ("channels", _str(stream.channels)),
    ):
        if value:
            extra[key] = value

    return Metadata(
        format=fmt,
        title=title,
        subtitle=_line(tags.first("subtitle")),
        contributors=tuple(Contributor(name=name, role="author") for name in authors),
        narrators=tuple(narrators),
        series=_series(tags, audiobook),
        genres=tuple(genres),
        tags=tuple(_unique(_split(text.get("tags", ()), _split_keywords), limit=MAX_VALUES)),
        description=description,
        publisher=_line(tags.first("publisher")),
        release_date=release,
        language=_line(tags.first("language")),
        identifiers=_identifiers(tags),
        chapters=tuple(tags.chapters[:MAX_CHAPTERS]),
        cover=tags.front_cover or tags.any_cover,
        duration_s=stream.duration,
        extra=extra,
        audio=_audio_facts(tags, stream, album),
    )


def _audio_facts(tags: Tags, stream: Stream, album: str | None) -> AudioFacts:
    """The file's part numbers ("3/12", or a number plus a TRACKTOTAL-style tag) and stream."""
    track, track_total = _part_number(tags.first("track"), tags.first("tracktotal"))
    disc, disc_total = _part_number(tags.first("disc"), tags.first("disctotal"))
    return AudioFacts(
        album=album,
        track_number=track,
        track_total=track_total,
        disc_number=disc,
        disc_total=disc_total,
        composer=_line(tags.first("composer")),
        codec=stream.codec,
        bitrate=stream.bitrate,
        sample_rate=stream.sample_rate,
        channels=stream.channels,
    )


def _part_number(value: str | None, total: str | None) -> tuple[int | None, int | None]:
    """(number, total) of "3", "3/12" or "3 of 12"; zero and garbage are None."""
    number = of = None
    match = _PART_RE.match(value or "")
    if match:
        number = int(match.group(1)) or None
        of = int(match.group(2)) if match.group(2) else None
    if of is None and total:
        found = _PART_RE.match(total)
        of = int(found.group(1)) if found else None
    return number, of or None


def _line(value: str | None) -> str | None:
    return clean(value[:MAX_TEXT_CHARS]) if value else None


def _split_names(value: str) -> list[str]:
    """Split "A; B", "A & B", "A/B"; never on commas, which "Last, First" names contain."""
    return _NAME_SPLIT_RE.split(value)


def _split_genre(value: str) -> list[str]:
    return value.split(";")


def _split_keywords(value: str) -> list[str]:
    return _KEYWORD_SPLIT_RE.split(value)


def _split(values: Iterable[str], splitter: Any) -> Iterator[str]:
    for value in values:
        for part in splitter(value[:MAX_TEXT_CHARS]):
            cleaned = clean(part)
            if cleaned:
                yield cleaned


def _unique(values: Iterable[str], *, limit: int) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    for value in values:
        key = value.casefold()
        if key not in seen:
            seen.add(key)
            out.append(value)
            if len(out) >= limit:
                break
    return out


def _names(values: Iterable[str]) -> list[str]:
    return _unique(_split(values, _split_names), limit=_MAX_NAMES)


def _number(value: str | None) -> Decimal | None:
    if not value:
        return None
    match = _NUMBER_RE.search(value)
    if match is None:
        return None
    try:
        return Decimal(match.group(0).replace(",", "."))
    except InvalidOperation:  # pragma: no cover - the pattern admits only numbers
        return None


def _series(tags: Tags, audiobook: bool) -> tuple[SeriesEntry, ...]:
    """Explicit series tags, else movement name/number, else a numbered grouping."""
    text = tags.text
    names = [_line(v) for v in text.get("series", ())]
    parts = text.get("seriespart", [])
    out: list[SeriesEntry] = []
    for index, name in enumerate(names[:8]):
        if not name:
            continue
        number = _number(parts[index]) if index < len(parts) else None
        if number is None:
            marked = _SERIES_MARKED_RE.match(name)
            if marked:
                name = marked.group("name").rstrip(" ,:-–—(") or name
                number = Decimal(marked.group("num"))
        out.append(SeriesEntry(name=name, number=number))
    if out:
        return tuple(_unique_series(out))
    movement = _line(tags.first("movementname"))
    if movement:
        return (SeriesEntry(name=movement, number=_number(tags.first("movement"))),)
    for grouping in text.get("grouping", ())[:4]:
        line = _line(grouping)
        if not line:
            continue
        match = _SERIES_MARKED_RE.match(line) or (
            _SERIES_BARE_RE.match(line) if audiobook else None
        )
        if match:
            name = match.group("name").rstrip(" ,:-–—(")
            if name:
                return (SeriesEntry(name=name, number=Decimal(match.group("num"))),)
    return ()


def _unique_series(entries: list[SeriesEntry]) -> list[SeriesEntry]:
    seen: set[str] = set()
    out = []
    for entry in entries:
        if entry.name.casefold() not in seen:
            seen.add(entry.name.casefold())
            out.append(entry)
    return out


def _identifiers(tags: Tags) -> tuple[Identifier, ...]:
    found: list[Identifier] = []
    for key, scheme in (("isbn", "isbn"), ("asin", "asin")):
        for value in tags.text.get(key, ())[:8]:
            line = _line(value)
            if line:
                for ident in classify_identifier(line, scheme):
                    if ident not in found:
                        found.append(ident)
    return tuple(found)


def _str(value: int | None) -> str | None:
    return str(value) if value else None
