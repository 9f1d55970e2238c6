"""Audiobook metadata reader: M4B/M4A (MP4), MP3, FLAC, Ogg Vorbis and Opus.

Stream facts (duration, codec, bitrate) and the MP4/Vorbis tag decoding come
from mutagen. Every file is hostile input, so before mutagen sees a byte the
container is walked with bounded reads: oversized tags, atom or comment
floods and zip bombs are refused or dropped here, where the cost is known.

ID3v2 frames are decoded here rather than by mutagen: its frame reader copies
the rest of the tag after every frame and decodes UTF-16 one byte at a time, so
a single crafted (or merely long) frame costs seconds. Decoding the few frames
a catalogue needs from a memoryview is linear and several times faster.

Conventions (a scanner of audiobooks, not music, is the audience):

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

import base64
import binascii
import os
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, BinaryIO

from mutagen import MutagenError
from mutagen.flac import FLAC, Picture
from mutagen.id3 import TCON
from mutagen.mp3 import MPEGInfo
from mutagen.mp4 import MP4
from mutagen.oggflac import OggFLAC
from mutagen.oggopus import OggOpus
from mutagen.oggvorbis import OggVorbis

from shelfscan.formats.identifiers import classify_identifier
from shelfscan.formats.images import sniff_image
from shelfscan.formats.records import (
    Chapter,
    Contributor,
    CoverImage,
    Identifier,
    Metadata,
    ParseError,
    SeriesEntry,
)
from shelfscan.formats.text import clean, normalise_date, strip_html
from shelfscan.paths.series import SERIES_MARKED_RE as _SERIES_MARKED_RE

__all__ = [
    "AUDIO_EXTENSIONS",
    "MAX_CHAPTERS",
    "MAX_COVER_BYTES",
    "MAX_TAG_BYTES",
    "parse_audio",
]

# Hard limits for hostile files. A tag (ID3v2 body, MP4 moov, FLAC metadata,
# Ogg comment packet) above MAX_TAG_BYTES is refused outright.
MAX_TAG_BYTES = 64 * 1024 * 1024
MAX_TEXT_CHARS = 64 * 1024
MAX_DESCRIPTION_CHARS = 1024 * 1024
MAX_COVER_BYTES = 20 * 1024 * 1024
MAX_CHAPTERS = 5000
_MAX_VALUES = 256  # values kept per field
_MAX_NAMES = 64
_MAX_FRAMES = 8192
_MAX_SUBFRAMES = 64
_MAX_FRAME_TEXT_BYTES = 4 * 1024 * 1024  # enough for MAX_DESCRIPTION_CHARS in any encoding
_MAX_ATOMS = 100_000
_MAX_ATOM_DEPTH = 64
_MAX_TOP_ATOMS = 100_000
_MAX_COMMENTS = 65_536
_MAX_FLAC_BLOCKS = 4096
_MAX_OGG_PAGES = 8192
_MAX_CHAPTER_TITLE_BYTES = 4096
_CHAPTER_SPAN_READ = 1024 * 1024
_OGG_PREFIX_BYTES = 64 * 1024

AUDIO_EXTENSIONS = MappingProxyType(
    {
        ".m4b": "m4b",
        ".m4a": "m4a",
        ".mp4": "m4a",
        ".mp3": "mp3",
        ".flac": "flac",
        ".ogg": "ogg",
        ".oga": "ogg",
        ".opus": "opus",
    }
)

_AUDIOBOOK_GENRE_RE = re.compile(
    r"audio\s*-?books?|h(?:ö|oe)rb(?:u|ü)ch|spoken\s*word|livres?\s+audio|audiolibro",
    re.IGNORECASE,
)
_NAME_SPLIT_RE = re.compile(r"\s*;\s*|\s+&\s+|\s*/\s*|\x00")
_KEYWORD_SPLIT_RE = re.compile(r"[;,]")
_NUMBER_RE = re.compile(r"\d{1,6}(?:[.,]\d{1,4})?")
_SERIES_BARE_RE = re.compile(r"^(?P<name>.*[^\W\d_].*?)[\s,:\-–—]+(?P<num>\d{1,4}(?:\.\d{1,4})?)$")
_CHAPTER_KEY_RE = re.compile(r"^CHAPTER(\d{1,5})(NAME)?$")
_CHAPTER_TIME_RE = re.compile(r"^\s*(?:(\d{1,4}):)?(\d{1,2}):(\d{1,2}(?:[.,]\d{1,9})?)\s*$")
_FRAME_ID_RE = re.compile(rb"^[A-Z0-9]{4}$")
_NARRATOR_ROLES = frozenset({"narrator", "narrated by", "reader", "read by", "narration"})

_ID3_HEADER = struct.Struct(">3sBBB4s")
_EMPTY_FRAME_HEADER = bytes(10)
_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_BOX = struct.Struct(">I4s")
_OGG_PAGE = struct.Struct("<4sBBqIIIB")

# ID3v2 text frames (v2.3/2.4 names) and the field each feeds.
_ID3_TEXT = MappingProxyType(
    {
        "TIT2": "title",
        "TALB": "album",
        "TIT3": "subtitle",
        "TPE1": "artist",
        "TPE2": "albumartist",
        "TCOM": "composer",
        "TCON": "genre",
        "TPUB": "publisher",
        "TDRC": "date",
        "TDRL": "releasedate",
        "TYER": "year",
        "TDAT": "tdat",
        "TDOR": "originaldate",
        "TORY": "originaldate",
        "TLAN": "language",
        "TIT1": "grouping",
        "GRP1": "grouping",
        "MVNM": "movementname",
        "MVIN": "movement",
        "TRCK": "track",
        "TPOS": "disc",
    }
)
_ID3_V22_NAMES = MappingProxyType(
    {
        "TT1": "TIT1",
        "TT2": "TIT2",
        "TT3": "TIT3",
        "TP1": "TPE1",
        "TP2": "TPE2",
        "TCM": "TCOM",
        "TAL": "TALB",
        "TCO": "TCON",
        "TPB": "TPUB",
        "TYE": "TYER",
        "TDA": "TDAT",
        "TOR": "TORY",
        "TLA": "TLAN",
        "TRK": "TRCK",
        "TPA": "TPOS",
        "TXX": "TXXX",
        "COM": "COMM",
        "PIC": "APIC",
        "IPL": "IPLS",
        "GP1": "GRP1",
        "MVN": "MVNM",
        "MVI": "MVIN",
    }
)
_ID3_PEOPLE = frozenset({"TIPL", "TMCL", "IPLS"})
_ID3_WANTED = frozenset({*_ID3_TEXT, *_ID3_PEOPLE, "TXXX", "COMM", "APIC", "CHAP", "CTOC"})
_V22_IMAGE_MIME = MappingProxyType({"JPG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif"})

# Free-form names (ID3 TXXX, MP4 "----" atoms, Vorbis comments), upper-cased
# with spaces, '_' and '-' removed, and the field each feeds.
_NAMED = MappingProxyType(
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
    }
)
_MP4_TEXT = MappingProxyType(
    {
        "©nam": "title",
        "©alb": "album",
        "©st3": "subtitle",
        "©ART": "artist",
        "aART": "albumartist",
        "©wrt": "composer",
        "©nrt": "narrator",
        "©gen": "genre",
        "©day": "date",
        "ldes": "longdescription",
        "desc": "description",
        "©cmt": "comment",
        "©pub": "publisher",
        "©grp": "grouping",
        "©mvn": "movementname",
        "©mvi": "movement",
        "keyw": "tags",
        "stik": "stik",
    }
)
# mutagen's MP4 container atoms (and bytes skipped at their start): the walk
# below must see the same tree mutagen will build.
_MP4_CONTAINERS = MappingProxyType(
    {
        b"moov": 0,
        b"udta": 0,
        b"trak": 0,
        b"mdia": 0,
        b"meta": 4,
        b"ilst": 0,
        b"stbl": 0,
        b"minf": 0,
        b"moof": 0,
        b"traf": 0,
    }
)
_MP4_COVER_MIME = MappingProxyType({13: "image/jpeg", 14: "image/png", 27: "image/bmp"})
_TEXT_HANDLERS = frozenset({b"text", b"sbtl"})
_MP4_TRAK_LEAVES = frozenset(
    {b"tkhd", b"tref", b"mdhd", b"hdlr", b"stts", b"stsc", b"stsz", b"stco", b"co64"}
)
_DESCRIPTION_KEYS = ("longdescription", "description", "comment")
_LONG_TEXT_KEYS = frozenset({*_DESCRIPTION_KEYS, "othercomment"})
_DATE_KEYS = ("date", "releasedate", "year", "originaldate")


def parse_audio(path: str | os.PathLike[str]) -> Metadata:
    """Read an audio file's metadata; raise ParseError (or FileNotFoundError) when it cannot."""
    name = os.fspath(path)
    fmt = AUDIO_EXTENSIONS.get(os.path.splitext(name)[1].lower())
    try:
        with open(name, "rb") as fh:
            return _parse(fh, fmt)
    except (FileNotFoundError, ParseError):
        raise
    except MutagenError as exc:
        raise ParseError(f"not a readable audio file: {_one_line(exc)}") from None
    except (
        OSError,
        EOFError,
        struct.error,
        zlib.error,
        binascii.Error,
        ValueError,
        IndexError,
        KeyError,
        TypeError,
        AttributeError,
        OverflowError,
        ZeroDivisionError,
        RecursionError,
        AssertionError,  # mutagen asserts on some malformed structures
    ) as exc:
        reason = _one_line(exc) or "malformed data"
        raise ParseError(f"not a readable audio file: {type(exc).__name__}: {reason}") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Tags:
    """What one file's tags say, by canonical field name, before conventions apply."""

    text: dict[str, list[str]] = field(default_factory=dict)
    front_cover: CoverImage | None = None
    any_cover: CoverImage | None = None
    chapters: list[Chapter] = field(default_factory=list)

    def add(self, key: str, values: Iterable[str]) -> None:
        """Keep a bounded number of bounded values: no tag can make the record huge."""
        bucket = self.text.setdefault(key, [])
        cap = MAX_DESCRIPTION_CHARS if key in _LONG_TEXT_KEYS else MAX_TEXT_CHARS
        budget = 4 * cap - sum(map(len, bucket))
        for value in values:
            if len(bucket) >= _MAX_VALUES or budget <= 0:
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
class _Stream:
    duration: float | None = None
    codec: str | None = None
    bitrate: int | None = None
    sample_rate: int | None = None
    channels: int | None = None


