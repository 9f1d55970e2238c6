"""Build EPUB files from a plain description, byte for byte reproducibly.

Two OPF dialects are written because scanners meet both in the wild: calibre's
EPUB 2 (attributes on dc:creator, calibre:series meta) and EPUB 3 (refines
metadata, belongs-to-collection). The zip container is assembled by hand so that
deflated chapter bodies and cover bodies, which repeat across a synthetic library,
are compressed once per process and reused: that keeps 100,000-book benchmark
libraries cheap to make. The output is an ordinary zip that any reader accepts.
"""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

__all__ = ["CreatorSpec", "EpubSpec", "epub_bytes", "write_epub"]


@dataclass(frozen=True, slots=True)
class CreatorSpec:
    """One dc:creator; `role` is a MARC relator code (aut, edt, trl, ill, ...)."""

    name: str
    role: str = "aut"
    file_as: str | None = None


@dataclass(frozen=True, slots=True)
class EpubSpec:
    """Everything an EPUB says about its book; `epub_bytes` turns it into a file."""

    title: str
    creators: tuple[CreatorSpec, ...]
    style: Literal["epub2", "epub3"] = "epub3"
    subtitle: str | None = None
    subjects: tuple[str, ...] = ()
    series: str | None = None
    series_index: str | None = None
    isbn: str | None = None
    uuid: str | None = None
    language: str = "en"
    publisher: str | None = None
    date: str | None = None
    description: str | None = None
    cover: bytes | None = None
    chapters: tuple[tuple[str, str], ...] = ()


# --- zip container -----------------------------------------------------------------------------

_ZIP_DATE = ((2020 - 1980) << 9) | (1 << 5) | 1  # 2020-01-01, DOS format
_ZIP_TIME = 0  # 00:00:00
_STORED, _DEFLATED = 0, 8
_FINAL_EMPTY_BLOCK = b"\x03\x00"  # a last, empty, fixed-Huffman deflate block
_FILE_ATTR = 0o100644 << 16
_MADE_BY_UNIX_20 = (3 << 8) | 20


@dataclass(frozen=True, slots=True)
class _Piece:
    """A run of member bytes and its raw-deflate encoding, which ends on a byte boundary."""

    raw: bytes
    deflated: bytes


def _deflate(raw: bytes) -> bytes:
    """Deflate with a sync flush: the output is non-final and byte-aligned, so such pieces
    concatenate into one valid stream once `_FINAL_EMPTY_BLOCK` is appended."""
    compressor = zlib.compressobj(6, zlib.DEFLATED, -15)
    return compressor.compress(raw) + compressor.flush(zlib.Z_SYNC_FLUSH)


def _fresh(raw: bytes) -> _Piece:
    return _Piece(raw, _deflate(raw))


@lru_cache(maxsize=1024)
def _body_piece(body: str) -> _Piece:
    """A chapter's paragraphs as `<p>` elements, deflated as one run. Generated libraries
    draw chapter bodies from a pool, so memoising here deflates each body once per process."""
    markup = "".join(
        f"<p>{_x(text)}</p>\n" for text in (p.strip() for p in body.split("\n\n")) if text
    )
    return _fresh(markup.encode())


@lru_cache(maxsize=64)
def _blob_piece(data: bytes) -> _Piece:
    """A large shared binary run (a pooled cover body)."""
    return _fresh(data)


def _zip(members: Iterable[tuple[str, list[_Piece] | bytes]]) -> bytes:
    """Assemble a zip: a `bytes` member is stored, a piece list is deflated."""
    out: list[bytes] = []
    central: list[bytes] = []
    offset = 0
    count = 0
    for name, content in members:
        encoded_name = name.encode("ascii")
        if isinstance(content, bytes):
            method, version = _STORED, 10
            crc, size = zlib.crc32(content), len(content)
            data = [content]
        else:
            method, version = _DEFLATED, 20
            crc, size = 0, 0
            for piece in content:
                crc = zlib.crc32(piece.raw, crc)
                size += len(piece.raw)
            data = [piece.deflated for piece in content]
            data.append(_FINAL_EMPTY_BLOCK)
        compressed = sum(map(len, data))
        header = struct.pack(
            "<IHHHHHIIIHH",
            0x04034B50,
            version,
            0,
            method,
            _ZIP_TIME,
            _ZIP_DATE,
            crc,
            compressed,
            size,
            len(encoded_name),
            0,
        )
        central.append(
            struct.pack(
                "<IHHHHHHIIIHHHHHII",
                0x02014B50,
                _MADE_BY_UNIX_20,
                version,
                0,
                method,
                _ZIP_TIME,
                _ZIP_DATE,
                crc,
                compressed,
                size,
                len(encoded_name),
                0,
                0,
                0,
                0,
                _FILE_ATTR,
                offset,
            )
            + encoded_name
        )
        out.append(header)
        out.append(encoded_name)
        out.extend(data)
        offset += len(header) + len(encoded_name) + compressed
        count += 1
    directory = b"".join(central)
    out.append(directory)
    out.append(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, count, count, len(directory), offset, 0))
    return b"".join(out)


