"""What every container's reader shares: the limits, the canonical tag names, the bag of tags.

Each container module (mp4, id3, flac, ogg) turns its own tag layout into one
`Tags` bag keyed by canonical field names plus a `Stream` of stream facts;
`conventions.assemble` applies the audiobook conventions once, for all of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from shelfscan.formats.images import sniff_image
from shelfscan.formats.records import Chapter, CoverImage
from shelfscan.formats.text import clean

# Hard limits for hostile files. A tag (ID3v2 body, MP4 moov, FLAC metadata,
# Ogg comment packet) above MAX_TAG_BYTES is refused outright.
MAX_TAG_BYTES = 64 * 1024 * 1024
MAX_TEXT_CHARS = 64 * 1024
MAX_DESCRIPTION_CHARS = 1024 * 1024
MAX_COVER_BYTES = 20 * 1024 * 1024
MAX_CHAPTERS = 5000
MAX_VALUES = 256  # values kept per field
MAX_FRAME_TEXT_BYTES = 4 * 1024 * 1024  # enough for MAX_DESCRIPTION_CHARS in any encoding
MAX_COMMENTS = 65_536

# Free-form names (ID3 TXXX, MP4 "----" atoms, Vorbis comments), upper-cased
# with spaces, '_' and '-' removed, and the field each feeds.
NAMED = MappingProxyType(
    {
        "NARRATOR": "narrator",
        "NARRATORS": "narrator",
        "NARRATEDBY": "narrator",
        "READER": "narrator",
        "READBY": "narrator",
        "SERIES": "series",
        "SERIESNAME": "series",
        "SERIESTITLE": "series",
        "SERIESPART": "seriespart",
        "SERIESINDEX": "seriespart",
        "SERIESNUMBER": "seriespart",
        "SERIESPOSITION": "seriespart",
        "SERIESSEQUENCE": "seriespart",
        "MVNM": "movementname",
        "MOVEMENTNAME": "movementname",
        "MVIN": "movement",
        "MOVEMENT": "movement",
        "MOVEMENTNUMBER": "movement",
        "ASIN": "asin",
        "AUDIBLEASIN": "asin",
        "ISBN": "isbn",
        "SUBTITLE": "subtitle",
        "PUBLISHER": "publisher",
        "ORGANIZATION": "publisher",
        "LABEL": "publisher",
        "LANGUAGE": "language",
        "DESCRIPTION": "description",
        "SUMMARY": "description",
        "COMMENT": "comment",
        "ALBUMARTIST": "albumartist",
        "AUTHOR": "author",
        "TAGS": "tags",
        "KEYWORDS": "tags",
        "RELEASEDATE": "releasedate",
        "ORIGINALDATE": "originaldate",
    }
)
DESCRIPTION_KEYS = ("longdescription", "description", "comment")
LONG_TEXT_KEYS = frozenset({*DESCRIPTION_KEYS, "othercomment", "cuesheet"})


@dataclass(slots=True)
class Tags:
    """What one file's tags say, by canonical field name, before conventions apply."""

    text: dict[str, list[str]] = field(default_factory=dict)
    front_cover: CoverImage | None = None
    any_cover: CoverImage | None = None
    chapters: list[Chapter] = field(default_factory=list)

    def add(self, key: str, values: Iterable[str]) -> None:
        """Keep a bounded number of bounded values: no tag can make the record huge."""
        bucket = self.text.setdefault(key, [])
        cap = MAX_DESCRIPTION_CHARS if key in LONG_TEXT_KEYS else MAX_TEXT_CHARS
        budget = 4 * cap - sum(map(len, bucket))
        for value in values:
            if len(bucket) >= MAX_VALUES or budget <= 0:
                return
            if value and not value.isspace():
                value = value[: min(cap, budget)]
                budget -= len(value)
                bucket.append(value)

    def first(self, key: str) -> str | None:
        values = self.text.get(key)
        return values[0] if values else None

    def picture(self, ptype: int, data: bytes | memoryview, mime: str | None) -> None:
        """Keep the first front cover (type 3) and the first picture of any type."""
        if ptype == 3 and self.front_cover is not None:
            return
        if ptype != 3 and self.any_cover is not None:
            return
        if not data or len(data) > MAX_COVER_BYTES:
            return
        raw = bytes(data)
        sniffed = sniff_image(raw)
        if sniffed is not None:
            mime = sniffed[0]
        elif mime is not None and mime.lower().startswith("image/"):
            mime = clean(mime.lower())
        else:
            return  # neither the bytes nor the tag say this is an image
        cover = CoverImage(data=raw, mime=mime)
        if ptype == 3:
            self.front_cover = cover
        else:
            self.any_cover = cover


@dataclass(slots=True)
class Stream:
    duration: float | None = None
    codec: str | None = None
    bitrate: int | None = None
    sample_rate: int | None = None
    channels: int | None = None


def name_key(name: str) -> str:
    return name.upper().replace(" ", "").replace("_", "").replace("-", "")


def chapter_title(raw: str | None, index: int) -> str:
    return clean(raw[:MAX_TEXT_CHARS] if raw else None) or f"Chapter {index}"


def positive_float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number != float("inf") else None


def positive_int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 else None


def mutagen_stream(info: Any, codec: str | None, sample_rate: Any = None) -> Stream:
    """Stream facts from any mutagen `info` object, each kept only when positive.

    Every audio reader ends the same way: mutagen's stream info, whose fields
    some formats lack or report as 0, becomes a Stream with the unknowns as None.
    `sample_rate` overrides the info's own where a format implies one (Opus).
    """
    return Stream(
        duration=positive_float(getattr(info, "length", None)),
        codec=codec,
        bitrate=positive_int(getattr(info, "bitrate", None)),
        sample_rate=positive_int(sample_rate or getattr(info, "sample_rate", None)),
        channels=positive_int(getattr(info, "channels", None)),
    )
