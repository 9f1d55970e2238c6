"""Comic archive reader: CBZ (zip), CBT (tar), CB7 (7-Zip) and CBR (RAR).

A comic is a folder of page images in an archive, optionally with metadata in
one or more dialects: ComicInfo.xml, MetronInfo.xml, CoMet.xml, or ComicBookInfo
JSON in the archive comment. All four containers share one core; each backend only lists
members and reads one member into memory under a size cap. Nothing is ever
extracted to disk, member names are never used as paths, and the container is
recognised by its magic bytes, because ".cbr" files that are really zips (and
the reverse) are common.
"""

from __future__ import annotations

import json
import os
import re
import struct
import tarfile
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, fields
from types import MappingProxyType
from typing import IO, TYPE_CHECKING, Any, Protocol

from lxml import etree

from shelfscan.formats.identifiers import classify_identifier
from shelfscan.formats.images import sniff_image
from shelfscan.formats.records import (
    Contributor,
    CoverImage,
    Identifier,
    Metadata,
    ParseError,
    ReadingDirection,
    SeriesEntry,
    Subject,
    SubjectKind,
)
from shelfscan.formats.text import clean, natural_key, normalise_date, series_number, strip_html
from shelfscan.formats.xmlsafe import UnsafeXMLError, local_name, parse_xml

if TYPE_CHECKING:
    import py7zr

__all__ = [
    "MAX_COMICINFO_BYTES",
    "MAX_IMAGE_BYTES",
    "MAX_MEMBERS",
    "MAX_SKIP_BYTES",
    "natural_key",
    "parse_cb7",
    "parse_cbr",
    "parse_cbt",
    "parse_cbz",
]

MAX_IMAGE_BYTES = 32 * 1024 * 1024
MAX_COMICINFO_BYTES = 1024 * 1024
MAX_MEMBERS = 100_000
MAX_SKIP_BYTES = 2 * 1024 * 1024 * 1024
"""Sequential archives (solid 7z, RAR) must inflate what precedes a member; past this, give up."""
_MAX_PAGE_COUNT = 1_000_000