# --- XML helpers -------------------------------------------------------------------------------

_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _x(text: str) -> str:
    """Escape character data; characters XML 1.0 forbids are dropped."""
    text = _XML_INVALID.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _xa(text: str) -> str:
    """Escape an attribute value (always written in double quotes)."""
    return _x(text).replace('"', "&quot;")


_XML_DECL = '<?xml version="1.0" encoding="utf-8"?>\n'
_CONTAINER = (
    _XML_DECL
    + '<container version="1.0" xmlns="urn:oasis:names:tc:opendocument:xmlns:container">\n'
    "  <rootfiles>\n"
    '    <rootfile full-path="{opf}" media-type="application/oebps-package+xml"/>\n'
    "  </rootfiles>\n"
    "</container>\n"
)
_CSS = (
    b"body { font-family: serif; line-height: 1.4; margin: 0 5%; }\n"
    b"h1 { text-align: center; page-break-before: always; margin: 2em 0 1em; }\n"
    b"p { text-indent: 1.5em; margin: 0; text-align: justify; }\n"
    b".titlepage { text-align: center; }\n"
    b".cover { max-width: 100%; height: auto; }\n"
)


@dataclass(frozen=True, slots=True)
class _Layout:
    """Where each part lives; hrefs are relative to the OPF's folder."""

    prefix: str  # zip folder of the OPF ("" or "OEBPS/")
    cover: str
    css: str
    titlepage: str
    chapter_dir: str  # folder of XHTML files, relative to the OPF
    css_from_text: str  # css href as seen from an XHTML file
    cover_from_text: str


_EPUB2 = _Layout(
    "", "cover.jpeg", "stylesheet.css", "titlepage.xhtml", "", "stylesheet.css", "cover.jpeg"
)
_EPUB3 = _Layout(
    "OEBPS/",
    "images/cover.jpg",
    "styles/style.css",
    "text/titlepage.xhtml",
    "text/",
    "../styles/style.css",
    "../images/cover.jpg",
)


def _chapter_href(layout: _Layout, number: int) -> str:
    return f"{layout.chapter_dir}chapter_{number:03d}.xhtml"


def _book_uuid(spec: EpubSpec) -> str:
    """The package needs a unique identifier; without one, derive it from the title."""
    if spec.uuid:
        return spec.uuid
    names = "|".join(c.name for c in spec.creators)
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"shelfscan:{spec.title}|{names}"))


# --- OPF ---------------------------------------------------------------------------------------


def _opf2(spec: EpubSpec, book_id: str) -> str:
    """calibre-style EPUB 2 package document."""
    title = f"{spec.title}: {spec.subtitle}" if spec.subtitle else spec.title
    meta = [f"    <dc:title>{_x(title)}</dc:title>"]
    for creator in spec.creators:
        attrs = f'opf:role="{_xa(creator.role)}"'
        if creator.file_as:
            attrs += f' opf:file-as="{_xa(creator.file_as)}"'
        meta.append(f"    <dc:creator {attrs}>{_x(creator.name)}</dc:creator>")
    if spec.description:
        meta.append(f"    <dc:description>{_x(spec.description)}</dc:description>")
    if spec.publisher:
        meta.append(f"    <dc:publisher>{_x(spec.publisher)}</dc:publisher>")
    meta.append(f'    <dc:identifier id="uuid_id" opf:scheme="uuid">{_x(book_id)}</dc:identifier>')
    if spec.isbn:
        meta.append(f'    <dc:identifier opf:scheme="ISBN">{_x(spec.isbn)}</dc:identifier>')
    if spec.date:
        meta.append(f"    <dc:date>{_x(spec.date)}</dc:date>")
    meta.append(f"    <dc:language>{_x(spec.language)}</dc:language>")
    meta.extend(f"    <dc:subject>{_x(subject)}</dc:subject>" for subject in spec.subjects)
    meta.extend(_calibre_series(spec))
    if spec.cover is not None:
        meta.append('    <meta name="cover" content="cover-img"/>')
    guide = (
        "  <guide>\n"
        '    <reference type="cover" title="Cover" href="titlepage.xhtml"/>\n'
        "  </guide>\n"
    )
    return (
        _XML_DECL + '<package xmlns="http://www.idpf.org/2007/opf" unique-identifier="uuid_id"'
        ' version="2.0">\n'
        '  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/"'
        ' xmlns:opf="http://www.idpf.org/2007/opf">\n'
        + "\n".join(meta)
        + "\n  </metadata>\n"
        + _manifest_and_spine(spec, _EPUB2, nav=False)
        + guide
        + "</package>\n"
    )


