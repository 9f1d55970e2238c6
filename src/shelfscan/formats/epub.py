"""EPUB metadata reader: the fast path of the scanner.

A library scan touches thousands of books, so this reads only what it needs
(container, OPF, optionally the table of contents, and the cover bytes) and
treats every archive as hostile: all reads are size-capped, unsafe member
names are never used, and any failure surfaces as one `ParseError`.
"""

from __future__ import annotations

import dataclasses
import html
import io
import os
import posixpath
import re
import struct
import zipfile
import zlib
from collections.abc import Callable, Iterable
from decimal import Decimal
from types import MappingProxyType
from typing import Any, BinaryIO, Protocol
from urllib.parse import unquote

from lxml import etree

from shelfscan.formats import ziplite
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
from shelfscan.formats.text import clean, normalise_date, series_number, strip_html
from shelfscan.formats.xmlsafe import UnsafeXMLError, first_child, local_name, parse_xml

__all__ = ["MAX_CHAPTERS", "MAX_COVER_BYTES", "MAX_XML_BYTES", "metadata_from_opf", "parse_epub"]

MAX_XML_BYTES = 16 * 1024 * 1024
MAX_COVER_BYTES = 20 * 1024 * 1024
MAX_CHAPTERS = 5000

_OPF_NS = "{http://www.idpf.org/2007/opf}"
_OPS_TYPE = "{http://www.idpf.org/2007/ops}type"
_DC_NS_PREFIX = "{http://purl.org/dc/elements/1."
_OEBPS_MEDIA_TYPE = "application/oebps-package+xml"
_NCX_MEDIA_TYPE = "application/x-dtbncx+xml"
_URL_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_ENTITY_TEXT_RE = re.compile(r"^&[A-Za-z][A-Za-z0-9]*;$")

# MARC relator codes (and the words some writers put instead) to the catalogue's role words.
# A code not listed here becomes "contributor": the person stays, a raw code never leaks.
# Production credits (markup, proofreading, typography, ...) become "producer", which the
# merge drops like calibre's own credit: nobody looks a book up by its proofreader.
_ROLE_WORDS = MappingProxyType(
    {
        "aut": "author",
        "cre": "author",
        "author": "author",
        "edt": "editor",
        "edc": "editor",
        "red": "editor",
        "editor": "editor",
        "trl": "translator",
        "translator": "translator",
        "ill": "illustrator",
        "illustrator": "illustrator",
        "nrt": "narrator",
        "narrator": "narrator",
        "art": "artist",
        "artist": "artist",
        "aui": "introduction",
        "aft": "afterword",
        "wpr": "preface",
        "ann": "annotator",
        "cmm": "commentator",
        "com": "compiler",
        "adp": "adapter",
        "abr": "abridger",
        "clr": "colorist",
        "cov": "cover_artist",
        "pht": "photographer",
        "ctg": "cartographer",
        "lyr": "lyricist",
        "cmp": "composer",
        "prf": "performer",
        "ctb": "contributor",
        "pbl": "publisher",
        "bkp": "producer",
        "pro": "producer",
        "prd": "producer",
        "mrk": "producer",
        "pfr": "producer",
        "tyd": "producer",
        "tyg": "producer",
        "bkd": "producer",
        "mdc": "producer",
        "blw": "producer",
        "trc": "producer",
        "dtc": "producer",
    }
)
# ONIX code list 5 values that name identifier schemes we normalise.
_ONIX_ID_TYPES = MappingProxyType(
    {"02": "isbn", "15": "isbn", "06": "doi", "22": "urn", "03": "gtin-13"}
)
# dc:date events that describe publication, best first; other events are ignored.
_DATE_EVENT_RANK = MappingProxyType(
    {
        "": 0,
        "publication": 0,
        "original-publication": 1,
        "ops-publication": 2,
        "epub-publication": 2,
    }
)

# (property, value, scheme) refinements keyed by the id they refine.
_Refinements = dict[str, list[tuple[str, str, str | None]]]


