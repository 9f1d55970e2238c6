"""FictionBook 2 (.fb2, .fb2.zip) metadata reader.

FB2 is one XML document holding the text, the metadata (<description>) and
base64 images. Many real files are not well-formed (undeclared HTML entities in
the body, bad bytes), so when the whole document does not parse, the
<description> block — the only part read for metadata — is cut out and parsed
alone, together with the cover's <binary>. Hostile XML (entity declarations,
bombs) is refused either way. Reads are capped; a file larger than the cap is
read as far as the cap, which covers the description in any real book.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import zipfile
import zlib

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
from shelfscan.formats.text import clean, normalise_date, series_number
from shelfscan.formats.xmlsafe import UnsafeXMLError, first_child, local_name, parse_xml

__all__ = ["MAX_COVER_BYTES", "MAX_FB2_BYTES", "parse_fb2"]

MAX_FB2_BYTES = 64 * 1024 * 1024
MAX_COVER_BYTES = 32 * 1024 * 1024

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_DESCRIPTION_END_RE = re.compile(rb"</(?:[\w.-]+:)?description\s*>")
_ROOT_START_RE = re.compile(rb"<([A-Za-z_][\w.-]*(?::[\w.-]+)?)[\s/>]")
_BINARY_RE = re.compile(
    rb"<(?:[\w.-]+:)?binary\b([^>]*)>([^<]*)</(?:[\w.-]+:)?binary\s*>",
)
_ID_ATTR_RE = re.compile(rb"""\bid\s*=\s*(?:"([^"]*)"|'([^']*)')""")
_TYPE_ATTR_RE = re.compile(rb"""\bcontent-type\s*=\s*(?:"([^"]*)"|'([^']*)')""")


def parse_fb2(path: str | os.PathLike[str]) -> Metadata:
    """Read an FB2 (or zipped FB2) book's metadata; raise ParseError or FileNotFoundError."""
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            head = handle.read(4)
            handle.seek(0)
            if head.startswith(_ZIP_MAGIC):
                data, truncated = _from_zip(name)
            else:
                data = handle.read(MAX_FB2_BYTES + 1)
                truncated = len(data) > MAX_FB2_BYTES
                data = data[:MAX_FB2_BYTES]
    except (FileNotFoundError, ParseError):
        raise
    except OSError as exc:
        raise ParseError(f"cannot read FB2: {type(exc).__name__}: {exc.strerror or exc}") from None
    try:
        return _parse(data, truncated)
    except ParseError:
        raise
    except (ValueError, TypeError, UnicodeError, etree.LxmlError, RecursionError) as exc:
        message = " ".join(str(exc).split())[:300]
        raise ParseError(f"not a readable FB2: {type(exc).__name__}: {message}") from None


def _from_zip(name: str) -> tuple[bytes, bool]:
    """The .fb2 member of a zip, read as far as the cap allows."""
    try:
        with zipfile.ZipFile(name) as zf:
            candidates = [
                info
                for info in zf.infolist()
                if not info.is_dir()
                and not info.filename.startswith("/")
                and ".." not in info.filename.replace("\\", "/").split("/")
            ]
            chosen = next(
                (i for i in candidates if i.filename.lower().endswith(".fb2")),
                candidates[0] if len(candidates) == 1 else None,
            )
            if chosen is None:
                raise ParseError("zip holds no .fb2 document")
            with zf.open(chosen) as member:
                data = member.read(MAX_FB2_BYTES + 1)
    except zipfile.BadZipFile as exc:
        raise ParseError(f"not a readable FB2 zip: {' '.join(str(exc).split())[:300]}") from None
    except (
        zipfile.LargeZipFile,
        zlib.error,
        EOFError,
        NotImplementedError,
        RuntimeError,
        ValueError,
    ) as exc:
        message = " ".join(str(exc).split())[:300]
        raise ParseError(f"not a readable FB2 zip: {type(exc).__name__}: {message}") from None
    return data[:MAX_FB2_BYTES], len(data) > MAX_FB2_BYTES


