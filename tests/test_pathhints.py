"""metadata_from_path: what folder and file names say when tags say nothing."""

from __future__ import annotations

import time
import zipfile
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from shelfscan.formats.records import Identifier, Metadata
from shelfscan.scan.pathhints import metadata_from_path
from shelfscan.testing.covers import cover_jpeg
from tests.scanning import ScanFn, export


def summary(meta: Metadata) -> tuple[object, ...]:
    """(title, authors, series as (name, number-string), narrators, year) for compact tables."""
    return (
        meta.title,
        tuple(c.name for c in meta.contributors),
        tuple((s.name, None if s.number is None else str(s.number)) for s in meta.series),
        meta.narrators,
        meta.release_date,
    )


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # Audiobookshelf layout: the title folder holds the audio
        ("Author Name/Series Name/Book 3 - Title/file.mp3",
         ("Title", ("Author Name",), (("Series Name", "3"),), (), None)),
        ("Author/Title/Title.m4b", ("Title", ("Author",), (), (), None)),
        ("Author/Series/Title/Title.epub", ("Title", ("Author",), (("Series", None),), (), None)),
        ("Author/Series/Title/CD 1/01.mp3", ("Title", ("Author",), (("Series", None),), (), None)),
        ("Author/Series/Title/Disc 2/track 03.flac",
         ("Title", ("Author",), (("Series", None),), (), None)),
        ("Author/Title/Part 1/Part 1.m4b", ("Title", ("Author",), (), (), None)),
        ("Author/Title/01 - Chapter One.mp3", ("Title", ("Author",), (), (), None)),
        ("Fantasy/Brandon Sanderson/Mistborn/Mistborn 1 - The Final Empire/part 1.mp3",
         ("The Final Empire", ("Brandon Sanderson",), (("Mistborn", "1"),), (), None)),
        ("Stephen King/1986 - It {Steven Weber}/It.m4b",
         ("It", ("Stephen King",), (), ("Steven Weber",), "1986")),
        ("Author/Series/Vol. 2 - Title/01.mp3", ("Title", ("Author",), (("Series", "2"),), (), None)),
        # ebooks: the file is the book
        ("Author/Series/03 - Title.epub", ("Title", ("Author",), (("Series", "3"),), (), None)),
        ("Author/Series/3. Title.epub", ("Title", ("Author",), (("Series", "3"),), (), None)),
        ("Author/Series/#2 Title.epub", ("Title", ("Author",), (("Series", "2"),), (), None)),
        ("Author/Series/Title, Book 2.epub", ("Title", ("Author",), (("Series", "2"),), (), None)),
        ("Author/Series/Title Volume 2.epub", ("Title", ("Author",), (("Series", "2"),), (), None)),
        ("Author/Series/Title - Vol 12.epub", ("Title", ("Author",), (("Series", "12"),), (), None)),
        ("Author/Series/Book 1.5 - Novella.epub",
         ("Novella", ("Author",), (("Series", "1.5"),), (), None)),
        ("Terry Pratchett/Discworld/Discworld 03 - Equal Rites.epub",
         ("Equal Rites", ("Terry Pratchett",), (("Discworld", "3"),), (), None)),
        ("Author/Title.epub", ("Title", ("Author",), (), (), None)),
        ("Author/Title.m4b", ("Title", ("Author",), (), (), None)),
        ("Author/Author - Title.epub", ("Title", ("Author",), (), (), None)),
        ("Author/Title - Author.epub", ("Title", ("Author",), (), (), None)),
        ("Author/Title/Author - Title.epub", ("Title", ("Author",), (), (), None)),
        ("Stephen King/Stephen King - Carrie.epub", ("Carrie", ("Stephen King",), (), (), None)),
        # flat files
        ("Title - Author.epub", ("Title", ("Author",), (), (), None)),
        ("ebooks/Title - Author.epub", ("Title", ("Author",), (), (), None)),
        ("The Hobbit - J.R.R. Tolkien.kepub.epub", ("The Hobbit", ("J.R.R. Tolkien",), (), (), None)),
        ("Good Omens - Terry Pratchett & Neil Gaiman.epub",
         ("Good Omens", ("Terry Pratchett", "Neil Gaiman"), (), (), None)),
        ("Some File.epub", ("Some File", (), (), (), None)),
        ("Some_File_Name.pdf", ("Some File Name", (), (), (), None)),
        ("The Stand.epub", ("The Stand", (), (), (), None)),
        ("Harry Potter - Book 1.epub", ("Harry Potter", (), (("Harry Potter", "1"),), (), None)),
        # Kavita's book names (BookParsingTests, DefaultParserTests)
        ("Faust - Volume 01 [Del Rey][Scans_Compressed].epub",
         ("Faust", (), (("Faust", "1"),), (), None)),
        ("Harrison, Kim - The Good, The Bad, and the Undead - Hollows Vol 2.5.epub",
         ("The Good, The Bad, and the Undead", ("Kim Harrison",), (("Hollows", "2.5"),), (), None)),
        ("Harrison, Kim - Dates from Hell - Hollows Vol 2.5.epub",
         ("Dates from Hell", ("Kim Harrison",), (("Hollows", "2.5"),), (), None)),
        ("Sword Art Online Vol 10 - Alicization Running [Yen Press] [LuCaZ] {r2}.epub",
         ("Alicization Running", (), (("Sword Art Online", "10"),), (), None)),
        ("Title - Subtitle With 2 Parts.epub", ("Title - Subtitle With 2 Parts", (), (), (), None)),
        ("[Author] Title.epub", ("Title", ("Author",), (), (), None)),
        ("[Tolkien, J.R.R.] The Hobbit.epub", ("The Hobbit", ("J.R.R. Tolkien",), (), (), None)),
        ("Title {Narrator}.m4b", ("Title", (), (), ("Narrator",), None)),
        ("Title {Kate Reading, Michael Kramer}.m4b",
         ("Title", (), (), ("Kate Reading", "Michael Kramer"), None)),
        ("Title (1999).epub", ("Title", (), (), (), "1999")),
        ("Title [1999].epub", ("Title", (), (), (), "1999")),
        ("Title (Unabridged) [Retail].epub", ("Title", (), (), (), None)),
        ("Title (1).epub", ("Title", (), (), (), None)),
        ("Title (A Novel).epub", ("Title (A Novel)", (), (), (), None)),
        ("Author/Leviathan Wakes (The Expanse #1).epub",
         ("Leviathan Wakes", ("Author",), (("The Expanse", "1"),), (), None)),
        ("Author/Expanse/Caliban's War (Expanse, Book 2).epub",
         ("Caliban's War", ("Author",), (("Expanse", "2"),), (), None)),
        # calibre layout
        ("Lewis Carroll/Alice's Adventures in Wonderland (17)/"
         "Alice's Adventures in Wonderland - Lewis Carroll.epub",
         ("Alice's Adventures in Wonderland", ("Lewis Carroll",), (), (), None)),
        ("Unknown/Title (5)/Title - Unknown.epub", ("Title", (), (), (), None)),
        ("The Hobbit/The Hobbit - J.R.R. Tolkien.epub",
         ("The Hobbit", ("J.R.R. Tolkien",), (), (), None)),
        ("Title/Title (1999).epub", ("Title", (), (), (), "1999")),
        ("Author/Title (2004)/Title.epub", ("Title", ("Author",), (), (), "2004")),
        # comics: the nearest folder is the series
        ("Comics/Batman/Batman 001.cbz", ("Batman 001", (), (("Batman", "1"),), (), None)),
        ("Batman/001.cbz", ("Batman 001", (), (("Batman", "1"),), (), None)),
        ("DC/Batman/Batman - Year One.cbr", ("Batman - Year One", (), (("Batman", None),), (), None)),
        # comics and manga through shelfscan.paths (issue 12's cases)
        ("Saga 001 (2012) (Digital) (Empire-Zone).cbz", ("Saga 001", (), (("Saga", "1"),), (), "2012")),
        ("Dorohedoro/Dorohedoro v01 (2010).cbz",
         ("Dorohedoro v01", (), (("Dorohedoro", "1"),), (), "2010")),
        ("Batgirl/Batgirl Vol.2000 #57.cbz",
         ("Batgirl Vol.2000 #57", (), (("Batgirl", "57"),), (), None)),
        ("Btooom!/Specials/Art Book.cbz", ("Art Book", (), (("Btooom!", None),), (), None)),
        ("Btooom!/Vol.1/Chapter 1/1.cbz", ("Btooom! 1", (), (("Btooom!", "1"),), (), None)),
        ("Manga/Akame ga KILL! ZERO (2016-2019) (Digital) (LuCaZ)/"
         "Akame ga KILL! ZERO v01 (2016) (Digital) (LuCaZ).cbz",
         ("Akame ga KILL! ZERO v01", (), (("Akame ga KILL! ZERO", "1"),), (), "2016")),
        ("Tenjou_Tenge_c106[MT].cbz", ("Tenjou Tenge c106", (), (("Tenjou Tenge", "106"),), (), None)),
        # audiobook folders (issue 12's cases)
        ("Terry Goodkind/Sword of Truth/Vol 1 - 1994 - Wizards First Rule {Sam Tsoutsouvas}/"
         "Audio Track 1.mp3",
         ("Wizards First Rule", ("Terry Goodkind",), (("Sword of Truth", "1"),),
          ("Sam Tsoutsouvas",), "1994")),
        ("Author/Series/Title - volume 9 - Subtitle/01.mp3",
         ("Title", ("Author",), (("Series", "9"),), (), None)),
        ("Kishimi, Ichiro, Koga, Fumitake/The Courage to Be Disliked.epub",
         ("The Courage to Be Disliked", ("Ichiro Kishimi", "Fumitake Koga"), (), (), None)),
        ("John Smith, Jones, James Doe/Title.epub",
         ("Title", ("John Smith", "Jones", "James Doe"), (), (), None)),
        ("张三, 李四/书名.epub", ("书名", ("张三", "李四"), (), (), None)),
        # generic folders and author folders that name nobody
        ("library/books/ebooks/x.pdf", ("x", (), (), (), None)),
        ("Audiobooks/Author/Title/01.mp3", ("Title", ("Author",), (), (), None)),
        ("Various/Anthology/Story.epub", ("Story", (), (("Anthology", None),), (), None)),
        ("Author/epub/Title.epub", ("Title", ("Author",), (), (), None)),
        ("Tolkien, J.R.R./The Hobbit.epub", ("The Hobbit", ("J.R.R. Tolkien",), (), (), None)),
        ("Stephen King & Peter Straub/The Talisman.epub",
         ("The Talisman", ("Stephen King", "Peter Straub"), (), (), None)),
    ],
)  # fmt: skip
def test_paths(path: str, expected: tuple[object, ...]) -> None:
    meta = metadata_from_path(path)
    assert meta.format == "path"
    assert summary(meta) == expected


