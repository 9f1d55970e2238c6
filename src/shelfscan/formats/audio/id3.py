"""MP3: ID3v2 (2.2, 2.3, 2.4) and ID3v1 tags, CHAP/CTOC chapters; stream facts from mutagen.

ID3v2 frames are decoded here rather than by mutagen: its frame reader copies
the rest of the tag after every frame and decodes UTF-16 one byte at a time, so
a single crafted (or merely long) frame costs seconds. Decoding the few frames
a catalogue needs from a memoryview is linear and several times faster.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Iterator
from types import MappingProxyType
from typing import BinaryIO

from mutagen.id3 import TCON
from mutagen.mp3 import MPEGInfo

from shelfscan.formats.audio.tags import (
    MAX_CHAPTERS,
    MAX_COVER_BYTES,
    MAX_FRAME_TEXT_BYTES,
    MAX_TAG_BYTES,
    MAX_VALUES,
    NAMED,
    Stream,
    Tags,
    chapter_title,
    mutagen_stream,
    name_key,
)
from shelfscan.formats.records import Chapter, ParseError
from shelfscan.formats.text import clean

_MAX_FRAMES = 8192
_MAX_SUBFRAMES = 64

_FRAME_ID_RE = re.compile(rb"^[A-Z0-9]{4}$")
_NARRATOR_ROLES = frozenset({"narrator", "narrated by", "reader", "read by", "narration"})

_ID3_HEADER = struct.Struct(">3sBBB4s")
_EMPTY_FRAME_HEADER = bytes(10)
_U32 = struct.Struct(">I")

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


def _synchsafe(raw: bytes | memoryview) -> int:
    return (raw[0] & 0x7F) << 21 | (raw[1] & 0x7F) << 14 | (raw[2] & 0x7F) << 7 | (raw[3] & 0x7F)


def id3v2_extent(head: bytes, size: int) -> tuple[int, int, int, int] | None:
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


def read_mp3(fh: BinaryIO, size: int, head: bytes, tags: Tags) -> Stream:
    extent = id3v2_extent(head, size)
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
    return mutagen_stream(info, f"mp{layer}")


def _read_id3v1(tail: bytes, tags: Tags) -> None:
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
        cap = MAX_COVER_BYTES if name in ("APIC", "CHAP") else MAX_FRAME_TEXT_BYTES
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
    raw = raw[:MAX_FRAME_TEXT_BYTES]
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
    values = _id3_decode(payload[1 + skip :], payload[0]).split("\x00", MAX_VALUES)
    while values and not values[-1]:
        values.pop()
    return values[:MAX_VALUES]


def _id3_txxx(payload: memoryview | bytes, tags: Tags) -> None:
    """Decode a TXXX value only when its description names a field we keep."""
    if len(payload) < 2:
        return
    encoding = payload[0]
    head = bytes(payload[1:257])
    end = _terminated_end(head, 0, encoding)
    if end < 0:
        return
    desc = _id3_decode(head[: end - (2 if encoding in (1, 2) else 1)], encoding)
    key = NAMED.get(name_key(clean(desc) or ""))
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


def _read_id3v2(body: bytes, major: int, flags: int, tags: Tags) -> None:
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


def _id3_picture(payload: memoryview | bytes, major: int, tags: Tags) -> None:
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
    sub = bytes(payload[end + 17 : end + 17 + MAX_FRAME_TEXT_BYTES])
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
                title=chapter_title(title, index),
                level=level,
                start_s=round(start_ms / 1000, 3),
            )
        )
    return out