def _children(parent: etree._Element | None, local: str) -> list[etree._Element]:
    if parent is None:
        return []
    return [el for el in parent if local_name(el.tag) == local]


def _text(el: etree._Element | None) -> str | None:
    return clean("".join(el.itertext())) if el is not None else None


def _load(data: bytes, truncated: bool) -> tuple[etree._Element, bool]:
    """(root, complete): the whole document, or only its description when that is all that parses."""
    if not truncated:
        try:
            return parse_xml(data), True
        except UnsafeXMLError:
            raise
        except ParseError:
            pass  # sloppy body: fall back to the description alone
    end = _DESCRIPTION_END_RE.search(data)
    if end is None:
        if truncated:
            raise ParseError(f"FB2 has no <description> in its first {MAX_FB2_BYTES} bytes")
        return parse_xml(data), True  # raises the real reason
    root = _ROOT_START_RE.search(data, _prolog_end(data))
    if root is None:
        raise ParseError("FB2 has no root element")
    return parse_xml(data[: end.end()] + b"</" + root.group(1) + b">"), False


def _prolog_end(data: bytes) -> int:
    """Skip the XML declaration, comments, PIs and DOCTYPE before the root start tag."""
    pos = 0
    while True:
        lt = data.find(b"<", pos)
        if lt < 0 or not data.startswith((b"<?", b"<!"), lt):
            return len(data) if lt < 0 else lt
        if data.startswith(b"<?", lt):
            pos = _after(data, b"?>", lt)
        elif data.startswith(b"<!--", lt):
            pos = _after(data, b"-->", lt)
        else:
            # A DOCTYPE with an internal subset ends at "]>", otherwise at the first ">".
            bracket, close = data.find(b"[", lt), data.find(b">", lt)
            pos = _after(data, b"]>", bracket) if 0 <= bracket < close else _after(data, b">", lt)


def _after(data: bytes, token: bytes, start: int) -> int:
    found = data.find(token, start)
    return len(data) if found < 0 else found + len(token)


def _parse(data: bytes, truncated: bool) -> Metadata:
    if not data.strip():
        raise ParseError("not a readable FB2: empty file")
    root, complete = _load(data, truncated)
    if local_name(root.tag) != "FictionBook":
        raise ParseError(f"not an FB2 document: root element <{local_name(root.tag)}>")
    description = first_child(root, "description")
    title_info = first_child(description, "title-info")
    publish_info = first_child(description, "publish-info")
    document_info = first_child(description, "document-info")
    if title_info is None:
        raise ParseError("FB2 has no <description>/<title-info>")

    contributors = [
        person
        for el in _children(title_info, "author")
        if (person := _person(el, "author")) is not None
    ]
    contributors += [
        person
        for el in _children(title_info, "translator")
        if (person := _person(el, "translator")) is not None
    ]
    genres = tuple(dict.fromkeys(g for g in map(_text, _children(title_info, "genre")) if g))
    keywords = _text(first_child(title_info, "keywords")) or ""
    tags = tuple(dict.fromkeys(t for t in (clean(k) for k in keywords.split(",")) if t))

    date_el = first_child(title_info, "date")
    release_date = None
    if date_el is not None:
        release_date = normalise_date(date_el.get("value")) or normalise_date(_text(date_el))
    publish_year = normalise_date(_text(first_child(publish_info, "year")))
    release_date = release_date or publish_year

    identifiers: list[Identifier] = []
    isbn = _text(first_child(publish_info, "isbn"))
    if isbn:
        identifiers.extend(classify_identifier(isbn, "isbn"))

    extra: dict[str, str] = {}
    doc_id = _text(first_child(document_info, "id"))
    if doc_id:
        extra["fb2_id"] = doc_id
    if publish_year:
        extra["publish_year"] = publish_year
    src_lang = _text(first_child(title_info, "src-lang"))
    if src_lang:
        extra["original_language"] = src_lang

    return Metadata(
        format="fb2",
        title=_text(first_child(title_info, "book-title")),
        contributors=tuple(contributors),
        series=_series(title_info),
        genres=genres,
        tags=tags,
        description=_annotation(first_child(title_info, "annotation")),
        publisher=_text(first_child(publish_info, "publisher")),
        release_date=release_date,
        language=_text(first_child(title_info, "lang")),
        identifiers=tuple(dict.fromkeys(identifiers)),
        cover=_cover(root, data, title_info, complete),
        extra=extra,
    )


