"""The reference pipeline: the least a scanner of EPUB metadata into PostgreSQL must do.

shelfscan is compared with it (issue 11) to say how far it is from what this
hardware and this stack allow, which a ratio to the naive baseline cannot: the
naive baseline shares shelfscan's parser, so it gets faster whenever shelfscan does.

* one `os.scandir` walk (with `stat`) in a thread;
* a `ProcessPoolExecutor(2)` started before the clock, fed chunks of 50 files;
* per file only `META-INF/container.xml` and the OPF, read with `zipfile` + lxml:
  title, creators (name, role, file-as), language, identifiers, subjects, series,
  date, publisher, description;
* records COPYed into a staging table and merged once per 500 books: entities
  upserted from the stage (one INSERT … SELECT each), then books, then links, all
  inserted from the stage, in one transaction;
* rescan: the same walk + stat, one bulk SELECT of the known files, compared in Python.

The "full" variant also stores each cover (sha256, appended to one pack file per
chunk, fdatasync'd before its rows commit; a cover already in the catalogue is not
written again) and the chapters (NCX or nav titles, in order), so the report shows
what those two cost on their own. Its own tables live in the `ref` schema of the
case's database; nothing here imports shelfscan.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import posixpath
import time
import uuid
import zipfile
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import asyncpg
from lxml import etree

CHUNK = 50
MERGE_EVERY = 500
PROCESSES = 2

OPF_NS = "http://www.idpf.org/2007/opf"
DC_NS = "http://purl.org/dc/elements/1.1/"
CONTAINER_NS = "urn:oasis:names:tc:opendocument:xmlns:container"
NCX_NS = "http://www.daisy.org/z3986/2005/ncx/"
XHTML_NS = "http://www.w3.org/1999/xhtml"
EPUB_NS = "http://www.idpf.org/2007/ops"
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)

SCHEMA = """
CREATE SCHEMA IF NOT EXISTS ref;
CREATE TABLE IF NOT EXISTS ref.persons (id bigserial PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS ref.subjects (id bigserial PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS ref.publishers (id bigserial PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS ref.series (id bigserial PRIMARY KEY, name text UNIQUE NOT NULL);
CREATE TABLE IF NOT EXISTS ref.covers (
    id bigserial PRIMARY KEY, sha256 text UNIQUE NOT NULL, size bigint NOT NULL,
    pack text NOT NULL, pack_offset bigint NOT NULL);
CREATE TABLE IF NOT EXISTS ref.books (
    id bigserial PRIMARY KEY, path text UNIQUE NOT NULL, size bigint NOT NULL,
    mtime_ns bigint NOT NULL, title text, language text, date text, description text,
    publisher_id bigint REFERENCES ref.publishers, series_id bigint REFERENCES ref.series,
    series_index text, cover_id bigint REFERENCES ref.covers, error text);
CREATE TABLE IF NOT EXISTS ref.book_authors (
    book_id bigint REFERENCES ref.books, person_id bigint REFERENCES ref.persons,
    role text, file_as text, position int, PRIMARY KEY (book_id, position));
CREATE TABLE IF NOT EXISTS ref.book_subjects (
    book_id bigint REFERENCES ref.books, subject_id bigint REFERENCES ref.subjects,
    PRIMARY KEY (book_id, subject_id));
CREATE TABLE IF NOT EXISTS ref.identifiers (
    book_id bigint REFERENCES ref.books, scheme text, value text NOT NULL);
CREATE TABLE IF NOT EXISTS ref.chapters (
    book_id bigint REFERENCES ref.books, position int, title text,
    PRIMARY KEY (book_id, position));
"""

STAGE = """
CREATE TEMP TABLE IF NOT EXISTS ref_stage (
    path text, size bigint, mtime_ns bigint, title text, language text, date text,
    publisher text, description text, series text, series_index text,
    creators text[], roles text[], file_as text[], subjects text[],
    id_schemes text[], id_values text[], cover_sha text, cover_size bigint,
    cover_pack text, cover_offset bigint, chapters text[], error text)
"""
STAGE_COLUMNS = (
    "path", "size", "mtime_ns", "title", "language", "date", "publisher", "description",
    "series", "series_index", "creators", "roles", "file_as", "subjects", "id_schemes",
    "id_values", "cover_sha", "cover_size", "cover_pack", "cover_offset", "chapters", "error",
)  # fmt: skip

MERGE = [
    "INSERT INTO ref.persons (name) SELECT DISTINCT unnest(creators) FROM ref_stage "
    "ON CONFLICT DO NOTHING",
    "INSERT INTO ref.subjects (name) SELECT DISTINCT unnest(subjects) FROM ref_stage "
    "ON CONFLICT DO NOTHING",
    "INSERT INTO ref.publishers (name) SELECT DISTINCT publisher FROM ref_stage "
    "WHERE publisher IS NOT NULL ON CONFLICT DO NOTHING",
    "INSERT INTO ref.series (name) SELECT DISTINCT series FROM ref_stage "
    "WHERE series IS NOT NULL ON CONFLICT DO NOTHING",
    "INSERT INTO ref.covers (sha256, size, pack, pack_offset) "
    "SELECT DISTINCT ON (cover_sha) cover_sha, cover_size, cover_pack, cover_offset "
    "FROM ref_stage WHERE cover_sha IS NOT NULL AND cover_pack IS NOT NULL "
    "ON CONFLICT DO NOTHING",
    """INSERT INTO ref.books (path, size, mtime_ns, title, language, date, description,
           publisher_id, series_id, series_index, cover_id, error)
       SELECT s.path, s.size, s.mtime_ns, s.title, s.language, s.date, s.description,
              p.id, r.id, s.series_index, c.id, s.error
       FROM ref_stage s
       LEFT JOIN ref.publishers p ON p.name = s.publisher
       LEFT JOIN ref.series r ON r.name = s.series
       LEFT JOIN ref.covers c ON c.sha256 = s.cover_sha""",
    """INSERT INTO ref.book_authors (book_id, person_id, role, file_as, position)
       SELECT b.id, p.id, a.role, a.file_as, a.pos
       FROM ref_stage s JOIN ref.books b ON b.path = s.path,
            unnest(s.creators, s.roles, s.file_as) WITH ORDINALITY AS a(name, role, file_as, pos)
       JOIN ref.persons p ON p.name = a.name
       ON CONFLICT DO NOTHING""",
    """INSERT INTO ref.book_subjects (book_id, subject_id)
       SELECT DISTINCT b.id, g.id FROM ref_stage s JOIN ref.books b ON b.path = s.path,
            unnest(s.subjects) AS t(name) JOIN ref.subjects g ON g.name = t.name
       ON CONFLICT DO NOTHING""",
    """INSERT INTO ref.identifiers (book_id, scheme, value)
       SELECT b.id, i.scheme, i.value FROM ref_stage s JOIN ref.books b ON b.path = s.path,
            unnest(s.id_schemes, s.id_values) AS i(scheme, value)""",
    """INSERT INTO ref.chapters (book_id, position, title)
       SELECT b.id, c.pos, c.title FROM ref_stage s JOIN ref.books b ON b.path = s.path,
            unnest(s.chapters) WITH ORDINALITY AS c(title, pos)""",
    "TRUNCATE ref_stage",
]

_TABLES = ("books", "persons", "subjects", "book_authors", "book_subjects", "identifiers",
           "covers", "chapters")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Entry:
    path: str
    size: int
    mtime_ns: int


def walk(root: str) -> list[Entry]:
    """One os.scandir walk with stat: every regular file under `root`."""
    found: list[Entry] = []
    stack = [root]
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        st = entry.stat(follow_symlinks=False)
                        found.append(Entry(entry.path, st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    return found


# --- the parse worker -----------------------------------------------------------------------------


def _text(el: Any) -> str | None:
    text = "".join(el.itertext()).strip() if el is not None else ""
    return text or None


def _opf_fields(opf: Any) -> dict[str, Any]:
    md = opf.find(f"{{{OPF_NS}}}metadata")
    if md is None:
        md = opf
    refines: dict[str, dict[str, str]] = {}
    metas: dict[str, str] = {}
    collection: str | None = None
    position: str | None = None
    for meta in md.iter(f"{{{OPF_NS}}}meta"):
        name, prop = meta.get("name"), meta.get("property")
        if name:
            metas[name] = meta.get("content") or ""
        elif prop:
            target = (meta.get("refines") or "").lstrip("#")
            value = (meta.text or "").strip()
            if target:
                refines.setdefault(target, {})[prop] = value
            if prop == "belongs-to-collection":
                collection = value
                position = refines.get(meta.get("id") or "", {}).get("group-position")
    creators, roles, file_as = [], [], []
    for el in md.iter(f"{{{DC_NS}}}creator"):
        name = _text(el)
        if not name:
            continue
        extra = refines.get(el.get("id") or "", {})
        creators.append(name)
        roles.append(el.get(f"{{{OPF_NS}}}role") or extra.get("role") or "aut")
        file_as.append(el.get(f"{{{OPF_NS}}}file-as") or extra.get("file-as") or "")
    schemes, values = [], []
    for el in md.iter(f"{{{DC_NS}}}identifier"):
        value = _text(el)
        if value:
            schemes.append(el.get(f"{{{OPF_NS}}}scheme") or "")
            values.append(value)
    for meta in md.iter(f"{{{OPF_NS}}}meta"):  # a group-position refining the collection
        if meta.get("property") == "group-position" and collection and position is None:
            position = (meta.text or "").strip()
    subjects = list(
        dict.fromkeys(s for s in (_text(e) for e in md.iter(f"{{{DC_NS}}}subject")) if s)
    )
    return {
        "title": _text(md.find(f"{{{DC_NS}}}title")),
        "language": _text(md.find(f"{{{DC_NS}}}language")),
        "date": _text(md.find(f"{{{DC_NS}}}date")),
        "publisher": _text(md.find(f"{{{DC_NS}}}publisher")),
        "description": _text(md.find(f"{{{DC_NS}}}description")),
        "series": metas.get("calibre:series") or collection,
        "series_index": metas.get("calibre:series_index") or position,
        "creators": creators,
        "roles": roles,
        "file_as": file_as,
        "subjects": subjects,
        "id_schemes": schemes,
        "id_values": values,
        "cover_id": metas.get("cover"),
    }


def _manifest(opf: Any) -> dict[str, tuple[str, str, str]]:
    """item id -> (href, media type, properties)."""
    out = {}
    for item in opf.iter(f"{{{OPF_NS}}}item"):
        out[item.get("id") or ""] = (
            item.get("href") or "",
            item.get("media-type") or "",
            item.get("properties") or "",
        )
    return out


def _chapters(zf: zipfile.ZipFile, base: str, opf: Any, manifest: dict[str, Any]) -> list[str]:
    """Chapter titles from the NCX (EPUB 2) or the nav document (EPUB 3), in order."""
    nav = next((h for h, _, props in manifest.values() if "nav" in props.split()), None)
    if nav:
        tree = etree.fromstring(zf.read(posixpath.join(base, nav)), _PARSER)
        for el in tree.iter(f"{{{XHTML_NS}}}nav"):
            if el.get(f"{{{EPUB_NS}}}type") == "toc":
                return [t for t in (_text(a) for a in el.iter(f"{{{XHTML_NS}}}a")) if t]
    spine = opf.find(f"{{{OPF_NS}}}spine")
    toc = spine.get("toc") if spine is not None else None
    if toc and toc in manifest:
        tree = etree.fromstring(zf.read(posixpath.join(base, manifest[toc][0])), _PARSER)
        return [
            t
            for t in (
                _text(p.find(f"{{{NCX_NS}}}navLabel")) for p in tree.iter(f"{{{NCX_NS}}}navPoint")
            )
            if t
        ]
    return []


class _Pack:
    """One append-only pack per chunk, as shelfscan does (creating a file per cover costs more)."""

    def __init__(self, folder: str, known: frozenset[str]) -> None:
        self.folder, self.known = folder, known
        self.handle: Any = None
        self.name = ""
        self.seen: dict[str, tuple[str | None, int | None]] = {}

    def store(self, data: bytes) -> tuple[str, str | None, int | None]:
        sha = hashlib.sha256(data).hexdigest()
        if sha in self.known:
            return sha, None, None
        if sha in self.seen:
            return (sha, *self.seen[sha])
        if self.handle is None:
            os.makedirs(self.folder, exist_ok=True)
            self.name = f"{uuid.uuid4().hex}.pack"
            self.handle = open(os.path.join(self.folder, self.name), "ab")  # noqa: SIM115
        offset = self.handle.tell()
        self.handle.write(data)
        self.seen[sha] = (self.name, offset)
        return sha, self.name, offset

    def close(self) -> None:
        if self.handle is not None:
            self.handle.flush()
            os.fdatasync(self.handle.fileno())
            self.handle.close()


def parse_chunk(entries: list[Entry], full: bool, covers: str) -> list[tuple[Any, ...]]:
    """Stage rows for a chunk of files (runs in a pool worker)."""
    pack = _Pack(covers, frozenset()) if full else None
    rows = []
    for e in entries:
        rec: dict[str, Any] = {"path": e.path, "size": e.size, "mtime_ns": e.mtime_ns}
        try:
            with zipfile.ZipFile(e.path) as zf:
                container = etree.fromstring(zf.read("META-INF/container.xml"), _PARSER)
                rootfile = container.find(f".//{{{CONTAINER_NS}}}rootfile")
                opf_path = rootfile.get("full-path") if rootfile is not None else None
                if not opf_path:
                    raise ValueError("no rootfile")
                opf = etree.fromstring(zf.read(opf_path), _PARSER)
                rec.update(_opf_fields(opf))
                if pack is not None:
                    base = posixpath.dirname(opf_path)
                    manifest = _manifest(opf)
                    cover = manifest.get(rec.pop("cover_id") or "") or next(
                        (m for m in manifest.values() if "cover-image" in m[2].split()), None
                    )
                    if cover is not None:
                        data = zf.read(posixpath.join(base, cover[0]))
                        rec["cover_sha"], rec["cover_pack"], rec["cover_offset"] = pack.store(data)
                        rec["cover_size"] = len(data)
                    rec["chapters"] = _chapters(zf, base, opf, manifest)
        except Exception as exc:  # a bad file is a row with its error, not a failed scan
            rec = {
                "path": e.path,
                "size": e.size,
                "mtime_ns": e.mtime_ns,
                "error": type(exc).__name__,
            }
        rec.pop("cover_id", None)
        rows.append(tuple(rec.get(c) for c in STAGE_COLUMNS))
    if pack is not None:
        pack.close()
    return rows


def _noop() -> int:
    return os.getpid()


# --- the driver -----------------------------------------------------------------------------------


def start_pool() -> ProcessPoolExecutor:
    """Started and warmed before the clock, as a long-running scanner keeps its pool."""
    pool = ProcessPoolExecutor(PROCESSES)
    for future in [pool.submit(_noop) for _ in range(PROCESSES * 2)]:
        future.result()
    return pool


def _chunks(items: list[Entry], size: int) -> Iterator[list[Entry]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


async def prepare(url: str) -> None:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        await conn.execute(SCHEMA)
    finally:
        await conn.close()


async def first_scan(
    url: str, root: str, pool: ProcessPoolExecutor, *, full: bool, covers: str
) -> dict[str, int]:
    """Walk, parse in the pool (2 chunks in flight per process), COPY, merge every 500."""
    loop = asyncio.get_running_loop()
    entries = await asyncio.to_thread(walk, root)
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        await conn.execute(STAGE)
        staged = books = 0
        pending = [
            loop.run_in_executor(pool, parse_chunk, chunk, full, covers)
            for chunk in _chunks(entries, CHUNK)
        ]
        for future in pending:
            rows = await future
            await conn.copy_records_to_table("ref_stage", records=rows, columns=STAGE_COLUMNS)
            staged += len(rows)
            if staged >= MERGE_EVERY:
                books += await _merge(conn, staged)
                staged = 0
        if staged:
            books += await _merge(conn, staged)
    finally:
        await conn.close()
    return {"files_seen": len(entries), "books_added": books}


async def _merge(conn: asyncpg.Connection, staged: int) -> int:
    async with conn.transaction():
        for statement in MERGE:
            await conn.execute(statement)
    return staged


async def rescan(url: str, root: str) -> dict[str, int]:
    """Walk + stat, one bulk SELECT of the known files, compared in Python."""
    entries = await asyncio.to_thread(walk, root)
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        known = {
            r[0]: (r[1], r[2])
            for r in await conn.fetch("SELECT path, size, mtime_ns FROM ref.books")
        }
    finally:
        await conn.close()
    new = changed = 0
    for e in entries:
        seen = known.pop(e.path, None)
        if seen is None:
            new += 1
        elif seen != (e.size, e.mtime_ns):
            changed += 1
    return {
        "files_seen": len(entries),
        "new": new,
        "changed": changed,
        "missing": len(known),
        "books_added": 0,
        "books_updated": changed,
    }


async def row_counts(url: str) -> dict[str, int]:
    conn: asyncpg.Connection = await asyncpg.connect(url)
    try:
        if await conn.fetchval("SELECT to_regclass('ref.books')") is None:
            return {}
        return {t: int(await conn.fetchval(f"SELECT count(*) FROM ref.{t}")) for t in _TABLES}
    finally:
        await conn.close()


def timed(coro: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    result = asyncio.run(coro)
    return time.perf_counter() - started, result
