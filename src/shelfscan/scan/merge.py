"""Merge what a book's sources say, field by field: sidecar > embedded > path.

Each field remembers the source it came from (`books.field_sources`). A value a
user set by hand (source `manual`) is never replaced: the writer keeps it. The
lower sources are recomputed from scratch on every scan, so removing a sidecar
lets the embedded value come back.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shelfscan.formats.records import (
    Contributor,
    Identifier,
    Metadata,
    ReadingDirection,
    SeriesEntry,
    Subject,
    SubjectKind,
)
from shelfscan.scan.parse import SidecarData


@dataclass(frozen=True, slots=True)
class MergedBook:
    title: str
    subtitle: str | None
    contributors: tuple[Contributor, ...]
    series: tuple[SeriesEntry, ...]
    genres: tuple[str, ...]
    tags: tuple[str, ...]
    description: str | None
    publisher: str | None
    release_date: str | None
    language: str | None
    narrators: tuple[str, ...] | None  # None: each file keeps its own narrators
    identifiers: tuple[Identifier, ...]
    sources: dict[str, str] = field(default_factory=dict)
    # books (issue 10): the sort title the title's own source states, else None (computed)
    sort_title: str | None = None
    # comics
    age_rating: str | None = None
    reading_direction: ReadingDirection | None = None
    web_link: str | None = None
    volume: int | None = None
    volume_count: int | None = None
    issue_count: int | None = None
    subjects: tuple[Subject, ...] = ()


def merge_book(
    embedded: Sequence[Metadata],
    sidecar: SidecarData | None,
    path_hint: Callable[[], Metadata],
    fallback_title: str,
) -> MergedBook:
    """`embedded` holds the book's files in book order; the first leads for text fields.

    `path_hint` reads the book's path; it is called only when no tag gives a title or authors.
    """
    layers: list[tuple[str, Metadata]] = []
    if sidecar is not None:
        layers.extend(("sidecar", m) for m in (sidecar.opf, sidecar.abs_json) if m is not None)
        if sidecar.description:
            layers.append(("sidecar", Metadata(format="desc.txt", description=sidecar.description)))
        if sidecar.narrators:
            layers.append(("sidecar", Metadata(format="reader.txt", narrators=sidecar.narrators)))
    sidecar_layers = len(layers)
    layers.extend(("embedded", m) for m in embedded)
    # The folder layout speaks only when the tags are empty: reading it costs more than the
    # rest of the merge, and a tagged book's path is often just a download name.
    if not any(m.title for _, m in layers) or not any(m.contributors for _, m in layers):
        layers.append(("path", path_hint()))
    sources: dict[str, str] = {}
    # The first source with a value wins each field, its source recorded under the field's
    # key. One loop over a table, not a call per field: this runs for every book.
    picked: dict[str, Any] = {}
    for name, key in _PICKED:
        for source, meta in layers:
            value = getattr(meta, name)
            if value:
                picked[name] = value
                sources[key] = source
                break
    title = picked.get("title") or fallback_title
    sources.setdefault("title", "path")
    # A sort title belongs to its title: a sidecar's title never takes an embedded sort title.
    sort_title = next((meta.sort_title for _, meta in layers if meta.title), None)
    if sort_title is not None:
        sources["sort_title"] = sources["title"]
    subjects: list[Subject] = []
    if any(meta.subjects for _, meta in layers):
        for kind in SubjectKind:
            # Each kind is its own field: the first source naming characters gives all of them.
            for source, meta in layers:
                found = [s for s in meta.subjects if s.kind is kind]
                if found:
                    subjects.extend(found)
                    sources[kind.field] = source
                    break
    # Book-level identifiers: the sidecars', and an `[ASIN]` the path gives for a type no
    # file carries itself (each file keeps its own embedded identifiers).
    identifiers = [i for _, meta in layers[:sidecar_layers] for i in meta.identifiers]
    if layers[-1][0] == "path" and layers[-1][1].identifiers:
        embedded_types = {i.type for m in embedded for i in m.identifiers}
        identifiers.extend(
            i
            for i in layers[-1][1].identifiers
            if i.type not in embedded_types and all(i.type != o.type for o in identifiers)
        )
    return MergedBook(
        title=title,
        subtitle=picked.get("subtitle"),
        # Book producers (calibre's own credit, conversion houses) are not people a reader looks for.
        contributors=tuple(c for c in picked.get("contributors", ()) if c.role != "producer"),
        series=picked.get("series", ()),
        genres=picked.get("genres", ()),
        tags=picked.get("tags", ()),
        description=picked.get("description"),
        publisher=picked.get("publisher"),
        release_date=picked.get("release_date"),
        language=picked.get("language"),
        narrators=_narrators(layers, sidecar_layers, sources),
        identifiers=tuple(dict.fromkeys(identifiers)),
        sources=sources,
        sort_title=sort_title,
        age_rating=picked.get("age_rating"),
        reading_direction=picked.get("reading_direction"),
        web_link=picked.get("web_link"),
        volume=picked.get("volume"),
        volume_count=picked.get("volume_count"),
        issue_count=picked.get("issue_count"),
        subjects=tuple(subjects),
    )


# (Metadata field, its key in `field_sources`), for the fields the first source gives whole.
_PICKED = (
    ("title", "title"),
    ("subtitle", "subtitle"),
    ("contributors", "authors"),
    ("series", "series"),
    ("genres", "genres"),
    ("tags", "tags"),
    ("description", "description"),
    ("publisher", "publisher"),
    ("release_date", "release_date"),
    ("language", "language"),
    # comics (issue 10)
    ("age_rating", "age_rating"),
    ("reading_direction", "reading_direction"),
    ("web_link", "web_link"),
    ("volume", "volume"),
    ("volume_count", "volume_count"),
    ("issue_count", "issue_count"),
)


def _narrators(
    layers: Sequence[tuple[str, Metadata]], sidecar_layers: int, sources: dict[str, str]
) -> tuple[str, ...] | None:
    """Book-wide narrators: a sidecar's, else the path's `{Narrator}` when no file names one.

    None keeps each file's own embedded narrators (an ebook joined to its
    audiobook has none, and must not get the audiobook's).
    """
    for source, meta in layers[:sidecar_layers]:
        if meta.narrators:
            sources["narrators"] = source
            return meta.narrators
    if any(m.narrators for source, m in layers if source == "embedded"):
        return None
    source, meta = layers[-1]
    if source == "path" and meta.narrators:
        sources["narrators"] = source
        return meta.narrators
    return None
