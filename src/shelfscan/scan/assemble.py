"""Resolve stage: parsed files become catalogue rows with entity ids.

All names of a chunk are resolved together through the single-flight cache, so
a chunk of 50 books costs at most one round trip per entity kind, and none once
the names are known.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from shelfscan import names
from shelfscan.catalogue.entities import EntityKey, EntityKind, EntityName, EntityResolver
from shelfscan.catalogue.known import KnownFile
from shelfscan.catalogue.pathcodec import display_path
from shelfscan.catalogue.writer import AudioRow, BookRow, ChapterRow, CoverRow, FileRow
from shelfscan.covers import StoredCover
from shelfscan.formats.records import AudioFacts, Subject
from shelfscan.scan.discovery import DiskFile
from shelfscan.scan.grouping import AUDIO_FORMATS, book_folder, book_path, file_stem
from shelfscan.scan.merge import MergedBook, merge_book
from shelfscan.scan.parse import ParseOutcome, SidecarData
from shelfscan.scan.pathhints import metadata_from_path


@dataclass(frozen=True, slots=True)
class Parsed:
    """One file's journey so far: where it is, what the catalogue had, what it said."""

    disk: DiskFile
    known: KnownFile | None
    outcome: ParseOutcome


@dataclass(frozen=True, slots=True)
class BookParts:
    """The files that make one book, in book order, and the sidecars of its folder."""

    files: list[Parsed]
    sidecars: SidecarData | None


def _cover_row(cover: StoredCover | None) -> CoverRow | None:
    if cover is None:
        return None
    return CoverRow(
        cover.sha256, cover.mime, cover.width, cover.height, cover.size, cover.pack, cover.offset
    )


def _audio_row(facts: AudioFacts | None) -> AudioRow | None:
    if facts is None:
        return None
    return AudioRow(
        facts.album, facts.track_number, facts.track_total, facts.disc_number, facts.disc_total,
        facts.composer, facts.codec, facts.bitrate, facts.sample_rate, facts.channels,
    )  # fmt: skip