_IMAGE_MIME = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".jpe": "image/jpeg",
    ".png": "image/png",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".bmp": "image/bmp",
    ".avif": "image/avif",
    ".jxl": "image/jxl",
    ".heic": "image/heic",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
}
# ComicInfo credit elements (lower-cased) and the role words the catalogue stores, in credit order.
_CREATOR_ROLES = (
    ("writer", "writer"),
    ("penciller", "penciller"),
    ("inker", "inker"),
    ("colorist", "colorist"),
    ("letterer", "letterer"),
    ("coverartist", "cover_artist"),
    ("editor", "editor"),
    ("translator", "translator"),
)
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")
_RAR_MAGIC = b"Rar!\x1a\x07"
_7Z_MAGIC = b"7z\xbc\xaf\x27\x1c"
_COMPRESSED_MAGIC = (b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00")  # gzip, bzip2, xz around a tar
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_GTIN_JUNK_RE = re.compile(r"[\s\-‐‑‒–—]+")


def parse_cbz(path: str | os.PathLike[str]) -> Metadata:
    """Read a zip comic; raise ParseError (or FileNotFoundError) when it cannot."""
    return _parse(path, "cbz")


def parse_cbt(path: str | os.PathLike[str]) -> Metadata:
    """Read a tar comic; raise ParseError (or FileNotFoundError) when it cannot."""
    return _parse(path, "cbt")


def parse_cb7(path: str | os.PathLike[str]) -> Metadata:
    """Read a 7-Zip comic; raise ParseError (or FileNotFoundError) when it cannot."""
    return _parse(path, "cb7")


def parse_cbr(path: str | os.PathLike[str]) -> Metadata:
    """Read a RAR comic (through libarchive); raise ParseError or FileNotFoundError."""
    return _parse(path, "cbr")


# ---------------------------------------------------------------------------
# Container dispatch
# ---------------------------------------------------------------------------


def _sniff(head: bytes) -> str | None:
    """The container the bytes say, or None when they say nothing (old tar, zip with a stub)."""
    if head.startswith(_ZIP_MAGIC):
        return "cbz"
    if head.startswith(_RAR_MAGIC):
        return "cbr"
    if head.startswith(_7Z_MAGIC):
        return "cb7"
    if head[257:262] == b"ustar":
        return "cbt"
    return None


def _parse(path: str | os.PathLike[str], claimed: str) -> Metadata:
    name = os.fspath(path)
    fmt = claimed
    try:
        with open(name, "rb") as handle:
            head = handle.read(512)
        if not head:
            raise ParseError(f"not a readable {claimed.upper()}: empty file")
        fmt = _sniff(head) or claimed
        if fmt == "cbz":
            with zipfile.ZipFile(name) as zf:
                return _read_comic(_ZipBackend(zf), fmt)
        if fmt == "cbt":
            budget = MAX_SKIP_BYTES if head.startswith(_COMPRESSED_MAGIC) else None
            with tarfile.open(name, "r:*") as tf:
                return _read_comic(_TarBackend(tf, budget), fmt)
        if fmt == "cb7":
            return _parse_7z(name)
        return _parse_rar(name, head)
    except (FileNotFoundError, ParseError):
        raise
    except zipfile.BadZipFile as exc:
        raise ParseError(f"not a readable CBZ (bad zip): {_one_line(exc)}") from None
    except tarfile.TarError as exc:
        raise ParseError(f"not a readable CBT (bad tar): {_one_line(exc)}") from None
    except RecursionError:
        raise ParseError(f"not a readable {fmt.upper()}: structure nested too deeply") from None
    except Exception as exc:
        # Three archive libraries (one of them C) raise dozens of exception types on
        # hostile input; a scan must see each as one failed file, never a crash.
        raise ParseError(
            f"not a readable {fmt.upper()}: {type(exc).__name__}: {_one_line(exc)}"
        ) from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


# ---------------------------------------------------------------------------
# Backends
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Member:
    """An archive member: `name` uses "/" separators; `index` is its position in the archive."""

    name: str
    size: int | None
    index: int


class _Backend(Protocol):
    def members(self) -> list[_Member]: ...

    def read(self, member: _Member, cap: int, what: str) -> bytes: ...

    def comment(self) -> bytes | None:
        """The archive comment (where ComicBookInfo lives), or None."""
        ...


def _check_declared(member: _Member, cap: int, what: str) -> None:
    if member.size is not None and member.size > cap:
        raise ParseError(f"{what} is too large ({member.size} bytes, limit {cap})")


def _read_capped(handle: IO[bytes], cap: int, what: str) -> bytes:
    data = handle.read(cap + 1)
    if len(data) > cap:
        raise ParseError(f"{what} inflates beyond {cap} bytes")
    return data


def _too_many() -> ParseError:
    return ParseError(f"archive has more than {MAX_MEMBERS} entries")


class _ZipBackend:
    def __init__(self, zf: zipfile.ZipFile) -> None:
        self.zf = zf
        self.infos = zf.infolist()
        if len(self.infos) > MAX_MEMBERS:
            raise _too_many()

    def members(self) -> list[_Member]:
        return [
            _Member(info.filename.replace("\\", "/"), info.file_size, index)
            for index, info in enumerate(self.infos)
            if not info.is_dir()
        ]

    def read(self, member: _Member, cap: int, what: str) -> bytes:
        _check_declared(member, cap, what)
        with self.zf.open(self.infos[member.index]) as handle:
            return _read_capped(handle, cap, what)

    def comment(self) -> bytes | None:
        return self.zf.comment or None


class _TarBackend:
    """`budget` bounds the bytes a compressed tar may make us inflate just to list it."""

    def __init__(self, tf: tarfile.TarFile, budget: int | None) -> None:
        self.tf = tf
        self.infos: list[tarfile.TarInfo] = []
        total = 0
        for info in tf:
            if len(self.infos) >= MAX_MEMBERS:
                raise _too_many()
            total += info.size
            if budget is not None and total > budget:
                raise ParseError(f"compressed tar inflates beyond {budget} bytes")
            self.infos.append(info)

    def members(self) -> list[_Member]:
        # Only regular files: links are never followed, devices never opened.
        return [
            _Member(info.name.replace("\\", "/"), info.size, index)
            for index, info in enumerate(self.infos)
            if info.isreg()
        ]

    def read(self, member: _Member, cap: int, what: str) -> bytes:
        _check_declared(member, cap, what)
        handle = self.tf.extractfile(self.infos[member.index])
        if handle is None:
            raise ParseError(f"{what} cannot be read")
        with handle:
            return _read_capped(handle, cap, what)

    def comment(self) -> bytes | None:
        return None  # tar has no archive comment


def _parse_7z(name: str) -> Metadata:
    import py7zr  # deferred: a heavy import that only 7-Zip comics need

    # A file object (not a path) keeps py7zr single-threaded and deterministic.
    with (
        open(name, "rb") as handle,
        py7zr.SevenZipFile(handle, mode="r", max_extract_size=MAX_SKIP_BYTES) as archive,
    ):
        if archive.needs_password():
            raise ParseError("encrypted 7-Zip archive")
        return _read_comic(_SevenZipBackend(archive), "cb7")


class _SevenZipBackend:
    def __init__(self, archive: py7zr.SevenZipFile) -> None:
        self.archive = archive
        self.infos = archive.list()
        if len(self.infos) > MAX_MEMBERS:
            raise _too_many()

    def members(self) -> list[_Member]:
        return [
            _Member(info.filename.replace("\\", "/"), info.uncompressed, index)
            for index, info in enumerate(self.infos)
            if not info.is_directory and not info.is_symlink
        ]

    def read(self, member: _Member, cap: int, what: str) -> bytes:
        _check_declared(member, cap, what)
        from py7zr.io import Py7zIO, WriterFactory

        class _Sink(Py7zIO):
            """Keeps at most cap + 1 bytes of one member in memory."""

            def __init__(self) -> None:
                self.buf = bytearray()

            def write(self, s: bytes | bytearray) -> int:
                room = cap + 1 - len(self.buf)
                if room > 0:
                    self.buf += s[:room]
                return len(s)

            def read(self, size: int | None = None) -> bytes:
                return bytes(self.buf)

            def seek(self, offset: int, whence: int = 0) -> int:
                return 0

            def flush(self) -> None:
                return None

            def size(self) -> int:
                return len(self.buf)

        class _Factory(WriterFactory):
            def __init__(self) -> None:
                self.sinks: list[_Sink] = []

            def create(self, filename: str) -> Py7zIO:
                sink = _Sink()
                self.sinks.append(sink)
                return sink

        factory = _Factory()
        self.archive.reset()
        self.archive.extract(targets=[self.infos[member.index].filename], factory=factory)
        if not factory.sinks:
            raise ParseError(f"{what} cannot be read")
        data = bytes(factory.sinks[0].buf)
        if len(data) > cap:
            raise ParseError(f"{what} inflates beyond {cap} bytes")
        return data

    def comment(self) -> bytes | None:
        return None  # 7-Zip archives carry no comment that taggers use


def _parse_rar(name: str, head: bytes) -> Metadata:
    try:
        import libarchive  # type: ignore[import-untyped]  # deferred: loads the C library
    except (ImportError, OSError, AttributeError) as exc:
        raise ParseError(f"RAR support unavailable (libarchive): {_one_line(exc)}") from None
    # RAR 5 has a 0x01 after the common signature; anything else is RAR 1.5-4.
    fmt_name = "rar5" if head[6:8] == b"\x01\x00" else "rar"

    def open_reader() -> AbstractContextManager[Any]:
        reader: AbstractContextManager[Any] = libarchive.file_reader(
            name, format_name=fmt_name, filter_name="none"
        )
        return reader

    return _read_comic(_RarBackend(open_reader, _rar_comment(name)), "cbr")


class _RarBackend:
    """Streams the archive once per read: RAR has no random access worth trusting."""

    def __init__(
        self, open_reader: Callable[[], AbstractContextManager[Any]], comment: bytes | None
    ) -> None:
        self.open_reader = open_reader
        self._comment = comment
        self.listed: list[_Member] = []
        with self.open_reader() as archive:
            for index, entry in enumerate(archive):
                if index >= MAX_MEMBERS:
                    raise _too_many()
                if not entry.isreg:
                    continue
                try:
                    member_name = str(entry.pathname)
                except UnicodeError:
                    continue
                size = entry.size
                self.listed.append(
                    _Member(member_name.replace("\\", "/"), int(size) if size else None, index)
                )

    def members(self) -> list[_Member]:
        return list(self.listed)

    def comment(self) -> bytes | None:
        return self._comment

    def read(self, member: _Member, cap: int, what: str) -> bytes:
        _check_declared(member, cap, what)
        skipped = 0
        with self.open_reader() as archive:
            for index, entry in enumerate(archive):
                if index < member.index:
                    skipped += int(entry.size or 0)
                    if skipped > MAX_SKIP_BYTES:
                        raise ParseError(f"{what} lies too deep in the archive")
                    continue
                buf = bytearray()
                for block in entry.get_blocks(65536):
                    buf += block
                    if len(buf) > cap:
                        raise ParseError(f"{what} inflates beyond {cap} bytes")
                return bytes(buf)
        raise ParseError(f"{what} vanished from the archive")


# libarchive reads RAR members but has no call for the archive comment, so the comment
# (ComicBookInfo's home in a CBR) is found by walking the headers that precede the first file.
_RAR_HEAD_BYTES = 256 * 1024
_RAR_MAX_BLOCKS = 64


def _rar_comment(name: str) -> bytes | None:
    """The stored archive comment of a RAR 5 or RAR 2.9-4 file, or None.

    A compressed comment (old WinRAR versions compress it) would need RAR's own
    decompressor, which no library here exposes: it is skipped, and the comic
    keeps what its pages and folder say.
    """
    with open(name, "rb") as handle:
        head = handle.read(_RAR_HEAD_BYTES)
    try:
        if head.startswith(b"Rar!\x1a\x07\x01\x00"):
            return _rar5_comment(head)
        if head.startswith(b"Rar!\x1a\x07\x00"):
            return _rar4_comment(head)
    except (IndexError, struct.error, ValueError):
        return None  # a damaged header: no comment, and libarchive judges the rest
    return None


def _vint(buf: bytes, pos: int) -> tuple[int, int]:
    """A RAR 5 variable-length integer at `pos`: (value, position after it)."""
    value = 0
    for shift in range(0, 70, 7):
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
    raise ValueError("RAR variable-length integer too long")


def _rar5_comment(buf: bytes) -> bytes | None:
    pos = 8
    for _ in range(_RAR_MAX_BLOCKS):
        size, body = _vint(buf, pos + 4)  # after the header CRC32
        end = body + size
        kind, p = _vint(buf, body)
        flags, p = _vint(buf, p)
        data_size = 0
        if flags & 0x0001:
            _, p = _vint(buf, p)  # extra area size
        if flags & 0x0002:
            data_size, p = _vint(buf, p)
        if kind == 3:  # service header: the comment is the one named "CMT"
            file_flags, p = _vint(buf, p)
            _, p = _vint(buf, p)  # unpacked size
            _, p = _vint(buf, p)  # attributes
            p += 4 if file_flags & 0x0002 else 0  # mtime
            p += 4 if file_flags & 0x0004 else 0  # data CRC32
            compression, p = _vint(buf, p)
            _, p = _vint(buf, p)  # host OS
            name_len, p = _vint(buf, p)
            if buf[p : p + name_len] == b"CMT":
                stored = (compression >> 7) & 0x7 == 0
                data = buf[end : end + data_size]
                return data if stored and len(data) == data_size else None
        elif kind in (2, 5):  # the first file, or the end: comments come before both
            return None
        pos = end + data_size
        if pos >= len(buf):
            return None
    return None


def _rar4_comment(buf: bytes) -> bytes | None:
    pos = 7
    for _ in range(_RAR_MAX_BLOCKS):
        kind = buf[pos + 2]
        flags, size = struct.unpack_from("<HH", buf, pos + 3)
        if size < 7:
            return None
        add_size = struct.unpack_from("<I", buf, pos + 7)[0] if flags & 0x8000 else 0
        if kind == 0x73 and flags & 0x0002 and buf[pos + 15] == 0x75:
            # RAR 2.x: a comment block inside the main header; method 0x30 is "stored".
            sub = pos + 13
            _, unpacked = struct.unpack_from("<HH", buf, sub + 5)
            if buf[sub + 10] == 0x30:
                return buf[sub + 13 : sub + 13 + unpacked]
            return None
        if kind == 0x7A:  # RAR 3.x/4.x sub-block; the comment is named "CMT"
            method = buf[pos + 25]
            (name_len,) = struct.unpack_from("<H", buf, pos + 26)
            name_at = pos + 32 + (8 if flags & 0x0100 else 0)
            if buf[name_at : name_at + name_len] == b"CMT":
                data = buf[pos + size : pos + size + add_size]
                return data if method == 0x30 and len(data) == add_size else None
        elif kind in (0x74, 0x7B):  # the first file, or the end
            return None
        pos += size + add_size
        if pos + 7 > len(buf):
            return None
    return None


# ---------------------------------------------------------------------------
# Shared core
# ---------------------------------------------------------------------------


def _is_safe(name: str) -> bool:
    """Relative, inside the archive: no "/x", "C:x" or ".." component."""
    return (
        bool(name)
        and not name.startswith("/")
        and not _DRIVE_RE.match(name)
        and ".." not in name.split("/")
    )


def _is_junk(name: str) -> bool:
    """macOS resource forks and other hidden files are not pages."""
    parts = name.split("/")
    return "__MACOSX" in parts or parts[-1].startswith(".")


def _extension(name: str) -> str:
    base = name.rpartition("/")[2]
    dot = base.rfind(".")
    return base[dot:].lower() if dot > 0 else ""


def _read_comic(backend: _Backend, fmt: str) -> Metadata:
    members = [m for m in backend.members() if _is_safe(m.name) and not _is_junk(m.name)]
    images = sorted(
        (m for m in members if _extension(m.name) in _IMAGE_MIME and m.size != 0),
        key=lambda m: (natural_key(m.name), m.name),
    )
    if not images:
        # A comic without a page is an empty or broken archive, not a book to list.
        raise ParseError(f"not a readable {fmt.upper()}: the archive holds no page images")
    # Every metadata dialect present is read; ComicInfo leads, the others fill its gaps.
    found: list[_ComicInfo] = []
    extra: dict[str, str] = {}
    for filename, read, label in _XML_DIALECTS:
        member = _metadata_member(members, filename)
        if member is None:
            continue
        data = backend.read(member, MAX_COMICINFO_BYTES, member.name.rpartition("/")[2])
        try:
            found.append(read(parse_xml(data)))
        except UnsafeXMLError:
            raise
        except ParseError as exc:
            # A sloppy tagger's XML costs the metadata, not the comic.
            extra[f"{label}_error"] = str(exc)
    comment = backend.comment()
    if comment:
        try:
            cbi = _read_comicbookinfo(comment)
        except ParseError as exc:
            extra["comicbookinfo_error"] = str(exc)
        else:
            if cbi is not None:
                found.append(cbi)
    info = _combine(found) if found else None
    if info is not None:
        extra = {**info.extra, **extra}

    page_count = info.page_count if info is not None and info.page_count else len(images)
    cover = _cover(backend, images, _cover_index(info, images) if info is not None else None)
    if info is None:
        return Metadata(format=fmt, page_count=page_count, cover=cover, extra=extra)
    return Metadata(
        format=fmt,
        title=info.title,
        contributors=info.contributors,
        series=info.series,
        genres=info.genres,
        tags=info.tags,
        description=info.description,
        publisher=info.publisher,
        release_date=info.release_date,
        language=info.language,
        identifiers=info.identifiers,
        cover=cover,
        page_count=page_count,
        extra=extra,
        age_rating=info.age_rating,
        reading_direction=info.reading_direction,
        web_link=info.web_link,
        volume=info.volume,
        volume_count=info.volume_count,
        issue_count=info.issue_count,
        subjects=info.subjects,
    )


def _metadata_member(members: list[_Member], filename: str) -> _Member | None:
    """`filename` (lower case) in any case; the one nearest the archive root wins."""
    found = [m for m in members if m.name.rpartition("/")[2].casefold() == filename]
    if not found:
        return None
    return min(found, key=lambda m: (m.name.count("/"), natural_key(m.name), m.name))


def _cover_index(info: _ComicInfo, images: list[_Member]) -> int | None:
    if info.cover_index is not None:
        return info.cover_index
    if info.cover_name:
        wanted = info.cover_name.rpartition("/")[2].casefold()
        for index, image in enumerate(images):
            if image.name.rpartition("/")[2].casefold() == wanted:
                return index
    return None


def _cover(backend: _Backend, images: list[_Member], index: int | None) -> CoverImage | None:
    """The FrontCover page, else the first page; an unreadable image costs only the cover."""
    if not images:
        return None
    chosen = images[index] if index is not None and 0 <= index < len(images) else images[0]
    try:
        data = backend.read(chosen, MAX_IMAGE_BYTES, "cover image")
    except Exception:
        # Oversized, encrypted or corrupt image member (each archive library has its own
        # exception types): the comic loses its cover, not its metadata.
        return None
    if not data:
        return None
    sniffed = sniff_image(data)
    return CoverImage(
        data=data, mime=sniffed[0] if sniffed else _IMAGE_MIME[_extension(chosen.name)]
    )


# ---------------------------------------------------------------------------
# ComicInfo.xml
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _ComicInfo:
    """What one metadata dialect (ComicInfo, MetronInfo, CoMet, ComicBookInfo) says."""

    title: str | None = None
    contributors: tuple[Contributor, ...] = ()
    series: tuple[SeriesEntry, ...] = ()
    genres: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    description: str | None = None
    publisher: str | None = None
    release_date: str | None = None
    language: str | None = None
    identifiers: tuple[Identifier, ...] = ()
    page_count: int | None = None
    cover_index: int | None = None
    extra: dict[str, str] = field(default_factory=dict)
    # comics (issue 10)
    age_rating: str | None = None
    reading_direction: ReadingDirection | None = None
    web_link: str | None = None
    volume: int | None = None
    volume_count: int | None = None
    issue_count: int | None = None
    subjects: tuple[Subject, ...] = ()
    cover_name: str | None = None  # CoMet names its cover image instead of counting pages


def _combine(found: list[_ComicInfo]) -> _ComicInfo:
    """Field by field, the first dialect that says something wins (ComicInfo first).

    Identifiers are pooled (each dialect may know another one); each subject kind, like
    the credits, comes whole from one dialect so two spellings of one list never mix.
    """
    if len(found) == 1:
        return found[0]
    out = _ComicInfo()
    for f in fields(_ComicInfo):
        if f.name in ("identifiers", "subjects", "extra"):
            continue
        value = next((v for v in (getattr(i, f.name) for i in found) if _said(v)), None)
        if value is not None:
            setattr(out, f.name, value)
    out.identifiers = tuple(dict.fromkeys(x for i in found for x in i.identifiers))
    subjects: list[Subject] = []
    for kind in SubjectKind:
        subjects.extend(next((of for of in (_of_kind(i, kind) for i in found) if of), []))
    out.subjects = tuple(subjects)
    for info in reversed(found):
        out.extra.update(info.extra)
    return out


def _said(value: object) -> bool:
    return value is not None and value != () and value != ""


def _of_kind(info: _ComicInfo, kind: SubjectKind) -> list[Subject]:
    return [s for s in info.subjects if s.kind is kind]


def _local(tag: object) -> str:
    """Comic dialects disagree on tag case too, so comics match the lower-cased local name."""
    return local_name(tag).lower()


def _read_comicinfo(root: etree._Element) -> _ComicInfo:
    """ComicInfo element names are matched case-insensitively: taggers disagree on case."""
    if _local(root.tag) != "comicinfo":
        raise ParseError(f"ComicInfo.xml has root <{_local(root.tag)}>, not <ComicInfo>")
    fields: dict[str, str] = {}
    pages: etree._Element | None = None
    for el in root:
        local = _local(el.tag)
        if local == "pages":
            pages = el if pages is None else pages
        elif local and local not in fields:
            fields[local] = "".join(el.itertext())

    out = _ComicInfo()
    extra: dict[str, str] = {}
    out.title = clean(fields.get("title"))
    series_name = clean(fields.get("series"))
    raw_number = clean(fields.get("number"))
    number = series_number(raw_number)
    if raw_number is not None and number is None:
        extra["number"] = raw_number  # "1a", "½": not a number, but worth keeping
    if series_name:
        out.series = (SeriesEntry(series_name, number),)
    imprint = clean(fields.get("imprint"))
    if imprint:
        extra["imprint"] = imprint
    out.volume = _count(fields.get("volume"))
    if out.volume is None and clean(fields.get("volume")):
        extra["volume"] = clean(fields.get("volume")) or ""
    out.issue_count = _count(fields.get("count"))
    # ComicInfo 2.1 allows several space-separated links; the first is the book's page.
    out.web_link = clean(next(iter((fields.get("web") or "").split()), None))
    out.age_rating = _age_rating(fields.get("agerating"))
    manga = (clean(fields.get("manga")) or "").casefold()
    if manga == "yesandrighttoleft":
        out.reading_direction = ReadingDirection.RTL
    out.description = clean(strip_html(fields.get("summary")), multiline=True)
    out.publisher = clean(fields.get("publisher"))
    out.release_date = _date(fields.get("year"), fields.get("month"), fields.get("day"))
    out.language = clean(fields.get("languageiso"))
    out.genres = _split_list(fields.get("genre"))
    out.tags = _split_list(fields.get("tags"))
    gtin = clean(fields.get("gtin"))
    if gtin:
        out.identifiers = _gtin(gtin)
    arcs = _split_list(fields.get("storyarc"), dedupe=False)
    arc_numbers = [p.strip() for p in (fields.get("storyarcnumber") or "").split(",")]
    subjects = [
        Subject(
            SubjectKind.STORY_ARC,
            arc,
            series_number(arc_numbers[i]) if i < len(arc_numbers) else None,
        )
        for i, arc in enumerate(arcs)
    ]
    for element, kind in (
        ("characters", SubjectKind.CHARACTER),
        ("teams", SubjectKind.TEAM),
        ("locations", SubjectKind.LOCATION),
    ):
        subjects.extend(Subject(kind, name) for name in _split_list(fields.get(element)))
    out.subjects = _unique_subjects(subjects)

    people: list[Contributor] = []
    for element, role in _CREATOR_ROLES:
        for person in _split_list(fields.get(element)):
            people.append(Contributor(name=person, role=role))
    out.contributors = tuple(people)

    page_count = _int(fields.get("pagecount"))
    out.page_count = page_count if page_count and 0 < page_count <= _MAX_PAGE_COUNT else None
    out.cover_index = _front_cover(pages) if pages is not None else None
    out.extra = extra
    return out


# ---------------------------------------------------------------------------
# MetronInfo.xml, CoMet.xml and ComicBookInfo (issue 10)
# ---------------------------------------------------------------------------


def _children(parent: etree._Element | None, local: str) -> list[etree._Element]:
    if parent is None:
        return []
    return [el for el in parent if _local(el.tag) == local]


def _child_text(parent: etree._Element | None, local: str) -> str | None:
    found = _children(parent, local)
    return clean("".join(found[0].itertext())) if found else None


def _read_metroninfo(root: etree._Element) -> _ComicInfo:
    """MetronInfo 1.0 and 2.0: nested elements (Series/Name, Arcs/Arc, Credits/Credit)."""
    if _local(root.tag) != "metroninfo":
        raise ParseError(f"MetronInfo.xml has root <{_local(root.tag)}>, not <MetronInfo>")
    top: dict[str, etree._Element] = {}
    for el in root:
        top.setdefault(_local(el.tag), el)

    def text(local: str) -> str | None:
        el = top.get(local)
        return clean("".join(el.itertext())) if el is not None else None

    out = _ComicInfo()
    series = top.get("series")
    stories = [
        t
        for t in (clean("".join(s.itertext())) for s in _children(top.get("stories"), "story"))
        if t
    ]
    out.title = text("collectiontitle") or ("; ".join(stories) if stories else None)
    number = series_number(text("number"))
    if series is not None:
        name = _child_text(series, "name") or (clean(series.text) if len(series) == 0 else None)
        if name:
            out.series = (SeriesEntry(name, number),)
        out.volume = _count(_child_text(series, "volume") or series.get("volume"))
        out.issue_count = _count(_child_text(series, "issuecount"))
        out.volume_count = _count(_child_text(series, "volumecount"))
        out.language = clean(series.get("lang"))
    publisher = top.get("publisher")
    if publisher is not None:
        out.publisher = _child_text(publisher, "name") or clean(publisher.text)
    out.description = clean(strip_html(text("summary")), multiline=True)
    out.release_date = normalise_date(text("coverdate") or text("storedate"))
    out.genres = _unique_texts(_children(top.get("genres"), "genre"))
    out.tags = _unique_texts(_children(top.get("tags"), "tag"))
    out.age_rating = _age_rating(text("agerating"))
    urls = _children(top.get("urls"), "url")
    primary = [u for u in urls if (u.get("primary") or "").lower() == "true"] or urls
    out.web_link = clean("".join(primary[0].itertext())) if primary else text("url")
    identifiers: list[Identifier] = []
    gtin = top.get("gtin")
    isbn = _child_text(gtin, "isbn")
    if isbn:
        identifiers.extend(classify_identifier(isbn, "isbn"))  # a wrong checksum is dropped
    upc = _child_text(gtin, "upc")
    if upc:
        identifiers.extend(_barcode(upc))
    for el in _children(top.get("ids"), "id"):
        value = clean("".join(el.itertext()))
        source = (clean(el.get("source")) or "").casefold().replace(" ", "")
        if value and source:
            identifiers.append(Identifier(source, value))
    out.identifiers = tuple(dict.fromkeys(identifiers))
    subjects = [
        Subject(SubjectKind.STORY_ARC, name, series_number(_child_text(arc, "number")))
        for arc in _children(top.get("arcs"), "arc")
        if (name := _child_text(arc, "name"))
    ]
    for group, item, kind in (
        ("characters", "character", SubjectKind.CHARACTER),
        ("teams", "team", SubjectKind.TEAM),
        ("locations", "location", SubjectKind.LOCATION),
    ):
        subjects.extend(Subject(kind, n) for n in _unique_texts(_children(top.get(group), item)))
    out.subjects = _unique_subjects(subjects)
    people: list[Contributor] = []
    for credit in _children(top.get("credits"), "credit"):
        creator = _child_text(credit, "creator")
        if not creator:
            continue
        roles = [clean("".join(r.itertext())) for r in _children(_first(credit, "roles"), "role")]
        for role in [r for r in roles if r] or ["contributor"]:
            people.append(Contributor(name=creator, role=_comic_role(role)))
    out.contributors = tuple(dict.fromkeys(people))
    page_count = _int(text("pagecount"))
    out.page_count = page_count if page_count and 0 < page_count <= _MAX_PAGE_COUNT else None
    pages = top.get("pages")
    out.cover_index = _front_cover(pages) if pages is not None else None
    return out


def _first(parent: etree._Element, local: str) -> etree._Element | None:
    found = _children(parent, local)
    return found[0] if found else None


# CoMet credit elements and the role words the catalogue stores.
_COMET_ROLES = MappingProxyType(
    {
        "writer": "writer",
        "penciller": "penciller",
        "inker": "inker",
        "colorist": "colorist",
        "letterer": "letterer",
        "coverdesigner": "cover_artist",
        "editor": "editor",
        "creator": "contributor",
    }
)


def _read_comet(root: etree._Element) -> _ComicInfo:
    """CoMet: a flat list of elements, repeated for lists (character, genre, writer, ...)."""
    if _local(root.tag) != "comet":
        raise ParseError(f"CoMet.xml has root <{_local(root.tag)}>, not <comet>")
    values: dict[str, list[str]] = {}
    for el in root:
        local = _local(el.tag)
        value = clean("".join(el.itertext()))
        if local and value:
            values.setdefault(local, []).append(value)

    def one(local: str) -> str | None:
        found = values.get(local)
        return found[0] if found else None

    out = _ComicInfo()
    out.title = one("title")
    series_name = one("series")
    if series_name:
        out.series = (SeriesEntry(series_name, series_number(one("issue"))),)
    out.volume = _count(one("volume"))
    out.description = clean(strip_html(one("description")), multiline=True)
    out.publisher = one("publisher")
    out.release_date = normalise_date(one("date"))
    out.language = _language(one("language"))
    out.genres = tuple(dict.fromkeys(values.get("genre", ())))
    out.age_rating = _age_rating(one("rating"))
    direction = (one("readingdirection") or "").casefold()
    if direction in ("ltr", "rtl"):
        out.reading_direction = ReadingDirection(direction)
    identifier = one("identifier")
    if identifier:
        out.identifiers = _comic_identifier(identifier)
    out.subjects = _unique_subjects(
        [Subject(SubjectKind.CHARACTER, c) for c in values.get("character", ())]
    )
    out.contributors = tuple(
        Contributor(name=person, role=role)
        for element, role in _COMET_ROLES.items()
        for person in dict.fromkeys(values.get(element, ()))
    )
    pages = _int(one("pages"))
    out.page_count = pages if pages and 0 < pages <= _MAX_PAGE_COUNT else None
    out.cover_name = one("coverimage")
    return out


def _read_comicbookinfo(comment: bytes) -> _ComicInfo | None:
    """ComicBookInfo: JSON in the archive comment; None when the comment is something else."""
    text = comment.decode("utf-8", "replace").strip()
    if not text.startswith("{") or "ComicBookInfo/1" not in text:
        return None
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ParseError(f"ComicBookInfo comment is not valid JSON: {_one_line(exc)}") from None
    body = (
        next((v for k, v in document.items() if k.startswith("ComicBookInfo/1")), None)
        if isinstance(document, dict)
        else None
    )
    if not isinstance(body, dict):
        raise ParseError("ComicBookInfo comment has no ComicBookInfo/1.0 object")

    def text_of(key: str) -> str | None:
        value = body.get(key)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            return None
        return clean(str(value))

    out = _ComicInfo()
    out.title = text_of("title")
    series_name = text_of("series")
    if series_name:
        out.series = (SeriesEntry(series_name, series_number(text_of("issue"))),)
    out.publisher = text_of("publisher")
    out.release_date = _date(text_of("publicationYear"), text_of("publicationMonth"), None)
    out.volume = _count(text_of("volume"))
    out.issue_count = _count(text_of("numberOfIssues"))
    out.volume_count = _count(text_of("numberOfVolumes"))
    out.language = _language(text_of("language"))
    out.description = clean(strip_html(text_of("comments")), multiline=True)
    out.genres = _split_list(text_of("genre"))
    tags = body.get("tags")
    if isinstance(tags, list):
        out.tags = tuple(
            dict.fromkeys(t for t in (clean(str(x)) for x in tags if isinstance(x, str)) if t)
        )
    credits = body.get("credits")
    people: list[Contributor] = []
    for credit in credits if isinstance(credits, list) else ():
        if not isinstance(credit, dict) or not isinstance(credit.get("person"), str):
            continue
        name = clean(credit["person"])
        role = credit.get("role")
        if name:
            people.append(Contributor(name, _comic_role(role if isinstance(role, str) else "")))
    out.contributors = tuple(dict.fromkeys(people))
    return out


# Credit roles as MetronInfo and ComicBookInfo spell them, to the catalogue's role words.
_ROLE_WORDS = MappingProxyType(
    {
        "writer": "writer",
        "script": "writer",
        "scripter": "writer",
        "story": "writer",
        "plot": "writer",
        "author": "writer",
        "penciller": "penciller",
        "penciler": "penciller",
        "pencils": "penciller",
        "artist": "artist",
        "inker": "inker",
        "inks": "inker",
        "colorist": "colorist",
        "colourist": "colorist",
        "colors": "colorist",
        "letterer": "letterer",
        "letters": "letterer",
        "cover": "cover_artist",
        "cover artist": "cover_artist",
        "coverartist": "cover_artist",
        "cover designer": "cover_artist",
        "editor": "editor",
        "translator": "translator",
    }
)


def _comic_role(raw: str) -> str:
    """A known credit becomes its role word; anything else is a plain "contributor"."""
    return _ROLE_WORDS.get(" ".join(raw.casefold().split()), "contributor")


# CoMet and ComicBookInfo often name the language in English instead of an ISO code.
_LANGUAGE_NAMES = MappingProxyType(
    {
        "english": "en", "french": "fr", "german": "de", "spanish": "es", "italian": "it",
        "japanese": "ja", "portuguese": "pt", "dutch": "nl", "russian": "ru", "chinese": "zh",
        "korean": "ko", "polish": "pl", "swedish": "sv", "danish": "da", "norwegian": "no",
        "finnish": "fi", "czech": "cs", "hungarian": "hu", "turkish": "tr", "arabic": "ar",
        "greek": "el", "hebrew": "he", "indonesian": "id", "vietnamese": "vi", "thai": "th",
    }
)  # fmt: skip


def _language(value: str | None) -> str | None:
    text = clean(value)
    if text is None:
        return None
    return _LANGUAGE_NAMES.get(text.casefold(), text)


def _age_rating(value: str | None) -> str | None:
    text = clean(value)
    return None if text is None or text.casefold() == "unknown" else text


def _count(value: str | None) -> int | None:
    """A volume or issue count: a positive integer a database column holds, else None."""
    number = _int(value)
    return number if number is not None and 0 < number < 2**31 else None


def _unique_texts(elements: list[etree._Element]) -> tuple[str, ...]:
    """One value per element (commas are part of a name here); duplicates and blanks dropped."""
    seen: set[str] = set()
    result: list[str] = []
    for el in elements:
        item = clean("".join(el.itertext()))
        if item and item.casefold() not in seen:
            seen.add(item.casefold())
            result.append(item)
    return tuple(result)


def _unique_subjects(subjects: list[Subject]) -> tuple[Subject, ...]:
    seen: set[tuple[SubjectKind, str]] = set()
    result: list[Subject] = []
    for subject in subjects:
        key = (subject.kind, subject.name.casefold())
        if key not in seen:
            seen.add(key)
            result.append(subject)
    return tuple(result)


_CVDB_RE = re.compile(r"^CVDB(\d+)$", re.IGNORECASE)


def _comic_identifier(value: str) -> tuple[Identifier, ...]:
    """comicbox and ComicTagger write a Comic Vine issue id as "CVDB<id>"."""
    match = _CVDB_RE.match(value.strip())
    if match:
        return (Identifier("comicvine", match.group(1)),)
    return _gtin(value)


def _front_cover(pages: etree._Element) -> int | None:
    for page in pages:
        if _local(page.tag) != "page":
            continue
        kinds = {k.casefold() for k in (page.get("Type") or page.get("type") or "").split()}
        if "frontcover" in kinds:
            return _int(page.get("Image") or page.get("image"))
    return None


def _split_list(value: str | None, *, dedupe: bool = True) -> tuple[str, ...]:
    """ComicInfo lists are comma-separated; duplicates and blanks are dropped.

    `dedupe=False` keeps every non-blank item in place, for lists that pair up with
    another (StoryArc with StoryArcNumber).
    """
    if not value:
        return ()
    seen: set[str] = set()
    result: list[str] = []
    for piece in value.split(","):
        item = clean(piece)
        if item and (not dedupe or item.casefold() not in seen):
            seen.add(item.casefold())
            result.append(item)
    return tuple(result)


def _int(value: str | None) -> int | None:
    text = (value or "").strip()
    if not text or len(text) > 12 or not text.lstrip("-").isdigit():
        return None
    return int(text)


def _date(year: str | None, month: str | None, day: str | None) -> str | None:
    """Year/Month/Day elements to an ISO prefix; ComicRack writes -1 for "unknown"."""
    y = _int(year)
    if y is None or not 1 <= y <= 9999:
        return None
    text = f"{y:04d}"
    m = _int(month)
    if m is not None and 1 <= m <= 12:
        text += f"-{m:02d}"
        d = _int(day)
        if d is not None and 1 <= d <= 31:
            text += f"-{d:02d}"
    return normalise_date(text)


def _barcode(value: str) -> tuple[Identifier, ...]:
    """A UPC/EAN as MetronInfo gives it: digits of a barcode length, or nothing."""
    compact = _GTIN_JUNK_RE.sub("", value)
    if compact.isascii() and compact.isdigit() and len(compact) in (8, 12, 13, 14):
        return classify_identifier(compact, "isbn") or (Identifier("gtin", compact),)
    return ()


def _gtin(value: str) -> tuple[Identifier, ...]:
    """A GTIN is an EAN/UPC barcode; an ISBN-13 one is the book's ISBN."""
    compact = _GTIN_JUNK_RE.sub("", value)
    if compact.isascii() and (compact.isdigit() or compact[:-1].isdigit()):
        isbn = classify_identifier(compact, "isbn")
        if isbn:
            return isbn
        if compact.isdigit() and len(compact) in (8, 12, 13, 14):
            return (Identifier("gtin", compact),)
    return classify_identifier(value, None)


# Metadata members a comic may carry (lower-case names), in the order they lead.
_XML_DIALECTS: tuple[tuple[str, Callable[[etree._Element], _ComicInfo], str], ...] = (
    ("comicinfo.xml", _read_comicinfo, "comicinfo"),
    ("metroninfo.xml", _read_metroninfo, "metroninfo"),
    ("comet.xml", _read_comet, "comet"),
)
