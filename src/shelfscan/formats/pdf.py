"""PDF metadata reader (pypdf, non-strict).

PDFs carry metadata twice: the old Info dictionary and an XMP packet. Rule:
per field, a non-empty XMP value wins, because XMP is the Unicode-safe source
that PDF 2.0 keeps (Info is deprecated there) — unless the Info dictionary's
ModDate is later than the XMP packet's own date, which means a tool edited
Info without touching XMP; then Info wins. Empty values never win.

Hostile files are bounded by pypdf's own decompression limits, by reading the
XMP packet through the hardened XML parser, and by walking the outline
iteratively with caps on entries, visited nodes and depth.

`parse_pdf` renders nothing; `render_first_page` (called by the parse stage
only for a PDF whose folder has no cover sidecar) renders page 1 with PDFium as
the cover, the way calibre, Kavita and Komga show PDFs.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, BinaryIO

from lxml import etree

from shelfscan.errors import ShelfscanError
from shelfscan.formats.identifiers import classify_identifier
from shelfscan.formats.records import (
    Chapter,
    Contributor,
    CoverImage,
    Identifier,
    Metadata,
    ParseError,
)
from shelfscan.formats.text import clean, normalise_date, strip_html
from shelfscan.formats.xmlsafe import UnsafeXMLError, parse_xml

__all__ = [
    "MAX_CHAPTERS",
    "MAX_OUTLINE_DEPTH",
    "MAX_OUTLINE_NODES",
    "MAX_XMP_BYTES",
    "parse_pdf",
    "render_first_page",
    "split_authors",
]

MAX_CHAPTERS = 5000
MAX_OUTLINE_DEPTH = 32
MAX_OUTLINE_NODES = 20_000
"""Outline dictionaries visited, titled or not: bounds time on looping or padded outlines."""
MAX_XMP_BYTES = 4 * 1024 * 1024

_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_XMP = "{http://ns.adobe.com/xap/1.0/}"
_PDF = "{http://ns.adobe.com/pdf/1.3/}"
_XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"

_PDF_DATE_RE = re.compile(
    r"^\s*(?:D:)?(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?\s*"
    r"(?:(Z)|([+-])(\d{2})'?(\d{2})?'?)?"
)
_ISO_DATETIME_RE = re.compile(
    r"^\s*(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2}))?(?:\.\d+)?)?)?)?\s*"
    r"(?:(Z)|([+-])(\d{2}):?(\d{2})?)?"
)
_NAME_SEP_RE = re.compile(r"\s*(?:,|&|\band\b)\s*", re.IGNORECASE)
_AND_SEP_RE = re.compile(r"\s*(?:&|\band\b)\s*", re.IGNORECASE)
_KEYWORD_SEP_RE = re.compile(r"[,;]")
_PDF_ESCAPE_RE = re.compile(r"\\([()\\])")


def parse_pdf(path: str | os.PathLike[str]) -> Metadata:
    """Read a PDF's metadata; raise ParseError (or FileNotFoundError) when it cannot."""
    name = os.fspath(path)
    try:
        import pypdf  # deferred: a heavy import (~0.1 s) that only PDFs need
    except ImportError as exc:
        raise ParseError(f"PDF support unavailable (pypdf): {exc}") from None
    try:
        with open(name, "rb") as handle:
            return _parse(pypdf, handle)
    except (FileNotFoundError, ParseError):
        raise
    except RecursionError:
        raise ParseError("not a readable PDF: object graph nested too deeply") from None
    except Exception as exc:
        # pypdf on hostile input raises anything from KeyError to struct.error;
        # a scan must see each as one failed file, never a crash.
        message = " ".join(str(exc).split())[:300]
        raise ParseError(f"not a readable PDF: {type(exc).__name__}: {message}") from None