def test_author_sort_name_kept_from_folder() -> None:
    (author,) = metadata_from_path("Tolkien, J.R.R./The Hobbit.epub").contributors
    assert (author.name, author.role, author.sort_name) == (
        "J.R.R. Tolkien",
        "author",
        "Tolkien, J.R.R.",
    )
    (plain,) = metadata_from_path("Author/Title.epub").contributors
    assert plain.sort_name is None


def test_comic_volume_and_special_kept_in_extra() -> None:
    meta = metadata_from_path("Batgirl/Batgirl Vol.2000 #57.cbz")
    assert meta.extra == {"volume": "2000"}
    assert metadata_from_path("Bleach 001-003.cbz").extra == {"number": "1-3"}
    assert metadata_from_path("Btooom!/Specials/Art Book.cbz").extra == {"special": "true"}


def test_audio_title_folder_subtitle() -> None:
    meta = metadata_from_path("Terry Goodkind/Heart of Black Ice - Sister of Darkness/a.m4a")
    assert (meta.title, meta.subtitle) == ("Heart of Black Ice", "Sister of Darkness")
    # An ebook's " - " stays in its title: only audiobook title folders carry subtitles so.
    assert metadata_from_path("Title - Subtitle With 2 Parts.epub").subtitle is None


def test_asin_and_numbers() -> None:
    meta = metadata_from_path("Author/Series/Book 2 - Title [B0015T963C]/01.mp3")
    assert meta.identifiers == (Identifier("asin", "B0015T963C"),)
    assert meta.series[0].number == Decimal(2)
    assert meta.title == "Title"
    labelled = metadata_from_path("Title {ASIN.1774248182}.m4b")
    assert labelled.identifiers == (Identifier("asin", "1774248182"),)
    assert labelled.title == "Title"