def _opf3(spec: EpubSpec, book_id: str) -> str:
    """EPUB 3 package document with refines metadata, as calibre 5+ and Sigil write it."""
    meta = [
        f'    <dc:identifier id="pub-id">urn:uuid:{_x(book_id)}</dc:identifier>',
    ]
    if spec.isbn:
        meta.append(f'    <dc:identifier id="isbn-id">urn:isbn:{_x(spec.isbn)}</dc:identifier>')
        meta.append(
            '    <meta refines="#isbn-id" property="identifier-type"'
            ' scheme="onix:codelist5">15</meta>'
        )
    meta.append(f'    <dc:title id="title">{_x(spec.title)}</dc:title>')
    meta.append('    <meta refines="#title" property="title-type">main</meta>')
    if spec.subtitle:
        meta.append(f'    <dc:title id="subtitle">{_x(spec.subtitle)}</dc:title>')
        meta.append('    <meta refines="#subtitle" property="title-type">subtitle</meta>')
    for seq, creator in enumerate(spec.creators, start=1):
        ref = f"c{seq}"
        meta.append(f'    <dc:creator id="{ref}">{_x(creator.name)}</dc:creator>')
        meta.append(
            f'    <meta refines="#{ref}" property="role"'
            f' scheme="marc:relators">{_x(creator.role)}</meta>'
        )
        if creator.file_as:
            meta.append(
                f'    <meta refines="#{ref}" property="file-as">{_x(creator.file_as)}</meta>'
            )
        meta.append(f'    <meta refines="#{ref}" property="display-seq">{seq}</meta>')
    meta.append(f"    <dc:language>{_x(spec.language)}</dc:language>")
    if spec.publisher:
        meta.append(f"    <dc:publisher>{_x(spec.publisher)}</dc:publisher>")
    if spec.date:
        meta.append(f"    <dc:date>{_x(spec.date)}</dc:date>")
    if spec.description:
        meta.append(f"    <dc:description>{_x(spec.description)}</dc:description>")
    meta.extend(f"    <dc:subject>{_x(subject)}</dc:subject>" for subject in spec.subjects)
    if spec.series:
        meta.append(f'    <meta property="belongs-to-collection" id="s1">{_x(spec.series)}</meta>')
        meta.append('    <meta refines="#s1" property="collection-type">series</meta>')
        if spec.series_index:
            meta.append(
                f'    <meta refines="#s1" property="group-position">{_x(spec.series_index)}</meta>'
            )
    meta.extend(_calibre_series(spec))
    if spec.cover is not None:
        meta.append('    <meta name="cover" content="cover-img"/>')
    meta.append('    <meta property="dcterms:modified">2020-01-01T00:00:00Z</meta>')
    return (
        _XML_DECL
        + '<package xmlns="http://www.idpf.org/2007/opf" version="3.0" unique-identifier="pub-id"'
        f' xml:lang="{_xa(spec.language)}" prefix="calibre: https://calibre-ebook.com">\n'
        '  <metadata xmlns:dc="http://purl.org/dc/elements/1.1/">\n'
        + "\n".join(meta)
        + "\n  </metadata>\n"
        + _manifest_and_spine(spec, _EPUB3, nav=True)
        + "</package>\n"
    )