def parse_epub(
    path: str | os.PathLike[str], *, with_chapters: bool = True, data: bytes | None = None
) -> Metadata:
    """Read an EPUB's metadata; raise ParseError (or FileNotFoundError) when it cannot.

    `data`, when given, is the whole file already read (the parse stage reads small
    files once for their fingerprint): the book is then parsed from memory.
    """
    name = os.fspath(path)
    fmt = "kepub" if name.lower().endswith(".kepub.epub") else "epub"
    try:
        if data is not None:
            return _parse_stream(io.BytesIO(data), len(data), fmt, with_chapters)
        with open(name, "rb") as fh:
            return _parse_stream(fh, os.fstat(fh.fileno()).st_size, fmt, with_chapters)
    except (FileNotFoundError, ParseError):
        raise
    except ziplite.BadZip as exc:
        raise ParseError(f"not a readable EPUB (bad zip): {_one_line(exc)}") from None
    except zipfile.BadZipFile as exc:
        raise ParseError(f"not a readable EPUB (bad zip): {_one_line(exc)}") from None
    except (
        zipfile.LargeZipFile,
        KeyError,
        OSError,
        zlib.error,
        EOFError,
        UnicodeError,
        ValueError,
        NotImplementedError,
        RuntimeError,
        struct.error,
        IndexError,
        OverflowError,
    ) as exc:
        raise ParseError(f"not a readable EPUB: {type(exc).__name__}: {_one_line(exc)}") from None


def _parse_stream(fh: BinaryIO, size: int, fmt: str, with_chapters: bool) -> Metadata:
    try:
        lite = ziplite.ZipLite(fh, size)
        archive = _Archive(((m.filename, m) for m in lite.members), lite.read)
        return _parse(archive, fmt, with_chapters)
    except ziplite.Unsupported:
        pass  # zip64, exotic compression: the stdlib reader handles those
    except ziplite.NoDirectory as exc:
        return _salvage(fh, size, fmt, with_chapters, exc)
    fh.seek(0)
    with zipfile.ZipFile(fh) as zf:
        return _parse(
            _Archive(((i.filename, i) for i in zf.infolist()), _zipfile_reader(zf)),
            fmt,
            with_chapters,
        )


def _salvage(
    fh: BinaryIO, size: int, fmt: str, with_chapters: bool, damage: ziplite.NoDirectory
) -> Metadata:
    """A truncated EPUB whose package document survived the cut is still a book.

    Its members are found from their local headers; when the container and the
    OPF are among them the book is read as usual and the damage becomes the
    file's warning. Otherwise the EPUB is unreadable, for the original reason.
    """
    members = ziplite.salvage(fh, size)
    lite = ziplite.ZipLite.over(fh, members)
    archive = _Archive(((m.filename, m) for m in members), lite.read)
    try:
        metadata = _parse(archive, fmt, with_chapters)
    except (ParseError, ziplite.BadZip, ziplite.Unsupported):
        raise ParseError(f"not a readable EPUB (bad zip): {_one_line(damage)}") from None
    warning = (
        f"damaged zip ({_one_line(damage)}): read from the {len(members)} whole members "
        "before the damage"
    )
    return dataclasses.replace(metadata, warning=warning)


def metadata_from_opf(package_xml: bytes, *, fmt: str = "opf") -> Metadata:
    """Read a bare OPF package document (calibre's metadata.opf) with the EPUB rules.

    Shares `_read_metadata` so a sidecar and the EPUB beside it agree field by
    field. No chapters and no cover: a sidecar OPF points at files, it holds none.
    calibre's rating (0-10, as written) lands in `extra["rating"]`.
    """
    if len(package_xml) > MAX_XML_BYTES:
        raise ParseError(f"OPF is too large ({len(package_xml)} bytes, limit {MAX_XML_BYTES})")
    package = parse_xml(package_xml)
    metadata = (
        package if local_name(package.tag) == "metadata" else first_child(package, "metadata")
    )
    if metadata is None:
        metadata = next(package.iter("{*}metadata", "metadata"), None)
    if metadata is None:
        raise ParseError("not an OPF package document: no <metadata> element")
    fields = _read_metadata(metadata)
    extra: dict[str, str] = {}
    for el in metadata:
        if (
            local_name(el.tag) == "meta"
            and (el.get("name") or "").strip().lower() == "calibre:rating"
        ):
            rating = clean(el.get("content"))
            if rating:
                extra["rating"] = rating
            break
    return fields.to_metadata(fmt, extra)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


