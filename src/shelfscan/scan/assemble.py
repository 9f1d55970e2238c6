"""Resolve stage: parsed metadata becomes catalogue rows with entity ids.

All names of a chunk are resolved together through the single-flight cache, so
a chunk of 50 books costs at most one round trip per entity kind, and none once
the names are known.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass

from shelfscan import names
from shelfscan.catalogue.entities import EntityKey, EntityKind, EntityName, EntityResolver
from shelfscan.catalogue.known import KnownFile
from shelfscan.catalogue.writer import BookRow, ChapterRow, CoverRow, FileRow
from shelfscan.formats.records import Metadata
from shelfscan.scan.discovery import DiskFile
from shelfscan.scan.parse import ParseOutcome


@dataclass(frozen=True, slots=True)
class Parsed:
    """One file's journey so far: where it is, what the catalogue had, what it said."""

    disk: DiskFile
    known: KnownFile | None
    outcome: ParseOutcome


class Assembler:
    def __init__(self, resolver: EntityResolver, library_id: int) -> None:
        self._resolver = resolver
        self._library_id = library_id

    def _key(self, kind: EntityKind, name: str) -> EntityKey:
        return EntityKey(kind, self._library_id, names.name_key(name))

    async def build(self, items: Sequence[Parsed]) -> list[BookRow]:
        wanted: dict[EntityKey, EntityName] = {}
        for item in items:
            meta = item.outcome.metadata
            if meta is None:
                continue
            for c in meta.contributors:
                wanted.setdefault(
                    self._key("persons", c.name),
                    EntityName(
                        names.collapse(c.name), c.sort_name or names.person_sort_name(c.name)
                    ),
                )
            for n in meta.narrators:
                wanted.setdefault(
                    self._key("persons", n),
                    EntityName(names.collapse(n), names.person_sort_name(n)),
                )
            for s in meta.series:
                wanted.setdefault(self._key("series", s.name), EntityName(names.collapse(s.name)))
            for g in meta.genres:
                wanted.setdefault(self._key("genres", g), EntityName(names.collapse(g)))
            for t in meta.tags:
                wanted.setdefault(self._key("tags", t), EntityName(names.collapse(t)))
            if meta.publisher:
                wanted.setdefault(
                    self._key("publishers", meta.publisher),
                    EntityName(names.collapse(meta.publisher)),
                )
        ids = await self._resolver.resolve(wanted)
        return [
            self._row(item, item.outcome.metadata, ids) for item in items if item.outcome.metadata
        ]

    def _row(self, item: Parsed, meta: Metadata, ids: dict[EntityKey, int]) -> BookRow:
        disk, outcome = item.disk, item.outcome
        title = meta.title or title_from_path(disk.path)
        cover = outcome.cover
        file_row = FileRow(
            file_id=item.known.id if item.known else None,
            root_id=disk.root_id,
            path=disk.path,
            size=outcome.size,
            mtime_ns=outcome.mtime_ns,
            inode=outcome.inode,
            format=meta.format,
            language=meta.language,
            duration_s=meta.duration_s,
            page_count=meta.page_count,
            cover=CoverRow(cover.sha256, cover.mime, cover.width, cover.height, cover.size)
            if cover
            else None,
            identifiers=tuple((i.type, i.value) for i in meta.identifiers),
            narrator_ids=tuple(ids[self._key("persons", n)] for n in meta.narrators),
            chapters=tuple(ChapterRow(c.title, c.level, c.href, c.start_s) for c in meta.chapters),
        )
        return BookRow(
            book_id=item.known.book_id if item.known else None,
            library_id=self._library_id,
            title=title,
            sort_title=names.sort_title(title, meta.language),
            subtitle=meta.subtitle,
            description=meta.description,
            publisher_id=ids[self._key("publishers", meta.publisher)] if meta.publisher else None,
            release_date=meta.release_date,
            language=meta.language,
            authors=tuple((ids[self._key("persons", c.name)], c.role) for c in meta.contributors),
            series=tuple((ids[self._key("series", s.name)], s.number) for s in meta.series),
            genre_ids=tuple(ids[self._key("genres", g)] for g in meta.genres),
            tag_ids=tuple(ids[self._key("tags", t)] for t in meta.tags),
            files=(file_row,),
        )

    def error_row(
        self, disk: DiskFile, reason: str, outcome: ParseOutcome | None = None
    ) -> BookRow:
        """A file we could not read still gets a book, named after the file, carrying the reason."""
        title = title_from_path(disk.path)
        return BookRow(
            book_id=None,
            library_id=self._library_id,
            title=title,
            sort_title=names.sort_title(title),
            status="error",
            files=(
                FileRow(
                    file_id=None,
                    root_id=disk.root_id,
                    path=disk.path,
                    size=outcome.size if outcome and outcome.size else disk.size,
                    mtime_ns=outcome.mtime_ns if outcome and outcome.mtime_ns else disk.mtime_ns,
                    inode=outcome.inode if outcome and outcome.inode else disk.inode,
                    format=disk.format,
                    status="error",
                    scan_error=reason,
                ),
            ),
        )


def title_from_path(path: str) -> str:
    base = posixpath.basename(path)
    lowered = base.lower()
    for suffix in (".kepub.epub",):
        if lowered.endswith(suffix):
            return base[: -len(suffix)] or base
    stem, _ = posixpath.splitext(base)
    return stem or base
