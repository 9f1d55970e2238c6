"""Records that format parsers return.

Parsers are pure: they turn a file into a `Metadata` record and know nothing of
the database. Everything here pickles cheaply, because records cross the
process-pool boundary.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any, TypeVar

from shelfscan.errors import ShelfscanError

T = TypeVar("T")


def pickled_by_fields(cls: type[T]) -> type[T]:
    """Pickle a frozen slotted dataclass as (class, field values).

    Records cross the process-pool boundary for every file; the default
    protocol for slotted dataclasses runs a Python `__getstate__` per object,
    which made pickling a parse result cost ~56 us. `attrgetter` gathers the
    fields in C.
    """
    getter: Callable[[Any], Any] = operator.attrgetter(*(f.name for f in fields(cls)))  # type: ignore[arg-type]
    single = len(fields(cls)) == 1  # type: ignore[arg-type]

    def __reduce__(self: Any) -> tuple[Any, tuple[Any, ...]]:
        values = getter(self)
        return (cls, (values,) if single else values)

    cls.__reduce__ = __reduce__  # type: ignore[method-assign]
    return cls


class ParseError(ShelfscanError):
    """A file could not be read as its format; the message is one line for the user."""


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Contributor:
    """A person credited on a book; `role` is a plain word ("author", "editor", ...)."""

    name: str
    role: str = "author"
    sort_name: str | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class SeriesEntry:
    name: str
    number: Decimal | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Identifier:
    """`type` is one of isbn_13, isbn_10, asin, uuid, or a lower-case scheme name."""

    type: str
    value: str


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Chapter:
    """A table-of-contents entry: ebooks carry `href`, audio carries `start_s`."""

    title: str
    level: int = 0
    href: str | None = None
    start_s: float | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class CoverImage:
    """Raw cover bytes as found in the file; stored by content hash, never in the library."""

    data: bytes
    mime: str | None = None


# audio technical
@pickled_by_fields
@dataclass(frozen=True, slots=True)
class AudioFacts:
    """One audio file's part numbering and stream facts.

    Per file, not per book: an audiobook's parts each have their own track,
    disc and codec, and a book server orders parts by track/disc and decides on
    transcoding by codec/bitrate. Numbers are positive or None.
    """

    album: str | None = None
    track_number: int | None = None
    track_total: int | None = None
    disc_number: int | None = None
    disc_total: int | None = None
    composer: str | None = None
    codec: str | None = None  # "aac", "mp3", "flac", "opus", "vorbis", "alac" ...
    bitrate: int | None = None  # bits per second
    sample_rate: int | None = None  # Hz
    channels: int | None = None


# books: comic subjects and reading direction (issue 10)
class SubjectKind(StrEnum):
    """What a comic's named subject is; the value is `subjects.kind` in the catalogue."""

    STORY_ARC = "story_arc"
    CHARACTER = "character"
    TEAM = "team"
    LOCATION = "location"

    @property
    def field(self) -> str:
        """The export key and `field_sources` key of this kind ("characters", ...)."""
        return f"{self.value}s"


class ReadingDirection(StrEnum):
    LTR = "ltr"
    RTL = "rtl"


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Subject:
    """A story arc (with its `number` in the arc), character, team or location of a comic."""

    kind: SubjectKind
    name: str
    number: Decimal | None = None


@pickled_by_fields
@dataclass(frozen=True, slots=True)
class Metadata:
    """What one file says about the book it holds."""

    format: str
    title: str | None = None
    subtitle: str | None = None
    contributors: tuple[Contributor, ...] = ()
    narrators: tuple[str, ...] = ()
    series: tuple[SeriesEntry, ...] = ()
    genres: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None
    publisher: str | None = None
    release_date: str | None = None
    language: str | None = None
    identifiers: tuple[Identifier, ...] = ()
    chapters: tuple[Chapter, ...] = ()
    cover: CoverImage | None = None
    duration_s: float | None = None
    page_count: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # audio technical
    audio: AudioFacts | None = None
    # books: what EPUB, MOBI and comic files say beyond the common fields (issue 10)
    sort_title: str | None = None  # as the file states it (EPUB file-as, calibre:title_sort)
    warning: str | None = None  # damage read around: the file is usable, but not whole
    # comics
    age_rating: str | None = None
    reading_direction: ReadingDirection | None = None
    web_link: str | None = None
    volume: int | None = None
    volume_count: int | None = None
    issue_count: int | None = None
    subjects: tuple[Subject, ...] = ()