def _parse(fh: BinaryIO, fmt: str | None) -> Metadata:
    size = os.fstat(fh.fileno()).st_size
    if size == 0:
        raise ParseError("empty file")
    head = fh.read(64)
    kind = _sniff(head)
    if head.startswith(b"ID3"):
        # An ID3v2 tag may also front a FLAC stream; what follows the tag decides.
        extent = _id3v2_extent(head, size)
        if extent is not None:
            fh.seek(extent[3])
            kind = "flac" if fh.read(4) == b"fLaC" else "mp3"
    fh.seek(0)
    if kind is None:
        kind = {"m4a": "mp4", "m4b": "mp4", "ogg": "ogg", "opus": "ogg"}.get(fmt or "", fmt)
    if kind is None:
        raise ParseError(f"not a recognised audio file: unexpected leading bytes {head[:8]!r}")
    tags = _Tags()
    if kind == "mp4":
        if fmt is None:
            fmt = "m4b" if head[8:12] == b"M4B " else "m4a"
        stream = _read_mp4(fh, size, tags)
    elif kind == "mp3":
        fmt = fmt or "mp3"
        stream = _read_mp3(fh, size, head, tags)
    elif kind == "flac":
        fmt = fmt or "flac"
        stream = _read_flac(fh, size, head, tags)
    else:
        stream = _read_ogg(fh, size, tags)
        fmt = fmt or ("opus" if stream.codec == "opus" else "ogg")
    return _assemble(fmt, tags, stream)


def _sniff(head: bytes) -> str | None:
    """The container the bytes show, when they show one unambiguously."""
    if head[4:8] == b"ftyp":
        return "mp4"
    if head.startswith(b"fLaC"):
        return "flac"
    if head.startswith(b"OggS"):
        return "ogg"
    if len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0:
        return "mp3"  # an MPEG audio frame sync
    return None