class _Member(Protocol):
    @property
    def file_size(self) -> int: ...


def _zipfile_reader(zf: zipfile.ZipFile) -> Callable[[Any, int], bytes]:
    def read(info: zipfile.ZipInfo, cap: int) -> bytes:
        with zf.open(info) as handle:
            return handle.read(cap + 1)

    return read


class _Archive:
    """Safe member look-up and size-capped reads over an open zip (ziplite or zipfile)."""

    def __init__(
        self, entries: Iterable[tuple[str, Any]], reader: Callable[[Any, int], bytes]
    ) -> None:
        self._reader = reader
        self.members: dict[str, Any] = {}
        for filename, info in entries:
            key = filename.replace("\\", "/")
            if key.endswith("/") or not _is_safe_member(key):
                continue
            self.members.setdefault(key, info)
        self._folded: dict[str, Any] | None = None

    def find(self, member: str) -> Any:
        """Exact look-up first; many EPUBs made on Windows get the case of hrefs wrong."""
        info = self.members.get(member)
        if info is not None:
            return info
        if self._folded is None:
            self._folded = {}
            for key, value in self.members.items():
                self._folded.setdefault(key.casefold(), value)
        return self._folded.get(member.casefold())

    def read(self, info: _Member, cap: int, what: str) -> bytes:
        """Read at most `cap` bytes, trusting neither the declared size nor the stream."""
        if info.file_size > cap:
            raise ParseError(f"{what} is too large ({info.file_size} bytes, limit {cap})")
        data = self._reader(info, cap)
        if len(data) > cap:
            raise ParseError(f"{what} inflates beyond {cap} bytes")
        return data


def _is_safe_member(name: str) -> bool:
    return bool(name) and not name.startswith("/") and ".." not in name.split("/")


def _resolve(base_dir: str, href: str | None) -> tuple[str, str] | None:
    """Resolve a URL-quoted relative href to (zip path, fragment); None if it leaves the zip."""
    if not href:
        return None
    href = href.strip()
    target, _, fragment = href.partition("#")
    target = target.partition("?")[0]
    if not target or _URL_SCHEME_RE.match(target):
        return None
    target = unquote(target)
    joined = target.lstrip("/") if target.startswith("/") else posixpath.join(base_dir, target)
    normal = posixpath.normpath(joined)
    if normal in (".", "..") or normal.startswith(("../", "/")):
        return None
    return normal, fragment


def _text(el: etree._Element) -> str:
    """Element text including children; unresolved HTML entities become their characters."""
    if len(el) == 0:
        return el.text or ""
    parts = []
    for piece in el.itertext():
        if _ENTITY_TEXT_RE.match(piece):
            piece = html.unescape(piece)
        parts.append(piece)
    return "".join(parts)


def _attr(el: etree._Element, name: str) -> str | None:
    """EPUB 2 attributes are opf-namespaced, but many writers omit the namespace."""
    value: str | None = el.get(_OPF_NS + name)
    if value is None:
        value = el.get(name)
    return value


def _small_int(value: str) -> int | None:
    text = value.strip()
    if not text.isdecimal() or len(text) > 9:
        return None
    return int(text)