def _parse(pypdf: ModuleType, handle: BinaryIO) -> Metadata:
    # A file object (not a path) stops pypdf reading the whole file into memory.
    reader = pypdf.PdfReader(handle, strict=False)
    if reader.is_encrypted:
        try:
            result = reader.decrypt("")
        except Exception as exc:  # missing AES support, malformed /Encrypt, ...
            raise ParseError(f"encrypted PDF: {type(exc).__name__}") from None
        if result == pypdf.PasswordType.NOT_DECRYPTED:
            raise ParseError("encrypted PDF")

    catalog = _resolve(reader.trailer.get("/Root"))
    if not isinstance(catalog, dict):
        raise ParseError("not a readable PDF: no document catalog")
    info = _read_info(reader)
    xmp = _read_xmp(catalog)
    chosen = _merge(info, xmp)

    page_ids: dict[int, int] = {}
    page_count: int | None
    try:
        pages = reader.pages
        page_count = len(pages)
        for number, page in enumerate(pages):
            ref = page.indirect_reference
            if ref is not None:
                page_ids.setdefault(ref.idnum, number)
    except Exception:  # pypdf's errors vary; a broken page tree costs pages, not metadata
        page_count = None

    try:
        chapters = _outline(reader, catalog, page_ids)
    except Exception:  # a broken outline costs the chapters, not the book
        chapters = ()

    extra: dict[str, str] = {}
    for key, value in (
        ("producer", info.producer),
        ("creator_tool", xmp.creator_tool or info.creator_tool),
        ("pdf_version", clean(reader.pdf_header.lstrip("%").replace("PDF-", "", 1))),
    ):
        if value:
            extra[key] = value

    return Metadata(
        format="pdf",
        title=chosen.title,
        contributors=tuple(Contributor(name=a) for a in chosen.authors),
        tags=chosen.tags,
        description=chosen.description,
        release_date=chosen.release_date,
        language=chosen.language,
        identifiers=chosen.identifiers,
        chapters=chapters,
        page_count=page_count,
        extra=extra,
    )


def _resolve(obj: Any) -> Any:
    """Follow indirect references (bounded: a reference to a reference is legal, a loop is not)."""
    for _ in range(16):
        get_object = getattr(obj, "get_object", None)
        if get_object is None:
            return obj
        resolved = get_object()
        if resolved is obj:
            return obj
        obj = resolved
    return None


def _text(obj: Any) -> str | None:
    """A PDF string as text: pypdf decodes text strings; byte strings are guessed."""
    value = _resolve(obj)
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        for encoding in ("utf-8", "cp1252"):
            try:
                return value.decode(encoding)
            except UnicodeDecodeError:
                continue
        return value.decode("latin-1")
    return None


# ---------------------------------------------------------------------------
# Info dictionary and XMP
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Fields:
    title: str | None = None
    authors: tuple[str, ...] = ()
    description: str | None = None
    tags: tuple[str, ...] = ()
    release_date: str | None = None
    language: str | None = None
    identifiers: tuple[Identifier, ...] = ()
    modified: dt.datetime | None = None
    creator_tool: str | None = None
    producer: str | None = None
    raw_dates: list[str] = field(default_factory=list)


def _read_info(reader: Any) -> _Fields:
    out = _Fields()
    info = _resolve(reader.trailer.get("/Info"))
    if not isinstance(info, dict):
        return out
    out.title = clean(_text(info.get("/Title")))
    author = clean(_text(info.get("/Author")))
    out.authors = split_authors(author) if author else ()
    out.description = clean(strip_html(_text(info.get("/Subject"))), multiline=True)
    out.tags = _keywords([_text(info.get("/Keywords"))])
    out.release_date = normalise_date(_pdf_date_prefix(_text(info.get("/CreationDate"))))
    out.modified = _pdf_datetime(_text(info.get("/ModDate")))
    out.creator_tool = clean(_text(info.get("/Creator")))
    out.producer = clean(_text(info.get("/Producer")))
    return out


def _read_xmp(catalog: dict[str, Any]) -> _Fields:
    out = _Fields()
    stream = _resolve(catalog.get("/Metadata"))
    get_data = getattr(stream, "get_data", None)
    if get_data is None:
        return out
    declared = _resolve(stream.get("/Length")) if isinstance(stream, dict) else None
    if isinstance(declared, int) and declared > MAX_XMP_BYTES:
        return out
    try:
        data = get_data()
    except Exception:  # a broken XMP stream costs the XMP, not the book
        return out
    if not isinstance(data, bytes) or len(data) > MAX_XMP_BYTES:
        return out
    data = data.lstrip(b"\x00 \t\r\n")
    if not data:
        return out
    # Hostile XML (entities, bombs) fails the book; merely sloppy XMP is ignored.
    try:
        root = parse_xml(data)
    except UnsafeXMLError:
        raise
    except ParseError:
        return out
    _xmp_fields(root, out)
    return out