def _calibre_series(spec: EpubSpec) -> list[str]:
    if not spec.series:
        return []
    lines = [f'    <meta name="calibre:series" content="{_xa(spec.series)}"/>']
    if spec.series_index:
        lines.append(f'    <meta name="calibre:series_index" content="{_xa(spec.series_index)}"/>')
    return lines


def _manifest_and_spine(spec: EpubSpec, layout: _Layout, *, nav: bool) -> str:
    xhtml = "application/xhtml+xml"
    items = []
    if nav:
        items.append(f'    <item id="nav" href="nav.xhtml" media-type="{xhtml}" properties="nav"/>')
    items.append('    <item id="ncx" href="toc.ncx" media-type="application/x-dtbncx+xml"/>')
    items.append(f'    <item id="css" href="{layout.css}" media-type="text/css"/>')
    if spec.cover is not None:
        props = ' properties="cover-image"' if nav else ""
        items.append(
            f'    <item id="cover-img" href="{layout.cover}" media-type="image/jpeg"{props}/>'
        )
    items.append(f'    <item id="titlepage" href="{layout.titlepage}" media-type="{xhtml}"/>')
    spine = ['    <itemref idref="titlepage"/>']
    for number in range(1, len(spec.chapters) + 1):
        href = _chapter_href(layout, number)
        items.append(f'    <item id="chapter{number}" href="{href}" media-type="{xhtml}"/>')
        spine.append(f'    <itemref idref="chapter{number}"/>')
    return (
        "  <manifest>\n"
        + "\n".join(items)
        + '\n  </manifest>\n  <spine toc="ncx">\n'
        + "\n".join(spine)
        + "\n  </spine>\n"
    )


# --- navigation --------------------------------------------------------------------------------


def _toc_entries(spec: EpubSpec, layout: _Layout) -> list[tuple[str, str]]:
    """(label, href) per chapter; a book without chapters points at its title page."""
    if not spec.chapters:
        return [(spec.title, layout.titlepage)]
    return [
        (title, _chapter_href(layout, number))
        for number, (title, _body) in enumerate(spec.chapters, start=1)
    ]


def _ncx(spec: EpubSpec, layout: _Layout, book_id: str) -> str:
    points = [
        f'    <navPoint id="np{n}" playOrder="{n}">\n'
        f"      <navLabel><text>{_x(label)}</text></navLabel>\n"
        f'      <content src="{_xa(href)}"/>\n'
        "    </navPoint>"
        for n, (label, href) in enumerate(_toc_entries(spec, layout), start=1)
    ]
    return (
        _XML_DECL + '<ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" version="2005-1"'
        f' xml:lang="{_xa(spec.language)}">\n'
        "  <head>\n"
        f'    <meta name="dtb:uid" content="{_xa(book_id)}"/>\n'
        '    <meta name="dtb:depth" content="1"/>\n'
        '    <meta name="dtb:totalPageCount" content="0"/>\n'
        '    <meta name="dtb:maxPageNumber" content="0"/>\n'
        "  </head>\n"
        f"  <docTitle><text>{_x(spec.title)}</text></docTitle>\n"
        "  <navMap>\n" + "\n".join(points) + "\n  </navMap>\n</ncx>\n"
    )


def _nav(spec: EpubSpec, layout: _Layout) -> str:
    links = "\n".join(
        f'        <li><a href="{_xa(href)}">{_x(label)}</a></li>'
        for label, href in _toc_entries(spec, layout)
    )
    return (
        _XML_DECL + "<!DOCTYPE html>\n"
        '<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org/2007/ops"'
        f' xml:lang="{_xa(spec.language)}" lang="{_xa(spec.language)}">\n'
        f"  <head><title>{_x(spec.title)}</title></head>\n"
        "  <body>\n"
        '    <nav epub:type="toc" id="toc">\n'
        "      <h1>Contents</h1>\n"
        f"      <ol>\n{links}\n      </ol>\n"
        "    </nav>\n"
        "  </body>\n"
        "</html>\n"
    )


# --- content documents -------------------------------------------------------------------------


def _html_open(spec: EpubSpec, layout: _Layout, title: str) -> str:
    doctype = "<!DOCTYPE html>\n" if layout is _EPUB3 else ""
    return (
        _XML_DECL + doctype + '<html xmlns="http://www.w3.org/1999/xhtml"'
        ' xmlns:epub="http://www.idpf.org/2007/ops"'
        f' xml:lang="{_xa(spec.language)}" lang="{_xa(spec.language)}">\n'
        f"<head>\n  <title>{_x(title)}</title>\n"
        f'  <link rel="stylesheet" type="text/css" href="{layout.css_from_text}"/>\n'
        "</head>\n"
    )


