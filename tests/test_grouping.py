"""Which files make one book: table-driven rules of scan/grouping.py.

Conventions: Audiobookshelf's directory structure (one folder per book, `CD 1/`
and `Disc 2/` folders are parts of it) and its most reported bug (a folder of
several single-file audiobooks made into one book); calibre's library layout
(one folder per book, each format of it a file with the same name, next to
`metadata.opf` and `cover.jpg`). Where they disagree (ABS reads a whole folder
as one book, calibre's folders hold one book with many files) both are kept:
parts stay together, distinct works do not.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import PurePosixPath

import pytest

from shelfscan.catalogue.known import KnownFile
from shelfscan.formats.records import Contributor, Metadata, SeriesEntry
from shelfscan.scan.discovery import DiskFile, RootWalk
from shelfscan.scan.grouping import (
    Unit,
    book_path,
    form_books,
    plan_units,
    split_audio,
    work_name,
)

# A file is "path" or "path|key=value|...": title, album, track, author, series (name#number).
Spec = str


def _meta(spec: Spec) -> tuple[str, Metadata]:
    path, *pairs = spec.split("|")
    tags = dict(pair.split("=", 1) for pair in pairs)
    fmt = PurePosixPath(path).suffix.lstrip(".").lower()
    fmt = {"azw3": "mobi", "kepub": "epub", "zip": "fb2"}.get(fmt, fmt)
    series: tuple[SeriesEntry, ...] = ()
    if "series" in tags:
        name, _, number = tags["series"].partition("#")
        series = (SeriesEntry(name, Decimal(number) if number else None),)
    extra: dict[str, str] = {k: tags[k] for k in ("album", "track", "disc") if k in tags}
    return path, Metadata(
        format=fmt,
        title=tags.get("title"),
        contributors=(Contributor(tags["author"]),) if "author" in tags else (),
        series=series,
        extra=extra,
    )


# (case, files of one unit, expected books: each the file paths in book order)
GROUPING_TABLE: list[tuple[str, list[Spec], list[list[str]]]] = [
    # --- several single-file audiobooks in one folder -----------------------------------------
    ("two untagged m4b", ["A/Book One.m4b", "A/Book Two.m4b"],
     [["A/Book One.m4b"], ["A/Book Two.m4b"]]),
    ("two m4b, own title tags", ["A/x1.m4b|title=Dune", "A/x2.m4b|title=Dune Messiah"],
     [["A/x1.m4b"], ["A/x2.m4b"]]),
    ("three m4b", ["A/Book One.m4b", "A/Book Two.m4b", "A/Book Three.m4b"],
     [["A/Book One.m4b"], ["A/Book Two.m4b"], ["A/Book Three.m4b"]]),
    ("m4b numbered as a series", ["S/1 - Book One.m4b", "S/2 - Book Two.m4b"],
     [["S/1 - Book One.m4b"], ["S/2 - Book Two.m4b"]]),
    ("m4b Book N is a series index", ["S/Book 1.m4b", "S/Book 2.m4b"],
     [["S/Book 1.m4b"], ["S/Book 2.m4b"]]),
    ("m4b both track 1/1", ["A/a.m4b|title=Emma|track=1/1", "A/b.m4b|title=Persuasion|track=1/1"],
     [["A/a.m4b"], ["A/b.m4b"]]),
    ("m4b, different albums", ["A/a.m4b|album=Emma", "A/b.m4b|album=Persuasion"],
     [["A/a.m4b"], ["A/b.m4b"]]),
    ("mp3 books with distinct titles", ["A/Emma.mp3|title=Emma", "A/Persuasion.mp3|title=Persuasion"],
     [["A/Emma.mp3"], ["A/Persuasion.mp3"]]),
    ("two works, two parts each",
     ["A/Book One - Part 1.mp3", "A/Book One - Part 2.mp3", "A/Book Two - Part 1.mp3",
      "A/Book Two - Part 2.mp3"],
     [["A/Book One - Part 1.mp3", "A/Book One - Part 2.mp3"],
      ["A/Book Two - Part 1.mp3", "A/Book Two - Part 2.mp3"]]),
    ("two m4b works in parts",
     ["A/Emma Part 2.m4b", "A/Emma Part 1.m4b", "A/Persuasion Part 1.m4b"],
     [["A/Emma Part 1.m4b", "A/Emma Part 2.m4b"], ["A/Persuasion Part 1.m4b"]]),
    # --- parts of one audiobook -----------------------------------------------------------------
    ("same title tags", ["B/a.m4b|title=Dune", "B/b.m4b|title=Dune"], [["B/a.m4b", "B/b.m4b"]]),
    ("Part N m4b", ["B/Part 2.m4b", "B/Part 1.m4b"], [["B/Part 1.m4b", "B/Part 2.m4b"]]),
    ("Title - Part N", ["B/Dune - Part 1.m4b", "B/Dune - Part 2.m4b"],
     [["B/Dune - Part 1.m4b", "B/Dune - Part 2.m4b"]]),
    ("Title - Pt. N", ["B/Dune - Pt. 2.m4b", "B/Dune - Pt. 1.m4b"],
     [["B/Dune - Pt. 1.m4b", "B/Dune - Pt. 2.m4b"]]),
    ("Title (N of M)", ["B/Dune (1 of 3).mp3", "B/Dune (2 of 3).mp3", "B/Dune (3 of 3).mp3"],
     [["B/Dune (1 of 3).mp3", "B/Dune (2 of 3).mp3", "B/Dune (3 of 3).mp3"]]),
    ("numbered tracks", ["B/03.mp3", "B/01.mp3", "B/02.mp3"], [["B/01.mp3", "B/02.mp3", "B/03.mp3"]]),
    ("NN - Chapter title", ["B/01 - Intro.mp3", "B/02 - The Road.mp3"],
     [["B/01 - Intro.mp3", "B/02 - The Road.mp3"]]),
    ("NN. Chapter title", ["B/01. Intro.mp3", "B/02. The Road.mp3"],
     [["B/01. Intro.mp3", "B/02. The Road.mp3"]]),
    ("numbered names, chapter title tags",
     ["B/01 - Intro.mp3|title=Intro", "B/02 - The Road.mp3|title=The Road"],
     [["B/01 - Intro.mp3", "B/02 - The Road.mp3"]]),
    ("Chapter N names", ["B/Chapter 10.mp3", "B/Chapter 2.mp3", "B/Chapter 1.mp3"],
     [["B/Chapter 1.mp3", "B/Chapter 2.mp3", "B/Chapter 10.mp3"]]),
    ("Chapter N title tags", ["B/x.m4b|title=Chapter 1", "B/y.m4b|title=Chapter 2"],
     [["B/x.m4b", "B/y.m4b"]]),
    ("Ch. N", ["B/Ch. 1.mp3", "B/Ch. 2.mp3"], [["B/Ch. 1.mp3", "B/Ch. 2.mp3"]]),
    ("Track N flac", ["B/Track 02.flac", "B/Track 01.flac"],
     [["B/Track 01.flac", "B/Track 02.flac"]]),
    ("Title NN mp3", ["B/The Hobbit 02.mp3", "B/The Hobbit 01.mp3"],
     [["B/The Hobbit 01.mp3", "B/The Hobbit 02.mp3"]]),
    ("Title_NN ogg", ["B/hobbit_01.ogg", "B/hobbit_02.ogg"], [["B/hobbit_01.ogg", "B/hobbit_02.ogg"]]),
    ("Kapitel N", ["B/Kapitel 1.mp3", "B/Kapitel 2.mp3"], [["B/Kapitel 1.mp3", "B/Kapitel 2.mp3"]]),
    ("Teil N m4b", ["B/Der Hobbit Teil 1.m4b", "B/Der Hobbit Teil 2.m4b"],
     [["B/Der Hobbit Teil 1.m4b", "B/Der Hobbit Teil 2.m4b"]]),
    ("CD N in names", ["B/Dune CD1.mp3", "B/Dune CD2.mp3"], [["B/Dune CD1.mp3", "B/Dune CD2.mp3"]]),
    ("disc folders", ["B/CD 2/01.mp3", "B/CD 1/01.mp3", "B/CD 1/02.mp3"],
     [["B/CD 1/01.mp3", "B/CD 1/02.mp3", "B/CD 2/01.mp3"]]),
    ("disc folders, named files", ["B/Disc 1/Intro.mp3", "B/Disc 2/Outro.mp3"],
     [["B/Disc 1/Intro.mp3", "B/Disc 2/Outro.mp3"]]),
    ("distinct track tags", ["B/Intro.mp3|title=Intro|track=1", "B/Road.mp3|title=Road|track=2"],
     [["B/Intro.mp3", "B/Road.mp3"]]),
    ("track tags order the parts", ["B/b.mp3|track=2/3", "B/c.mp3|track=3/3", "B/a.mp3|track=1/3"],
     [["B/a.mp3", "B/b.mp3", "B/c.mp3"]]),
    ("m4b of one album (the series), own titles",
     ["S/a.m4b|album=Discworld|title=Mort", "S/b.m4b|album=Discworld|title=Sourcery"],
     [["S/a.m4b"], ["S/b.m4b"]]),
    ("m4b of one album, numbered tracks",
     ["S/a.m4b|album=Dune|title=Dune 1|track=1", "S/b.m4b|album=Dune|title=Dune 2|track=2"],
     [["S/a.m4b", "S/b.m4b"]]),
    ("m4b of one album, no titles", ["S/a.m4b|album=Dune", "S/b.m4b|album=Dune"],
     [["S/a.m4b", "S/b.m4b"]]),
    ("same album, different titles",
     ["B/a.mp3|album=Dune|title=Opening", "B/b.mp3|album=Dune|title=Ending"],
     [["B/a.mp3", "B/b.mp3"]]),
    ("an intro among numbered tracks", ["B/Intro.mp3", "B/01.mp3", "B/02.mp3"],
     [["B/01.mp3", "B/02.mp3", "B/Intro.mp3"]]),
    ("one file", ["B/Dune.m4b"], [["B/Dune.m4b"]]),
    ("untagged file among albums", ["B/a.mp3|album=Dune", "B/b.mp3|album=Dune", "B/c.mp3"],
     [["B/a.mp3", "B/b.mp3"], ["B/c.mp3"]]),
    # --- ebooks with audiobooks -----------------------------------------------------------------
    ("ebook joins its audiobook",
     ["C/Dune.m4b|title=Dune|author=Frank Herbert", "C/Dune.epub|title=Dune|author=Frank Herbert"],
     [["C/Dune.epub", "C/Dune.m4b"]]),
    ("ebook joins the matching one of two",
     ["C/Book One.m4b", "C/Book Two.m4b", "C/Book Two.epub"],
     [["C/Book One.m4b"], ["C/Book Two.epub", "C/Book Two.m4b"]]),
    ("untagged ebook and m4b of one name", ["C/Dune.m4b", "C/Dune.epub"],
     [["C/Dune.epub", "C/Dune.m4b"]]),
    ("ebook of another work", ["C/01.mp3", "C/02.mp3", "C/Emma.epub|title=Emma|author=Austen"],
     [["C/01.mp3", "C/02.mp3"], ["C/Emma.epub"]]),
    # --- one book in several formats ------------------------------------------------------------
    ("calibre formats", ["D/Dune - Frank Herbert.pdf", "D/Dune - Frank Herbert.mobi",
                         "D/Dune - Frank Herbert.epub"],
     [["D/Dune - Frank Herbert.epub", "D/Dune - Frank Herbert.mobi", "D/Dune - Frank Herbert.pdf"]]),
    ("epub and pdf", ["D/Title.pdf", "D/Title.epub"], [["D/Title.epub", "D/Title.pdf"]]),
    ("kepub and epub", ["D/Title.kepub.epub", "D/Title.epub"],
     [["D/Title.epub", "D/Title.kepub.epub"]]),
    ("fb2.zip and epub", ["D/Title.fb2.zip", "D/Title.epub"], [["D/Title.epub", "D/Title.fb2.zip"]]),
    ("azw3 before pdf", ["D/Title.pdf", "D/Title.azw3"], [["D/Title.azw3", "D/Title.pdf"]]),
    ("fb2 before mobi", ["D/Title.mobi", "D/Title.fb2"], [["D/Title.fb2", "D/Title.mobi"]]),
    ("names differ in case", ["D/Title.EPUB", "D/title.pdf"], [["D/Title.EPUB", "D/title.pdf"]]),
    ("underscore is a space", ["D/My_Book.pdf", "D/My Book.epub"],
     [["D/My Book.epub", "D/My_Book.pdf"]]),
    ("same tags, other names",
     ["D/dune_retail.pdf|title=Dune|author=Frank Herbert",
      "D/Dune.epub|title=Dune|author=Frank Herbert"],
     [["D/Dune.epub", "D/dune_retail.pdf"]]),
    ("same tags, same series entry",
     ["D/a.epub|title=Dune|author=F H|series=Dune#1", "D/b.pdf|title=Dune|author=F H|series=Dune#1"],
     [["D/a.epub", "D/b.pdf"]]),
    ("same title, other authors",
     ["D/a.epub|title=Poems|author=Keats", "D/b.epub|title=Poems|author=Shelley"],
     [["D/a.epub"], ["D/b.epub"]]),
    ("same title and author, other volumes",
     ["D/a.epub|title=Letters|author=Keats|series=Letters#1",
      "D/b.epub|title=Letters|author=Keats|series=Letters#2"],
     [["D/a.epub"], ["D/b.epub"]]),
    ("same title, no author", ["D/a.pdf|title=Untitled", "D/b.pdf|title=Untitled"],
     [["D/a.pdf"], ["D/b.pdf"]]),
    ("untagged copies", ["D/Title.epub", "D/Title (1).epub"], [["D/Title (1).epub"], ["D/Title.epub"]]),
    ("different books", ["D/Emma.epub", "D/Persuasion.epub"], [["D/Emma.epub"], ["D/Persuasion.epub"]]),
    # --- comics ---------------------------------------------------------------------------------
    ("issues share tags but are not one book",
     ["E/Saga 001.cbz|title=Saga|author=BKV", "E/Saga 002.cbz|title=Saga|author=BKV"],
     [["E/Saga 001.cbz"], ["E/Saga 002.cbz"]]),
    ("one issue in two archive formats", ["E/Saga 001.cbr", "E/Saga 001.cbz"],
     [["E/Saga 001.cbz", "E/Saga 001.cbr"]]),
    ("comic and its pdf", ["E/Saga 001.pdf", "E/Saga 001.cbz"], [["E/Saga 001.pdf", "E/Saga 001.cbz"]]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("files", "expected"),
    [(f, e) for _, f, e in GROUPING_TABLE],
    ids=[c for c, _, _ in GROUPING_TABLE],
)
def test_grouping_rules(files: list[Spec], expected: list[list[str]]) -> None:
    items = [_meta(spec) for spec in files]
    books = [[items[i][0] for i in book] for book in form_books(items)]
    assert sorted(books) == sorted(expected)
    every = sorted(i for book in form_books(items) for i in book)
    assert every == list(range(len(items)))  # no file lost, none twice


def test_the_grouping_table_is_big_enough() -> None:
    assert len(GROUPING_TABLE) >= 50


@pytest.mark.parametrize(
    ("path", "title", "expected"),
    [
        ("A/Book One.m4b", None, ("book one", False)),
        ("A/x.m4b", "The Two Towers", ("the two towers", False)),
        ("A/Part 3.m4b", None, ("", True)),
        ("A/Dune - Part 3.m4b", None, ("dune", True)),
        ("A/07 - Finale.mp3", "Finale", ("", True)),
        ("A/1 - Book One.m4b", None, ("1 book one", False)),
        ("A/Book 2.m4b", None, ("book 2", False)),
        ("A/Book 2.mp3", None, ("book", True)),
        ("A/x.mp3", "Chapter 12: Home", ("", True)),
        ("A/Emma (2 of 9).mp3", None, ("emma", True)),
        ("A/Step 1.m4b", None, ("step 1", False)),  # "ep 1" inside a word is no episode
    ],
)
def test_work_name(path: str, title: str | None, expected: tuple[str, bool]) -> None:
    fmt = PurePosixPath(path).suffix.lstrip(".")
    assert work_name(path, Metadata(format=fmt, title=title)) == expected


def test_split_audio_keeps_a_single_file() -> None:
    items = [_meta("A/Book.m4b")]
    assert split_audio(items, [0]) == [[0]]


def _disk(path: str, fmt: str | None = None) -> DiskFile:
    suffix = PurePosixPath(path).suffix.lstrip(".").lower()
    return DiskFile(1, path, 10, 1, hash(path) & 0xFFFF, 1, fmt or suffix)


def _units(paths: list[str], sidecars: list[str], touched: list[str] | None = None) -> list[Unit]:
    walk = RootWalk(1, "/lib")
    walk.files.extend(_disk(p) for p in paths)
    walk.sidecars = [_disk(p, "sidecar") for p in sidecars]
    known: dict[tuple[int, str], KnownFile] = {}
    return plan_units(
        [walk], known, {(1, p) for p in (paths if touched is None else touched)}, set()
    )


def test_a_calibre_folder_is_one_unit_with_its_sidecars() -> None:
    folder = "Frank Herbert/Dune (12)"
    paths = [f"{folder}/Dune - Frank Herbert.{ext}" for ext in ("epub", "pdf", "mobi")]
    (unit,) = _units(paths, [f"{folder}/metadata.opf", f"{folder}/cover.jpg"])
    assert sorted(d.path for d, _ in unit.files) == sorted(paths)
    assert sorted(s.path for s in unit.sidecars) == [
        f"{folder}/cover.jpg",
        f"{folder}/metadata.opf",
    ]


def test_a_flat_folder_gives_one_unit_per_name() -> None:
    paths = ["Books/Dune.epub", "Books/Dune.pdf", "Books/Emma.epub", "Books/Persuasion.epub"]
    units = _units(paths, ["Books/cover.jpg"])
    assert sorted(sorted(d.path for d, _ in u.files) for u in units) == [
        ["Books/Dune.epub", "Books/Dune.pdf"],
        ["Books/Emma.epub"],
        ["Books/Persuasion.epub"],
    ]
    assert all(not u.sidecars for u in units)


def test_a_changed_format_rereads_its_siblings_only() -> None:
    paths = ["Books/Dune.epub", "Books/Dune.pdf", "Books/Emma.epub", "Books/Persuasion.epub"]
    (unit,) = _units(paths, [], touched=["Books/Dune.pdf"])
    assert sorted(d.path for d, _ in unit.files) == ["Books/Dune.epub", "Books/Dune.pdf"]


def test_a_folder_of_distinct_formats_is_read_whole() -> None:
    (unit,) = _units(["A/Title.epub", "A/Title - Author.mobi"], ["A/metadata.opf"])
    assert len(unit.files) == 2 and len(unit.sidecars) == 1


def test_an_audio_folder_is_read_whole() -> None:
    (unit,) = _units(
        ["A/Book One.m4b", "A/Book Two.m4b", "A/Book Two.epub"], [], ["A/Book One.m4b"]
    )
    assert len(unit.files) == 3


@pytest.mark.parametrize(
    ("lead", "files", "expected"),
    [
        ("A/Moby Dick/Moby Dick - Part 1.m4b", 2, "A/Moby Dick/Moby Dick.m4b"),
        ("A/Moby Dick/Moby Dick (1 of 3).mp3", 3, "A/Moby Dick/Moby Dick.mp3"),
        ("A/Dune/Dune CD1.mp3", 2, "A/Dune/Dune.mp3"),
        ("A/Dune/Dune_01.mp3", 2, "A/Dune/Dune.mp3"),
        ("Dune - Part 1.m4b", 2, "Dune.m4b"),
        ("A/Moby Dick/Moby Dick - Part 1.m4b", 1, "A/Moby Dick/Moby Dick - Part 1.m4b"),
        ("A/Dune/Part 1.m4b", 2, "A/Dune/Part 1.m4b"),
        ("A/Dune/01 - Intro.mp3", 5, "A/Dune/01 - Intro.mp3"),
        ("A/Dune/1 - Dune.m4b", 2, "A/Dune/1 - Dune.m4b"),  # a series index, not a part
        ("A/Dune/Dune - Part 1.epub", 2, "A/Dune/Dune - Part 1.epub"),  # ebooks lead as they are
    ],
)
def test_book_path_names_a_book_in_parts(lead: str, files: int, expected: str) -> None:
    fmt = PurePosixPath(lead).suffix.lstrip(".")
    assert book_path(lead, fmt, files) == expected


@pytest.mark.parametrize(
    ("lead", "files", "expected"),
    [
        (
            "Le Guin/A Wizard of Earthsea.mp3",
            1,
            "Le Guin/A Wizard of Earthsea/A Wizard of Earthsea.mp3",
        ),
        ("Austen/Emma.m4b", 1, "Austen/Emma/Emma.m4b"),
        ("Austen/Emma - Part 1.mp3", 2, "Austen/Emma/Emma.mp3"),
        ("Emma.m4b", 1, "Emma/Emma.m4b"),
        ("Austen/01.mp3", 3, "Austen/01.mp3"),  # parts named by number alone stay in the folder
        ("Austen/Emma.epub", 1, "Austen/Emma.epub"),
    ],
)
def test_book_path_of_a_book_in_a_shared_folder(lead: str, files: int, expected: str) -> None:
    fmt = PurePosixPath(lead).suffix.lstrip(".")
    assert book_path(lead, fmt, files, shared_folder=True) == expected


def test_names_alike_up_to_a_dot_are_still_told_apart() -> None:
    paths = [
        "Books/Mr. Smith.epub",
        "Books/Mr. Jones.epub",
        "Books/Mr. Smith.pdf",
        "Books/MR_X.epub",
    ]
    units = _units(paths, [])
    assert sorted(sorted(d.path for d, _ in u.files) for u in units) == [
        ["Books/MR_X.epub"],
        ["Books/Mr. Jones.epub"],
        ["Books/Mr. Smith.epub", "Books/Mr. Smith.pdf"],
    ]