def _xmp_values(root: etree._Element, name: str) -> list[str]:
    """All values of one property, whether written as element (plain, Alt, Seq, Bag) or attribute.

    Ghostscript copies PDF string escapes into XMP ("Bizet \\(1838-1875\\)"), so a
    backslash before a parenthesis or backslash is dropped.
    """
    return [_PDF_ESCAPE_RE.sub(r"\1", value) for value in _xmp_raw_values(root, name)]


def _xmp_raw_values(root: etree._Element, name: str) -> list[str]:
    values: list[str] = []
    for desc in root.iter(f"{_RDF}Description"):
        attr = desc.get(name)
        if attr is not None:
            values.append(attr)
        for prop in desc.iter(name):
            items = list(prop.iter(f"{_RDF}li"))
            if not items:
                values.append("".join(prop.itertext()))
                continue
            # In a language Alt, x-default goes first.
            items.sort(key=lambda li: 0 if li.get(_XML_LANG) == "x-default" else 1)
            values.extend("".join(li.itertext()) for li in items)
    return values


def _first(values: list[str], *, multiline: bool = False) -> str | None:
    for value in values:
        text = clean(value, multiline=multiline)
        if text:
            return text
    return None


def _xmp_fields(root: etree._Element, out: _Fields) -> None:
    out.title = _first(_xmp_values(root, f"{_DC}title"))
    authors: list[str] = []
    for value in _xmp_values(root, f"{_DC}creator"):
        text = clean(value)
        if text:
            authors.extend(split_authors(text))
    out.authors = _unique(authors)
    description = _first(_xmp_values(root, f"{_DC}description"), multiline=True)
    out.description = clean(strip_html(description), multiline=True)
    out.tags = _keywords(_xmp_values(root, f"{_DC}subject") + _xmp_values(root, f"{_PDF}Keywords"))
    out.language = _first(_xmp_values(root, f"{_DC}language"))
    if out.language and out.language.lower() in ("x-default", "x-unknown", "und"):
        out.language = None
    out.release_date = normalise_date(_first(_xmp_values(root, f"{_XMP}CreateDate")))
    modified = _first(_xmp_values(root, f"{_XMP}MetadataDate")) or _first(
        _xmp_values(root, f"{_XMP}ModifyDate")
    )
    out.modified = _iso_datetime(modified)
    out.creator_tool = _first(_xmp_values(root, f"{_XMP}CreatorTool"))
    identifiers: list[Identifier] = []
    for value in _xmp_values(root, f"{_DC}identifier"):
        text = clean(value)
        if text:
            identifiers.extend(classify_identifier(text, None))
    out.identifiers = tuple(dict.fromkeys(identifiers))


def _merge(info: _Fields, xmp: _Fields) -> _Fields:
    """Per field, the preferred source's non-empty value, else the other's (see module doc)."""
    info_is_newer = (
        info.modified is not None and xmp.modified is not None and info.modified > xmp.modified
    )
    first, second = (info, xmp) if info_is_newer else (xmp, info)
    return _Fields(
        title=first.title or second.title,
        authors=first.authors or second.authors,
        description=first.description or second.description,
        tags=first.tags or second.tags,
        release_date=first.release_date or second.release_date,
        language=xmp.language,  # Info has no language entry
        identifiers=xmp.identifiers,
    )


def split_authors(value: str) -> tuple[str, ...]:
    """Split an author string into people without breaking names apart.

    ";" always separates. "," "&" and "and" separate only when every piece has
    at least two words, so "Doe, Jane", "Simon & Schuster" and
    "Georges Bizet (1838-1875)" stay whole while "Jane Doe and John Roe" splits.
    """
    people: list[str] = []
    for part in value.split(";"):
        text = clean(part)
        if not text:
            continue
        for pattern in (_NAME_SEP_RE, _AND_SEP_RE):
            pieces = [clean(p) for p in pattern.split(text)]
            names = [p for p in pieces if p]
            if (
                len(names) > 1
                and len(names) == len(pieces)
                and all(len(n.split()) >= 2 for n in names)
            ):
                people.extend(names)
                break
        else:
            people.append(text)
    return _unique(people)


