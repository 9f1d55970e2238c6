"""Vorbis comments, shared by FLAC and Ogg (Vorbis, Opus, Ogg FLAC): fields, pictures, chapters."""

from __future__ import annotations

import base64
import binascii
import re
import struct
from types import MappingProxyType
from typing import Any

from mutagen import MutagenError
from mutagen.flac import Picture

from shelfscan.formats.audio.tags import (
    MAX_CHAPTERS,
    MAX_COMMENTS,
    NAMED,
    Tags,
    chapter_title,
    name_key,
)
from shelfscan.formats.records import Chapter, ParseError

_CHAPTER_KEY_RE = re.compile(r"^CHAPTER(\d{1,5})(NAME)?$")
_CHAPTER_TIME_RE = re.compile(r"^\s*(?:(\d{1,4}):)?(\d{1,2}):(\d{1,2}(?:[.,]\d{1,9})?)\s*$")
# Vorbis comment names that ID3 and MP4 express with dedicated frames/atoms.
_VORBIS_ONLY = MappingProxyType(
    {
        "TITLE": "title",
        "ALBUM": "album",
        "ARTIST": "artist",
        "COMPOSER": "composer",
        "PERFORMER": "performer",
        "GENRE": "genre",
        "DATE": "date",
        "YEAR": "year",
        "GROUPING": "grouping",
        "CONTENTGROUP": "grouping",
        "TRACKNUMBER": "track",
        "DISCNUMBER": "disc",
        "TRACKTOTAL": "tracktotal",
        "TOTALTRACKS": "tracktotal",
        "DISCTOTAL": "disctotal",
        "TOTALDISCS": "disctotal",
        "CUESHEET": "cuesheet",
    }
)


def check_comment_count(raw: bytes) -> None:
    if len(raw) == 4 and int.from_bytes(raw, "little") > MAX_COMMENTS:
        raise ParseError(f"too many Vorbis comments (limit {MAX_COMMENTS})")


def read_vorbis_comments(vc: Any, tags: Tags) -> None:
    chapter_times: dict[int, str] = {}
    chapter_names: dict[int, str] = {}
    for key, value in list(vc)[:MAX_COMMENTS]:
        if not isinstance(value, str):
            continue
        norm = name_key(key)
        canon = _VORBIS_ONLY.get(norm) or NAMED.get(norm)
        if canon is not None:
            tags.add(canon, [value])
        elif norm == "METADATABLOCKPICTURE" and tags.front_cover is None:
            try:
                picture = Picture(base64.b64decode(value))
            except (binascii.Error, ValueError, MutagenError, struct.error, IndexError):
                continue
            tags.picture(int(picture.type), picture.data, picture.mime)
        elif norm == "COVERART" and tags.front_cover is None:
            try:
                data = base64.b64decode(value)
            except (binascii.Error, ValueError):
                continue
            tags.picture(3, data, None)
        elif norm.startswith("CHAPTER"):
            match = _CHAPTER_KEY_RE.match(norm)
            if match and len(chapter_times) < MAX_CHAPTERS:
                target = chapter_names if match.group(2) else chapter_times
                target.setdefault(int(match.group(1)), value)
    chapters: list[tuple[float, int, str | None]] = []
    for number, stamp in chapter_times.items():
        seconds = _chapter_seconds(stamp)
        if seconds is not None:
            chapters.append((seconds, number, chapter_names.get(number)))
    chapters.sort(key=lambda c: c[1])
    tags.chapters = [
        Chapter(title=chapter_title(name, index), level=0, start_s=round(seconds, 3))
        for index, (seconds, _, name) in enumerate(chapters, start=1)
    ]


def _chapter_seconds(stamp: str) -> float | None:
    match = _CHAPTER_TIME_RE.match(stamp)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))