# ---------------------------------------------------------------------------
# MP3 / ID3
# ---------------------------------------------------------------------------


def _synchsafe(raw: bytes | memoryview) -> int:
    return (raw[0] & 0x7F) << 21 | (raw[1] & 0x7F) << 14 | (raw[2] & 0x7F) << 7 | (raw[3] & 0x7F)


def _id3v2_extent(head: bytes, size: int) -> tuple[int, int, int, int] | None:
    """(major, flags, body size, end offset) of a leading ID3v2 tag, refusing absurd ones."""
    if len(head) < 10 or head[:3] != b"ID3":
        return None
    _, major, _, flags, raw_size = _ID3_HEADER.unpack_from(head)
    body = _synchsafe(raw_size)
    if body > MAX_TAG_BYTES:
        raise ParseError(f"ID3v2 tag too large ({body} bytes, limit {MAX_TAG_BYTES})")
    end = 10 + body + (10 if major == 4 and flags & 0x10 else 0)
    if 10 + body > size:
        raise ParseError(f"truncated ID3v2 tag ({body} bytes declared, file has {size})")
    return major, flags, body, end


def _read_mp3(fh: BinaryIO, size: int, head: bytes, tags: _Tags) -> _Stream:
    extent = _id3v2_extent(head, size)
    offset = 0
    if extent is not None:
        major, flags, body_size, offset = extent
        if major not in (2, 3, 4):
            raise ParseError(f"unsupported ID3v2.{major} tag")
        fh.seek(10)
        body = fh.read(body_size)
        if len(body) != body_size:
            raise ParseError("truncated ID3v2 tag")
        _read_id3v2(body, major, flags, tags)
    if size >= offset + 128:
        fh.seek(size - 128)
        tail = fh.read(128)
        if tail[:3] == b"TAG":
            _read_id3v1(tail, tags)
    info = MPEGInfo(fh, offset)
    layer = int(getattr(info, "layer", 3) or 3)
    return _Stream(
        duration=_float(info.length),
        codec=f"mp{layer}",
        bitrate=_int(info.bitrate),
        sample_rate=_int(info.sample_rate),
        channels=_int(info.channels),
    )


def _read_id3v1(tail: bytes, tags: _Tags) -> None:
    """ID3v1 fills only what the ID3v2 tag left empty (mutagen's rule too)."""

    def field_text(raw: bytes) -> str:
        return raw.split(b"\x00", 1)[0].decode("latin-1").strip()

    comment = tail[97:127]
    if tail[125] == 0 and tail[126] != 0:
        comment = tail[97:125]
        found = {"track": str(tail[126])}
    else:
        found = {}
    found |= {
        "title": field_text(tail[3:33]),
        "artist": field_text(tail[33:63]),
        "album": field_text(tail[63:93]),
        "year": field_text(tail[93:97]),
        "comment": field_text(comment),
    }
    if tail[127] != 255:
        genres = TCON(encoding=0, text=[str(tail[127])]).genres
        if genres:
            found["genre"] = str(genres[0])
    if "year" in found and tags.text.get("date"):
        del found["year"]
    for key, value in found.items():
        if value and not tags.text.get(key):
            tags.add(key, [value])


def _v24_plain_sizes(body: bytes) -> bool:
    """Whether a v2.4 tag uses plain frame sizes, as old iTunes wrote (mutagen's heuristic)."""

    def walk(synchsafe: bool) -> tuple[int, int]:
        at, found, end = 0, 0, len(body)
        for _ in range(_MAX_FRAMES):
            if at >= end - 10:
                break
            part = body[at : at + 10]
            if part == _EMPTY_FRAME_HEADER:
                return found, -((end - at) % 10)
            raw = part[4:8]
            at += 10 + (_synchsafe(raw) if synchsafe else _U32.unpack(raw)[0])
            if _FRAME_ID_RE.match(part[:4]):
                found += 1
        return found, at - end

    safe_found, safe_over = walk(True)
    plain_found, plain_over = walk(False)
    return plain_found > safe_found or (
        plain_found == safe_found and safe_over >= 1 and plain_over <= 1
    )


def _id3_frames(
    body: bytes, major: int, tag_unsync: bool, plain: bool, limit: int
) -> Iterator[tuple[str, memoryview | bytes]]:
    """Yield (v2.3-style frame id, decoded payload) for wanted frames, with bounded work."""
    view = memoryview(body)
    pos, count = 0, 0
    header = 6 if major == 2 else 10
    while pos + header <= len(body) and count < limit:
        if body[pos] == 0:
            break
        count += 1
        if major == 2:
            name = body[pos : pos + 3].decode("latin-1")
            frame_size = int.from_bytes(body[pos + 3 : pos + 6], "big")
            flags = 0
        else:
            name = body[pos : pos + 4].decode("latin-1")
            raw = body[pos + 4 : pos + 8]
            frame_size = _U32.unpack(raw)[0] if major == 3 or plain else _synchsafe(raw)
            flags = int.from_bytes(body[pos + 8 : pos + 10], "big")
        start = pos + header
        pos = start + frame_size
        if frame_size == 0:
            continue
        if major == 2:
            name = _ID3_V22_NAMES.get(name, name)
        elif name.endswith("\x00"):  # v2.3 frames written with v2.2 names
            name = _ID3_V22_NAMES.get(name[:3], name)
        if name not in _ID3_WANTED:
            continue
        cap = MAX_COVER_BYTES if name in ("APIC", "CHAP") else _MAX_FRAME_TEXT_BYTES
        payload = _id3_payload(view[start : min(pos, len(body))], major, flags, tag_unsync, cap)
        if payload is not None:
            yield name, payload


def _id3_payload(
    data: memoryview, major: int, flags: int, tag_unsync: bool, cap: int
) -> memoryview | bytes | None:
    """Undo per-frame flags; None for encrypted frames and those inflating beyond cap."""
    compressed = False
    if major == 4:
        if flags & 0x0004:
            return None
        if flags & 0x0040:
            data = data[1:]
        if flags & 0x0001:
            data = data[4:]
        compressed = bool(flags & 0x0008)
        if flags & 0x0002 or tag_unsync:
            data = memoryview(bytes(data).replace(b"\xff\x00", b"\xff"))
    elif major == 3:
        if flags & 0x0080:
            data = data[4:]
            compressed = True
        if flags & 0x0040:
            return None
        if flags & 0x0020:
            data = data[1:]
    if compressed:
        inflater = zlib.decompressobj()
        try:
            out = inflater.decompress(data, cap + 1)
        except zlib.error:
            return None
        if len(out) > cap or inflater.unconsumed_tail:
            return None
        return out
    return data