def test_calibre_corpus_path(corpus_dir: Path) -> None:
    root = corpus_dir / "calibre-library"
    book = next(root.glob("*/*/*.epub"))
    meta = metadata_from_path(book.relative_to(root).as_posix())
    assert meta.title == "Alice's Adventures in Wonderland"
    assert [c.name for c in meta.contributors] == ["Lewis Carroll"]


@pytest.mark.parametrize("path", ["", "/", "//", "./..", "a/b/../"])
def test_degenerate_paths(path: str) -> None:
    meta = metadata_from_path(path)
    assert meta.format == "path"


def test_odd_file_names() -> None:
    assert metadata_from_path("Mr. Smith Goes").title == "Mr. Smith Goes"
    assert metadata_from_path(".hidden").title == ".hidden"
    assert metadata_from_path("1984.epub").title == "1984"
    assert metadata_from_path("2001 - A Space Odyssey.epub").release_date == "2001"
    assert metadata_from_path("Book 3.epub").title == "Book 3"
    assert metadata_from_path("___.epub").title == "___"


def test_hostile_paths_are_fast() -> None:
    nasty = [
        "a/" * 10_000 + "b.epub",
        "(" * 50_000 + ".epub",
        "(" + "x " * 50_000 + "Book 1" + ")" * 2 + ".epub",
        "[" * 20_000 + "]" * 20_000 + "/x.mp3",
        " - " * 30_000 + ".epub",
        "{" + "a," * 30_000 + "}.m4b",
        "v1/" * 10_000 + "x.cbz",
        "(" * 50_000 + ".cbz",
        "1-" * 30_000 + ".cbz",
        "Vol." * 20_000 + ".cbz",
        "#" * 60_000 + ".cbz",
    ]
    start = time.perf_counter()
    for path in nasty:
        metadata_from_path(path)
    assert time.perf_counter() - start < 1.0