def _parse(arc: _Archive, fmt: str, with_chapters: bool) -> Metadata:
    container = arc.find("META-INF/container.xml")
    if container is None:
        raise ParseError("not an EPUB: META-INF/container.xml is missing")
    opf_path = _rootfile(parse_xml(arc.read(container, MAX_XML_BYTES, "container.xml")))
    opf_info = arc.find(opf_path) or arc.find(unquote(opf_path))
    if opf_info is None:
        raise ParseError(f"EPUB package document {opf_path!r} is missing")
    package = parse_xml(arc.read(opf_info, MAX_XML_BYTES, "package document"))
    opf_dir = posixpath.dirname(opf_path)

    metadata = first_child(package, "metadata")
    if metadata is None:
        metadata = next(package.iter("{*}metadata", "metadata"), None)
    manifest = first_child(package, "manifest")
    spine = first_child(package, "spine")
    items = _manifest_items(manifest)

    fields = _read_metadata(metadata) if metadata is not None else _MetaFields()
    chapters: tuple[Chapter, ...] = ()
    if with_chapters:
        chapters = _chapters(arc, items, spine, opf_dir)
    extra: dict[str, str] = {}
    version = clean(package.get("version"))
    if version:
        extra["epub_version"] = version
    return fields.to_metadata(fmt, extra, chapters, _cover(arc, items, fields.cover_ref, opf_dir))


def _rootfile(container: etree._Element) -> str:
    first: str | None = None
    for el in container.iter("{*}rootfile", "rootfile"):
        full_path = (el.get("full-path") or "").strip().lstrip("/")
        if not full_path:
            continue
        if (el.get("media-type") or "").strip().lower() == _OEBPS_MEDIA_TYPE:
            first = full_path
            break
        if first is None:
            first = full_path
    if first is None:
        raise ParseError("container.xml names no package document")
    normal = posixpath.normpath(first)
    if not _is_safe_member(normal):
        raise ParseError("container.xml names a package document outside the archive")
    return normal


# (id, href, media-type, properties)
_Item = tuple[str, str, str, frozenset[str]]


def _manifest_items(manifest: etree._Element | None) -> list[_Item]:
    items: list[_Item] = []
    if manifest is None:
        return items
    for el in manifest:
        if local_name(el.tag) != "item":
            continue
        href = (el.get("href") or "").strip()
        if not href:
            continue
        props = frozenset((el.get("properties") or "").lower().split())
        media = (el.get("media-type") or "").strip().lower()
        items.append(((el.get("id") or "").strip(), href, media, props))
    return items


class _MetaFields:
    """Intermediate result of the metadata pass (plain attributes, no dataclass overhead)."""

    __slots__ = (
        "contributors",
        "cover_ref",
        "description",
        "genres",
        "identifiers",
        "language",
        "modified",
        "publisher",
        "release_date",
        "series",
        "sort_title",
        "subtitle",
        "title",
    )

    def __init__(self) -> None:
        self.title: str | None = None
        self.subtitle: str | None = None
        self.contributors: tuple[Contributor, ...] = ()
        self.series: tuple[SeriesEntry, ...] = ()
        self.genres: tuple[str, ...] = ()
        self.description: str | None = None
        self.publisher: str | None = None
        self.release_date: str | None = None
        self.language: str | None = None
        self.identifiers: tuple[Identifier, ...] = ()
        self.modified: str | None = None
        self.cover_ref: str | None = None
        self.sort_title: str | None = None

    def to_metadata(
        self,
        fmt: str,
        extra: dict[str, str],
        chapters: tuple[Chapter, ...] = (),
        cover: CoverImage | None = None,
    ) -> Metadata:
        if self.modified:
            extra["modified"] = self.modified
        return Metadata(
            format=fmt,
            title=self.title,
            subtitle=self.subtitle,
            contributors=self.contributors,
            narrators=tuple(c.name for c in self.contributors if c.role == "narrator"),
            series=self.series,
            genres=self.genres,
            description=self.description,
            publisher=self.publisher,
            release_date=self.release_date,
            language=self.language,
            identifiers=self.identifiers,
            chapters=chapters,
            cover=cover,
            extra=extra,
            sort_title=self.sort_title,
        )


