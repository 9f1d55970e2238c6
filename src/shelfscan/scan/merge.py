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

    def pick(name: str, *, key: str | None = None, only_sidecars: bool = False) -> Any:
        """The first source's value of field `name`, its source recorded under `key`."""
        for source, meta in layers[:sidecar_layers] if only_sidecars else layers:
            value = getattr(meta, name)
            if value:
                sources[key or name] = source
                return value
        return None

    title = pick("title") or fallback_title
    sources.setdefault("title", "path")
    # A sort title belongs to its title: a sidecar's title never takes an embedded sort title.
    sort_title = next((meta.sort_title for _, meta in layers if meta.title), None)
    if sort_title is not None:
        sources["sort_title"] = sources["title"]
    subjects: list[Subject] = []
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
    identifiers = [i for meta in (m for _, m in layers[:sidecar_layers]) for i in meta.identifiers]
    embedded_types = {i.type for m in embedded for i in m.identifiers}
    identifiers.extend(
        i
        for source, meta in layers
        if source == "path"
        for i in meta.identifiers
        if i.type not in embedded_types and all(i.type != o.type for o in identifiers)
    )
    return MergedBook(
        title=title,
        subtitle=pick("subtitle"),
        # Book producers (calibre's own credit, conversion houses) are not people a reader looks for.
        contributors=tuple(
            c for c in pick("contributors", key="authors") or () if c.role != "producer"
        ),
        series=pick("series") or (),
        genres=pick("genres") or (),
        tags=pick("tags") or (),
        description=pick("description"),
        publisher=pick("publisher"),
        release_date=pick("release_date"),
        language=pick("language"),
        narrators=_narrators(pick, layers),
        identifiers=tuple(dict.fromkeys(identifiers)),
        sources=sources,
        sort_title=sort_title,
        age_rating=pick("age_rating"),
        reading_direction=pick("reading_direction"),
        web_link=pick("web_link"),
        volume=pick("volume"),
        volume_count=pick("volume_count"),
        issue_count=pick("issue_count"),
        subjects=tuple(subjects),
    )


def _narrators(pick: Callable[..., Any], layers: Sequence[tuple[str, Metadata]]) -> Any:
    """Book-wide narrators: a sidecar's, else the path's `{Narrator}` when no file names one.

    None keeps each file's own embedded narrators (an ebook joined to its
    audiobook has none, and must not get the audiobook's).
    """
    found = pick("narrators", only_sidecars=True)
    if found is None and not any(m.narrators for source, m in layers if source == "embedded"):
        path = next((m for source, m in layers if source == "path"), None)
        if path is not None and path.narrators:
            found = pick("narrators")
    return found
