"""The scan's small pure stages, tested directly: merge, grouping, assemble.

Each is a function of its inputs (assemble also of the ids the resolver gives),
so each rule is pinned here by a table, not only through whole scans.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import pytest

from shelfscan.catalogue.entities import EntityKey, EntityName
from shelfscan.catalogue.known import KnownFile
from shelfscan.formats.records import Contributor, Identifier, Metadata, SeriesEntry
from shelfscan.scan.assemble import Assembler, BookParts, Parsed
from shelfscan.scan.discovery import DiskFile, RootWalk
from shelfscan.scan.grouping import Unit, form_books, plan_units
from shelfscan.scan.merge import merge_book
from shelfscan.scan.parse import ParseOutcome, SidecarData

ANN = Contributor("Ann Author")


def _hint(**fields: Any) -> Metadata:
    return Metadata(format="path", **fields)


# -- merge ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("embedded", "sidecar", "hint", "expect", "sources"),
    [
        # A sidecar beats the tags, field by field; the tags fill what it lacks.
        (
            [Metadata("epub", title="Tagged", contributors=(ANN,), language="en")],
            SidecarData(opf=Metadata("opf", title="From calibre")),
            _hint(title="From path"),
            {"title": "From calibre", "language": "en"},
            {"title": "sidecar", "authors": "embedded", "language": "embedded"},
        ),
        # The folder layout speaks only when tags give no title or no authors.
        (
            [Metadata("epub", title="Tagged")],
            None,
            _hint(title="Ignored", contributors=(Contributor("Path Person"),)),
            {"title": "Tagged"},
            {"title": "embedded", "authors": "path"},
        ),
        # Nothing anywhere: the file's name is the title.
        ([], None, _hint(), {"title": "fallback"}, {"title": "path"}),
        # The first file leads for text fields.
        (
            [Metadata("m4b", title="Part one"), Metadata("m4b", title="Part two")],
            None,
            _hint(contributors=(ANN,)),
            {"title": "Part one"},
            {"title": "embedded", "authors": "path"},
        ),
    ],
)
def test_merge_takes_each_field_from_the_strongest_source(
    embedded: list[Metadata],
    sidecar: SidecarData | None,
    hint: Metadata,
    expect: dict[str, Any],
    sources: dict[str, str],
) -> None:
    book = merge_book(embedded, sidecar, lambda: hint, "fallback")
    for field, value in expect.items():
        assert getattr(book, field) == value, field
    for field, source in sources.items():
        assert book.sources[field] == source, field


def test_merge_reads_the_path_only_when_it_has_to() -> None:
    calls: list[int] = []

    def hint() -> Metadata:
        calls.append(1)
        return _hint()

    merge_book([Metadata("epub", title="T", contributors=(ANN,))], None, hint, "f")
    assert calls == []
    merge_book([Metadata("epub", title="T")], None, hint, "f")
    assert calls == [1]


def test_merge_drops_producers_keeps_narrators_of_sidecars_only_and_dedupes_identifiers() -> None:
    isbn = Identifier("isbn_13", "9780000000002")
    embedded = [
        Metadata(
            "m4b",
            title="T",
            contributors=(ANN, Contributor("calibre", role="producer")),
            narrators=("Tag Narrator",),
        )
    ]
    without = merge_book(embedded, None, _hint, "f")
    assert [c.name for c in without.contributors] == ["Ann Author"]
    assert without.narrators is None  # each file keeps its own
    sidecar = SidecarData(
        opf=Metadata("opf", identifiers=(isbn, isbn)),
        narrators=("Sidecar Narrator",),
    )
    with_sidecar = merge_book(embedded, sidecar, _hint, "f")
    assert with_sidecar.narrators == ("Sidecar Narrator",)
    assert with_sidecar.identifiers == (isbn,)


# -- grouping ---------------------------------------------------------------------------------


def _audio(title: str, album: str | None, track: str, disc: str | None = None) -> Metadata:
    extra = {k: v for k, v in (("album", album), ("track", track), ("disc", disc)) if v}
    return Metadata("mp3", title=title, contributors=(ANN,), extra=extra)


@pytest.mark.parametrize(
    ("items", "books"),
    [
        # A flat folder of ebooks: one book each.
        (
            [("a.epub", Metadata("epub", title="A")), ("b.epub", Metadata("epub", title="B"))],
            [[0], [1]],
        ),
        # Audio sharing an album is one book, in disc, track, then natural name order.
        (
            [
                ("d2/01.mp3", _audio("x", "Album", "1", "2")),
                ("d1/10.mp3", _audio("x", "Album", "10", "1")),
                ("d1/2.mp3", _audio("x", "Album", "2", "1")),
            ],
            [[2, 1, 0]],
        ),
        # Untagged audio of a folder named as parts: one book, by natural file name.
        (
            [("Part 10.mp3", _audio("", None, "")), ("Part 9.mp3", _audio("", None, ""))],
            [[1, 0]],
        ),
        # Untagged single files with different names are different books.
        (
            [("Dune.m4b", _audio("", None, "")), ("Emma.m4b", _audio("", None, ""))],
            [[0], [1]],
        ),
        # With albums present, a part without one is its own book.
        (
            [("a.mp3", _audio("x", "Album", "1")), ("b.mp3", _audio("y", None, "2"))],
            [[0], [1]],
        ),
        # An ebook with the audiobook's title and author joins it, and leads.
        (
            [
                ("1.mp3", _audio("The Book", "The Book", "1")),
                ("book.epub", Metadata("epub", title="The Book", contributors=(ANN,))),
                ("other.epub", Metadata("epub", title="Another", contributors=(ANN,))),
            ],
            [[1, 0], [2]],
        ),
    ],
)
def test_form_books(items: list[tuple[str, Metadata]], books: list[list[int]]) -> None:
    assert form_books(items) == books


def _disk(path: str, fmt: str = "epub") -> DiskFile:
    return DiskFile(1, path, 10, 1, hash(path) & 0xFFFF, 1, fmt)


def _walk(*files: DiskFile, sidecars: tuple[DiskFile, ...] = ()) -> RootWalk:
    walk = RootWalk(1, "/root")
    walk.files.extend(files)
    walk.sidecars.extend(sidecars)
    return walk


def _units(units: list[Unit]) -> list[tuple[str, list[str], list[str]]]:
    return [(u.folder, [d.path for d, _ in u.files], [s.path for s in u.sidecars]) for u in units]


def test_plan_units_reads_whole_book_folders_and_single_files_of_flat_ones() -> None:
    flat = [_disk("flat/a.epub"), _disk("flat/b.epub")]
    audio = [_disk("audio/1.mp3", "mp3"), _disk("audio/2.mp3", "mp3")]
    cover = _disk("audio/cover.jpg", "sidecar")
    lone = _disk("lone/only.epub")
    walk = _walk(*flat, *audio, lone, sidecars=(cover,))
    touched = {(1, "flat/b.epub"), (1, "audio/2.mp3")}
    assert _units(plan_units([walk], {}, touched, set())) == [
        ("flat", ["flat/b.epub"], []),  # a flat folder: only what changed, no sidecars
        ("audio", ["audio/1.mp3", "audio/2.mp3"], ["audio/cover.jpg"]),  # the whole book
    ]
    # A sidecar edit alone re-reads its folder's book.
    assert _units(plan_units([walk], {}, set(), {(1, "lone")})) == [
        ("lone", ["lone/only.epub"], [])
    ]


# -- assemble ---------------------------------------------------------------------------------


class _Ids:
    """Hands out ids the way the resolver does (one per key); records what was asked."""

    def __init__(self) -> None:
        self.asked: dict[EntityKey, EntityName] = {}

    async def resolve(self, wanted: Mapping[EntityKey, EntityName]) -> dict[EntityKey, int]:
        for key, name in wanted.items():
            self.asked.setdefault(key, name)
        order = list(self.asked)
        return {key: 100 + order.index(key) for key in wanted}


def _parsed(path: str, meta: Metadata, known: KnownFile | None = None) -> Parsed:
    outcome = ParseOutcome(0, metadata=meta, size=10, mtime_ns=5, inode=7)
    return Parsed(_disk(path, meta.format), known, outcome)


async def test_assemble_builds_a_book_row_with_resolved_ids_and_sources() -> None:
    ids = _Ids()
    assembler = Assembler(ids, 3)  # type: ignore[arg-type]
    meta = Metadata(
        "epub",
        title="The Hobbit",
        contributors=(Contributor("Tolkien, J.R.R."),),
        series=(SeriesEntry("Middle-earth", Decimal(1)),),
        genres=("Fantasy",),
        language="en",
    )
    known = KnownFile(41, 9, 1, "b/old.epub", 10, 5, 7, "ok")
    (row,) = await assembler.build(
        [
            BookParts([_parsed("a/new.epub", meta)], None),
        ]
    )
    (again,) = await assembler.build([BookParts([_parsed("b/old.epub", meta, known)], None)])

    person = next(k for k in ids.asked if k.kind == "persons")
    assert ids.asked[person] == EntityName("J.R.R. Tolkien", "Tolkien, J.R.R.")
    assert row.book_id is None and row.library_id == 3
    assert (row.title, row.sort_title) == ("The Hobbit", "Hobbit, The")
    assert row.authors == ((100, "author"),) and row.series == ((101, Decimal(1)),)
    assert row.genre_ids == (102,)
    assert row.field_sources["title"] == "embedded"
    (file,) = row.files
    assert (file.file_id, file.path, file.format, file.size) == (None, "a/new.epub", "epub", 10)
    # A file the catalogue knows keeps its row and its book.
    assert again.book_id == 9 and again.files[0].file_id == 41
    assert again.files[0].previous_book_id == 9


def test_an_unreadable_file_still_gets_a_book_named_after_it() -> None:
    assembler = Assembler(_Ids(), 3)  # type: ignore[arg-type]
    row = assembler.error_row(_disk("x/Broken Book.kepub.epub"), "not a zip")
    assert (row.title, row.status, row.field_sources) == ("Broken Book", "error", {"title": "path"})
    assert row.files[0].scan_error == "not a zip" and row.files[0].status == "error"