def _id3_decode(raw: memoryview | bytes, encoding: int) -> str:
    raw = raw[:_MAX_FRAME_TEXT_BYTES]
    if encoding == 1:
        head = bytes(raw[:2])
        if head == b"\xfe\xff":
            codec, raw = "utf-16-be", raw[2:]
        elif head == b"\xff\xfe":
            codec, raw = "utf-16-le", raw[2:]
        else:
            codec = "utf-16-le"  # BOM-less UTF-16 is little-endian in practice
        return str(bytes(raw[: len(raw) & ~1]), codec, "replace")
    if encoding == 2:
        return str(bytes(raw[: len(raw) & ~1]), "utf-16-be", "replace")
    return str(bytes(raw), "utf-8" if encoding == 3 else "latin-1", "replace")


def _id3_strings(payload: memoryview | bytes, skip: int = 0) -> list[str]:
    """Split an encoded text payload (encoding byte first) into its NUL-separated values."""
    if len(payload) < 1 + skip:
        return []
    values = _id3_decode(payload[1 + skip :], payload[0]).split("\x00", _MAX_VALUES)
    while values and not values[-1]:
        values.pop()
    return values[:_MAX_VALUES]


def _id3_txxx(payload: memoryview | bytes, tags: _Tags) -> None:
    """Decode a TXXX value only when its description names a field we keep."""
    if len(payload) < 2:
        return
    encoding = payload[0]
    head = bytes(payload[1:257])
    end = _terminated_end(head, 0, encoding)
    if end < 0:
        return
    desc = _id3_decode(head[: end - (2 if encoding in (1, 2) else 1)], encoding)
    key = _NAMED.get(_name_key(clean(desc) or ""))
    if key is not None:
        tags.add(key, _id3_strings(payload, skip=end))


def _terminated_end(buf: bytes, pos: int, encoding: int) -> int:
    """Index just past the NUL terminator of an encoded string starting at pos, or -1."""
    if encoding in (1, 2):
        at = pos
        while True:
            at = buf.find(b"\x00\x00", at)
            if at < 0:
                return -1
            if (at - pos) % 2 == 0:
                return at + 2
            at += 1
    at = buf.find(b"\x00", pos)
    return -1 if at < 0 else at + 1


def _read_id3v2(body: bytes, major: int, flags: int, tags: _Tags) -> None:
    tag_unsync = bool(flags & 0x80)
    if tag_unsync and major < 4:
        body = body.replace(b"\xff\x00", b"\xff")
        tag_unsync = False
    pos = 0
    # Some taggers set the extended-header flag without writing one; a frame id follows then.
    if flags & 0x40 and major >= 3 and len(body) >= 4 and not _FRAME_ID_RE.match(body[:4]):
        pos = _synchsafe(body[:4]) if major == 4 else 4 + _U32.unpack_from(body)[0]
    body = body[pos:] if pos else body
    plain = major == 4 and _v24_plain_sizes(body)

    chaps: dict[str, tuple[int, str | None]] = {}
    tocs: dict[str, tuple[int, list[str]]] = {}
    toc_order: list[str] = []
    tdat: str | None = None
    for name, payload in _id3_frames(body, major, tag_unsync, plain, _MAX_FRAMES):
        if name == "TXXX":
            _id3_txxx(payload, tags)
        elif name == "TDAT":
            tdat = next(iter(_id3_strings(payload)), None)
        elif name in _ID3_TEXT:
            tags.add(_ID3_TEXT[name], _id3_strings(payload))
        elif name == "COMM":
            values = _id3_strings(payload, skip=3)
            if len(values) >= 2 and not values[0].lower().startswith("itun"):
                tags.add("comment" if not values[0] else "othercomment", values[1:2])
        elif name in _ID3_PEOPLE:
            values = _id3_strings(payload)
            for role, person in zip(values[0::2], values[1::2], strict=False):
                if role.strip().lower() in _NARRATOR_ROLES:
                    tags.add("narrator", [person])
        elif name == "APIC" and tags.front_cover is None:
            _id3_picture(payload, major, tags)
        elif name == "CHAP" and len(chaps) < MAX_CHAPTERS:
            chap = _id3_chap(payload, major, plain)
            if chap is not None:
                chaps.setdefault(chap[0], (chap[1], chap[2]))
        elif name == "CTOC":
            toc = _id3_ctoc(payload)
            if toc is not None and toc[0] not in tocs:
                tocs[toc[0]] = (toc[1], toc[2])
                toc_order.append(toc[0])
    year = tags.first("year")
    if tdat and year and len(tdat) == 4 and tdat.isdigit() and len(year) == 4:
        tags.text["year"][0] = f"{year}-{tdat[2:]}-{tdat[:2]}"
    genres = tags.text.get("genre")
    if genres:
        tags.text["genre"] = [str(g) for g in TCON(encoding=3, text=genres).genres]
    if chaps:
        tags.chapters = _order_id3_chapters(chaps, tocs, toc_order)


def _id3_picture(payload: memoryview | bytes, major: int, tags: _Tags) -> None:
    if len(payload) < 4:
        return
    encoding = payload[0]
    head = bytes(payload[: 64 * 1024])
    if major == 2:
        mime: str | None = _V22_IMAGE_MIME.get(head[1:4].decode("latin-1").upper())
        pos = 4
    else:
        end = head.find(b"\x00", 1)
        if end < 0:
            return
        mime = head[1:end].decode("latin-1")
        if mime == "-->":
            return  # the picture is only linked by URL
        if mime and "/" not in mime:
            mime = _V22_IMAGE_MIME.get(mime.upper(), None)
        pos = end + 1
    if pos >= len(head):
        return
    ptype = head[pos]
    data_start = _terminated_end(head, pos + 1, encoding)
    if data_start < 0:
        return
    tags.picture(ptype, payload[data_start:], mime or None)