def _keywords(values: Sequence[str | None]) -> tuple[str, ...]:
    tags: list[str] = []
    for value in values:
        for piece in _KEYWORD_SEP_RE.split(value or ""):
            tag = clean(piece)
            if tag:
                tags.append(tag)
    return _unique(tags)


def _unique(values: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    result: list[str] = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            result.append(value)
    return tuple(result)


def _pdf_date_prefix(value: str | None) -> str | None:
    """ "D:YYYYMMDDHHmmSS..." to the ISO date prefix it states, for normalise_date."""
    if not value:
        return None
    match = _PDF_DATE_RE.match(value)
    if not match:
        return value  # let normalise_date try its own patterns
    year, month, day = match.group(1), match.group(2), match.group(3)
    text = year
    if month:
        text += f"-{month}"
        if day:
            text += f"-{day}"
    return text


def _tz(sign: str | None, hours: str | None, minutes: str | None, zulu: str | None) -> dt.tzinfo:
    if zulu or not sign or not hours:
        return dt.UTC
    offset = dt.timedelta(hours=int(hours), minutes=int(minutes or 0))
    if offset >= dt.timedelta(hours=24):
        return dt.UTC
    return dt.timezone(-offset if sign == "-" else offset)


def _make_datetime(parts: tuple[str | None, ...], tz: dt.tzinfo) -> dt.datetime | None:
    year, month, day, hour, minute, second = (int(p) if p else None for p in parts)
    try:
        return dt.datetime(
            year or 1, month or 1, day or 1, hour or 0, minute or 0, second or 0, tzinfo=tz
        )
    except (ValueError, OverflowError):
        return None


def _pdf_datetime(value: str | None) -> dt.datetime | None:
    match = _PDF_DATE_RE.match(value or "")
    if not match:
        return None
    g = match.groups()
    return _make_datetime(g[:6], _tz(g[7], g[8], g[9], g[6]))


def _iso_datetime(value: str | None) -> dt.datetime | None:
    match = _ISO_DATETIME_RE.match(value or "")
    if not match:
        return None
    g = match.groups()
    return _make_datetime(g[:6], _tz(g[7], g[8], g[9], g[6]))


# ---------------------------------------------------------------------------
# Outline
# ---------------------------------------------------------------------------


def _outline(reader: Any, catalog: dict[str, Any], page_ids: dict[int, int]) -> tuple[Chapter, ...]:
    """Bookmarks in reading order with "#page=N" links, never following a node twice."""
    outlines = _resolve(catalog.get("/Outlines"))
    if not isinstance(outlines, dict):
        return ()
    named: dict[str, Any] | None = None
    chapters: list[Chapter] = []
    for node, level in _walk_outline(outlines):
        title = clean(_text(node.get("/Title"))) or ""
        dest = _resolve(node.get("/Dest"))
        if dest is None:
            action = _resolve(node.get("/A"))
            if isinstance(action, dict) and _resolve(action.get("/S")) == "/GoTo":
                dest = _resolve(action.get("/D"))
        if isinstance(dest, (str, bytes)):
            if named is None:
                named = _named_destinations(reader)
            key = dest.decode("latin-1") if isinstance(dest, bytes) else str(dest)
            dest = named.get(key)
        page = _dest_page(dest, page_ids)
        href = f"#page={page + 1}" if page is not None else None
        if title or href:
            chapters.append(Chapter(title=title, level=level, href=href))
            if len(chapters) >= MAX_CHAPTERS:
                break
    return tuple(chapters)


def _walk_outline(outlines: dict[str, Any]) -> Iterator[tuple[dict[str, Any], int]]:
    """Depth-first over /First and /Next with an explicit stack and a visited set."""
    seen: set[int] = set()
    visited = 0
    stack: list[tuple[Any, int]] = [(outlines.get("/First"), 0)]
    while stack:
        ref, level = stack.pop()
        while ref is not None and visited < MAX_OUTLINE_NODES:
            key = id(ref) if getattr(ref, "idnum", None) is None else ref.idnum
            if key in seen:
                break
            seen.add(key)
            visited += 1
            node = _resolve(ref)
            if not isinstance(node, dict):
                break
            yield node, level
            following = node.get("/Next")
            child = node.get("/First")
            if child is not None and level + 1 < MAX_OUTLINE_DEPTH:
                stack.append((following, level))
                ref, level = child, level + 1
            else:
                ref = following


def _named_destinations(reader: Any) -> dict[str, Any]:
    try:
        named = reader.named_destinations
    except Exception:  # a broken name tree costs the links, not the chapters
        return {}
    return named if isinstance(named, dict) else {}


def _dest_page(dest: Any, page_ids: dict[int, int]) -> int | None:
    """The 0-based page a destination points at, from an explicit array or a Destination."""
    dest = _resolve(dest)
    if isinstance(dest, dict) and "/D" in dest:  # a named destination stored as a dictionary
        dest = _resolve(dest.get("/D"))
    target: Any
    if isinstance(dest, list):
        if not dest:
            return None
        target = dest[0]
    else:
        target = getattr(dest, "page", None)
    idnum = getattr(target, "idnum", None)
    if isinstance(idnum, int):
        return page_ids.get(idnum)
    target = _resolve(target)
    if isinstance(target, int) and not isinstance(target, bool) and 0 <= target < len(page_ids):
        return target
    page_ref = getattr(target, "indirect_reference", None)
    idnum = getattr(page_ref, "idnum", None)
    return page_ids.get(idnum) if isinstance(idnum, int) else None


# --- page 1 as the cover ---------------------------------------------------------------------

COVER_LONGEST_SIDE_PX = 600
"""Thumbnail-friendly: what a book server's grid shows, and a bitmap of at most ~1 MiB."""
MAX_PAGE_SIDE_PT = 14_400
"""PDF's own limit (200 inches); a larger or degenerate MediaBox is a crafted page: no cover."""
MAX_PAGE_ASPECT = 20
COVER_JPEG_QUALITY = 85

# PDFium is one process-wide C library that must not be entered from two threads at once
# (the thread executor runs parse chunks in parallel threads); this lock is its, not ours.
_PDFIUM_LOCK = threading.Lock()


class CoverRenderError(ShelfscanError):
    """Page 1 of a PDF could not be rendered; the book keeps everything else."""


def render_first_page(path: str | os.PathLike[str]) -> CoverImage | None:
    """Page 1 as a JPEG whose longest side is COVER_LONGEST_SIDE_PX; None for a PDF with no pages.

    Time is bounded by the parse executor's watchdog like every parser; memory by
    the render size (the bitmap is never larger than 600 px a side, whatever the
    page says) and by refusing absurd page boxes before anything is drawn.
    """
    try:
        import pypdfium2  # deferred: only PDFs without a cover sidecar pay for it
    except ImportError as exc:
        raise CoverRenderError(f"PDF rendering unavailable (pypdfium2): {exc}") from None
    with _PDFIUM_LOCK:
        try:
            document = pypdfium2.PdfDocument(os.fspath(path))
        except pypdfium2.PdfiumError as exc:
            raise CoverRenderError(f"PDF cover not rendered: {exc}") from None
        try:
            if len(document) == 0:
                return None
            page = document[0]
            try:
                width, height = page.get_size()
                if not (0 < width <= MAX_PAGE_SIDE_PT and 0 < height <= MAX_PAGE_SIDE_PT):
                    raise CoverRenderError(
                        f"PDF cover not rendered: page 1 is {width:g}x{height:g} pt"
                    )
                if max(width, height) > MAX_PAGE_ASPECT * min(width, height):
                    raise CoverRenderError("PDF cover not rendered: page 1 is a strip, not a page")
                scale = COVER_LONGEST_SIDE_PX / max(width, height)
                bitmap = page.render(scale=scale, may_draw_forms=False)
                try:
                    image = bitmap.to_pil().convert("RGB")
                finally:
                    bitmap.close()
            finally:
                page.close()
        except pypdfium2.PdfiumError as exc:
            raise CoverRenderError(f"PDF cover not rendered: {exc}") from None
        finally:
            document.close()
    out = io.BytesIO()
    image.save(out, "JPEG", quality=COVER_JPEG_QUALITY, optimize=True)
    return CoverImage(data=out.getvalue(), mime="image/jpeg")