class Assembler:
    def __init__(self, resolver: EntityResolver, library_id: int) -> None:
        self._resolver = resolver
        self._library_id = library_id
        # A library repeats a few thousand names across all its books: normalise each once.
        self._keys: dict[tuple[str, str], EntityKey] = {}

    def _key(self, kind: EntityKind, name: str) -> EntityKey:
        found = self._keys.get((kind, name))
        if found is None:
            key = names.person_key(name) if kind == "persons" else names.name_key(name)
            found = self._keys[(kind, name)] = EntityKey(kind, self._library_id, key)
        return found

    async def build(self, books: Sequence[BookParts]) -> list[BookRow]:
        # Audio folders that gave several books (`Author/Book One.mp3`, `Author/Book Two.mp3`):
        # the folder names none of them, each file is its own book. A unit is never split
        # across chunks, so all books of a folder are here.
        folders = [
            (b.files[0].disk.root_id, book_folder(b.files[0].disk.path))
            if b.files[0].disk.format in AUDIO_FORMATS
            else None
            for b in books
        ]
        audio_books = Counter(f for f in folders if f is not None)
        merged = [
            self._merge(b, f is not None and audio_books[f] > 1)
            for b, f in zip(books, folders, strict=True)
        ]
        wanted: dict[EntityKey, EntityName] = {}

        def person(name: str, sort_name: str | None = None) -> None:
            key = self._key("persons", name)
            if key not in wanted:
                display = names.person_display(name)
                wanted[key] = EntityName(display, sort_name or names.person_sort_name(display))

        def entity(key: EntityKey, name: str) -> None:
            if key not in wanted:
                wanted[key] = EntityName(names.collapse(name))

        for parts, m in zip(books, merged, strict=True):
            for c in m.contributors:
                person(c.name, c.sort_name)
            for n in m.narrators or ():
                person(n)
            for p in parts.files:
                if m.narrators is None and p.outcome.metadata:
                    for n in p.outcome.metadata.narrators:
                        person(n)
            for s in m.series:
                entity(self._key("series", s.name), s.name)
            for g in m.genres:
                entity(self._key("genres", g), g)
            for t in m.tags:
                entity(self._key("tags", t), t)
            if m.publisher:
                entity(self._key("publishers", m.publisher), m.publisher)
            for subject in m.subjects:  # comics (issue 10)
                entity(self._subject_key(subject), subject.name)
        ids = await self._resolver.resolve(wanted)
        return [self._row(parts, m, ids) for parts, m in zip(books, merged, strict=True)]

    def _subject_key(self, subject: Subject) -> EntityKey:
        key = self._key("subjects", subject.name)
        return EntityKey("subjects", key.library_id, f"{subject.kind.value}:{key.key}")

    def _merge(self, parts: BookParts, shared_folder: bool = False) -> MergedBook:
        # Names that are not UTF-8 (old Samba shares) are read in their legacy code page here;
        # the file row keeps the exact bytes.
        first = parts.files[0].disk
        lead = book_path(display_path(first.path), first.format, len(parts.files), shared_folder)
        embedded = [p.outcome.metadata for p in parts.files if p.outcome.metadata is not None]
        return merge_book(
            embedded, parts.sidecars, lambda: metadata_from_path(lead), file_stem(lead)
        )

    def _row(self, parts: BookParts, m: MergedBook, ids: dict[EntityKey, int]) -> BookRow:
        files = []
        for order, p in enumerate(parts.files):
            meta, outcome = p.outcome.metadata, p.outcome
            assert meta is not None
            narrators = m.narrators if m.narrators is not None else meta.narrators
            identifiers = [(i.type, i.value) for i in meta.identifiers]
            if order == 0:
                identifiers.extend((i.type, i.value) for i in m.identifiers)
            files.append(
                FileRow(
                    file_id=p.known.id if p.known else None,
                    previous_book_id=p.known.book_id if p.known else None,
                    root_id=p.disk.root_id,
                    path=p.disk.path,
                    size=outcome.size,
                    mtime_ns=outcome.mtime_ns,
                    inode=outcome.inode,
                    device=p.disk.device,
                    fingerprint=outcome.fingerprint,
                    format=meta.format,
                    language=meta.language,
                    duration_s=meta.duration_s,
                    page_count=meta.page_count,
                    sort_order=order,
                    cover=_cover_row(outcome.cover),
                    identifiers=tuple(dict.fromkeys(identifiers)),
                    narrator_ids=tuple(ids[self._key("persons", n)] for n in narrators),
                    chapters=tuple(
                        ChapterRow(c.title, c.level, c.href, c.start_s) for c in meta.chapters
                    ),
                    audio=_audio_row(meta.audio),
                    warning=meta.warning,
                )
            )
        book_ids = Counter(p.known.book_id for p in parts.files if p.known)
        sidecar_cover = parts.sidecars.cover if parts.sidecars else None
        cover = _cover_row(sidecar_cover) or next((f.cover for f in files if f.cover), None)
        sources = dict(m.sources)
        if cover is not None:
            sources["cover"] = "sidecar" if sidecar_cover else "embedded"
        return BookRow(
            book_id=book_ids.most_common(1)[0][0] if book_ids else None,
            library_id=self._library_id,
            title=m.title,
            sort_title=m.sort_title or names.sort_title(m.title, m.language),
            subtitle=m.subtitle,
            description=m.description,
            publisher_id=ids[self._key("publishers", m.publisher)] if m.publisher else None,
            release_date=m.release_date,
            language=m.language,
            authors=tuple((ids[self._key("persons", c.name)], c.role) for c in m.contributors),
            series=tuple((ids[self._key("series", s.name)], s.number) for s in m.series),
            genre_ids=tuple(ids[self._key("genres", g)] for g in m.genres),
            tag_ids=tuple(ids[self._key("tags", t)] for t in m.tags),
            cover=cover,
            field_sources=sources,
            files=tuple(files),
            # comics (issue 10)
            age_rating=m.age_rating,
            reading_direction=m.reading_direction.value if m.reading_direction else None,
            web_link=m.web_link,
            volume=m.volume,
            volume_count=m.volume_count,
            issue_count=m.issue_count,
            subjects=tuple((ids[self._subject_key(s)], s.number) for s in m.subjects),
        )

    def error_row(
        self, disk: DiskFile, reason: str, outcome: ParseOutcome | None = None
    ) -> BookRow:
        """A file we could not read still gets a book, named after the file, carrying the reason."""
        return self._error_book(
            FileRow(
                file_id=None,
                root_id=disk.root_id,
                path=disk.path,
                size=outcome.size if outcome and outcome.size else disk.size,
                mtime_ns=outcome.mtime_ns if outcome and outcome.mtime_ns else disk.mtime_ns,
                inode=outcome.inode if outcome and outcome.inode else disk.inode,
                device=disk.device,
                format=disk.format,
                status="error",
                scan_error=reason,
            )
        )

    def error_row_for(self, f: FileRow, reason: str) -> BookRow:
        return self._error_book(
            FileRow(
                None,
                f.root_id,
                f.path,
                f.size,
                f.mtime_ns,
                f.inode,
                f.format,
                status="error",
                scan_error=reason,
            )
        )

    def _error_book(self, f: FileRow) -> BookRow:
        title = title_from_path(f.path)
        return BookRow(
            book_id=None,
            library_id=self._library_id,
            title=title,
            sort_title=names.sort_title(title),
            status="error",
            field_sources={"title": "path"},
            files=(f,),
        )


def title_from_path(path: str) -> str:
    """The last-resort title: the file name without its extension, in display text."""
    return file_stem(display_path(path))
