"""Comic archive reader: CBZ (zip), CBT (tar), CB7 (7-Zip) and CBR (RAR).

A comic is a folder of page images in an archive, optionally with a
ComicInfo.xml. All four containers share one core; each backend only lists
members and reads one member into memory under a size cap. Nothing is ever
extracted to disk, member names are never used as paths, and the container is
recognised by its magic bytes, because ".cbr" files that are really zips (and
the reverse) are common.
"""

from __future__ import annotations

import os
import re
import tarfile
import zipfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
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
    SeriesEntry,
)
from shelfscan.formats.text import clean, normalise_date, series_number, strip_html
from shelfscan.formats.xmlsafe import UnsafeXMLError, parse_xml

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
_DIGITS_RE = re.compile(r"(\d+)")
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

    return _read_comic(_RarBackend(open_reader), "cbr")


class _RarBackend:
    """Streams the archive once per read: RAR has no random access worth trusting."""

    def __init__(self, open_reader: Callable[[], AbstractContextManager[Any]]) -> None:
        self.open_reader = open_reader
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


# ---------------------------------------------------------------------------
# Shared core
# ---------------------------------------------------------------------------


def natural_key(name: str) -> tuple[tuple[int, int, str], ...]:
    """Sort key that puts "page2" before "page10", case-insensitively.

    Digit runs compare by magnitude via (length without leading zeros, digits),
    so absurdly long numbers cost nothing and never hit int() limits.
    """
    parts: list[tuple[int, int, str]] = []
    for i, piece in enumerate(_DIGITS_RE.split(name.casefold())):
        if i % 2:
            digits = piece.lstrip("0")
            parts.append((0, len(digits), digits))
        elif piece:
            parts.append((1, 0, piece))
    return tuple(parts)


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
    info_member = _comicinfo_member(members)
    info: _ComicInfo | None = None
    extra: dict[str, str] = {}
    if info_member is not None:
        data = backend.read(info_member, MAX_COMICINFO_BYTES, "ComicInfo.xml")
        try:
            info = _read_comicinfo(parse_xml(data))
        except UnsafeXMLError:
            raise
        except ParseError as exc:
            # A sloppy tagger's XML costs the metadata, not the comic.
            extra["comicinfo_error"] = str(exc)
    if info is not None:
        extra.update(info.extra)

    page_count = info.page_count if info is not None and info.page_count else len(images)
    cover_index = info.cover_index if info is not None else None
    cover = _cover(backend, images, cover_index)
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
    )


def _comicinfo_member(members: list[_Member]) -> _Member | None:
    """ComicInfo.xml in any case; the one nearest the archive root wins."""
    found = [m for m in members if m.name.rpartition("/")[2].casefold() == "comicinfo.xml"]
    if not found:
        return None
    return min(found, key=lambda m: (m.name.count("/"), natural_key(m.name), m.name))


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


def _local(tag: object) -> str:
    return tag.rpartition("}")[2].lower() if isinstance(tag, str) else ""


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
    for key in ("volume", "count", "imprint"):
        value = clean(fields.get(key))
        if value:
            extra[key] = value
    web = clean(fields.get("web"))
    if web:
        extra["web"] = web
    out.description = clean(strip_html(fields.get("summary")), multiline=True)
    out.publisher = clean(fields.get("publisher"))
    out.release_date = _date(fields.get("year"), fields.get("month"), fields.get("day"))
    out.language = clean(fields.get("languageiso"))
    out.genres = _split_list(fields.get("genre"))
    out.tags = _split_list(fields.get("tags"))
    gtin = clean(fields.get("gtin"))
    if gtin:
        out.identifiers = _gtin(gtin)

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


def _front_cover(pages: etree._Element) -> int | None:
    for page in pages:
        if _local(page.tag) != "page":
            continue
        kinds = {k.casefold() for k in (page.get("Type") or page.get("type") or "").split()}
        if "frontcover" in kinds:
            return _int(page.get("Image") or page.get("image"))
    return None


def _split_list(value: str | None) -> tuple[str, ...]:
    """ComicInfo lists are comma-separated; duplicates and blanks are dropped."""
    if not value:
        return ()
    seen: set[str] = set()
    result: list[str] = []
    for piece in value.split(","):
        item = clean(piece)
        if item and item.casefold() not in seen:
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
