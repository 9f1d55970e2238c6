"""Audiobook folders: Audiobookshelf's documented directory structure, read by the path
fallback (`metadata_from_path`) and by `parse_title_folder` directly.

Conventions: Audiobookshelf's "Book Library Structure" documentation (`Author/Series/Title/`,
`Author/Title/`, single files at the root, `Vol 1 - 1994 - Wizards First Rule {Sam
Tsoutsouvas}`, `1945 - Animal Farm`, `Hackers - Heroes of the Computer Revolution {Mike
Chamberlain}`) and its folder scanner's sequence forms (`Book 2 - Title - Subtitle`, `Title -
Subtitle - Vol 12`, `Title - volume 9 - Subtitle`, `Vol. 3 Title Here - Subtitle`, `1980 -
Book 2 - Title`, `Volume 12. Title - Subtitle`, `100 - Book Title`, `6. Title`, `0.5 - Book
Title`; "101 Dalmatians" is a title). Audiobookshelf splits the subtitle only when a setting
asks; the issue asks for it, so audio title folders always split at the first " - ".
Audiobookshelf reads a sequence only below a series folder; labelled forms ("Book 2") are
read everywhere here (a user who wrote "Book 2" meant it), bare numbers only in a series.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from shelfscan.formats.records import Metadata
from shelfscan.paths import parse_title_folder
from shelfscan.scan.pathhints import metadata_from_path


def summary(meta: Metadata) -> tuple[object, ...]:
    """(title, subtitle, authors, series as (name, number), narrators, year, asin)."""
    return (
        meta.title,
        meta.subtitle,
        tuple(c.name for c in meta.contributors),
        tuple((s.name, None if s.number is None else str(s.number)) for s in meta.series),
        meta.narrators,
        meta.release_date,
        next((i.value for i in meta.identifiers if i.type == "asin"), None),
    )


N = None
FOLDERS = [
    ("Terry Goodkind/Sword of Truth/Vol 1 - 1994 - Wizards First Rule {Sam Tsoutsouvas}/Audio Track 1.mp3",
     ("Wizards First Rule", N, ("Terry Goodkind",), (("Sword of Truth", "1"),), ("Sam Tsoutsouvas",), "1994", N)),
    ("Terry Goodkind/Sword of Truth/Vol 2 - 1995 - Stone of Tears/Audiobook.m4b",
     ("Stone of Tears", N, ("Terry Goodkind",), (("Sword of Truth", "2"),), (), "1995", N)),
    ("Terry Goodkind/Heart of Black Ice - Sister of Darkness/Audio File.m4a",
     ("Heart of Black Ice", "Sister of Darkness", ("Terry Goodkind",), (), (), N, N)),
    ("Steven Levy/Hackers - Heroes of the Computer Revolution {Mike Chamberlain}/Audio File.m4a",
     ("Hackers", "Heroes of the Computer Revolution", ("Steven Levy",), (), ("Mike Chamberlain",), N, N)),
    ("1945 - Animal Farm/Audiobook.mp3", ("Animal Farm", N, (), (), (), "1945", N)),
    ("Ender's Game.m4b", ("Ender's Game", N, (), (), (), N, N)),
    ("Human Action.m4b", ("Human Action", N, (), (), (), N, N)),
    ("Author/Series/Book 2 - Title - Subtitle/01.mp3",
     ("Title", "Subtitle", ("Author",), (("Series", "2"),), (), N, N)),
    ("Author/Series/Title - Subtitle - Vol 12/01.mp3",
     ("Title", "Subtitle", ("Author",), (("Series", "12"),), (), N, N)),
    ("Author/Series/Title - volume 9 - Subtitle/01.mp3",
     ("Title", "Subtitle", ("Author",), (("Series", "9"),), (), N, N)),
    ("Author/Series/Vol. 3 Title Here - Subtitle/01.mp3",
     ("Title Here", "Subtitle", ("Author",), (("Series", "3"),), (), N, N)),
    ("Author/Series/1980 - Book 2 - Title/01.mp3",
     ("Title", N, ("Author",), (("Series", "2"),), (), "1980", N)),
    ("Author/Series/Volume 12. Title - Subtitle/01.mp3",
     ("Title", "Subtitle", ("Author",), (("Series", "12"),), (), N, N)),
    ("Author/Series/100 - Book Title/01.mp3",
     ("Book Title", N, ("Author",), (("Series", "100"),), (), N, N)),
    ("Author/Series/2 - Book Title/01.mp3",
     ("Book Title", N, ("Author",), (("Series", "2"),), (), N, N)),
    ("Author/Series/6. Title/01.mp3", ("Title", N, ("Author",), (("Series", "6"),), (), N, N)),
    ("Author/Series/0.5 - Book Title/01.mp3",
     ("Book Title", N, ("Author",), (("Series", "0.5"),), (), N, N)),
    ("Author/Series/101 Dalmatians/01.mp3",
     ("101 Dalmatians", N, ("Author",), (("Series", N),), (), N, N)),
    ("Author/Series/Book 1 - Title/01.mp3", ("Title", N, ("Author",), (("Series", "1"),), (), N, N)),
    ("Author/Series/#1 - Title/01.mp3", ("Title", N, ("Author",), (("Series", "1"),), (), N, N)),
    ("Author/Series/#1 Title/01.mp3", ("Title", N, ("Author",), (("Series", "1"),), (), N, N)),
    ("Author/Series/1 - Title/01.mp3", ("Title", N, ("Author",), (("Series", "1"),), (), N, N)),
    ("Author/Series/1. Title/01.mp3", ("Title", N, ("Author",), (("Series", "1"),), (), N, N)),
    ("Author/Series/Vol. 1 - Title/01.mp3", ("Title", N, ("Author",), (("Series", "1"),), (), N, N)),
    ("Author/Series/Volume 1 - Title/01.mp3", ("Title", N, ("Author",), (("Series", "1"),), (), N, N)),
    ("Author/Series/Book 1.5 - Novella/01.mp3",
     ("Novella", N, ("Author",), (("Series", "1.5"),), (), N, N)),
    ("Author/Series/(1994) - Title/01.mp3", ("Title", N, ("Author",), (("Series", N),), (), "1994", N)),
    ("Author/Series/Title (1994)/01.mp3", ("Title", N, ("Author",), (("Series", N),), (), "1994", N)),
    ("Author/Series/Book 3 - 2001 - Title/01.mp3",
     ("Title", N, ("Author",), (("Series", "3"),), (), "2001", N)),
    ("Author/Title [B0015T963C]/01.mp3", ("Title", N, ("Author",), (), (), N, "B0015T963C")),
    ("Author/Title {Narrator} [B0015T963C]/01.mp3",
     ("Title", N, ("Author",), (), ("Narrator",), N, "B0015T963C")),
    ("Author/Series/Book 2 - Title [B0015T963C]/01.mp3",
     ("Title", N, ("Author",), (("Series", "2"),), (), N, "B0015T963C")),
    ("Author/Title {Kate Reading, Michael Kramer}/01.mp3",
     ("Title", N, ("Author",), (), ("Kate Reading", "Michael Kramer"), N, N)),
    ("Author/Title {Kate Reading & Michael Kramer}/01.mp3",
     ("Title", N, ("Author",), (), ("Kate Reading", "Michael Kramer"), N, N)),
    ("Brandon Sanderson/Mistborn/Mistborn 1 - The Final Empire/part 1.mp3",
     ("The Final Empire", N, ("Brandon Sanderson",), (("Mistborn", "1"),), (), N, N)),
    ("Stephen King/1986 - It {Steven Weber}/It.m4b",
     ("It", N, ("Stephen King",), (), ("Steven Weber",), "1986", N)),
    ("Author/Title/CD 1/01.mp3", ("Title", N, ("Author",), (), (), N, N)),
    ("Author/Title/Disc 2/track 03.flac", ("Title", N, ("Author",), (), (), N, N)),
    ("Author/Series/Title/CD1/audiofile.mp3", ("Title", N, ("Author",), (("Series", N),), (), N, N)),
    ("Audiobooks/Author/Title/01.mp3", ("Title", N, ("Author",), (), (), N, N)),
    ("Author/Title.m4b", ("Title", N, ("Author",), (), (), N, N)),
    ("Author/Title (Unabridged)/01.mp3", ("Title", N, ("Author",), (), (), N, N)),
    ("Author/Title - Author/01.mp3", ("Title", N, ("Author",), (), (), N, N)),
    ("Author/Author - Title - Subtitle/01.mp3", ("Title", "Subtitle", ("Author",), (), (), N, N)),
    ("Unknown/Title/01.mp3", ("Title", N, (), (), (), N, N)),
    ("Various Authors/Anthology/01.mp3", ("Anthology", N, (), (), (), N, N)),
    ("Kishimi, Ichiro, Koga, Fumitake/The Courage to Be Disliked/01.mp3",
     ("The Courage to Be Disliked", N, ("Ichiro Kishimi", "Fumitake Koga"), (), (), N, N)),
    ("Stephen King & Peter Straub/The Talisman/01.mp3",
     ("The Talisman", N, ("Stephen King", "Peter Straub"), (), (), N, N)),
    ("Douglas Preston and Lincoln Child/Relic/01.mp3",
     ("Relic", N, ("Douglas Preston", "Lincoln Child"), (), (), N, N)),
    ("张三, 李四/书名/01.mp3", ("书名", N, ("张三", "李四"), (), (), N, N)),
    ("Tolkien, J.R.R./The Hobbit/01.mp3", ("The Hobbit", N, ("J.R.R. Tolkien",), (), (), N, N)),
    ("Fantasy/Author/Series/Book 4 - Title/01.mp3",
     ("Title", N, ("Author",), (("Series", "4"),), (), N, N)),
    ("Author/Series/Title (Series #3)/01.mp3",
     ("Title", N, ("Author",), (("Series", "3"),), (), N, N)),
    ("Author/Title (Other Series, Book 2)/01.mp3",
     ("Title", N, ("Author",), (("Other Series", "2"),), (), N, N)),
    ("Author/Series/Title, Book 2/01.mp3", ("Title", N, ("Author",), (("Series", "2"),), (), N, N)),
    ("Author/Series/Title Volume 2/01.mp3", ("Title", N, ("Author",), (("Series", "2"),), (), N, N)),
    ("Author/Title (2004) {Narrator}/01.mp3", ("Title", N, ("Author",), (), ("Narrator",), "2004", N)),
    ("Author/Title {ASIN.1774248182}/01.mp3", ("Title", N, ("Author",), (), (), N, "1774248182")),
    ("Author/Title [1774248182]/01.mp3", ("Title", N, ("Author",), (), (), N, "1774248182")),
    ("Author/Title [Retail]/01.mp3", ("Title", N, ("Author",), (), (), N, N)),
    ("Author/Series/01 - Title/Whatever Name.m4b", ("Title", N, ("Author",), (("Series", "1"),), (), N, N)),
    ("Author/Title {Reader}/Some Rip.m4b", ("Title", N, ("Author",), (), ("Reader",), N, N)),
    ("J.K. Rowling/Harry Potter/Book 7 - Harry Potter and the Deathly Hallows - 2007/01.mp3",
     ("Harry Potter and the Deathly Hallows", N, ("J.K. Rowling",), (("Harry Potter", "7"),), (), "2007", N)),
    ("Brandon Sanderson/The Stormlight Archive/Book 1 - The Way of Kings {Michael Kramer, Kate Reading}/01.mp3",
     ("The Way of Kings", N, ("Brandon Sanderson",), (("The Stormlight Archive", "1"),),
      ("Michael Kramer", "Kate Reading"), N, N)),
    ("Dan Simmons/Hyperion Cantos/Vol. 2 - The Fall of Hyperion/disc 1/01.mp3",
     ("The Fall of Hyperion", N, ("Dan Simmons",), (("Hyperion Cantos", "2"),), (), N, N)),
]  # fmt: skip


@pytest.mark.parametrize(("path", "expected"), FOLDERS)
def test_audiobook_folders(path: str, expected: tuple[object, ...]) -> None:
    assert summary(metadata_from_path(path)) == expected


# parse_title_folder alone: (folder, in_series) -> (title, sequence, year)
TITLES = [
    ("Vol 1 - 1994 - Wizards First Rule", True, ("Wizards First Rule", "1", "1994")),
    ("Book 2 - Title - Subtitle", True, ("Title - Subtitle", "2", N)),
    ("Title - volume 9 - Subtitle", False, ("Title - Subtitle", "9", N)),
    ("101 Dalmatians", True, ("101 Dalmatians", N, N)),
    ("101. Dalmatians", True, ("Dalmatians", "101", N)),
    ("2 - Title", False, ("2 - Title", N, N)),  # a bare number is a sequence only in a series
    ("1984", True, ("1984", N, N)),
    ("1984 - Title", False, ("Title", N, "1984")),
    ("Title", False, ("Title", N, N)),
    ("Book 3", False, ("", "3", N)),
]  # fmt: skip


@pytest.mark.parametrize(("folder", "in_series", "expected"), TITLES)
def test_title_folder(folder: str, in_series: bool, expected: tuple[object, ...]) -> None:
    parsed = parse_title_folder(folder, in_series=in_series)
    sequence = None if parsed.sequence is None else str(parsed.sequence)
    assert (parsed.title, sequence, parsed.year) == expected


def test_title_folder_fields() -> None:
    parsed = parse_title_folder("[Author Name] Title {Reader One; Reader Two} [B0015T963C]")
    assert parsed.authors == ("Author Name",)
    assert parsed.narrators == ("Reader One", "Reader Two")
    assert parsed.asin == "B0015T963C"
    assert parsed.title == "Title"
    assert parse_title_folder("Title (Expanse #2)").series == ("Expanse", Decimal(2))
