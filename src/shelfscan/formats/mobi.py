"""MOBI / AZW / AZW3 / PRC metadata reader.

Decodes the PalmDB container, record 0 (PalmDOC header, MOBI header, EXTH
block) and the cover image record directly; book text is never decompressed.
Every offset and length in these files comes from a stranger, so each one is
checked against the bytes actually present before it is used: a lying length
ends the EXTH walk (keeping what was read) rather than reading past a record.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from shelfscan.formats.identifiers import classify_identifier, normalise_uuid
from shelfscan.formats.images import sniff_image
from shelfscan.formats.records import Contributor, CoverImage, Identifier, Metadata, ParseError
from shelfscan.formats.text import clean, normalise_date, strip_html

__all__ = ["MAX_COVER_BYTES", "MAX_EXTH_RECORDS", "MAX_RECORD0_BYTES", "parse_mobi"]

MAX_RECORD0_BYTES = 16 * 1024 * 1024
MAX_COVER_BYTES = 32 * 1024 * 1024
MAX_EXTH_RECORDS = 10_000
_MAX_RECORDS = 65_535  # the record count is a 16-bit field
_PDB_HEADER = 78
_NO_INDEX = 0xFFFFFFFF

_ENCODINGS = {1252: "cp1252", 65001: "utf-8"}
# Windows primary language ids (the low byte of the MOBI locale) to ISO 639-1.
_LANGUAGES = {
    0x01: "ar", 0x02: "bg", 0x03: "ca", 0x04: "zh", 0x05: "cs", 0x06: "da", 0x07: "de",
    0x08: "el", 0x09: "en", 0x0A: "es", 0x0B: "fi", 0x0C: "fr", 0x0D: "he", 0x0E: "hu",
    0x0F: "is", 0x10: "it", 0x11: "ja", 0x12: "ko", 0x13: "nl", 0x14: "no", 0x15: "pl",
    0x16: "pt", 0x17: "rm", 0x18: "ro", 0x19: "ru", 0x1A: "hr", 0x1B: "sk", 0x1C: "sq",
    0x1D: "sv", 0x1E: "th", 0x1F: "tr", 0x20: "ur", 0x21: "id", 0x22: "uk", 0x23: "be",
    0x24: "sl", 0x25: "et", 0x26: "lv", 0x27: "lt", 0x29: "fa", 0x2A: "vi", 0x2B: "hy",
    0x2C: "az", 0x2D: "eu", 0x2F: "mk", 0x36: "af", 0x37: "ka", 0x38: "fo", 0x39: "hi",
    0x3A: "mt", 0x3C: "ga", 0x3E: "ms", 0x3F: "kk", 0x41: "sw", 0x43: "uz", 0x44: "tt",
    0x45: "bn", 0x46: "pa", 0x47: "gu", 0x48: "or", 0x49: "ta", 0x4A: "te", 0x4B: "kn",
    0x4C: "ml", 0x4D: "as", 0x4E: "mr", 0x4F: "sa", 0x52: "cy", 0x56: "gl", 0x61: "ne",
    0x62: "fy",
}  # fmt: skip

# EXTH record types used here.
_AUTHOR, _PUBLISHER, _DESCRIPTION, _ISBN, _SUBJECT, _DATE = 100, 101, 103, 104, 105, 106
_ASIN, _ASIN2, _UPDATED_TITLE, _LANGUAGE = 113, 504, 503, 524
_KF8_BOUNDARY, _COVER_OFFSET, _THUMB_OFFSET = 121, 201, 202


def parse_mobi(path: str | os.PathLike[str]) -> Metadata:
    """Read a Mobipocket/Kindle book's metadata; raise ParseError (or FileNotFoundError)."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            return _parse(handle, name)
    except (FileNotFoundError, ParseError):
        raise
    except (OSError, struct.error, ValueError, IndexError, OverflowError, UnicodeError) as exc:
        message = " ".join(str(exc).split())[:300]
        raise ParseError(f"not a readable MOBI: {type(exc).__name__}: {message}") from None