def _person(el: etree._Element, role: str) -> Contributor | None:
    """ "First Middle Last" for display, "Last, First Middle" for sorting; else the nickname."""
    first = _text(first_child(el, "first-name"))
    middle = _text(first_child(el, "middle-name"))
    last = _text(first_child(el, "last-name"))
    given = " ".join(p for p in (first, middle) if p)
    name = " ".join(p for p in (given, last) if p)
    if not name:
        nickname = _text(first_child(el, "nickname"))
        return Contributor(name=nickname, role=role) if nickname else None
    sort_name = (f"{last}, {given}" if given else last) if last else None
    return Contributor(name=name, role=role, sort_name=sort_name)


def _series(title_info: etree._Element) -> tuple[SeriesEntry, ...]:
    found: dict[str, SeriesEntry] = {}
    for el in title_info.iter("{*}sequence", "sequence"):
        name = clean(el.get("name"))
        if name and name.casefold() not in found:
            found[name.casefold()] = SeriesEntry(name=name, number=series_number(el.get("number")))
    return tuple(found.values())


def _annotation(el: etree._Element | None) -> str | None:
    """Annotation paragraphs (<p>, <subtitle>, <empty-line/>, ...) as plain text lines."""
    if el is None:
        return None
    lines: list[str] = []
    if el.text and el.text.strip():
        lines.append(el.text)
    for child in el:
        if isinstance(child.tag, str):
            lines.append("".join(child.itertext()))
        if child.tail and child.tail.strip():
            lines.append(child.tail)
    cleaned = [c for c in (clean(line) for line in lines) if c]
    return clean("\n".join(cleaned), multiline=True)


def _cover(
    root: etree._Element, data: bytes, title_info: etree._Element, complete: bool
) -> CoverImage | None:
    """The coverpage image's <binary>: from the tree, or found by id in the raw bytes."""
    coverpage = first_child(title_info, "coverpage")
    if coverpage is None:
        return None
    href = None
    for image in coverpage.iter("{*}image", "image"):
        href = next((v for k, v in image.attrib.items() if local_name(k) == "href"), None)
        if href:
            break
    if not href or not href.startswith("#") or len(href) < 2:
        return None
    wanted = href[1:]
    declared: str | None = None
    payload: bytes | str | None = None
    if complete:
        for binary in _children(root, "binary"):
            if binary.get("id") == wanted:
                declared, payload = binary.get("content-type"), binary.text or ""
                break
    else:
        for match in _BINARY_RE.finditer(data):
            ids = _ID_ATTR_RE.search(match.group(1))
            if (
                ids is not None
                and (ids.group(1) or ids.group(2) or b"").decode("utf-8", "replace") == wanted
            ):
                kinds = _TYPE_ATTR_RE.search(match.group(1))
                if kinds is not None:
                    declared = (kinds.group(1) or kinds.group(2) or b"").decode("ascii", "replace")
                payload = match.group(2)
                break
    if payload is None or len(payload) > MAX_COVER_BYTES * 4 // 3 + 4096:
        return None
    try:
        image = base64.b64decode(payload, validate=False)
    except (binascii.Error, ValueError):
        return None
    if not image:
        return None
    sniffed = sniff_image(image)
    if sniffed is not None:
        return CoverImage(data=image, mime=sniffed[0])
    if declared and declared.strip().lower().startswith("image/"):
        return CoverImage(data=image, mime=declared.strip().lower())
    return None
