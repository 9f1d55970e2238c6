"""MP4/M4B/M4A: iTunes-style tags through mutagen, chapters read here from the moov atom.

The moov atom is found and indexed with bounded reads before mutagen sees the
file, so atom floods and giant moovs are refused where the cost is known.
Chapters come from a QuickTime chapter text track (Apple's form) or else a
Nero `chpl` box; mutagen's own chpl reader is switched off because it fails
the whole file on one badly encoded title.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, BinaryIO

from mutagen.mp4 import MP4

from shelfscan.formats.audio.tags import (
    MAX_CHAPTERS,
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

_MAX_ATOMS = 100_000
_MAX_ATOM_DEPTH = 64
_MAX_TOP_ATOMS = 100_000
_MAX_CHAPTER_TITLE_BYTES = 4096
_CHAPTER_SPAN_READ = 1024 * 1024

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_BOX = struct.Struct(">I4s")

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


def read_mp4(fh: BinaryIO, size: int, tags: Tags) -> Stream:
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
    return mutagen_stream(info, codec.lower() or None)


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


def _mp4_tags(mtags: Any, tags: Tags) -> None:
    for key, raw in mtags.items():
        values: list[Any] = raw if isinstance(raw, list) else [raw]
        if key == "covr":
            for cover in values[:4]:
                mime = _MP4_COVER_MIME.get(getattr(cover, "imageformat", 0))
                tags.picture(3, cover, mime)
            continue
        if key.startswith("----:"):
            canon = NAMED.get(name_key(key.rsplit(":", 1)[-1]))
            if canon is not None:
                tags.add(canon, [_freeform_text(v) for v in values[:MAX_VALUES]])
            continue
        canon = _MP4_TEXT.get(key)
        if canon is None:
            if key in ("trkn", "disk") and values and isinstance(values[0], tuple):
                number, total = [*values[0], 0, 0][:2]
                if number:
                    label = f"{number}/{total}" if total else str(number)
                    tags.add("track" if key == "trkn" else "disc", [label])
            continue
        tags.add(canon, [_mp4_value(v) for v in values[:MAX_VALUES]])


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
    raw = value[:MAX_FRAME_TEXT_BYTES]
    if getattr(value, "dataformat", 1) == 2:
        return raw[: len(raw) & ~1].decode("utf-16-be", "replace")
    return raw.decode("utf-8", "replace")


def _mp4_chapters(fh: BinaryIO, size: int, moov: _Moov) -> list[Chapter]:
    """QuickTime chapter track first (Apple's form), else Nero `chpl`; broken ones cost nothing else."""
    chapters: list[Chapter] = []
    try:
        chapters = _qt_chapters(fh, size, moov)
    except (ParseError, struct.error, IndexError, ValueError, OverflowError):
        chapters = []  # a broken chapter track must not hide the Nero list
    if not chapters and moov.chpl is not None:
        try:
            chapters = _nero_chapters(moov.buf, *moov.chpl)
        except (struct.error, IndexError, ValueError, OverflowError):
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
        Chapter(
            title=chapter_title(titles[i], i + 1), level=0, start_s=round(starts[i] / timescale, 3)
        )
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
    """Nero `chpl` chapters: 100 ns start times and length-prefixed UTF-8 titles.

    Writers disagree on the header after version/flags: Nero and ffmpeg write
    4 reserved bytes and an 8-bit count (the layout mutagen assumes, whatever
    the version), mp4v2 one reserved byte and a 32-bit count (so more than 255
    chapters fit), and version-0 boxes may carry no reserved bytes at all. The
    box does not say which, so every layout is read and the one whose entries
    fill the box exactly wins, else the one reading the most entries (a truncated
    box keeps its complete entries); the version only breaks ties.
    """
    if start + 5 > end:
        return []
    version = buf[start]
    layouts = _NERO_LAYOUTS_V0 if version == 0 else _NERO_LAYOUTS_V1
    best: tuple[tuple[bool, int, int], list[tuple[int, str]]] | None = None
    for preference, (count_at, count_width) in enumerate(layouts):
        pos = start + count_at
        if pos + count_width > end:
            continue
        count = int.from_bytes(buf[pos : pos + count_width], "big")
        entries, stop = _nero_entries(buf, pos + count_width, end, min(count, MAX_CHAPTERS))
        exact = len(entries) == min(count, MAX_CHAPTERS) and stop == end
        score = (exact, len(entries), -preference)
        if best is None or score > best[0]:
            best = (score, entries)
    if best is None:
        return []
    return [
        Chapter(title=chapter_title(title, index), level=0, start_s=round(start_100ns / 1e7, 3))
        for index, (start_100ns, title) in enumerate(best[1], start=1)
    ]


# (offset of the chapter count after the box payload start, its width in bytes), in the order
# a box of that version most likely uses.
_NERO_LAYOUTS_V1 = ((8, 1), (5, 4), (4, 1))
_NERO_LAYOUTS_V0 = ((4, 1), (8, 1), (5, 4))


def _nero_entries(buf: bytes, pos: int, end: int, count: int) -> tuple[list[tuple[int, str]], int]:
    """Up to `count` (start in 100 ns, title) entries from pos; stops at the first that overruns."""
    out: list[tuple[int, str]] = []
    for _ in range(count):
        if pos + 9 > end:
            break
        start_100ns = _U64.unpack_from(buf, pos)[0]
        length = buf[pos + 8]
        if pos + 9 + length > end:
            break
        out.append((start_100ns, buf[pos + 9 : pos + 9 + length].decode("utf-8", "replace")))
        pos += 9 + length
    return out, pos