class _Records:
    """Bounds-checked access to PalmDB records of an open file."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        handle.seek(0, os.SEEK_END)
        self.file_size = handle.tell()
        handle.seek(0)
        header = handle.read(_PDB_HEADER)
        if len(header) < _PDB_HEADER:
            raise ParseError("not a MOBI file: shorter than a PalmDB header")
        if header.startswith(b"TPZ"):
            raise ParseError("Topaz Kindle books are not supported")
        self.name = header[:32]
        self.kind = header[60:68]
        if self.kind not in (b"BOOKMOBI", b"TEXtREAd"):
            raise ParseError(f"not a MOBI file: PalmDB type {self.kind!r}")
        (count,) = struct.unpack_from(">H", header, 76)
        if count == 0:
            raise ParseError("MOBI file has no records")
        table = handle.read(8 * count)
        if len(table) < 8 * count:
            raise ParseError("MOBI record table is truncated")
        self.offsets = [struct.unpack_from(">I", table, 8 * i)[0] for i in range(count)]

    def __len__(self) -> int:
        return len(self.offsets)

    def bounds(self, index: int) -> tuple[int, int] | None:
        if not 0 <= index < len(self.offsets):
            return None
        start = self.offsets[index]
        end = self.offsets[index + 1] if index + 1 < len(self.offsets) else self.file_size
        if not _PDB_HEADER <= start <= end <= self.file_size:
            return None
        return start, end

    def read(self, index: int, cap: int) -> bytes | None:
        """A record's bytes, or None when its bounds are impossible or it exceeds cap."""
        span = self.bounds(index)
        if span is None or span[1] - span[0] > cap:
            return None
        self.handle.seek(span[0])
        data = self.handle.read(span[1] - span[0])
        return data if len(data) == span[1] - span[0] else None

    def read_first_salvaged(self, cap: int) -> bytes | None:
        """Record 0 when the table says it ends past the file or before it starts.

        A truncated download or a broken record table still has its record 0 at the
        start of the file; what is present of it (at most `cap`) is read.
        """
        start = self.offsets[0]
        if not _PDB_HEADER <= start < self.file_size:
            return None
        self.handle.seek(start)
        data = self.handle.read(min(cap, self.file_size - start))
        return data or None


@dataclass(slots=True)
class _Header:
    """The parts of record 0 this reader uses; None where the header is too short to say."""

    encoding: str = "cp1252"
    encrypted: bool = False
    version: int | None = None
    full_name: bytes | None = None
    locale: int | None = None
    first_image: int | None = None
    exth: dict[int, list[bytes]] = field(default_factory=dict)
    damage: list[str] = field(default_factory=list)  # what could not be read, for the warning


def _u32(data: bytes, offset: int, limit: int) -> int | None:
    if offset < 0 or offset + 4 > limit:
        return None
    value: int = struct.unpack_from(">I", data, offset)[0]
    return value


def _read_header(record0: bytes) -> _Header:
    if len(record0) < 16:
        raise ParseError("MOBI record 0 is too short for a PalmDOC header")
    out = _Header()
    (out_encryption,) = struct.unpack_from(">H", record0, 12)
    out.encrypted = out_encryption != 0
    if record0[16:20] != b"MOBI":
        return out  # plain PalmDOC: the PDB name is all there is
    header_len = _u32(record0, 20, len(record0))
    if header_len is None or header_len < 8:
        return out
    limit = min(16 + header_len, len(record0))
    out.encoding = _ENCODINGS.get(_u32(record0, 28, limit) or 1252, "cp1252")
    out.version = _u32(record0, 36, limit)
    name_offset, name_length = _u32(record0, 0x54, limit), _u32(record0, 0x58, limit)
    if (
        name_offset is not None
        and name_length is not None
        and 0 < name_length <= 65_536
        and name_offset + name_length <= len(record0)
    ):
        out.full_name = record0[name_offset : name_offset + name_length]
    if 16 + header_len > len(record0):
        out.damage.append("MOBI header is cut short")
    out.locale = _u32(record0, 0x5C, limit)
    first_image = _u32(record0, 0x6C, limit)
    out.first_image = None if first_image in (None, _NO_INDEX) else first_image
    flags = _u32(record0, 0x80, limit)
    if flags is not None and flags & 0x40:
        walk = _ExthWalk()
        for kind, value in walk.records(record0, 16 + header_len):
            out.exth.setdefault(kind, []).append(value)
        if walk.damage:
            out.damage.append(walk.damage)
    return out


class _ExthWalk:
    """Walks EXTH records and remembers why it stopped early, if it did."""

    __slots__ = ("damage",)

    def __init__(self) -> None:
        self.damage: str | None = None

    def records(self, record0: bytes, start: int) -> Iterator[tuple[int, bytes]]:
        """EXTH (type, value) pairs; stops at the first record whose length does not fit."""
        if record0[start : start + 4] != b"EXTH" or start + 12 > len(record0):
            self.damage = "EXTH header flagged but missing"
            return
        exth_len, count = struct.unpack_from(">II", record0, start + 4)
        end = min(start + exth_len, len(record0)) if exth_len >= 12 else len(record0)
        pos = start + 12
        for index in range(min(count, MAX_EXTH_RECORDS)):
            if pos + 8 > end:
                self.damage = f"EXTH block ends after {index} of {count} records"
                return
            kind, length = struct.unpack_from(">II", record0, pos)
            if length < 8 or pos + length > end:
                self.damage = f"EXTH record {index + 1} of {count} is malformed (length {length})"
                return
            yield kind, record0[pos + 8 : pos + length]
            pos += length