def _id3_chap(
    payload: memoryview | bytes, major: int, plain: bool
) -> tuple[str, int, str | None] | None:
    head = bytes(payload[:1024])
    end = head.find(b"\x00")
    if end < 0 or end + 17 > len(payload):
        return None
    element = head[:end].decode("latin-1")
    start_ms = _U32.unpack_from(head, end + 1)[0]
    title: str | None = None
    sub = bytes(payload[end + 17 : end + 17 + _MAX_FRAME_TEXT_BYTES])
    for name, frame in _id3_frames(sub, major, False, plain, _MAX_SUBFRAMES):
        if name in ("TIT2", "TIT3") and title is None:
            title = next(iter(_id3_strings(frame)), None)
    return element, start_ms, title


def _id3_ctoc(payload: memoryview | bytes) -> tuple[str, int, list[str]] | None:
    head = bytes(payload[: 256 * 1024])
    end = head.find(b"\x00")
    if end < 0 or end + 3 > len(head):
        return None
    element = head[:end].decode("latin-1")
    toc_flags, count = head[end + 1], head[end + 2]
    children: list[str] = []
    pos = end + 3
    for _ in range(count):
        stop = head.find(b"\x00", pos)
        if stop < 0:
            break
        children.append(head[pos:stop].decode("latin-1"))
        pos = stop + 1
    return element, toc_flags, children


def _order_id3_chapters(
    chaps: dict[str, tuple[int, str | None]],
    tocs: dict[str, tuple[int, list[str]]],
    toc_order: list[str],
) -> list[Chapter]:
    """CTOC order when a table of contents exists (nested tables nest levels), else time order."""
    placed: list[tuple[str, int]] = []
    seen: set[str] = set()
    if tocs:
        nested = {child for _, children in tocs.values() for child in children}
        roots = [t for t in toc_order if tocs[t][0] & 0x01] or [
            t for t in toc_order if t not in nested
        ]
        root = roots[0] if roots else toc_order[0]

        def visit(toc: str, level: int, trail: frozenset[str]) -> None:
            for child in tocs[toc][1]:
                if child in chaps and child not in seen:
                    seen.add(child)
                    placed.append((child, level))
                elif child in tocs and child not in trail and level < 8:
                    visit(child, level + 1, trail | {child})

        visit(root, 0, frozenset({root}))
    rest = sorted((cid for cid in chaps if cid not in seen), key=lambda cid: chaps[cid][0])
    placed.extend((cid, 0) for cid in rest)
    out: list[Chapter] = []
    for index, (cid, level) in enumerate(placed[:MAX_CHAPTERS], start=1):
        start_ms, title = chaps[cid]
        out.append(
            Chapter(
                title=_title(title, index),
                level=level,
                start_s=round(start_ms / 1000, 3),
            )
        )
    return out


def _title(raw: str | None, index: int) -> str:
    return clean(raw[:MAX_TEXT_CHARS] if raw else None) or f"Chapter {index}"


# ---------------------------------------------------------------------------
# MP4
# ---------------------------------------------------------------------------


class _NoChapters:
    """Stands in for mutagen's chpl reader, which fails the whole file on one bad title."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        return None


class _MP4(MP4):  # type: ignore[misc]
    MP4Chapters = _NoChapters


@dataclass(slots=True)
class _Moov:
    """Byte ranges of the moov boxes the chapter readers need."""

    buf: bytes
    atoms: int = 0
    chpl: tuple[int, int] | None = None
    traks: list[dict[bytes, tuple[int, int]]] = field(default_factory=list)


def _boxes(buf: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield (type, payload start, box end) for the boxes in buf[start:end]."""
    pos = start
    while pos + 8 <= end:
        box_size, kind = _BOX.unpack_from(buf, pos)
        header = 8
        if box_size == 1:
            if pos + 16 > end:
                return
            box_size = _U64.unpack_from(buf, pos + 8)[0]
            header = 16
        elif box_size == 0:
            box_size = end - pos
        if box_size < header or pos + box_size > end:
            return
        yield kind, pos + header, pos + box_size
        pos += box_size


def _read_mp4(fh: BinaryIO, size: int, tags: _Tags) -> _Stream:
    moov = _load_moov(fh, size)
    fh.seek(0)
    mp4 = _MP4(fh)
    if mp4.tags is not None:
        _mp4_tags(mp4.tags, tags)
    if moov is not None:
        tags.chapters = _mp4_chapters(fh, size, moov)
    info = mp4.info
    codec = str(getattr(info, "codec", "") or "")
    if codec.startswith("mp4a.40") or codec == "mp4a":
        codec = "aac"
    elif codec in ("mp4a.69", "mp4a.6b", "mp4a.6B"):
        codec = "mp3"
    return _Stream(
        duration=_float(info.length),
        codec=codec.lower() or None,
        bitrate=_int(info.bitrate),
        sample_rate=_int(info.sample_rate),
        channels=_int(info.channels),
    )


def _load_moov(fh: BinaryIO, size: int) -> _Moov | None:
    """Find the moov atom with bounded reads and index it; refuse atom floods and giant moovs."""
    pos, count = 0, 0
    while pos + 8 <= size:
        count += 1
        if count > _MAX_TOP_ATOMS:
            raise ParseError("too many top-level MP4 atoms")
        fh.seek(pos)
        header = fh.read(16)
        box_size, kind = _BOX.unpack_from(header)
        skip = 8
        if box_size == 1:
            if len(header) < 16:
                return None
            box_size = _U64.unpack_from(header, 8)[0]
            skip = 16
        elif box_size == 0:
            box_size = size - pos
        if box_size < skip:
            return None  # mutagen reports the broken atom
        if kind == b"moov":
            if box_size > MAX_TAG_BYTES:
                raise ParseError(f"MP4 moov atom too large ({box_size} bytes)")
            fh.seek(pos)
            buf = fh.read(box_size)
            if len(buf) != box_size:
                raise ParseError("truncated MP4 moov atom")
            moov = _Moov(buf=buf)
            _index_moov(moov, skip, len(buf), 0, None, b"moov")
            return moov
        pos += box_size
    return None