def _read_metadata(metadata: etree._Element) -> _MetaFields:
    titles: list[etree._Element] = []
    people: list[tuple[bool, etree._Element]] = []
    subjects: list[str] = []
    descriptions: list[etree._Element] = []
    publishers: list[str] = []
    dates: list[tuple[str, str]] = []
    languages: list[str] = []
    identifier_els: list[etree._Element] = []
    refinements: _Refinements = {}
    # (name, calibre series index, EPUB 3 collection id) in document order
    series_raw: list[tuple[str, str | None, str | None]] = []
    calibre_index: str | None = None
    calibre_series_at: int | None = None
    title_sort: str | None = None
    out = _MetaFields()

    for el in metadata.iter():
        tag = el.tag
        if not isinstance(tag, str) or el is metadata:
            continue
        if tag.startswith(_DC_NS_PREFIX):
            local = tag.rpartition("}")[2]
            if local == "title":
                titles.append(el)
            elif local == "creator":
                people.append((True, el))
            elif local == "contributor":
                people.append((False, el))
            elif local == "subject":
                subjects.append(_text(el))
            elif local == "description":
                descriptions.append(el)
            elif local == "publisher":
                publishers.append(_text(el))
            elif local == "date":
                dates.append(((_attr(el, "event") or "").strip().lower(), _text(el)))
            elif local == "language":
                languages.append(_text(el))
            elif local == "identifier":
                identifier_els.append(el)
            continue
        if tag.rpartition("}")[2] != "meta":
            continue
        prop = el.get("property")
        if prop is not None:
            prop = prop.strip().lower()
            refines = el.get("refines")
            if refines:
                refinements.setdefault(refines.strip().lstrip("#"), []).append(
                    (prop, _text(el).strip(), el.get("scheme"))
                )
            elif prop == "belongs-to-collection":
                collection_id = (el.get("id") or "").strip()
                if collection_id:  # without an id nothing can declare it a series
                    series_raw.append((_text(el), None, collection_id))
            elif prop == "dcterms:modified":
                out.modified = clean(_text(el))
            elif prop == "calibre:series":
                calibre_series_at = len(series_raw)
                series_raw.append((_text(el), None, None))
            elif prop == "calibre:series_index":
                calibre_index = _text(el)
            elif prop == "calibre:title_sort":
                title_sort = _text(el)
            continue
        name = (el.get("name") or "").strip().lower()
        if name == "calibre:series":
            calibre_series_at = len(series_raw)
            series_raw.append((el.get("content") or "", None, None))
        elif name == "calibre:series_index":
            calibre_index = el.get("content")
        elif name == "calibre:title_sort":
            title_sort = el.get("content")
        elif name == "cover" and out.cover_ref is None:
            out.cover_ref = (el.get("content") or "").strip() or None

    if calibre_series_at is not None and calibre_index is not None:
        raw_name = series_raw[calibre_series_at][0]
        series_raw[calibre_series_at] = (raw_name, calibre_index, None)

    out.title, out.subtitle, title_file_as = _titles(titles, refinements)
    # calibre's sort title is the user's choice; the title's file-as is the publisher's.
    out.sort_title = clean(title_sort) or title_file_as if out.title else None
    out.contributors = _contributors(people, refinements)
    out.series = _series(series_raw, refinements)
    out.genres = _unique(clean(s) for s in _split_subjects(subjects))
    for el in descriptions:
        out.description = clean(strip_html(_text(el)), multiline=True)
        if out.description:
            break
    out.publisher = next((p for p in (clean(p) for p in publishers) if p), None)
    out.release_date = _release_date(dates)
    out.language = next((lang for lang in (clean(v) for v in languages) if lang), None)
    out.identifiers = _identifiers(identifier_els, refinements)
    return out