def _untagged_cbz(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("001.jpg", cover_jpeg(1, (60, 90), 2_000))


async def test_untagged_comics_get_series_and_numbers_through_export(
    pool: asyncpg.Pool, scan: ScanFn, tmp_path: Path
) -> None:
    """The whole scan: untagged archives named as Kavita's and Komga's users name them."""
    root = tmp_path / "comics"
    for rel in (
        "Saga 001 (2012) (Digital) (Empire-Zone).cbz",
        "Batgirl/Batgirl Vol.2000 #57.cbz",
        "Btooom!/Specials/Art Book.cbz",
        "Btooom!/Vol.1/Chapter 1/1.cbz",
        "Akame ga KILL! ZERO (2016-2019) (Digital) (LuCaZ)/Akame ga KILL! ZERO v02 (2016).cbz",
    ):
        _untagged_cbz(root / rel)
    summary = await scan(root)
    assert summary.files_failed == 0
    got = {
        (b["title"], tuple((s["name"], s["number"]) for s in b["series"]), b["release_date"])
        for b in await export(pool)
    }
    assert got == {
        ("Saga 001", (("Saga", 1),), "2012"),
        ("Batgirl Vol.2000 #57", (("Batgirl", 57),), None),
        ("Art Book", (("Btooom!", None),), None),
        ("Btooom! 1", (("Btooom!", 1),), None),
        ("Akame ga KILL! ZERO v02", (("Akame ga KILL! ZERO", 2),), "2016"),
    }