def _index_moov(
    moov: _Moov,
    start: int,
    end: int,
    depth: int,
    trak: dict[bytes, tuple[int, int]] | None,
    parent: bytes,
) -> None:
    if depth > _MAX_ATOM_DEPTH:
        raise ParseError("MP4 atoms nested too deeply")
    for kind, body, box_end in _boxes(moov.buf, start, end):
        moov.atoms += 1
        if moov.atoms > _MAX_ATOMS:
            raise ParseError("too many MP4 atoms")
        if parent == b"ilst":
            # mutagen turns every data atom of an item into a value: count them too.
            moov.atoms += sum(1 for _ in _boxes(moov.buf, body, box_end))
            if moov.atoms > _MAX_ATOMS:
                raise ParseError("too many MP4 atoms")
        if kind in _MP4_CONTAINERS:
            child_trak = trak
            if kind == b"trak" and depth == 0:
                child_trak = {}
                moov.traks.append(child_trak)
            _index_moov(moov, body + _MP4_CONTAINERS[kind], box_end, depth + 1, child_trak, kind)
        elif trak is not None:
            if kind in _MP4_TRAK_LEAVES:
                trak.setdefault(kind, (body, box_end))
        elif kind == b"chpl" and parent == b"udta" and moov.chpl is None:
            moov.chpl = (body, box_end)


def _mp4_tags(mtags: Any, tags: _Tags) -> None:
    for key, raw in mtags.items():
        values: list[Any] = raw if isinstance(raw, list) else [raw]
        if key == "covr":
            for cover in values[:4]:
                mime = _MP4_COVER_MIME.get(getattr(cover, "imageformat", 0))
                tags.picture(3, cover, mime)
            continue
        if key.startswith("----:"):
            canon = _NAMED.get(_name_key(key.rsplit(":", 1)[-1]))
            if canon is not None:
                tags.add(canon, [_freeform_text(v) for v in values[:_MAX_VALUES]])
            continue
        canon = _MP4_TEXT.get(key)
        if canon is None:
            if key in ("trkn", "disk") and values and isinstance(values[0], tuple):
                number, total = [*values[0], 0, 0][:2]
                if number:
                    label = f"{number}/{total}" if total else str(number)
                    tags.add("track" if key == "trkn" else "disc", [label])
            continue
        tags.add(canon, [_mp4_value(v) for v in values[:_MAX_VALUES]])


def _mp4_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, bytes):
        return _freeform_text(value)
    return ""


def _freeform_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if not isinstance(value, bytes):
        return ""
    raw = value[:_MAX_FRAME_TEXT_BYTES]
    if getattr(value, "dataformat", 1) == 2:
        return raw[: len(raw) & ~1].decode("utf-16-be", "replace")
    return raw.decode("utf-8", "replace")


def _mp4_chapters(fh: BinaryIO, size: int, moov: _Moov) -> list[Chapter]:
    """QuickTime chapter track first (Apple's form), else Nero `chpl`; broken ones cost nothing else."""
    try:
        chapters = _qt_chapters(fh, size, moov)
        if not chapters and moov.chpl is not None:
            chapters = _nero_chapters(moov.buf, *moov.chpl)
    except (ParseError, struct.error, IndexError, ValueError, OverflowError):
        return []
    return chapters


def _full_box_fields(buf: bytes, start: int, end: int) -> tuple[int, int]:
    """(version, offset after version/flags) of a full box."""
    if start + 4 > end:
        raise ParseError("truncated MP4 box")
    return buf[start], start + 4