def _refined(refinements: _Refinements, el: etree._Element, prop: str) -> list[str]:
    el_id = el.get("id")
    if not el_id:
        return []
    return [value for p, value, _ in refinements.get(el_id.strip(), ()) if p == prop and value]


def _titles(
    titles: list[etree._Element], refinements: _Refinements
) -> tuple[str | None, str | None, str | None]:
    """(title, subtitle, the title's file-as sort form)."""
    main: etree._Element | None = None
    subtitle: str | None = None
    untyped: etree._Element | None = None
    first: etree._Element | None = None
    values: dict[etree._Element, str] = {}
    for el in titles:
        value = clean(_text(el))
        if not value:
            continue
        values[el] = value
        kinds = {kind.lower() for kind in _refined(refinements, el, "title-type")}
        if first is None:
            first = el
        if "main" in kinds and main is None:
            main = el
        elif "subtitle" in kinds and subtitle is None:
            subtitle = value
        elif not kinds and untyped is None:
            untyped = el
    chosen = main if main is not None else untyped if untyped is not None else first
    if chosen is None:
        return None, subtitle, None
    file_as = _attr(chosen, "file-as") or next(iter(_refined(refinements, chosen, "file-as")), None)
    return values[chosen], subtitle, clean(file_as)


def _split_subjects(subjects: list[str]) -> list[str]:
    """A lone dc:subject "Fantasy, Adventure" is two genres, as calibre reads it.

    Only a lone subject is split (a book with several subjects has already listed
    them one by one), and never a subject heading with "--" (LCSH: "Carter, John
    (Fictitious character)--Fiction"), whose commas belong to names.
    """
    if len(subjects) != 1 or "--" in subjects[0]:
        return subjects
    return re.split(r"[,;]", subjects[0])


def _contributors(
    people: list[tuple[bool, etree._Element]], refinements: _Refinements
) -> tuple[Contributor, ...]:
    ranked: list[tuple[tuple[int, int], Contributor]] = []
    for position, (is_creator, el) in enumerate(people):
        name = clean(_text(el))
        if not name:
            continue
        raw_codes = (_attr(el, "role") or "", *_refined(refinements, el, "role"))
        codes = [c.strip().lower() for c in raw_codes if c.strip()]
        if "aut" in codes:
            code = "aut"
        elif codes:
            code = codes[0]
        else:
            code = "aut" if is_creator else "ctb"
        file_as = _attr(el, "file-as") or next(iter(_refined(refinements, el, "file-as")), None)
        seq_values = _refined(refinements, el, "display-seq")
        seq = _small_int(seq_values[0]) if seq_values else None
        # Entries with a display-seq come first in that order, then the rest as written.
        key = (0, seq) if seq is not None else (1, position)
        contributor = Contributor(
            name=name, role=_ROLE_WORDS.get(code, "contributor"), sort_name=clean(file_as)
        )
        ranked.append((key, contributor))
    ranked.sort(key=lambda pair: pair[0])
    return tuple(contributor for _, contributor in ranked)


def _series(
    series_raw: list[tuple[str, str | None, str | None]], refinements: _Refinements
) -> tuple[SeriesEntry, ...]:
    found: list[SeriesEntry] = []
    for raw_name, raw_index, collection_id in series_raw:
        name = clean(raw_name)
        if not name:
            continue
        number: Decimal | None
        if collection_id is not None:
            refs = refinements.get(collection_id, [])
            kinds = {value.lower() for prop, value, _ in refs if prop == "collection-type"}
            if "series" not in kinds:
                continue  # a "set" or untyped collection is a reading list, not a series
            number = series_number(next((v for p, v, _ in refs if p == "group-position"), None))
        else:
            number = series_number(raw_index)
        found.append(SeriesEntry(name=name, number=number))
    return _dedupe_series(found)


