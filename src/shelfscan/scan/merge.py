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

from shelfscan.formats.records import Contributor, Identifier, Metadata, SeriesEntry
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
        for source, meta in layers[:sidecar_layers] if only_sidecars else layers:
            value = getattr(meta, name)
            if value:
                sources[key or name] = source
                return value
        return None

    title = pick("title") or fallback_title
    sources.setdefault("title", "path")
    identifiers = [
        i for source, meta in layers[:sidecar_layers] for i in meta.identifiers if source
    ]
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
        narrators=pick("narrators", only_sidecars=True),
        identifiers=tuple(dict.fromkeys(identifiers)),
        sources=sources,
    )