def _table(buf: bytes, span: tuple[int, int] | None, width: int, limit: int) -> list[int]:
    """The entries of an MP4 sample table box (stco, stsz tables ...), capped at limit."""
    if span is None:
        return []
    _, pos = _full_box_fields(buf, *span)
    if pos + 4 > span[1]:
        return []
    count = min(_U32.unpack_from(buf, pos)[0], limit, (span[1] - pos - 4) // width)
    fmt = ">" + ("I" if width == 4 else "Q") * count
    return list(struct.unpack_from(fmt, buf, pos + 4))


def _qt_chapters(fh: BinaryIO, size: int, moov: _Moov) -> list[Chapter]:
    """Chapters from a QuickTime chapter text track (the track a `chap` tref points to)."""
    buf = moov.buf
    wanted: list[int] = []
    for trak in moov.traks:
        tref = trak.get(b"tref")
        if tref is None:
            continue
        for kind, body, box_end in _boxes(buf, *tref):
            if kind == b"chap":
                count = min((box_end - body) // 4, 16)
                wanted.extend(struct.unpack_from(">" + "I" * count, buf, body))
    if not wanted:
        return []
    track = None
    for trak in moov.traks:
        tkhd, hdlr = trak.get(b"tkhd"), trak.get(b"hdlr")
        if tkhd is None or hdlr is None or buf[hdlr[0] + 8 : hdlr[0] + 12] not in _TEXT_HANDLERS:
            continue  # chapter artwork tracks are referenced by `chap` too
        version, pos = _full_box_fields(buf, *tkhd)
        pos += 16 if version == 1 else 8
        if pos + 4 <= tkhd[1] and _U32.unpack_from(buf, pos)[0] in wanted:
            track = trak
            break
    if track is None or b"mdhd" not in track:
        return []
    version, pos = _full_box_fields(buf, *track[b"mdhd"])
    pos += 16 if version == 1 else 8
    if pos + 4 > track[b"mdhd"][1]:
        return []
    timescale = _U32.unpack_from(buf, pos)[0]
    if not timescale:
        return []

    # Sample sizes: a uniform size, or a table.
    stsz = track.get(b"stsz")
    if stsz is None:
        return []
    _, pos = _full_box_fields(buf, *stsz)
    if pos + 8 > stsz[1]:
        return []
    uniform, n_samples = struct.unpack_from(">II", buf, pos)
    n_samples = min(n_samples, MAX_CHAPTERS)
    sizes = [uniform] * n_samples if uniform else _sizes_table(buf, stsz, n_samples)

    chunk_offsets = _table(buf, track.get(b"stco"), 4, MAX_CHAPTERS) or _table(
        buf, track.get(b"co64"), 8, MAX_CHAPTERS
    )
    offsets = _sample_offsets(buf, track.get(b"stsc"), chunk_offsets, sizes)
    starts = _sample_starts(buf, track.get(b"stts"), len(offsets))
    n = min(len(offsets), len(starts))
    if not n:
        return []
    titles = _read_samples(fh, size, offsets[:n], sizes[:n])
    return [
        Chapter(title=_title(titles[i], i + 1), level=0, start_s=round(starts[i] / timescale, 3))
        for i in range(n)
    ]


def _sizes_table(buf: bytes, stsz: tuple[int, int], limit: int) -> list[int]:
    _, pos = _full_box_fields(buf, *stsz)
    pos += 8
    count = min(limit, (stsz[1] - pos) // 4)
    return list(struct.unpack_from(">" + "I" * count, buf, pos))


def _sample_offsets(
    buf: bytes, stsc: tuple[int, int] | None, chunks: list[int], sizes: list[int]
) -> list[int]:
    if stsc is None or not chunks:
        return []
    _, pos = _full_box_fields(buf, *stsc)
    if pos + 4 > stsc[1]:
        return []
    count = min(_U32.unpack_from(buf, pos)[0], (stsc[1] - pos - 4) // 12, len(chunks))
    runs = [struct.unpack_from(">III", buf, pos + 4 + 12 * i)[:2] for i in range(count)]
    offsets: list[int] = []
    for index, (first, per_chunk) in enumerate(runs):
        if index and first <= runs[index - 1][0]:
            break  # runs must advance; anything else is a crafted loop
        last = runs[index + 1][0] - 1 if index + 1 < len(runs) else len(chunks)
        for chunk in range(max(first, 1), min(last, len(chunks)) + 1):
            at = chunks[chunk - 1]
            for _ in range(per_chunk):
                if len(offsets) >= len(sizes):
                    return offsets
                offsets.append(at)
                at += sizes[len(offsets) - 1]
    return offsets


def _sample_starts(buf: bytes, stts: tuple[int, int] | None, n: int) -> list[int]:
    if stts is None:
        return []
    _, pos = _full_box_fields(buf, *stts)
    if pos + 4 > stts[1]:
        return []
    count = min(_U32.unpack_from(buf, pos)[0], (stts[1] - pos - 4) // 8, n)
    starts: list[int] = []
    now = 0
    for i in range(count):
        run, delta = struct.unpack_from(">II", buf, pos + 4 + 8 * i)
        for _ in range(min(run, n - len(starts))):
            starts.append(now)
            now += delta
        if len(starts) >= n:
            break
    return starts


def _read_samples(
    fh: BinaryIO, size: int, offsets: list[int], sizes: list[int]
) -> list[str | None]:
    """Read chapter text samples: one read when they sit together, else one read each."""
    lo = min(offsets)
    hi = max(o + min(s, _MAX_CHAPTER_TITLE_BYTES) for o, s in zip(offsets, sizes, strict=True))
    block: bytes | None = None
    if hi - lo <= _CHAPTER_SPAN_READ:
        fh.seek(lo)
        block = fh.read(hi - lo)
    titles: list[str | None] = []
    for offset, sample_size in zip(offsets, sizes, strict=True):
        want = min(sample_size, _MAX_CHAPTER_TITLE_BYTES)
        if offset + want > size or want < 2:
            titles.append(None)
            continue
        if block is not None:
            data = block[offset - lo : offset - lo + want]
        else:
            fh.seek(offset)
            data = fh.read(want)
        length = int.from_bytes(data[:2], "big")
        text = data[2 : 2 + length]
        if text[:2] == b"\xfe\xff":
            titles.append(text[2 : len(text) & ~1].decode("utf-16-be", "replace"))
        elif text[:2] == b"\xff\xfe":
            titles.append(text[2 : len(text) & ~1].decode("utf-16-le", "replace"))
        else:
            titles.append(text.decode("utf-8", "replace"))
    return titles


def _nero_chapters(buf: bytes, start: int, end: int) -> list[Chapter]:
    """Nero `chpl` chapters: 100 ns start times and length-prefixed UTF-8 titles."""
    if start + 5 > end:
        return []
    version = buf[start]
    pos = start + (8 if version else 4)
    if pos >= end:
        return []
    count = buf[pos]
    pos += 1
    out: list[Chapter] = []
    for index in range(1, count + 1):
        if pos + 9 > end:
            break
        start_100ns = _U64.unpack_from(buf, pos)[0]
        length = buf[pos + 8]
        title = buf[pos + 9 : min(pos + 9 + length, end)].decode("utf-8", "replace")
        pos += 9 + length
        out.append(
            Chapter(title=_title(title, index), level=0, start_s=round(start_100ns / 1e7, 3))
        )
    return out


# ---------------------------------------------------------------------------
# FLAC, Ogg Vorbis, Opus
# ---------------------------------------------------------------------------


def _read_flac(fh: BinaryIO, size: int, head: bytes, tags: _Tags) -> _Stream:
    _check_flac(fh, size, head)
    fh.seek(0)
    flac = FLAC(fh)
    if flac.tags is not None:
        _vorbis_tags(flac.tags, tags)
    for picture in flac.pictures[:16]:
        tags.picture(int(picture.type), picture.data, picture.mime)
    info = flac.info
    return _Stream(
        duration=_float(info.length),
        codec="flac",
        bitrate=_int(getattr(info, "bitrate", None)),
        sample_rate=_int(info.sample_rate),
        channels=_int(info.channels),
    )


def _check_flac(fh: BinaryIO, size: int, head: bytes) -> None:
    """Walk the metadata block headers so mutagen never reads an absurd amount."""
    extent = _id3v2_extent(head, size)
    pos = extent[3] if extent is not None else 0
    fh.seek(pos)
    if fh.read(4) != b"fLaC":
        return  # mutagen reports what is wrong
    pos += 4
    total = 0
    for _ in range(_MAX_FLAC_BLOCKS):
        fh.seek(pos)
        header = fh.read(8)
        if len(header) < 4:
            return
        block_type, block_size = header[0] & 0x7F, int.from_bytes(header[1:4], "big")
        total += block_size
        if total > MAX_TAG_BYTES:
            raise ParseError(f"FLAC metadata too large (over {MAX_TAG_BYTES} bytes)")
        if block_type == 4 and block_size >= 8 and len(header) == 8:
            vendor = int.from_bytes(header[4:8], "little")
            if vendor + 8 <= block_size:
                fh.seek(pos + 8 + vendor)
                _check_comment_count(fh.read(4))
        pos += 4 + block_size
        if header[0] & 0x80:
            return
    raise ParseError("too many FLAC metadata blocks")


def _check_comment_count(raw: bytes) -> None:
    if len(raw) == 4 and int.from_bytes(raw, "little") > _MAX_COMMENTS:
        raise ParseError(f"too many Vorbis comments (limit {_MAX_COMMENTS})")


def _read_ogg(fh: BinaryIO, size: int, tags: _Tags) -> _Stream:
    first = _check_ogg(fh, size)
    fh.seek(0)
    if first.startswith(b"OpusHead"):
        ogg: Any = OggOpus(fh)
        codec = "opus"
    elif first.startswith(b"\x7fFLAC"):
        ogg = OggFLAC(fh)
        codec = "flac"
    else:
        ogg = OggVorbis(fh)
        codec = "vorbis"
    if ogg.tags is not None:
        _vorbis_tags(ogg.tags, tags)
    info = ogg.info
    sample_rate = getattr(info, "sample_rate", None) or (48000 if codec == "opus" else None)
    return _Stream(
        duration=_float(info.length),
        codec=codec,
        bitrate=_int(getattr(info, "bitrate", None)),
        sample_rate=_int(sample_rate),
        channels=_int(getattr(info, "channels", None)),
    )


def _check_ogg(fh: BinaryIO, size: int) -> bytes:
    """Bound the comment packet before mutagen assembles it; return the first packet's start.

    The comment header is the stream's second packet; its size is the sum of
    its lacing values, up to and including the first one below 255.
    """
    pos = 0
    first = b""
    serial: int | None = None
    packet = 0  # index of the packet the next lacing value belongs to
    comment_bytes = 0
    prefix = bytearray()
    for _ in range(_MAX_OGG_PAGES):
        fh.seek(pos)
        header = fh.read(27)
        if len(header) < 27 or header[:4] != b"OggS":
            return first  # mutagen reports a broken stream
        page_serial, n_segments = _OGG_PAGE.unpack(header)[4], header[26]
        lacing = fh.read(n_segments)
        page_len = sum(lacing)
        if serial is None:
            serial = page_serial
            first = fh.read(min(page_len, 16))
            fh.seek(pos + 27 + n_segments)
        if page_serial == serial:
            wanted = packet <= 1 and len(prefix) < _OGG_PREFIX_BYTES
            page = fh.read(page_len) if wanted else b""
            at = 0
            for value in lacing:
                if packet == 1:
                    if len(prefix) < _OGG_PREFIX_BYTES:
                        prefix += page[at : at + value]
                    comment_bytes += value
                    if comment_bytes > MAX_TAG_BYTES:
                        raise ParseError(f"Ogg comment header too large (over {MAX_TAG_BYTES})")
                at += value
                if value < 255:
                    packet += 1
                    if packet >= 2:
                        _check_ogg_comment_prefix(bytes(prefix))
                        return first
        pos += 27 + n_segments + page_len
        if pos >= size:
            return first
    raise ParseError("Ogg comment header spans too many pages")


def _check_ogg_comment_prefix(prefix: bytes) -> None:
    if prefix.startswith(b"OpusTags"):
        magic = 8
    elif prefix.startswith(b"\x03vorbis"):
        magic = 7
    else:
        return  # Ogg FLAC and others: mutagen reads a single bounded block
    if len(prefix) < magic + 4:
        return
    vendor = int.from_bytes(prefix[magic : magic + 4], "little")
    at = magic + 4 + vendor
    if at + 4 > len(prefix):
        raise ParseError("implausible Vorbis comment vendor string")
    _check_comment_count(prefix[at : at + 4])


def _vorbis_tags(vc: Any, tags: _Tags) -> None:
    chapter_times: dict[int, str] = {}
    chapter_names: dict[int, str] = {}
    for key, value in list(vc)[:_MAX_COMMENTS]:
        if not isinstance(value, str):
            continue
        norm = _name_key(key)
        canon = _VORBIS_ONLY.get(norm) or _NAMED.get(norm)
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
        Chapter(title=_title(name, index), level=0, start_s=round(seconds, 3))
        for index, (seconds, _, name) in enumerate(chapters, start=1)
    ]


def _chapter_seconds(stamp: str) -> float | None:
    match = _CHAPTER_TIME_RE.match(stamp)
    if match is None:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds.replace(",", "."))


# ---------------------------------------------------------------------------
# Conventions
# ---------------------------------------------------------------------------


def _name_key(name: str) -> str:
    return name.upper().replace(" ", "").replace("_", "").replace("-", "")


def _assemble(fmt: str, tags: _Tags, stream: _Stream) -> Metadata:
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
    for key in (*_DESCRIPTION_KEYS, "othercomment"):
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
        tags=tuple(_unique(_split(text.get("tags", ()), _split_keywords), limit=_MAX_VALUES)),
        description=description,
        publisher=_line(tags.first("publisher")),
        release_date=release,
        language=_line(tags.first("language")),
        identifiers=_identifiers(tags),
        chapters=tuple(tags.chapters[:MAX_CHAPTERS]),
        cover=tags.front_cover or tags.any_cover,
        duration_s=stream.duration,
        extra=extra,
    )


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


def _series(tags: _Tags, audiobook: bool) -> tuple[SeriesEntry, ...]:
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


def _identifiers(tags: _Tags) -> tuple[Identifier, ...]:
    found: list[Identifier] = []
    for key, scheme in (("isbn", "isbn"), ("asin", "asin")):
        for value in tags.text.get(key, ())[:8]:
            line = _line(value)
            if line:
                for ident in classify_identifier(line, scheme):
                    if ident not in found:
                        found.append(ident)
    return tuple(found)


def _float(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and number != float("inf") else None


def _int(value: Any) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if number > 0 else None


def _str(value: int | None) -> str | None:
    return str(value) if value else None