def _titlepage(spec: EpubSpec, layout: _Layout) -> str:
    parts = [_html_open(spec, layout, spec.title), '<body>\n<div class="titlepage">\n']
    if spec.cover is not None:
        parts.append(f'  <img class="cover" src="{layout.cover_from_text}" alt="Cover"/>\n')
    parts.append(f"  <h1>{_x(spec.title)}</h1>\n")
    if spec.subtitle:
        parts.append(f"  <h2>{_x(spec.subtitle)}</h2>\n")
    authors = ", ".join(c.name for c in spec.creators if c.role == "aut")
    if authors:
        parts.append(f"  <p>{_x(authors)}</p>\n")
    parts.append("</div>\n</body>\n</html>\n")
    return "".join(parts)


_CHAPTER_CLOSE = _fresh(b"</section>\n</body>\n</html>\n")
_CSS_PIECE = _fresh(_CSS)


def _chapter_pieces(spec: EpubSpec, layout: _Layout, title: str, body: str) -> list[_Piece]:
    section = ' epub:type="chapter"' if layout is _EPUB3 else ""
    head = _html_open(spec, layout, title) + f"<body>\n<section{section}>\n<h1>{_x(title)}</h1>\n"
    return [_fresh(head.encode()), _body_piece(body), _CHAPTER_CLOSE]


def _cover_pieces(cover: bytes) -> list[_Piece]:
    """Split a JPEG after its leading APPn/COM segments so the pooled body hits the cache."""
    end = _jpeg_header_end(cover)
    if end <= 2 or end >= len(cover):
        return [_fresh(cover)]
    return [_fresh(cover[:end]), _blob_piece(cover[end:])]


def _jpeg_header_end(jpeg: bytes) -> int:
    """Offset after the last COM segment among the segments that precede the frame data."""
    if jpeg[:2] != b"\xff\xd8":
        return 0
    pos, last_com_end = 2, 0
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        marker = jpeg[pos + 1]
        if not (marker == 0xFE or 0xE0 <= marker <= 0xEF):
            break
        (length,) = struct.unpack(">H", jpeg[pos + 2 : pos + 4])
        pos += 2 + length
        if marker == 0xFE:
            last_com_end = pos
    return last_com_end


# --- public API --------------------------------------------------------------------------------


def epub_bytes(spec: EpubSpec) -> bytes:
    """The whole EPUB file for `spec`; the same spec always gives the same bytes.

    In EPUB 2 style the subtitle is folded into dc:title as "Title: Subtitle", the
    way calibre stores it, since EPUB 2 has no subtitle element.
    """
    layout = _EPUB3 if spec.style == "epub3" else _EPUB2
    book_id = _book_uuid(spec)
    opf = _opf3(spec, book_id) if layout is _EPUB3 else _opf2(spec, book_id)
    p = layout.prefix
    members: list[tuple[str, list[_Piece] | bytes]] = [
        ("mimetype", b"application/epub+zip"),
        ("META-INF/container.xml", [_fresh(_CONTAINER.format(opf=f"{p}content.opf").encode())]),
        (f"{p}content.opf", [_fresh(opf.encode())]),
    ]
    if layout is _EPUB3:
        members.append((f"{p}nav.xhtml", [_fresh(_nav(spec, layout).encode())]))
    members.append((f"{p}toc.ncx", [_fresh(_ncx(spec, layout, book_id).encode())]))
    members.append((f"{p}{layout.css}", [_CSS_PIECE]))
    if spec.cover is not None:
        members.append((f"{p}{layout.cover}", _cover_pieces(spec.cover)))
    members.append((f"{p}{layout.titlepage}", [_fresh(_titlepage(spec, layout).encode())]))
    for number, (title, body) in enumerate(spec.chapters, start=1):
        members.append(
            (f"{p}{_chapter_href(layout, number)}", _chapter_pieces(spec, layout, title, body))
        )
    return _zip(members)


def write_epub(path: Path, spec: EpubSpec) -> None:
    """Write `epub_bytes(spec)` to `path`, creating parent folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(epub_bytes(spec))