def _parse(handle: BinaryIO, name: str) -> Metadata:
    records = _Records(handle)
    record0 = records.read(0, MAX_RECORD0_BYTES)
    damage: list[str] = []
    if record0 is None:
        record0 = records.read_first_salvaged(MAX_RECORD0_BYTES)
        if record0 is None:
            raise ParseError("MOBI record 0 lies outside the file")
        damage.append("record table points past the end of the file (truncated?)")
    header = _read_header(record0)
    if damage and record0[16:20] == b"MOBI" and header.damage[:1] == ["MOBI header is cut short"]:
        raise ParseError("MOBI record 0 is cut short: the file is truncated")
    damage.extend(header.damage)
    exth = header.exth

    def texts(kind: int) -> list[str]:
        return [v.decode(header.encoding, errors="replace") for v in exth.get(kind, ())]

    def first(kind: int, *, multiline: bool = False) -> str | None:
        for value in texts(kind):
            text = clean(value, multiline=multiline)
            if text:
                return text
        return None

    title = first(_UPDATED_TITLE)
    if title is None and header.full_name is not None:
        title = clean(header.full_name.decode(header.encoding, errors="replace"))
    if title is None:
        pdb_name = records.name.split(b"\x00", 1)[0].decode("latin-1")
        title = clean(pdb_name.replace("_", " "))

    authors: list[str] = []
    for value in texts(_AUTHOR):
        authors.extend(p for p in (clean(piece) for piece in value.split(";")) if p)
    genres: list[str] = []
    for value in texts(_SUBJECT):
        genres.extend(p for p in (clean(piece) for piece in value.split(";")) if p)

    language = first(_LANGUAGE)
    if language is None and header.locale is not None:
        language = _LANGUAGES.get(header.locale & 0xFF)

    extra: dict[str, str] = {}
    if header.version is not None:
        extra["mobi_version"] = str(header.version)
    if header.encrypted:
        extra["drm"] = "true"

    description = first(_DESCRIPTION, multiline=True)
    return Metadata(
        format=_format(name, header),
        title=title,
        contributors=tuple(Contributor(name=a) for a in dict.fromkeys(authors)),
        genres=tuple(dict.fromkeys(genres)),
        description=clean(strip_html(description), multiline=True) if description else None,
        publisher=first(_PUBLISHER),
        release_date=normalise_date(first(_DATE)),
        language=language,
        identifiers=_identifiers(texts(_ISBN), texts(_ASIN) + texts(_ASIN2)),
        cover=_cover(records, header),
        extra=extra,
        warning="; ".join(damage) or None,
    )


def _format(name: str, header: _Header) -> str:
    """By extension; a KF8-only book (version 8, no KF8 boundary) is AZW3 whatever its name."""
    if name.lower().endswith(".azw3"):
        return "azw3"
    if header.version == 8 and _KF8_BOUNDARY not in header.exth:
        return "azw3"
    return "mobi"


def _identifiers(isbns: list[str], asins: list[str]) -> tuple[Identifier, ...]:
    found: list[Identifier] = []
    for value in isbns:
        found.extend(classify_identifier(value, "isbn"))
    for value in asins:
        as_asin = classify_identifier(value, "asin")
        if as_asin:
            found.extend(as_asin)
            continue
        # calibre stores its book UUID in the ASIN record.
        uid = normalise_uuid(value) if len(value.strip()) <= 45 else None
        if uid is not None:
            found.append(Identifier("uuid", uid))
    return tuple(dict.fromkeys(found))


def _cover(records: _Records, header: _Header) -> CoverImage | None:
    """The EXTH 201 cover image record, else the EXTH 202 thumbnail; only real images count."""
    if header.first_image is None:
        return None
    for kind in (_COVER_OFFSET, _THUMB_OFFSET):
        for value in header.exth.get(kind, ()):
            if not 1 <= len(value) <= 8:
                continue
            offset = int.from_bytes(value, "big")
            if offset == _NO_INDEX or header.first_image + offset >= len(records):
                continue
            data = records.read(header.first_image + offset, MAX_COVER_BYTES)
            sniffed = sniff_image(data) if data else None
            if data and sniffed is not None:
                return CoverImage(data=data, mime=sniffed[0])
    return None