def _dedupe_series(found: Iterable[SeriesEntry]) -> tuple[SeriesEntry, ...]:
    kept: dict[str, int] = {}
    result: list[SeriesEntry] = []
    for entry in found:
        key = entry.name.casefold()
        at = kept.get(key)
        if at is None:
            kept[key] = len(result)
            result.append(entry)
        elif result[at].number is None and entry.number is not None:
            result[at] = entry
    return tuple(result)


def _release_date(dates: list[tuple[str, str]]) -> str | None:
    best: tuple[int, str] | None = None
    for event, raw in dates:
        rank = _DATE_EVENT_RANK.get(event)
        if rank is None:
            continue
        value = normalise_date(raw)
        if value is not None and (best is None or rank < best[0]):
            best = (rank, value)
    return best[1] if best else None


def _identifiers(
    elements: list[etree._Element], refinements: _Refinements
) -> tuple[Identifier, ...]:
    seen: set[Identifier] = set()
    result: list[Identifier] = []
    for el in elements:
        value = clean(_text(el))
        if not value:
            continue
        scheme = _attr(el, "scheme")
        if not scheme and el.get("id"):
            for prop, code, code_scheme in refinements.get((el.get("id") or "").strip(), ()):
                if prop != "identifier-type" or not code:
                    continue
                if code.isdigit() or (code_scheme or "").lower().startswith("onix:"):
                    scheme = _ONIX_ID_TYPES.get(code.zfill(2))
                else:
                    scheme = code
                break
        for identifier in classify_identifier(value, scheme):
            if identifier not in seen:
                seen.add(identifier)
                result.append(identifier)
    return tuple(result)


def _unique(values: Iterable[str | None]) -> tuple[str, ...]:
    seen: set[str] = set()
    result: list[str] = []
    for value in values:
        if value and value not in seen:
            seen.add(value)
            result.append(value)
    return tuple(result)


def _cover(
    arc: _Archive, items: list[_Item], cover_ref: str | None, opf_dir: str
) -> CoverImage | None:
    for href, media in _cover_candidates(items, cover_ref):
        resolved = _resolve(opf_dir, href)
        if resolved is None:
            continue
        info = arc.find(resolved[0])
        if info is None or info.file_size > MAX_COVER_BYTES:
            continue
        try:
            data = arc.read(info, MAX_COVER_BYTES, "cover image")
        except (ParseError, zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError):
            continue  # a bad cover costs the cover, not the book
        except RuntimeError:  # encrypted member
            continue
        sniffed = sniff_image(data)
        if sniffed is not None:
            return CoverImage(data=data, mime=sniffed[0])
        if media.startswith("image/"):
            return CoverImage(data=data, mime=media)
    return None


def _cover_candidates(items: list[_Item], cover_ref: str | None) -> list[tuple[str, str]]:
    """Cover hrefs in order of trust: EPUB 3 property, EPUB 2 meta, then a name guess."""
    candidates: list[tuple[str, str]] = []
    for _, href, media, props in items:
        if "cover-image" in props:
            candidates.append((href, media))
            break
    if cover_ref:
        by_id = next((item for item in items if item[0] == cover_ref), None)
        if by_id is None:
            by_id = next((item for item in items if item[1] == cover_ref), None)
        if by_id is not None:
            if by_id[2].startswith("image/"):
                candidates.append((by_id[1], by_id[2]))
        elif "/" in cover_ref or "." in cover_ref:
            candidates.append((cover_ref, ""))
    for item_id, href, media, _ in items:
        if media.startswith("image/") and ("cover" in item_id.lower() or "cover" in href.lower()):
            candidates.append((href, media))
            break
    return candidates


def _chapters(
    arc: _Archive, items: list[_Item], spine: etree._Element | None, opf_dir: str
) -> tuple[Chapter, ...]:
    nav = next((item for item in items if "nav" in item[3]), None)
    if nav is not None:
        found = _from_nav(arc, nav[1], opf_dir)
        if found:
            return found
    ncx_href: str | None = None
    toc_id = (spine.get("toc") or "").strip() if spine is not None else ""
    if toc_id:
        ncx_href = next((item[1] for item in items if item[0] == toc_id), None)
    if ncx_href is None:
        ncx_href = next((item[1] for item in items if item[2] == _NCX_MEDIA_TYPE), None)
    if ncx_href is not None:
        return _from_ncx(arc, ncx_href, opf_dir)
    return ()


def _load_toc(arc: _Archive, href: str, opf_dir: str) -> tuple[etree._Element, str] | None:
    """Parse a nav/NCX document; sloppy XML loses the chapters, hostile XML fails the book."""
    resolved = _resolve(opf_dir, href)
    if resolved is None:
        return None
    info = arc.find(resolved[0])
    if info is None:
        return None
    data = arc.read(info, MAX_XML_BYTES, "table of contents")
    try:
        root = parse_xml(data)
    except UnsafeXMLError:
        raise
    except ParseError:
        return None
    return root, posixpath.dirname(resolved[0])


def _chapter_href(base_dir: str, href: str | None) -> str | None:
    resolved = _resolve(base_dir, href)
    if resolved is None:
        return None
    path, fragment = resolved
    href = f"{path}#{fragment}" if fragment else path
    # Usually printable already; %-escapes can smuggle in controls (even NUL) that must go.
    return href if href.isprintable() else clean(href)


def _from_nav(arc: _Archive, href: str, opf_dir: str) -> tuple[Chapter, ...]:
    loaded = _load_toc(arc, href, opf_dir)
    if loaded is None:
        return ()
    root, base_dir = loaded
    toc_nav: etree._Element | None = None
    for nav in root.iter("{*}nav"):
        kinds = (nav.get(_OPS_TYPE) or "").split()
        if "toc" in kinds or (nav.get("role") or "").strip() == "doc-toc":
            toc_nav = nav
            break
    if toc_nav is None:
        return ()
    top = next(toc_nav.iter("{*}ol"), None)
    out: list[Chapter] = []
    if top is not None:
        _walk_nav(top, 0, base_dir, out)
    return tuple(out)


def _walk_nav(ol: etree._Element, level: int, base_dir: str, out: list[Chapter]) -> None:
    for li in ol:
        if local_name(li.tag) != "li":
            continue
        if len(out) >= MAX_CHAPTERS:
            return
        label: etree._Element | None = None
        sub: etree._Element | None = None
        for child in li:
            local = local_name(child.tag)
            if local in ("a", "span") and label is None:
                label = child
            elif local == "ol" and sub is None:
                sub = child
        if label is not None:
            title = clean(_text(label)) or ""
            href = _chapter_href(base_dir, label.get("href"))
            if title or href:
                out.append(Chapter(title=title, level=level, href=href))
        if sub is not None:
            _walk_nav(sub, level + 1, base_dir, out)


def _from_ncx(arc: _Archive, href: str, opf_dir: str) -> tuple[Chapter, ...]:
    loaded = _load_toc(arc, href, opf_dir)
    if loaded is None:
        return ()
    root, base_dir = loaded
    nav_map = next(root.iter("{*}navMap", "navMap"), None)
    out: list[Chapter] = []
    if nav_map is not None:
        _walk_ncx(nav_map, 0, base_dir, out)
    return tuple(out)


def _walk_ncx(parent: etree._Element, level: int, base_dir: str, out: list[Chapter]) -> None:
    for point in parent:
        if local_name(point.tag) != "navPoint":
            continue
        if len(out) >= MAX_CHAPTERS:
            return
        title = ""
        src: str | None = None
        for child in point:
            local = local_name(child.tag)
            if local == "navLabel" and not title:
                text_el = first_child(child, "text")
                title = clean(_text(text_el if text_el is not None else child)) or ""
            elif local == "content" and src is None:
                src = child.get("src")
        href = _chapter_href(base_dir, src)
        if title or href:
            out.append(Chapter(title=title, level=level, href=href))
        _walk_ncx(point, level + 1, base_dir, out)
